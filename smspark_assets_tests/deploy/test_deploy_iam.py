"""IAM coverage on a synthetic action log: each principal's calls are allowed to its role, and nothing else is.

The log below is what one flow records (services, actions, principals as the embedded stack writes them
to ``<SMSPARK_ROOT>/local/actions.jsonl``); the flow version of this test reads a real one
(``smspark_assets_tests/flow/test_flow_iam.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smspark_assets_tests.deploy.iam_policy_eval import (
    PRINCIPAL_ROLES, allowed_actions, all_statements, check_actions, load_action_map, load_template, parameters)

pytestmark = pytest.mark.timeout(60)

ORCH, EMR, SM = "orchestrator", "arn:aws:iam::000000000000:role/smspark-emr-local", \
    "arn:aws:iam::000000000000:role/smspark-local"

FLOW_CALLS: dict[str, list[str]] = {
    ORCH: ["s3:HeadObject", "s3:PutObject", "s3:GetObject", "s3:ListObjectsV2", "s3:DeleteObject",
           "s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload", "s3:NoSuchKey",
           "s3:CreateBucket", "s3:HeadBucket",
           "emr-serverless:ListApplications", "emr-serverless:CreateApplication", "emr-serverless:GetApplication",
           "emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:GetDashboardForJobRun",
           "emr-serverless:CancelJobRun", "logs:GetLogEvents", "logs:DescribeLogStreams",
           "sagemaker:DescribeTrainingJob", "sagemaker:CreateTrainingJob", "sagemaker:StopTrainingJob",
           "sagemaker:DescribeModel", "sagemaker:CreateModel", "sagemaker:DescribeEndpointConfig",
           "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpoint", "sagemaker:CreateEndpoint",
           "sagemaker:UpdateEndpoint", "sagemaker:InvokeEndpoint",
           "dynamodb:DescribeTable", "dynamodb:CreateTable", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
           "dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem",
           "glue:CreateDatabase", "glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition",
           "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
           "athena:StopQueryExecution"],
    EMR: ["s3:GetObject", "s3:PutObject", "s3:HeadObject", "sagemaker:InvokeEndpoint"],
    SM: ["s3:ListObjectsV2", "s3:GetObject", "s3:PutObject", "s3:HeadObject"],
}


def _log(calls: dict[str, list[str]]) -> list[dict]:
    return [{"t": 0.0, "service": c.split(":", 1)[0], "action": c.split(":", 1)[1], "access_key": "AK",
             "principal": p} for p, cs in calls.items() for c in cs]


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def test_every_call_of_the_flow_is_allowed_to_the_role_that_makes_it(template: dict, tmp_path: Path) -> None:
    # Written and read back the way the stack records it, so the reader is exercised too.
    from smspark_assets.local.action_log import read_actions

    path = tmp_path / "actions.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in _log(FLOW_CALLS)))
    cov = check_actions(read_actions(path), template, parameters(template))
    assert cov.missing == {}
    assert not cov.unknown_principals and not cov.unmapped
    assert cov.s3_errors == 1
    assert set(cov.provisioned) == {"s3:CreateBucket", "emr-serverless:ListApplications",
                                    "emr-serverless:CreateApplication", "dynamodb:CreateTable"}
    assert cov.checked == sum(len(v) for v in FLOW_CALLS.values()) - 1 - 4


@pytest.mark.parametrize("principal, call, needs", [
    (EMR, "sagemaker:CreateTrainingJob", "sagemaker:CreateTrainingJob"),  # a job cannot train
    (EMR, "dynamodb:BatchWriteItem", "dynamodb:BatchWriteItem"),
    (SM, "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpoint"),  # a model cannot call endpoints
    (SM, "s3:DeleteObjects", "s3:DeleteObject"),  # training never deletes
    (ORCH, "s3:ListBuckets", "s3:ListAllMyBuckets"),
    (ORCH, "glue:DeleteDatabase", "glue:DeleteDatabase"),
])
def test_a_call_the_role_does_not_need_is_reported_missing(template: dict, principal: str, call: str,
                                                           needs: str) -> None:
    cov = check_actions(_log({principal: [call]}), template, parameters(template))
    assert cov.missing == {(principal, call): {needs}}


def test_an_unknown_principal_or_unnamed_action_is_not_silently_passed(template: dict) -> None:
    entries = _log({"": ["s3:GetObject"], ORCH: ["s3:GET", "s3:refused:AccessDenied"]})
    cov = check_actions(entries, template, parameters(template))
    assert cov.unknown_principals == {"": 1}
    assert cov.unmapped == {"s3:GET": 1}
    assert cov.refused == 1 and cov.checked == 0


def test_demo_landing_is_the_only_raw_write_and_can_be_switched_off(template: dict) -> None:
    def raw_writers(params: dict) -> list[str]:
        from smspark_assets_tests.deploy.iam_policy_eval import role_statements
        return [s["Sid"] for s in role_statements(template, "OrchestratorRole", params)
                if any("raw/credit_applications" in json.dumps(r) for r in
                       (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]))]

    assert raw_writers(parameters(template)) == ["DemoLandsRawDays"]
    assert raw_writers(parameters(template, AllowDemoLanding="false")) == []


def test_no_policy_allows_a_wildcard_action(template: dict) -> None:
    statements = all_statements(template)
    assert len(statements) > 40
    wild = [(where, a) for where, s in statements if s["Effect"] == "Allow"
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]) if "*" in a or "?" in a]
    assert wild == []
    # The one wildcard is the TLS-only Deny of the bucket policies: it refuses, it grants nothing.
    denies = {(where, s["Action"]) for where, s in statements if s["Effect"] == "Deny"}
    assert denies == {("DataBucketPolicy.PolicyDocument", "s3:*"), ("PipesBucketPolicy.PolicyDocument", "s3:*")}


# Each resource-"*" grant and why: these APIs have no resource-level permissions (Service Authorization
# Reference). The key policy's "*" means the key itself.
RESOURCE_STAR_ALLOWED = {
    "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "logs:DescribeLogGroups",
    "ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "sagemaker:ListTrainingJobs",
    "sagemaker:ListModelPackages", "sagemaker:ListEndpoints", "cloudwatch:GetMetricData",
}


def test_resource_star_only_where_the_api_has_no_resource_level_permission(template: dict) -> None:
    star = {}
    for where, s in all_statements(template):
        if s["Effect"] != "Allow" or s.get("Resource") != "*" or where.endswith(".KeyPolicy"):
            continue
        assert s["Sid"].endswith("NoResourceLevel"), (where, s["Sid"])
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]):
            star[action] = where
    assert set(star) == RESOURCE_STAR_ALLOWED


def test_roles_trust_only_their_service_in_this_account(template: dict) -> None:
    trusted = {}
    for role in ("EmrJobRole", "SageMakerExecutionRole", "OrchestratorRole"):
        doc = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        first = doc["Statement"][0]
        trusted[role] = first["Principal"]["Service"]
        assert first["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert trusted == {"EmrJobRole": "emr-serverless.amazonaws.com",
                       "SageMakerExecutionRole": "sagemaker.amazonaws.com",
                       "OrchestratorRole": "ecs-tasks.amazonaws.com"}


def test_pass_role_only_for_the_two_roles_to_their_services(template: dict) -> None:
    passes = {}
    for where, s in all_statements(template):
        if s["Effect"] == "Allow" and "iam:PassRole" in (s["Action"] if isinstance(s["Action"], list)
                                                          else [s["Action"]]):
            passes[json.dumps(s["Resource"], sort_keys=True)] = s["Condition"]["StringEquals"]["iam:PassedToService"]
    assert passes[json.dumps({"Fn::GetAtt": ["EmrJobRole", "Arn"]})] == "emr-serverless.amazonaws.com"
    assert passes[json.dumps({"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]})] == "sagemaker.amazonaws.com"
    # The third: ECS task roles to ECS, only when the orchestrator runs on ECS.
    assert sorted(passes.values()) == ["ecs-tasks.amazonaws.com", "emr-serverless.amazonaws.com",
                                       "sagemaker.amazonaws.com"]


def _arn_patterns(template: dict, role: str, action: str, kind: str) -> list[re.Pattern]:
    from smspark_assets_tests.deploy.iam_policy_eval import role_statements

    out = []
    for s in role_statements(template, role, parameters(template)):
        if action not in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]):
            continue
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]):
            text = r.get("Fn::Sub", "") if isinstance(r, dict) else r
            marker = f":{kind}/"
            if marker in text:
                name = text.split(marker, 1)[1]
                out.append(re.compile("^" + re.escape(name).replace(r"\*", ".*") + "$"))
    return out


def test_sagemaker_names_the_platform_derives_match_the_policy(template: dict) -> None:
    """Names from the platform's own naming code, lower-cased as SageMaker's ARNs are."""
    from smspark_assets.assets.algorithm_catalog import DEMO_MODELS
    from smspark_assets.assets.custom_algorithm import SKLEARN_ENDPOINT
    from smspark_assets.sagemaker.naming import deterministic_name, derived_name

    prefixes = ["credit-default-xgb", "credit-default-sklearn", *[f"algo-{m.key.replace('_', '-')}"
                                                                  for m in DEMO_MODELS]]
    jobs = [deterministic_name(p, "image", {"k": "v"}, "fp").lower() for p in prefixes]
    configs = [derived_name(j, "cfg").lower() for j in jobs]
    endpoints = ["credit-default", SKLEARN_ENDPOINT, *[m.endpoint_name for m in DEMO_MODELS]]
    for action, kind, names in [("sagemaker:CreateTrainingJob", "training-job", jobs),
                                ("sagemaker:CreateModel", "model", jobs),
                                ("sagemaker:CreateEndpointConfig", "endpoint-config", configs),
                                ("sagemaker:UpdateEndpoint", "endpoint", endpoints)]:
        patterns = _arn_patterns(template, "OrchestratorRole", action, kind)
        assert patterns, action
        assert [n for n in names if not any(p.match(n) for p in patterns)] == [], action
    scoring = _arn_patterns(template, "EmrJobRole", "sagemaker:InvokeEndpoint", "endpoint")
    assert any(p.match("credit-default") for p in scoring)
    assert not any(p.match("algo-kmeans") for p in scoring)  # the Spark jobs score the credit model only


def test_principal_map_names_roles_of_the_template(template: dict) -> None:
    from smspark_assets.resources.by_environment import local_settings

    settings = local_settings()
    assert settings.sagemaker_role_arn in PRINCIPAL_ROLES and settings.emr["execution_role_arn"] in PRINCIPAL_ROLES
    assert set(PRINCIPAL_ROLES.values()) <= set(template["Resources"])
    assert {"s3", "sagemaker", "dynamodb", "emr-serverless", "glue", "athena", "logs", "cloudwatch"} == \
        set(load_action_map()["iam_prefix"])
    assert "sagemaker:InvokeEndpoint" in allowed_actions(template, "OrchestratorRole", parameters(template))
