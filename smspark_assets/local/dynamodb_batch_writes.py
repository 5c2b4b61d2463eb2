"""``BatchWriteItem`` of puts straight into moto's DynamoDB backend, without moto's request plumbing.

Bulk loads (the scores of a day: tens of thousands of items, 25 a request) are the local DynamoDB's
heaviest traffic. Of moto's time per request, about a third is its generic HTTP layer: routing through
Flask, parsing the JSON body a second time against the API model (the service has already checked it,
:mod:`.request_validation`), and serializing the answer through the model. :func:`apply_puts` does what
moto's ``batch_write_item`` handler does for a request of puts only, with moto's own checks and its own
``put_item``, and answers with the bytes moto would send.

Anything else returns ``None`` and moto answers: delete requests, a table that does not exist, an empty
key, duplicates, any error while putting (moto then repeats the puts before the bad item, which writes the
same items again, and answers its own error), and requests whose account or region moto would find
elsewhere than in the credential scope.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

# moto's message for an empty key in a batch put (its batch_write_item handler passes the same text).
_EMPTY_KEY_MESSAGE = ("One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                      "contain an empty string value. Key: {}")
_ALLOWED_MEMBERS = {"RequestItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}


def _scope(headers: dict[str, str]) -> tuple[str, str] | None:
    """(access key, region) from a SigV4 ``Authorization`` header, or None when moto would look elsewhere."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 ") or "region/" in headers.get("user-agent", ""):
        return None
    try:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
        access_key, _date, region = credential.split("/")[:3]
    except (IndexError, ValueError):
        return None
    return access_key, region


def _account(headers: dict[str, str], access_key: str) -> str:
    """The account moto would serve the request from (its own order of precedence)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if "x-moto-account-id" in headers:
        return headers["x-moto-account-id"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _key(item: dict[str, Any], names: tuple[str | None, ...]) -> tuple[Any, ...]:
    """An item's primary key as a hashable value (``{"S": "a"}`` -> ``("S", "a")`` per key attribute)."""
    return tuple(tuple(item[name].items()) if name and isinstance(item.get(name), dict) else None for name in names)


def apply_puts(headers: list[tuple[str, str]], body: bytes, doc: dict[str, Any] | None = None
               ) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Apply a ``BatchWriteItem`` of puts to moto's backend and answer it, or None to leave it to moto.

    ``doc`` is ``body`` already parsed, when the caller has it. The caller holds the host's lock (moto is
    not thread-safe) and journals the request when it succeeds.
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import validate_put_has_empty_keys

    named = {k.lower(): v for k, v in headers}
    scope = _scope(named)
    if scope is None:
        return None
    if doc is None:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
    if not isinstance(doc, dict) or not set(doc) <= _ALLOWED_MEMBERS or not isinstance(doc.get("RequestItems"), dict):
        return None
    access_key, region = scope
    backend = dynamodb_backends[_account(named, access_key)][region]
    puts: list[tuple[str, dict[str, Any]]] = []
    keys: set[tuple[Any, ...]] = set()
    try:
        for table_name, requests in doc["RequestItems"].items():
            table = backend.tables.get(table_name)
            if table is None or not isinstance(requests, list):
                return None
            key_names = (table.hash_key_attr, table.range_key_attr)  # no range key: None
            for request in requests:
                if not isinstance(request, dict) or list(request) != ["PutRequest"]:
                    return None
                item = request["PutRequest"]["Item"]
                validate_put_has_empty_keys(item, table, custom_error_msg=_EMPTY_KEY_MESSAGE)
                puts.append((table_name, item))
                keys.add((table_name, _key(item, key_names)))
        # Two puts of one key (DynamoDB refuses the request whole): moto answers it. Items with distinct
        # keys are distinct items, so comparing keys is enough (and costs far less than dumping items).
        if len(keys) != len(puts):
            return None
        for table_name, item in puts:
            backend.put_item(table_name, item)
    except Exception:  # noqa: BLE001 - moto answers it, with its own error (earlier puts are repeated as is)
        return None
    answer = json.dumps({
        "UnprocessedItems": {}, "ItemCollectionMetrics": {},
        "ConsumedCapacity": [{"TableName": name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}}
                             for name in doc["RequestItems"]],
    }).encode()
    response_headers = [("Content-Type", "application/x-amz-json-1.0"), ("server", "amazon.com"),
                        ("x-amzn-requestid", os.urandom(16).hex()),  # a uuid4's hex, without the object
                        # botocore checks this checksum on every DynamoDB answer
                        ("x-amz-crc32", str(zlib.crc32(answer) & 0xFFFFFFFF)),
                        ("Content-Length", str(len(answer)))]
    return 200, response_headers, answer
