"""The stack's DynamoDB answers paginated reads from one whole read: same items, DynamoDB's page shape.

The host is driven in-process (no server), with small pages so a few hundred items span several.
Expected keys come from what the test wrote, not from the host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smspark_assets.local.dynamodb import DynamoDBHost

AUTH = "AWS4-HMAC-SHA256 Credential=AK/20261101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"


class Host:
    def __init__(self, path: Path, page_bytes: int) -> None:
        import moto.backends

        moto.backends.get_backend("dynamodb").reset()  # moto's state is per process: start each test empty
        self.host = DynamoDBHost(path / "dynamodb.pickle")
        self.host.start()
        self.host.page_bytes = page_bytes

    def call(self, action: str, doc: dict[str, Any]) -> dict[str, Any]:
        target = f"DynamoDB_20120810.{action}"
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", target), ("Authorization", AUTH)]
        status, _, out = self.host.handle("POST", "/", "", headers, json.dumps(doc).encode(), target)
        assert status == 200, out[:500]
        return json.loads(out)

    def read_all(self, action: str, request: dict[str, Any], between_pages: Any = None) -> tuple[list[dict], list[int]]:
        items: list[dict] = []
        sizes: list[int] = []
        request = dict(request)
        while True:
            page = self.call(action, request)
            assert page["Count"] == len(page["Items"]) == page["ScannedCount"]
            items += page["Items"]
            sizes.append(sum(len(json.dumps(item)) for item in page["Items"]))
            if "LastEvaluatedKey" not in page:
                return items, sizes
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            if between_pages is not None:
                between_pages()


DAYS = {"2026-11-01": 170, "2026-11-02": 230}


@pytest.fixture
def host(tmp_path: Path):
    h = Host(tmp_path, page_bytes=2_000)
    h.call("CreateTable", {
        "TableName": "latest", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "application_id", "AttributeType": "S"},
                                 {"AttributeName": "dt", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "application_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": "dt-index", "KeySchema": [{"AttributeName": "dt", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "KEYS_ONLY"}}]})
    for day, count in DAYS.items():
        items = [{"PutRequest": {"Item": {"application_id": {"S": f"CA-{day}-{i:05d}"}, "dt": {"S": day},
                                          "prediction": {"N": str(i / 1000)}}}} for i in range(count)]
        for start in range(0, len(items), 25):
            h.call("BatchWriteItem", {"RequestItems": {"latest": items[start:start + 25]}})
    try:
        yield h
    finally:
        h.host.close()


def _day_query(day: str) -> dict[str, Any]:
    return {"TableName": "latest", "IndexName": "dt-index", "KeyConditionExpression": "#d = :d",
            "ProjectionExpression": "#k", "ExpressionAttributeNames": {"#d": "dt", "#k": "application_id"},
            "ExpressionAttributeValues": {":d": {"S": day}}}


def test_a_days_keys_come_in_pages_from_one_read(host: Host) -> None:
    items, sizes = host.read_all("Query", _day_query("2026-11-02"))
    keys = [item["application_id"]["S"] for item in items]
    assert sorted(keys) == [f"CA-2026-11-02-{i:05d}" for i in range(230)]  # each key once, no other day's
    assert len(sizes) > 3 and max(sizes) <= 2_000  # several pages, each within the page size
    assert all(set(item) == {"application_id"} for item in items)  # the key added to build LastEvaluatedKey is gone
    assert host.host.paged_reads.served == len(sizes) - 1  # moto answered the first page only


def test_a_write_between_pages_hands_the_rest_of_the_read_to_moto(host: Host) -> None:
    """After a write, kept pages may be stale: the next page comes from moto, from the same start key."""
    wrote = []

    def write_once() -> None:
        if not wrote:
            host.call("PutItem", {"TableName": "latest", "Item": {"application_id": {"S": "ZZ-late"},
                                                                  "dt": {"S": "2026-11-01"}}})
            wrote.append(True)

    items, sizes = host.read_all("Query", _day_query("2026-11-01"), between_pages=write_once)
    keys = [item["application_id"]["S"] for item in items]
    assert len(keys) == len(set(keys))
    assert set(keys) == {f"CA-2026-11-01-{i:05d}" for i in range(170)} | {"ZZ-late"}
    assert host.host.paged_reads.served == 0 and len(sizes) > 1


def test_a_scan_of_the_table_and_a_limited_query(host: Host) -> None:
    items, sizes = host.read_all("Scan", {"TableName": "latest"})
    expected = {f"CA-{day}-{i:05d}" for day, count in DAYS.items() for i in range(count)}
    assert {item["application_id"]["S"] for item in items} == expected and len(items) == len(expected)
    assert len(sizes) > 3
    served = host.host.paged_reads.served
    limited = host.call("Query", {**_day_query("2026-11-01"), "Limit": 7})  # moto's own paging
    assert limited["Count"] == 7 and "LastEvaluatedKey" in limited
    assert host.host.paged_reads.served == served
