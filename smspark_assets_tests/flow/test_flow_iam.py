"""IAM coverage of the real flow: every action the demo made against the embedded stack is allowed to the
role of the principal that made it (orchestrator, EMR job role, SageMaker role) by the CloudFormation
template's policies, and no policy grants a wildcard action."""

from __future__ import annotations

import pytest

from smspark_assets_tests.deploy.iam_policy_eval import all_statements, check_actions, load_template, parameters

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


def test_every_action_of_the_flow_is_allowed_to_its_role(demo_flow: dict) -> None:
    from smspark_assets.local.action_log import read_actions

    entries = read_actions(demo_flow["root"] / "local" / "actions.jsonl")
    # The scores API is its own template (deploy/cloudformation/scores-api.yaml): its callers hold API keys,
    # not IAM credentials, and its integration role may only read the scores table.
    api_calls = [e for e in entries if e["service"] == "execute-api"]
    api_role = [e for e in entries if e.get("principal", "").endswith(":role/smspark-scores-api")]
    assert api_calls and {(e["service"], e["action"]) for e in api_role} <= {
        ("dynamodb", "GetItem"), ("dynamodb", "BatchGetItem")}
    entries = [e for e in entries if e not in api_calls and e not in api_role]
    template = load_template()
    cov = check_actions(entries, template, parameters(template))
    principals = {e.get("principal") for e in entries}
    # The stack tells the three apart, as AWS does: jobs and models run with their roles' credentials.
    assert {"orchestrator", "arn:aws:iam::000000000000:role/smspark-emr-local",
            "arn:aws:iam::000000000000:role/smspark-local"} <= principals
    assert cov.checked > 100
    assert cov.missing == {}, "\n".join(f"{p} {call}: needs {sorted(a)}" for (p, call), a in cov.missing.items())
    assert dict(cov.unknown_principals) == {}
    assert dict(cov.unmapped) == {}


def test_no_policy_grants_a_wildcard_action() -> None:
    wild = [(where, s["Action"]) for where, s in all_statements(load_template()) if s["Effect"] == "Allow"
            and any("*" in a for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    assert wild == []
