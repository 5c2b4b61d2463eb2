"""The scores API on the embedded stack: API Gateway's request pipeline over the stack's DynamoDB.

Served under ``/_api/<stage>/`` on the stack's port (a path no S3 bucket can start: bucket names begin
with a letter or digit), without SigV4: like API Gateway, it checks an API key instead. The API is the
one the deployment gives API Gateway (:mod:`.scores_api_spec` reads the OpenAPI document and the
CloudFormation template), and each request goes through API Gateway's steps in API Gateway's order:

1. route: a resource and method of the document, else 403 ``Missing Authentication Token``;
2. API key (``x-api-key``): else 403 ``Forbidden``;
3. usage plan: the key's token bucket, then its quota: else 429;
4. request validation: required parameters, else 400 ``Missing required request parameters: [...]``;
5. the request mapping template renders the DynamoDB request; DynamoDB answers (in-process, the same
   moto host that serves the stack's DynamoDB API);
6. the integration response whose pattern matches DynamoDB's status (else the default) renders the
   answer; ``$context.responseOverride.status`` sets the final status.

Errors of steps 1-4 are the document's gateway responses, rendered from their templates. Each request
writes one access-log line in the stage's ``Format`` to ``local/scores-api-access.log``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote

from smspark_assets.local.api_keys import ApiKey, load_or_create_api_key
from smspark_assets.local.private_files import open_private
from smspark_assets.local.scores_api_limits import QUOTA_EXCEEDED, THROTTLED, QuotaStore, UsagePlanLimiter
from smspark_assets.local.scores_api_spec import ApiSpec, GatewayResponse, UsagePlan, load_cloudformation, load_spec
from smspark_assets.local.scores_api_vtl import TemplateError, VelocityInput, request_context

API_PREFIX = "/_api/"
# The role API Gateway's integration assumes (ScoresApiRole in the template): recorded in the action log
# as the caller of the DynamoDB reads, as CloudTrail would show them.
INTEGRATION_ROLE_ARN = "arn:aws:iam::000000000000:role/smspark-scores-api"
# Gateway response type -> (default message, x-amzn-ErrorType), as API Gateway sends them.
_GATEWAY_ERRORS = {
    "MISSING_AUTHENTICATION_TOKEN": ("Missing Authentication Token", "MissingAuthenticationTokenException", 403),
    "INVALID_API_KEY": ("Forbidden", "ForbiddenException", 403),
    THROTTLED: ("Too Many Requests", "TooManyRequestsException", 429),
    QUOTA_EXCEEDED: ("Limit Exceeded", "LimitExceededException", 429),
    "BAD_REQUEST_PARAMETERS": ("", "BadRequestException", 400),
    "INTEGRATION_FAILURE": ("Internal server error", "InternalServerErrorException", 500),
}
_INTERNAL_ERROR = b'{"message": "Internal server error"}'
_CONTEXT_VAR = re.compile(r"\$context\.([A-Za-z0-9_.]+)")
ACCESS_LOG_NAME = "scores-api-access.log"
# The usage plan's quota counters (durable: a restart does not reset a daily quota).
QUOTA_DB_NAME = "scores-api.sqlite"


def _query_dict(query: Mapping[str, list[str]] | str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True) if isinstance(query, str) else dict(query)


class ScoresApi:
    """The API of one running stack: its key, usage-plan limiter and access log."""

    def __init__(self, service: Any, spec: ApiSpec | None = None) -> None:
        self.service = service
        self.spec = spec or load_spec()
        self.key: ApiKey = load_or_create_api_key(service.layout)
        self.plan = self.spec.usage_plan
        self.quota = QuotaStore(service.layout.local_dir / QUOTA_DB_NAME)
        self.limiter = UsagePlanLimiter(self.plan, quota=self.quota)
        self._config_mtime: int | None = None
        self._config_lock = threading.Lock()
        self.access_log_path: Path = service.layout.local_dir / ACCESS_LOG_NAME
        self._log_lock = threading.Lock()
        self._log = open_private(self.access_log_path, "ab")
        self._access_format = _access_log_format()
        self._region = getattr(service, "region", None) or _stack_region()
        self._integration_key = self._integration_credentials()

    def _integration_credentials(self) -> str:
        """The access key the integration's DynamoDB calls are recorded under (the integration role's)."""
        credentials = getattr(self.service, "credentials", None)
        if credentials is None:
            return ""
        from smspark_assets.local.credentials import role_credentials

        creds = role_credentials(credentials, INTEGRATION_ROLE_ARN)
        self.service.principals[creds.access_key] = INTEGRATION_ROLE_ARN
        return creds.access_key

    # -- configuration ----------------------------------------------------------------------------------

    def _refresh_limits(self) -> None:
        """Limits from ``config.json`` (``{"scores_api": {"rate_limit", "burst_limit", "quota_limit",
        "quota_period"}}``) when set, else the usage plan of the template; re-read when the file changes."""
        path: Path = self.service.layout.config_json
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime == self._config_mtime:
            return
        with self._config_lock:
            if mtime == self._config_mtime:
                return
            try:
                overrides = (json.loads(path.read_text()) if mtime else {}).get("scores_api") or {}
            except (OSError, ValueError):
                overrides = {}
            plan = UsagePlan(float(overrides.get("rate_limit", self.spec.usage_plan.rate_limit)),
                             int(overrides.get("burst_limit", self.spec.usage_plan.burst_limit)),
                             int(overrides.get("quota_limit", self.spec.usage_plan.quota_limit)),
                             str(overrides.get("quota_period", self.spec.usage_plan.quota_period)))
            if plan != self.plan:
                # A new plan gets new token buckets; the quota counts carry over, as in API Gateway.
                self.plan, self.limiter = plan, UsagePlanLimiter(plan, quota=self.quota)
            self._config_mtime = mtime

    # -- the pipeline -----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, query: Mapping[str, list[str]] | str,
               headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        headers = {k.lower(): v for k, v in headers.items()}
        now = dt.datetime.now(dt.timezone.utc)
        context = request_context(
            request_id, method, "", raw_path, self.spec.stage, "", "", "127.0.0.1",
            headers.get("user-agent", ""), now.strftime("%d/%b/%Y:%H:%M:%S +0000"), int(now.timestamp() * 1000))
        status, extra, body = self._handle(method, raw_path, _query_dict(query), headers, context)
        context["status"] = status
        context["responseLength"] = len(body)
        context["responseLatency"] = int((time.monotonic() - started) * 1000)
        self._write_access_log(context)
        out = {"Content-Type": "application/json", "x-amzn-RequestId": request_id, **extra}
        return status, out, body

    def _handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: dict[str, str],
                context: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        stage, _, resource = raw_path[len(API_PREFIX):].partition("/")
        found = self.spec.match(method, "/" + resource) if stage == self.spec.stage else None
        if found is None:
            return self._gateway_error("MISSING_AUTHENTICATION_TOKEN", context)
        route, raw_params = found
        context["resourcePath"] = route.resource_path
        self.service.actions.record("execute-api", f"{route.method} {route.resource_path}", "")
        if route.api_key_required:
            sent = headers.get("x-api-key", "")
            if not hmac.compare_digest(sent.encode(), self.key.value.encode()):
                return self._gateway_error("INVALID_API_KEY", context)
            context["identity"].update(apiKey=sent, apiKeyId=self.key.key_id)
            self._refresh_limits()
            refused = self.limiter.admit(self.key.key_id)
            if refused is not None:
                return self._gateway_error(refused, context)
        path_params = {name: unquote(value) for name, value in raw_params.items()}
        # $input.params('x') of a repeated query parameter is its last value, as in API Gateway.
        query_params = {name: values[-1] for name, values in query.items() if values}
        missing = [name for name in route.required["querystring"] if name not in query_params]
        missing += [name for name in route.required["header"] if name not in headers]
        if missing:
            return self._gateway_error("BAD_REQUEST_PARAMETERS", context,
                                       f"Missing required request parameters: [{', '.join(missing)}]")
        try:
            request_body = route.request_template.render(VelocityInput("", path_params, query_params, headers),
                                                         context, self.spec.stage_variables)
            backend_status, backend_body = self._call_dynamodb(route.action, request_body.encode())
            context["integration"] = {"status": backend_status}
            chosen = route.response_for(backend_status)
            context["responseOverride"]["status"] = None
            if chosen.template is None:
                body = backend_body
            else:
                body = chosen.template.render(
                    VelocityInput(backend_body.decode("utf-8", "replace"), path_params, query_params, headers),
                    context, self.spec.stage_variables).encode()
        except TemplateError:
            return 500, {"x-amzn-ErrorType": "InternalServerErrorException"}, _INTERNAL_ERROR
        status = context["responseOverride"]["status"] or chosen.status
        extra = {str(k): str(v) for k, v in (context["responseOverride"].get("header") or {}).items()}
        return int(status), extra, body

    def _call_dynamodb(self, action: str, body: bytes) -> tuple[int, bytes]:
        """The integration: one DynamoDB request, answered by the stack's DynamoDB host."""
        self.service.actions.record("dynamodb", action, self._integration_key)
        day = time.strftime("%Y%m%d", time.gmtime())
        headers = [("Content-Type", "application/x-amz-json-1.0"),
                   ("X-Amz-Target", f"DynamoDB_20120810.{action}"),
                   # moto reads the region (which backend holds the table) from the credential scope.
                   ("Authorization", f"AWS4-HMAC-SHA256 Credential={self._integration_key or 'local'}/{day}/"
                                     f"{self._region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0")]
        status, _, out = self.service.dynamodb.handle("POST", "/", "", headers, body, f"DynamoDB_20120810.{action}")
        return status, out

    def _gateway_error(self, kind: str, context: dict[str, Any], message: str | None = None
                       ) -> tuple[int, dict[str, str], bytes]:
        default_message, error_type, default_status = _GATEWAY_ERRORS[kind]
        text = message or default_message
        context["error"] = {"message": text, "messageString": json.dumps(text), "responseType": kind}
        response: GatewayResponse | None = self.spec.gateway_responses.get(kind)
        fallback = self.spec.gateway_responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
        status = (response.status if response and response.status else default_status)
        template = (response.template if response and response.template else
                    fallback.template if fallback and fallback.template else None)
        try:
            body = (template.render(VelocityInput("", {}, {}, {}), context, self.spec.stage_variables).encode()
                    if template else json.dumps({"message": text}).encode())
        except TemplateError:
            body = json.dumps({"message": text}).encode()
        return status, {"x-amzn-ErrorType": error_type}, body

    # -- access log -------------------------------------------------------------------------------------

    def _write_access_log(self, context: dict[str, Any]) -> None:
        if not self._access_format:
            return

        def value(match: re.Match[str]) -> str:
            current: Any = context
            for part in match.group(1).split("."):
                current = current.get(part) if isinstance(current, dict) else None
            text = "-" if current is None or current == "" else str(current)
            return json.dumps(text)[1:-1]  # the format puts its own quotes around each value

        line = _CONTEXT_VAR.sub(value, self._access_format).replace("\n", " ") + "\n"
        with self._log_lock:
            self._log.write(line.encode())
            self._log.flush()

    def shutdown(self) -> None:
        with self._log_lock:
            self._log.close()
        self.quota.close()


