"""Bulk writes to DynamoDB: items checked first, 25-item batches, unprocessed items retried, a few threads.

* Items DynamoDB would refuse (key missing, empty or over 2,048 bytes, item over 400 KB, numbers out of
  range, text that is not valid Unicode) are found before anything is written
  (:func:`invalid_item_reasons`), so one bad row cannot fail a day half-way.
* DynamoDB may accept only part of a ``BatchWriteItem`` and hand the rest back as ``UnprocessedItems``;
  those are retried (exponential backoff with jitter) until written or the retry budget is spent. A
  write that still fails raises :class:`PartialWriteError`, naming exactly which rows were not written.
* Days are reconciled: items carry their day, and the items of a re-written day that are no longer in
  it are deleted (:func:`delete_stale_items`), except those another day has overwritten since.

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BATCH_LIMIT = 25


class UnprocessedItemsError(RuntimeError):
    """DynamoDB kept refusing some items after every retry."""


def to_attribute_values(frame: pd.DataFrame) -> list[dict[str, dict[str, str]]]:
    """DataFrame rows as DynamoDB items (low-level attribute values); nulls are left out of an item."""
    columns: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for name in frame.columns:
        series = frame[name]
        null = series.isna().to_numpy()
        if pd.api.types.is_bool_dtype(series):
            kind, values = "BOOL", series.to_numpy()
        elif pd.api.types.is_float_dtype(series):
            # DynamoDB numbers travel as strings; the shortest repr round-trips a double exactly.
            kind, values = "N", series.fillna(0).astype("float64").astype(str).to_numpy()
        elif pd.api.types.is_integer_dtype(series):
            kind, values = "N", series.fillna(0).astype("int64").astype(str).to_numpy()
        else:
            kind, values = "S", series.astype(str).to_numpy()
        columns.append((name, kind, values, null))
    items: list[dict[str, dict[str, Any]]] = [{} for _ in range(len(frame))]
    for name, kind, values, null in columns:
        for item, value, missing in zip(items, values, null):
            if not missing:
                item[name] = {kind: bool(value) if kind == "BOOL" else value}
    return items


def _batches(items: Sequence[dict], size: int = BATCH_LIMIT) -> Iterator[Sequence[dict]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_batch(client, table: str, batch: Sequence[dict], max_retries: int = 10,
                base_delay: float = 0.05, sleep: Callable[[float], None] = time.sleep) -> int:
    """Write one batch of at most 25 items; returns how many retries it took."""
    request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
    for attempt in range(max_retries + 1):
        response = client.batch_write_item(RequestItems=request)
        request = response.get("UnprocessedItems") or {}
        if not request:
            return attempt
        sleep(base_delay * (2 ** attempt) * (0.5 + random.random()))
    left = sum(len(v) for v in request.values())
    raise UnprocessedItemsError(f"{left} item(s) of a batch to {table} were still unprocessed after "
                                f"{max_retries} retries; nothing was dropped silently, rerun to finish")


def write_items(client_factory: Callable[[], Any], table: str, items: Sequence[dict], threads: int = 4
                ) -> dict[str, int]:
    """Write every item; one client per thread (boto3 clients are thread-safe, sessions are not)."""
    if not items:
        return {"items": 0, "batches": 0, "retries": 0}
    batches = list(_batches(items))
    clients = [client_factory() for _ in range(threads)]

    def run(indexed: tuple[int, Sequence[dict]]) -> int:
        index, batch = indexed
        return write_batch(clients[index % threads], table, batch)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        retries = sum(pool.map(run, enumerate(batches)))
    return {"items": len(items), "batches": len(batches), "retries": retries}


def ensure_table(client, table: str, key: str, poll_seconds: float = 1.0) -> bool:
    """Create an on-demand table keyed by ``key`` (string) unless it exists; True when created."""
    from botocore.exceptions import ClientError

    try:
        client.describe_table(TableName=table)
        return False
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 120})
    return True
