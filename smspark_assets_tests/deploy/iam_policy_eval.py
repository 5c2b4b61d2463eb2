"""Reads the deployment's IAM policies out of the CloudFormation template and checks calls against them.

Only what the coverage tests need: CloudFormation conditions (``Fn::If``/``Fn::Equals``/``Fn::Not``/
``Fn::And``/``Fn::Or``/``Condition``) evaluated for given parameters, and whether an Allow statement of a
role names an exact IAM action. Resource scoping is reviewed in the template (the action log records no
resources); the wildcard and resource-"*" rules are checked over every statement.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "cloudformation" / "smspark.yaml"
ACTION_MAP = REPO / "deploy" / "iam" / "action_map.json"

# The principals the embedded stack records -> the template's roles. The role ARNs are the ones the
# local settings use (smspark_assets/resources/by_environment.py:local_settings).
PRINCIPAL_ROLES: dict[str, str] = {
    "orchestrator": "OrchestratorRole",
    "arn:aws:iam::000000000000:role/smspark-emr-local": "EmrJobRole",
    "arn:aws:iam::000000000000:role/smspark-local": "SageMakerExecutionRole",
}
ROLES = tuple(sorted(set(PRINCIPAL_ROLES.values())))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data (cfn-lint's decoder understands the short intrinsic forms)."""
    from cfnlint.decode import decode_str

    template, errors = decode_str(path.read_text())
    if errors:
        raise ValueError(f"{path} does not parse: {errors}")
    return json.loads(json.dumps(template))  # cfn-lint's node types -> plain dicts/lists/str


def load_action_map(path: Path = ACTION_MAP) -> dict[str, Any]:
    return json.loads(path.read_text())


def parameters(template: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Parameter values: the defaults, then ``overrides`` (lists for CommaDelimitedList)."""
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        default = spec.get("Default", "")
        if spec["Type"] == "CommaDelimitedList":
            default = [] if default == "" else str(default).split(",")
        values[name] = default
    values.update(overrides)
    return values


class _NoValue:
    """``AWS::NoValue``: removed from the list or mapping holding it."""


NO_VALUE = _NoValue()


@dataclass
class Resolver:
    template: Mapping[str, Any]
    params: Mapping[str, Any]
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, expr: Any) -> bool:
        (fn, args), = expr.items()
        if fn == "Fn::Equals":
            left, right = (self._value(a) for a in args)
            return left == right
        if fn == "Fn::Not":
            return not self._truth(args[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in args)
        if fn == "Condition":
            return self.condition(args)
        raise ValueError(f"unsupported condition function {fn}")

    def _value(self, expr: Any) -> Any:
        """A parameter's value for conditions (Ref, Join of a list parameter, literals)."""
        if isinstance(expr, dict):
            (fn, args), = expr.items()
            if fn == "Ref":
                return self.params[args]
            if fn == "Fn::Join":
                items = self._value(args[1])
                return args[0].join(items if isinstance(items, list) else [items])
            if fn == "Condition":
                return self.condition(args)
            return self._truth(expr)
        return expr

    def resolve(self, node: Any) -> Any:
        """``node`` with every ``Fn::If`` decided and every ``AWS::NoValue`` removed."""
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return self.resolve(yes if self.condition(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            out = {k: self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        return node


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Mapping[str, Any], role: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Allow statements of ``role``'s inline policies, for ``params``."""
    resolver = Resolver(template, params)
    resource = template["Resources"][role]
    if "Condition" in resource and not resolver.condition(resource["Condition"]):
        return []
    statements: list[dict[str, Any]] = []
    for policy in resolver.resolve(resource["Properties"].get("Policies", [])):
        statements.extend(s for s in _as_list(policy["PolicyDocument"]["Statement"]) if s["Effect"] == "Allow")
    return statements


def allowed_actions(template: Mapping[str, Any], role: str, params: Mapping[str, Any]) -> set[str]:
    return {a for s in role_statements(template, role, params) for a in _as_list(s["Action"])}


def _both_branches(node: Any) -> Iterable[Any]:
    """Every statement of a policy document, on both sides of each ``Fn::If``."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        for branch in node["Fn::If"][1:]:
            yield from _both_branches(branch)
    elif isinstance(node, list):
        for item in node:
            yield from _both_branches(item)
    elif isinstance(node, dict) and node != {"Ref": "AWS::NoValue"}:
        yield node


def all_statements(template: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, statement)`` of every policy in the template: roles, key, bucket and repository policies."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [(f"{name}.{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])]
        documents += [(f"{name}.{key}", props[key]) for key in
                      ("KeyPolicy", "PolicyDocument", "RepositoryPolicyText", "AssumeRolePolicyDocument")
                      if key in props]
        for where, document in documents:
            out.extend((where, s) for s in _both_branches(document["Statement"]))
    return out


@dataclass(frozen=True)
class Coverage:
    """What an action log needs and what the roles allow."""

    checked: int
    missing: dict[tuple[str, str], set[str]]  # (principal, recorded call) -> IAM actions not allowed
    unknown_principals: Counter
    unmapped: Counter  # recorded names that are neither an API action nor a known S3 error code
    s3_errors: int
    provisioned: Counter
    refused: int


def check_actions(entries: Iterable[Mapping[str, Any]], template: Mapping[str, Any],
                  params: Mapping[str, Any], action_map: Mapping[str, Any] | None = None) -> Coverage:
    """Check every recorded call of ``entries`` against the role of the principal that made it."""
    action_map = action_map or load_action_map()
    allowed = {role: allowed_actions(template, role, params) for role in ROLES}
    missing: dict[tuple[str, str], set[str]] = {}
    unknown: Counter = Counter()
    unmapped: Counter = Counter()
    provisioned: Counter = Counter()
    s3_errors = refused = checked = 0
    errors = set(action_map["s3_error_codes"])
    for entry in entries:
        service, action, principal = entry["service"], entry["action"], entry.get("principal", "")
        if action.startswith("refused:"):
            refused += 1
            continue
        call = f"{service}:{action}"
        if service == "s3" and action in errors:
            s3_errors += 1
            continue
        if call in action_map["provisioned_by_template"]:
            provisioned[call] += 1
            continue
        role = PRINCIPAL_ROLES.get(principal)
        if role is None:
            unknown[principal] += 1
            continue
        prefix = action_map["iam_prefix"].get(service)
        if prefix is None or not action[:1].isupper() or not action.isalnum() or action.isupper():
            unmapped[call] += 1  # e.g. a bare HTTP method: the stack did not name the action
            continue
        needed = action_map["calls"].get(call, [f"{prefix}:{action}"])
        checked += 1
        lacking = {a for a in needed if a not in allowed[role]}
        if lacking:
            missing.setdefault((principal, call), set()).update(lacking)
    return Coverage(checked, missing, unknown, unmapped, s3_errors, provisioned, refused)