def _access_log_format() -> str:
    """The stage's access-log ``Format`` from the CloudFormation template."""
    try:
        stage = load_cloudformation()["Resources"]["ScoresStage"]["Properties"]
        return str(stage["AccessLogSetting"]["Format"])
    except (OSError, KeyError):
        return ""


def _stack_region() -> str:
    from smspark_assets import environment

    return environment.region()


_CREATE_LOCK = threading.Lock()


def scores_api(service: Any) -> ScoresApi:
    """The service's API, built on first use."""
    api = getattr(service, "scores_api", None)
    if api is None:
        with _CREATE_LOCK:
            api = getattr(service, "scores_api", None)
            if api is None:
                api = ScoresApi(service)
                service.scores_api = api
    return api


def handle_api_request(service: Any, method: str, raw_path: str, query: Mapping[str, list[str]] | str,
                       headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Answer one request under :data:`API_PREFIX`: ``(status, headers, body)``. Never raises for bad
    input; an internal failure answers API Gateway's 500."""
    try:
        return scores_api(service).handle(method, raw_path, query, headers)
    except Exception:  # noqa: BLE001 - a bug answers 500 as API Gateway does, not a dropped connection
        import logging

        logging.getLogger("smspark.local").exception("scores API %s %s failed", method, raw_path)
        return 500, {"Content-Type": "application/json", "x-amzn-ErrorType": "InternalServerErrorException"}, \
            _INTERNAL_ERROR


def api_base_url(stack_url: str) -> str:
    """The API's base URL on the stack at ``stack_url`` (with the stage, as API Gateway's invoke URL)."""
    return f"{stack_url.rstrip('/')}{API_PREFIX}{load_spec().stage}"
