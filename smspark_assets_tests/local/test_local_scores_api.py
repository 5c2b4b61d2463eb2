"""The scores API on the embedded stack, through a real HTTP client: routes, errors, API key, throttling.

Expected scores come from DynamoDB itself (boto3 GetItem on the same stack), response shapes from the
OpenAPI document's schemas (checked with openapi-schema-validator's OAS 3.0 validator).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, validate

from smspark_assets.local.api_keys import load_or_create_api_key
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.scores_api import QUOTA_DB_NAME, api_base_url
from smspark_assets.local.scores_api_limits import QuotaStore, quota_counter_period
from smspark_assets.local.scores_api_spec import OPENAPI_PATH
from smspark_assets.resources.scores_api import ScoresApiResource
from smspark_assets_tests.stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TABLE = "credit_scores_latest"
DAY = "2024-01-15"
IDS = [f"CA-20240115-{n:06d}" for n in range(1, 121)]


def _item(app_id: str, n: int) -> dict[str, Any]:
    return {"application_id": {"S": app_id}, "prediction": {"N": repr(n / 997)},
            "model_name": {"S": "credit-default-xgb-3f2a9c"}, "scored_at": {"S": "2024-01-16 02:00:00+00:00"},
            "dt": {"S": DAY}}


@pytest.fixture(scope="module")
def api(service) -> dict[str, Any]:
    ddb = stack_client(service.root, service.url, "dynamodb")
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "application_id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "application_id", "KeyType": "HASH"}])
    for n, app_id in enumerate(IDS):
        ddb.put_item(TableName=TABLE, Item=_item(app_id, n))
    # An item without a prediction (the writer leaves nulls out) and one whose model name needs escaping.
    ddb.put_item(TableName=TABLE, Item={"application_id": {"S": "CA-NOPRED"}, "dt": {"S": DAY},
                                        "model_name": {"S": "m"}, "scored_at": {"S": "t"}})
    ddb.put_item(TableName=TABLE, Item={**_item("CA-QUOTES", 5), "model_name": {"S": 'it\'s a "model"/é'}})
    key = load_or_create_api_key(LocalLayout.for_root(service.root)).value
    return {"base": api_base_url(service.url), "key": key, "ddb": ddb, "root": service.root}


def _get(url: str, key: str | None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _spec() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI_PATH.read_text())


def _check_schema(body: Any, name: str) -> None:
    doc = _spec()
    validate(body, {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}, cls=OAS30Validator)


def _expected(ddb: Any, app_id: str) -> dict[str, Any]:
    """The score as DynamoDB holds it (GetItem), in the API's plain-JSON shape."""
    item = ddb.get_item(TableName=TABLE, Key={"application_id": {"S": app_id}})["Item"]
    return {"application_id": item["application_id"]["S"],
            "prediction": float(item["prediction"]["N"]) if "prediction" in item else None,
            "model_name": item.get("model_name", {}).get("S"), "model_version": None,
            "scored_at": item.get("scored_at", {}).get("S"), "dt": item.get("dt", {}).get("S")}


def test_single_read_answers_the_stored_score(api: dict[str, Any]) -> None:
    for app_id in (IDS[0], IDS[57], "CA-NOPRED", "CA-QUOTES"):
        status, headers, body = _get(f"{api['base']}/scores/{app_id}", api["key"])
        assert status == 200, body
        assert headers["Content-Type"] == "application/json"
        assert body == _expected(api["ddb"], app_id)
        _check_schema(body, "Score")


def test_unknown_id_is_404_json(api: dict[str, Any]) -> None:
    status, headers, body = _get(f"{api['base']}/scores/CA-19990101-000001", api["key"])
    assert status == 404
    assert body["application_id"] == "CA-19990101-000001" and "no score" in body["message"]
    _check_schema(body, "Error")


@pytest.mark.parametrize("bad_id", ["x" * 129, "..", "-CA", "CA%20X", "CA%2F..%2Fx", "CA%22%27", "%C3%A9t%C3%A9"])
def test_id_that_cannot_be_one_is_400(api: dict[str, Any], bad_id: str) -> None:
    status, _, body = _get(f"{api['base']}/scores/{bad_id}", api["key"])
    assert status == 400, body
    assert "application_id must be 1 to 128 characters" in body["message"]
    _check_schema(body, "Error")


def test_longest_allowed_id_is_looked_up(api: dict[str, Any]) -> None:
    status, _, _ = _get(f"{api['base']}/scores/{'A' * 128}", api["key"])
    assert status == 404


def test_bulk_read_of_100_ids_in_request_order(api: dict[str, Any]) -> None:
    asked = IDS[:98] + ["CA-19990101-000001", "CA-NOPRED"]
    status, _, body = _get(f"{api['base']}/scores?ids={','.join(asked)}", api["key"])
    assert status == 200
    _check_schema(body, "ScoreBatch")
    assert [s["application_id"] for s in body["scores"]] == IDS[:98] + ["CA-NOPRED"]
    assert body["scores"][10] == _expected(api["ddb"], IDS[10])
    assert body["missing"] == ["CA-19990101-000001"] and body["unprocessed"] == []


