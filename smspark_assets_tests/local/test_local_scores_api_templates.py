"""The scores API's documents and mapping templates, without the stack: the OpenAPI document validates,
the CloudFormation template lints and grants only what the API needs, the templates render DynamoDB
answers as API Gateway would (including the cases moto never produces: UnprocessedKeys, throttling),
and the usage-plan limiter is a token bucket."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate as validate_spec

from smspark_assets.local.scores_api_limits import QUOTA_EXCEEDED, THROTTLED, UsagePlanLimiter
from smspark_assets.local.scores_api_spec import (CLOUDFORMATION_PATH, OPENAPI_PATH, UsagePlan, load_cloudformation,
                                                  load_spec)
from smspark_assets.local.scores_api_vtl import VelocityInput, escape_javascript, request_context
from smspark_assets.assets.scores_api_check import SERVABLE_ID, compare_with_api

pytestmark = pytest.mark.timeout(60)


def test_openapi_document_is_valid() -> None:
    validate_spec(yaml.safe_load(OPENAPI_PATH.read_text()))


def test_id_pattern_is_the_same_everywhere() -> None:
    text = OPENAPI_PATH.read_text()
    pattern = load_spec().id_pattern.strip("^$")
    # Every template checks ids with the schema's pattern, and so does the asset check.
    assert set(re.findall(r'\.matches\("([^"]+)"\)', text)) == {pattern}
    assert SERVABLE_ID.pattern == pattern


@pytest.mark.skipif(shutil.which("cfn-lint") is None and not (OPENAPI_PATH.parents[2] / ".venv/bin/cfn-lint").exists(),
                    reason="cfn-lint not installed")
def test_cloudformation_template_lints() -> None:
    exe = shutil.which("cfn-lint") or str(OPENAPI_PATH.parents[2] / ".venv/bin/cfn-lint")
    result = subprocess.run([exe, str(CLOUDFORMATION_PATH)], capture_output=True, text=True, timeout=50)
    assert result.returncode == 0, result.stdout + result.stderr


def test_role_reads_the_one_table_only() -> None:
    cfn = load_cloudformation()
    role = cfn["Resources"]["ScoresApiRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statements[0]["Action"] == ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
    assert statements[0]["Resource"] == {"Ref": "TableArn"}
    body = cfn["Resources"]["ScoresRestApi"]["Properties"]["Body"]["Fn::Transform"]
    assert (CLOUDFORMATION_PATH.parent / body["Parameters"]["Location"]).resolve() == OPENAPI_PATH.resolve()
    plan = cfn["Resources"]["ScoresUsagePlan"]["Properties"]
    assert plan["Throttle"] == {"RateLimit": {"Ref": "ThrottleRateLimit"}, "BurstLimit": {"Ref": "ThrottleBurstLimit"}}


def _render(resource: str, template_kind: str, body: dict[str, Any] | None, status: int = 200,
            **params: str) -> tuple[int, Any]:
    spec = load_spec()
    route = next(r for r in spec.routes if r.resource_path == resource)
    path = {k: v for k, v in params.items() if k == "application_id"}
    query = {k: v for k, v in params.items() if k != "application_id"}
    context = request_context("r", "GET", resource, resource, "v1", "k", "kid", "127.0.0.1", "", "", 0)
    if template_kind == "request":
        out = route.request_template.render(VelocityInput("", path, query, {}), context, spec.stage_variables)
        return 0, json.loads(out)
    chosen = route.response_for(status)
    out = chosen.template.render(VelocityInput(json.dumps(body), path, query, {}), context, spec.stage_variables)
    return context["responseOverride"]["status"] or chosen.status, json.loads(out)


def test_get_item_request_template() -> None:
    _, request = _render("/scores/{application_id}", "request", None, application_id="CA-1")
    assert request["TableName"] == "credit_scores_latest"
    assert request["Key"] == {"application_id": {"S": "CA-1"}}
    _, refused = _render("/scores/{application_id}", "request", None, application_id='a"b')
    assert refused["Key"] == {"application_id": {"S": ""}}  # DynamoDB refuses it; nothing is read


def test_batch_request_template_dedupes_and_caps() -> None:
    _, request = _render("/scores", "request", None, ids="A,B,A,,C")
    keys = request["RequestItems"]["credit_scores_latest"]["Keys"]
    assert keys == [{"application_id": {"S": k}} for k in "ABC"]
    _, refused = _render("/scores", "request", None, ids=",".join(f"I{n}" for n in range(101)))
    assert refused == {"RequestItems": {}}


def test_batch_response_reports_unprocessed_keys() -> None:
    answer = {"Responses": {"credit_scores_latest": [
        {"application_id": {"S": "B"}, "prediction": {"N": "0.5"}, "dt": {"S": "2024-01-01"}}]},
        "UnprocessedKeys": {"credit_scores_latest": {"Keys": [{"application_id": {"S": "C"}}]}}}
    status, body = _render("/scores", "response", answer, ids="A,B,C")
    assert status == 200
    assert body == {"scores": [{"application_id": "B", "prediction": 0.5, "model_name": None, "model_version": None,
                                "scored_at": None, "dt": "2024-01-01"}], "missing": ["A"], "unprocessed": ["C"]}


@pytest.mark.parametrize(("error", "expected"), [
    ("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", 503),
    ("com.amazonaws.dynamodb.v20120810#ThrottlingException", 503),
    ("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", 500),
])
def test_dynamodb_errors_map_to_retryable_or_server_errors(error: str, expected: int) -> None:
    status, body = _render("/scores/{application_id}", "response", {"__type": error, "message": "x"}, status=400,
                           application_id="CA-1")
    assert status == expected and "message" in body


def test_escape_javascript_is_javas() -> None:
    # The example of commons-lang's StringEscapeUtils.escapeJavaScript documentation.
    assert escape_javascript('They didn\'t say, "Stop!"') == 'They didn\\\'t say, \\"Stop!\\"'
    assert escape_javascript("a/b\n\u00e9\U0001F600") == "a\\/b\\n\\u00E9\\uD83D\\uDE00"


def test_token_bucket_and_quota() -> None:
    now = [0.0]
    limiter = UsagePlanLimiter(UsagePlan(2.0, 3, 6, "DAY"), clock=lambda: now[0],
                               wall_clock=lambda: dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    assert [limiter.admit("k") for _ in range(4)] == [None, None, None, THROTTLED]
    now[0] = 0.5  # one token back at 2 per second
    assert [limiter.admit("k") for _ in range(2)] == [None, THROTTLED]
    now[0] = 10.0
    assert [limiter.admit("k") for _ in range(3)] == [None, None, QUOTA_EXCEEDED]  # 6 used today


def test_compare_with_api_flags_mismatches_and_skips_superseded() -> None:
    import pandas as pd

    sample = pd.DataFrame({"application_id": ["A", "B", "C", "D"], "prediction": [0.1, 0.2, 0.3, 0.4],
                           "dt": ["2024-01-01"] * 4})
    answers = {"A": {"prediction": 0.1, "dt": "2024-01-01"}, "B": {"prediction": 0.25, "dt": "2024-01-01"},
               "C": {"prediction": 0.9, "dt": "2024-01-02"}}
    outcome = compare_with_api(sample, answers)
    assert outcome["matched"] == 1 and outcome["superseded"] == 1
    assert [m.split(":")[0] for m in outcome["mismatches"]] == ["B", "D"]
