"""Bulk puts that skip moto's HTTP layer answer and store exactly what moto alone does.

The same requests go to two in-process hosts, one with the direct path and one where moto answers every
request; their answers (status, error type and message, body) and every stored item must be equal. The
requests cover what the direct path takes (puts of every attribute type, several tables, an index) and
what it must leave to moto (deletes, a missing table, empty keys, duplicates, an item over 400 KB, a key
of the wrong type, a journal replay).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smspark_assets.local import dynamodb as dynamodb_module
from smspark_assets.local.dynamodb import DynamoDBHost

pytestmark = pytest.mark.timeout(120)

AUTH = "AWS4-HMAC-SHA256 Credential=AK/20261101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"


def _request(host: DynamoDBHost, action: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    target = f"DynamoDB_20120810.{action}"
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", target), ("Authorization", AUTH)]
    status, _, out = host.handle("POST", "/", "", headers, json.dumps(doc).encode(), target)
    return status, json.loads(out)


def _tables() -> list[dict[str, Any]]:
    index = [{"IndexName": "dt-index", "KeySchema": [{"AttributeName": "dt", "KeyType": "HASH"}],
              "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    return [
        {"TableName": "scores", "BillingMode": "PAY_PER_REQUEST",
         "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                  {"AttributeName": "dt", "AttributeType": "S"}],
         "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "GlobalSecondaryIndexes": index},
        {"TableName": "events", "BillingMode": "PAY_PER_REQUEST",
         "AttributeDefinitions": [{"AttributeName": "user", "AttributeType": "S"},
                                  {"AttributeName": "at", "AttributeType": "N"}],
         "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}]},
    ]


def _put(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"RequestItems": {table: [{"PutRequest": {"Item": item}}]}}


def _rich(i: int) -> dict[str, Any]:
    return {"id": {"S": f"app-{i:04d}"}, "dt": {"S": f"2026-11-0{1 + i % 3}"}, "score": {"N": str(i / 7)},
            "flag": {"BOOL": i % 2 == 0}, "none": {"NULL": True}, "blob": {"B": "aGVsbG8="},
            "tags": {"SS": ["a", f"t{i}"]}, "nums": {"NS": ["1", str(i + 2)]},
            "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "3"}]}, "text": {"S": "é ✓ 𝄞"}}}}


REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("BatchWriteItem", {"RequestItems": {"scores": [{"PutRequest": {"Item": _rich(i)}} for i in range(25)]}}),
    ("BatchWriteItem", {"RequestItems": {  # two tables in one request, one with a range key
        "scores": [{"PutRequest": {"Item": _rich(i)}} for i in range(20, 30)],  # overwrites 20-24
        "events": [{"PutRequest": {"Item": {"user": {"S": "u1"}, "at": {"N": str(t)}}}} for t in range(5)]},
        "ReturnConsumedCapacity": "TOTAL"}),
    ("BatchWriteItem", {"RequestItems": {"events": [{"DeleteRequest": {"Key": {"user": {"S": "u1"},
                                                                               "at": {"N": "0"}}}}]}}),
    ("BatchWriteItem", _put("missing", {"id": {"S": "a"}})),
    ("BatchWriteItem", _put("scores", {"id": {"S": ""}})),
    ("BatchWriteItem", _put("scores", {"id": {"S": "k"}, "dt": {"S": ""}})),  # empty index key
    ("BatchWriteItem", {"RequestItems": {"scores": [{"PutRequest": {"Item": {"id": {"S": "d"}}}}] * 2}}),
    # One key twice with different items: left to moto (which compares whole items, and so takes both).
    ("BatchWriteItem", {"RequestItems": {"scores": [{"PutRequest": {"Item": {"id": {"S": "e"}, "v": {"N": str(v)}}}}
                                                    for v in (1, 2)]}}),
    ("BatchWriteItem", {"RequestItems": {"scores": [  # the second item is too large: the first stays written
        {"PutRequest": {"Item": {"id": {"S": "before-big"}}}},
        {"PutRequest": {"Item": {"id": {"S": "big"}, "text": {"S": "x" * 420_000}}}}]}}),
    ("BatchWriteItem", _put("scores", {"id": {"N": "5"}})),  # the key's type is S
    ("BatchWriteItem", _put("events", {"user": {"S": "u2"}})),  # the range key is missing
]


def _run(tmp: Path, direct: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], dict[str, Any], int]:
    import moto.backends

    moto.backends.get_backend("dynamodb").reset()  # moto's state is per process
    taken = [0]
    real = dynamodb_module.apply_puts

    def counted(headers: Any, body: bytes, doc: Any = None) -> Any:
        answer = real(headers, body, doc) if direct else None
        taken[0] += answer is not None
        return answer

    with monkeypatch.context() as patch:
        patch.setattr(dynamodb_module, "apply_puts", counted)
        host = DynamoDBHost(tmp / "dynamodb.pickle")
        host.start()
        try:
            for table in _tables():
                assert _request(host, "CreateTable", table)[0] == 200
            answers = []
            for action, doc in REQUESTS:
                status, answer = _request(host, action, doc)
                answers.append((status, answer))
            stored = {t["TableName"]: sorted(_request(host, "Scan", {"TableName": t["TableName"]})[1]["Items"],
                                             key=json.dumps) for t in _tables()}
        finally:
            host.close()
    return answers, stored, taken[0]


def test_direct_puts_answer_and_store_what_moto_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    direct_answers, direct_stored, taken = _run(tmp_path / "direct", True, monkeypatch)
    moto_answers, moto_stored, _ = _run(tmp_path / "moto", False, monkeypatch)
    assert taken == 2  # the two requests of puts only into existing tables took the direct path
    assert direct_answers == moto_answers
    assert direct_stored == moto_stored
    # What the requests were meant to cover really happened (against expectations written here).
    statuses = [status for status, _ in direct_answers]
    assert statuses == [200, 200, 200, 400, 400, 400, 400, 200, 400, 400, 400]
    assert {item["id"]["S"] for item in direct_stored["scores"]} == (
        {f"app-{i:04d}" for i in range(30)} | {"before-big", "e"})
    assert [item["at"]["N"] for item in sorted(direct_stored["events"], key=lambda i: int(i["at"]["N"]))] == [
        "1", "2", "3", "4"]
    assert direct_answers[3][1]["__type"].endswith("ResourceNotFoundException")


def test_direct_puts_are_journaled_and_replayed(tmp_path: Path) -> None:
    import moto.backends

    moto.backends.get_backend("dynamodb").reset()
    host = DynamoDBHost(tmp_path / "dynamodb.pickle", quiet_seconds=3600, max_dirty_seconds=3600)
    host.start()
    _request(host, "CreateTable", _tables()[0])
    _request(host, *REQUESTS[0])
    host._journal.flush()  # a kill now: no snapshot, only the journal  # noqa: SLF001
    moto.backends.get_backend("dynamodb").reset()
    again = DynamoDBHost(tmp_path / "dynamodb.pickle")
    again.start()
    try:
        assert again.replayed == 2
        items = _request(again, "Scan", {"TableName": "scores"})[1]["Items"]
        assert sorted(item["id"]["S"] for item in items) == [f"app-{i:04d}" for i in range(25)]
    finally:
        again.close()
