"""The scores API as the deployment defines it: routes, integrations and mapping templates from the
OpenAPI document, usage-plan limits and stage from the CloudFormation template.

Both files are the repository's (``deploy/api/scores-openapi.yaml``, ``deploy/cloudformation/scores-api.yaml``):
the stack serves exactly what API Gateway is given, so a template changed there is tested here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from smspark_assets.local.scores_api_render import direct_renderer
from smspark_assets.local.scores_api_vtl import CompiledTemplate

_DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OPENAPI_PATH = _DEPLOY / "api" / "scores-openapi.yaml"
CLOUDFORMATION_PATH = _DEPLOY / "cloudformation" / "scores-api.yaml"
JSON = "application/json"
# arn:<partition>:apigateway:<region>:dynamodb:action/<Action>
_ACTION_RE = re.compile(r":dynamodb:action/([A-Za-z]+)$")


@dataclass(frozen=True)
class IntegrationResponse:
    """One entry of ``x-amazon-apigateway-integration.responses``: chosen when ``pattern`` matches the
    backend's status code in full (``None``: the default)."""

    pattern: re.Pattern[str] | None
    status: int
    template: CompiledTemplate | None


@dataclass(frozen=True)
class Route:
    method: str
    resource_path: str  # /scores/{application_id}
    regex: re.Pattern[str]
    required: dict[str, tuple[str, ...]]  # "path"/"querystring"/"header" -> required names
    api_key_required: bool
    action: str  # the DynamoDB action of the integration
    request_template: CompiledTemplate
    responses: tuple[IntegrationResponse, ...]

    def response_for(self, backend_status: int) -> IntegrationResponse:
        """API Gateway's choice: the first pattern matching the status code, else the default."""
        default = None
        for response in self.responses:
            if response.pattern is None:
                default = response
            elif response.pattern.fullmatch(str(backend_status)):
                return response
        if default is None:
            raise ValueError(f"{self.method} {self.resource_path}: no default integration response")
        return default


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None  # None: the status of the error (DEFAULT_4XX/5XX)
    template: CompiledTemplate | None


@dataclass(frozen=True)
class UsagePlan:
    """The usage plan's limits for each key: a token bucket (``rate_limit`` tokens/s, ``burst_limit``
    tokens) and a quota of ``quota_limit`` requests per ``quota_period`` (DAY, WEEK or MONTH)."""

    rate_limit: float
    burst_limit: int
    quota_limit: int
    quota_period: str


@dataclass(frozen=True)
class ApiSpec:
    routes: tuple[Route, ...]
    gateway_responses: dict[str, GatewayResponse]
    stage: str
    stage_variables: dict[str, str]
    usage_plan: UsagePlan
    id_pattern: str = field(default="")

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method`` and the (still percent-encoded) resource ``path``, with its raw path
        parameters; None when no resource or method matches (API Gateway: 403 Missing Authentication Token)."""
        for route in self.routes:
            if route.method == method:
                found = route.regex.fullmatch(path)
                if found is not None:
                    return route, found.groupdict()
        return None


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref``, ``!Sub``, ...) read as plain values."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cloudformation(path: Path = CLOUDFORMATION_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _route_regex(resource_path: str) -> re.Pattern[str]:
    # A path parameter is one segment; it is matched percent-encoded and decoded afterwards.
    parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", resource_path)
    pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(pattern)


def _template(templates: dict[str, str] | None, name: str) -> CompiledTemplate | None:
    source = (templates or {}).get(JSON)
    return CompiledTemplate(source, name, direct_renderer(source)) if source is not None else None


def _routes(doc: dict[str, Any]) -> tuple[Route, ...]:
    global_security = doc.get("security")
    routes = []
    for resource_path, item in doc["paths"].items():
        for method, operation in item.items():
            if method.startswith("x-") or method == "parameters":
                continue
            integration = operation["x-amazon-apigateway-integration"]
            uri = integration["uri"]
            uri_text = uri["Fn::Sub"] if isinstance(uri, dict) else uri
            action = _ACTION_RE.search(uri_text)
            if integration.get("type") != "aws" or action is None:
                raise ValueError(f"{method.upper()} {resource_path}: only direct DynamoDB integrations are served")
            required: dict[str, list[str]] = {"path": [], "querystring": [], "header": []}
            where = {"path": "path", "query": "querystring", "header": "header"}
            for parameter in operation.get("parameters", []):
                if parameter.get("required") and parameter["in"] in where:
                    required[where[parameter["in"]]].append(parameter["name"])
            security = operation.get("security", global_security) or []
            name = f"{method.upper()} {resource_path}"
            responses = tuple(
                IntegrationResponse(None if pattern == "default" else re.compile(pattern), int(spec["statusCode"]),
                                    _template(spec.get("responseTemplates"), f"{name} response {pattern}"))
                for pattern, spec in integration.get("responses", {}).items())
            request_template = _template(integration.get("requestTemplates"), f"{name} request")
            if request_template is None:
                raise ValueError(f"{name}: the integration has no application/json request template")
            routes.append(Route(method.upper(), resource_path, _route_regex(resource_path),
                                {k: tuple(v) for k, v in required.items()},
                                any("api_key" in requirement for requirement in security),
                                action.group(1), request_template, responses))
    return tuple(routes)


def _parameter_default(cfn: dict[str, Any], name: str) -> Any:
    return cfn["Parameters"][name]["Default"]


@lru_cache(maxsize=4)
def load_spec(openapi_path: Path = OPENAPI_PATH, cloudformation_path: Path = CLOUDFORMATION_PATH) -> ApiSpec:
    """The API from the repository's files (parsed once per process)."""
    doc = yaml.safe_load(openapi_path.read_text())
    cfn = load_cloudformation(cloudformation_path)
    gateway = {
        kind: GatewayResponse(int(spec["statusCode"]) if "statusCode" in spec else None,
                              _template(spec.get("responseTemplates"), f"gateway response {kind}"))
        for kind, spec in doc.get("x-amazon-apigateway-gateway-responses", {}).items()
    }
    plan = UsagePlan(float(_parameter_default(cfn, "ThrottleRateLimit")),
                     int(_parameter_default(cfn, "ThrottleBurstLimit")),
                     int(_parameter_default(cfn, "QuotaLimit")),
                     str(_parameter_default(cfn, "QuotaPeriod")))
    return ApiSpec(_routes(doc), gateway, str(_parameter_default(cfn, "StageName")),
                   {"tableName": str(_parameter_default(cfn, "TableName"))}, plan,
                   doc["components"]["schemas"]["ApplicationId"]["pattern"])