def test_bulk_read_ignores_duplicates_and_empty_entries(api: dict[str, Any]) -> None:
    status, _, body = _get(f"{api['base']}/scores?ids={IDS[3]},,{IDS[3]},{IDS[4]},", api["key"])
    assert status == 200
    assert [s["application_id"] for s in body["scores"]] == [IDS[3], IDS[4]]


@pytest.mark.parametrize("query", ["ids=" + ",".join(IDS[:101]), "ids=", "ids=,", f"ids={IDS[0]},..", "ids=a%20b"])
def test_bad_bulk_requests_are_400(api: dict[str, Any], query: str) -> None:
    status, _, body = _get(f"{api['base']}/scores?{query}", api["key"])
    assert status == 400, body
    assert "ids must be 1 to 100" in body["message"]


def test_missing_ids_parameter_is_api_gateways_400(api: dict[str, Any]) -> None:
    status, headers, body = _get(f"{api['base']}/scores", api["key"])
    assert (status, body) == (400, {"message": "Missing required request parameters: [ids]"})
    assert headers["x-amzn-ErrorType"] == "BadRequestException"


@pytest.mark.parametrize("key", [None, "", "wrong-key", "x" * 40])
def test_missing_or_wrong_api_key_is_403(api: dict[str, Any], key: str | None) -> None:
    status, headers, body = _get(f"{api['base']}/scores/{IDS[0]}", key)
    assert (status, body) == (403, {"message": "Forbidden"})
    assert headers["x-amzn-ErrorType"] == "ForbiddenException"


@pytest.mark.parametrize("path", ["/scores", "/nothing", "/scores/a/b"])
def test_unknown_route_is_missing_authentication_token(api: dict[str, Any], path: str) -> None:
    base = api["base"]
    url = base.rsplit("/", 1)[0] + "/v9" + path if path == "/scores" else base + path
    status, _, body = _get(url, api["key"])
    assert (status, body) == (403, {"message": "Missing Authentication Token"})


def test_post_is_not_a_route(api: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{api['base']}/scores/{IDS[0]}", data=b"{}", method="POST",
                                     headers={"x-api-key": api["key"]})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 403


def test_key_file_is_private(api: dict[str, Any]) -> None:
    path = Path(api["root"]) / "local" / "scores-api-key.json"
    assert path.stat().st_mode & 0o777 == 0o600


def _set_limits(root: Path, **limits: Any) -> None:
    path = LocalLayout.for_root(root).config_json
    config = json.loads(path.read_text()) if path.exists() else {}
    if limits:
        config["scores_api"] = limits
    else:
        config.pop("scores_api", None)
    path.write_text(json.dumps(config))


def test_past_the_rate_is_429_then_served_again(api: dict[str, Any]) -> None:
    _set_limits(api["root"], rate_limit=2, burst_limit=5)
    try:
        statuses = [_get(f"{api['base']}/scores/{IDS[0]}", api["key"]) for _ in range(12)]
        codes = [s for s, _, _ in statuses]
        # The burst (5) is served, then the bucket refills at 2/s: 12 quick requests cannot all pass.
        assert codes[:5] == [200] * 5
        assert 429 in codes
        throttled = next(b for s, _, b in statuses if s == 429)
        assert throttled == {"message": "Too Many Requests"}
        time.sleep(1.2)
        assert _get(f"{api['base']}/scores/{IDS[0]}", api["key"])[0] == 200
    finally:
        _set_limits(api["root"])


def test_past_the_quota_is_429_limit_exceeded(api: dict[str, Any]) -> None:
    # The module's earlier requests count today: the quota is 3 more than the stack has counted.
    layout = LocalLayout.for_root(api["root"])
    store = QuotaStore(layout.local_dir / QUOTA_DB_NAME)
    key_id = load_or_create_api_key(layout).key_id
    used = store.used(key_id, quota_counter_period("DAY", dt.datetime.now(dt.timezone.utc)))
    store.close()
    _set_limits(api["root"], rate_limit=1000, burst_limit=1000, quota_limit=used + 3, quota_period="DAY")
    try:
        codes = [_get(f"{api['base']}/scores/{IDS[1]}", api["key"]) for _ in range(5)]
        assert [c[0] for c in codes] == [200, 200, 200, 429, 429]
        assert codes[-1][2] == {"message": "Limit Exceeded"}
    finally:
        _set_limits(api["root"])


def test_resource_reads_through_the_api(api: dict[str, Any]) -> None:
    resource = ScoresApiResource(url=api["base"], api_key=api["key"])
    assert resource.get_score(IDS[7]) == _expected(api["ddb"], IDS[7])
    assert resource.get_score("CA-19990101-000001") is None
    found = resource.get_scores(IDS + ["CA-19990101-000001"])  # 121 ids: two requests
    assert sorted(found) == sorted(IDS)
    assert found[IDS[110]]["prediction"] == float(api["ddb"].get_item(
        TableName=TABLE, Key={"application_id": {"S": IDS[110]}})["Item"]["prediction"]["N"])


def test_access_log_has_one_line_per_request_without_the_key(api: dict[str, Any]) -> None:
    _get(f"{api['base']}/scores/{IDS[2]}", api["key"])
    log = Path(api["root"]) / "local" / "scores-api-access.log"
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["status"] == "200" and last["resourcePath"] == "/scores/{application_id}"
    assert api["key"] not in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600
