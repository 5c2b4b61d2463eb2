"""Bulk writes to DynamoDB: items checked first, 25-item batches, unprocessed items retried, a few threads.

* Items DynamoDB would refuse (key missing, empty or over 2,048 bytes, item over 400 KB, numbers out of
  range, text that is not valid Unicode) are found before anything is written
  (:func:`invalid_item_reasons`), so one bad row cannot fail a day half-way.
* DynamoDB may accept only part of a ``BatchWriteItem`` and hand the rest back as ``UnprocessedItems``;
  those are retried (exponential backoff with jitter) until written or the retry budget is spent. A
  write that still fails raises :class:`PartialWriteError`, naming exactly which rows were not written.
* Days are reconciled: items carry their day (``dt``); an item is not overwritten by an earlier day
  (:func:`stored_days`), and the items of a re-written day that are no longer in it are deleted
  (:func:`delete_stale_items`), except those another day has overwritten since. A day that held no
  items before the write (:func:`day_has_items`, one single-item Query) has nothing to reconcile.
* Memory stays flat in the size of a day: a table to write arrives as a :class:`FrameStream` of
  bounded pandas frames (a whole DataFrame is cut into ``STREAM_ROWS``-row frames), items are built a
  frame at a time, and what must span the whole write (its keys, for duplicates and reconciliation)
  is one Arrow string array.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BATCH_LIMIT = 25
# DynamoDB's limits (Developer Guide, "Service, account, and table quotas"): a partition key (of the
# table or of a global secondary index) holds at most 2,048 bytes, an item at most 400 KB (names and
# values counted in UTF-8), a number at most 9.99...E+125 and at least 1E-130 in magnitude.
MAX_KEY_BYTES = 2048
MAX_ITEM_BYTES = 400 * 1024
MAX_NUMBER_MAGNITUDE = 1e126
MIN_NUMBER_MAGNITUDE = 1e-130
# How many unwritten keys an error message lists (the row ranges it gives are always complete).
KEYS_IN_MESSAGE = 20
# Rows per frame of a streamed write: items of a frame (~1.5 KB each as boto3 request dicts) are the
# largest thing a write holds, so this bounds its memory (~15 MB) whatever the size of the day.
STREAM_ROWS = 10_000


@dataclass(frozen=True)
class FrameStream:
    """A table to write as a sequence of pandas frames, produced on demand (so it can be read twice:
    once to check every row before anything is written, once to write).

    ``frames`` returns a new iterator over the frames each time, in the same order with the same rows.
    With ``later_rows_win``, a key that appears more than once is written once, with its last row
    (as ``drop_duplicates(keep="last")``, e.g. when several days are written and the latest day's
    score wins); without it, a repeated key refuses the whole write.
    """

    frames: Callable[[], Iterable[pd.DataFrame]]
    later_rows_win: bool = False

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter(self.frames())

    @classmethod
    def of(cls, frame: pd.DataFrame, rows: int = STREAM_ROWS) -> "FrameStream":
        """One DataFrame as consecutive frames of at most ``rows`` rows (views, not copies)."""
        if rows < 1:
            raise ValueError(f"rows per frame must be >= 1, got {rows}")
        return cls(lambda: (frame.iloc[start:start + rows] for start in range(0, max(len(frame), 1), rows)))


class UnprocessedItemsError(RuntimeError):
    """DynamoDB kept refusing some items after every retry; ``unprocessed`` holds them."""

    def __init__(self, message: str, unprocessed: Sequence[dict] = ()) -> None:
        super().__init__(message)
        self.unprocessed = list(unprocessed)


class PartialWriteError(RuntimeError):
    """Some items of a write were not written. ``unwritten_rows`` are positions in the items written,
    ``unwritten_keys`` their keys; every other item was written."""

    def __init__(self, message: str, unwritten_rows: list[int], unwritten_keys: list[str]) -> None:
        super().__init__(message)
        self.unwritten_rows = unwritten_rows
        self.unwritten_keys = unwritten_keys


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


def _utf8_lengths(text: pd.Series) -> np.ndarray:
    """UTF-8 byte length of each string (nulls count 0); -1 where a string cannot be encoded
    (a lone surrogate: DynamoDB would refuse it, and it is the one way ``str`` is not valid Unicode)."""
    values = text.to_numpy(dtype=object)
    try:  # Arrow measures a column in one pass; it refuses the whole column if one value is bad
        lengths = pc.binary_length(pa.array(values, type=pa.string(), from_pandas=True))
        return lengths.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    except UnicodeEncodeError:
        def one(value: object) -> int:
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                return 0
            try:
                return len(str(value).encode("utf-8"))
            except UnicodeEncodeError:
                return -1
        return np.fromiter((one(v) for v in values), dtype=np.int64, count=len(values))


def _first_reason(reasons: pd.Series, mask: np.ndarray, reason: pd.Series | str) -> None:
    """Record ``reason`` for the rows in ``mask`` that have no reason yet (the first failing check wins)."""
    target = np.flatnonzero(mask & reasons.isna().to_numpy())
    if target.size:
        reasons.iloc[target] = reason.to_numpy()[target] if isinstance(reason, pd.Series) else reason


def invalid_item_reasons(frame: pd.DataFrame, key: str, index_keys: Sequence[str] = ()) -> pd.Series:
    """Why DynamoDB would refuse each row as an item (None for a valid row), checked column by column.

    ``key`` is the table's partition key, ``index_keys`` the key attributes of its secondary indexes
    (an index key may be absent from an item, but never empty or over 2,048 bytes).
    """
    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if frame.empty:
        return reasons
    size = np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:
        series = frame[name]
        present = series.notna().to_numpy()
        name_bytes = len(str(name).encode("utf-8", "surrogatepass"))
        if pd.api.types.is_bool_dtype(series):
            value_bytes = np.ones(len(series), dtype=np.int64)
        elif pd.api.types.is_numeric_dtype(series):
            numbers = series.astype("float64").to_numpy()
            magnitude = np.abs(numbers)
            with np.errstate(invalid="ignore"):
                _first_reason(reasons, present & ~np.isfinite(numbers),
                              f"{name!r} is not a finite number (DynamoDB stores no Infinity or NaN)")
                out_of_range = present & np.isfinite(numbers) & (
                    (magnitude >= MAX_NUMBER_MAGNITUDE) | ((magnitude > 0) & (magnitude < MIN_NUMBER_MAGNITUDE)))
            _first_reason(reasons, out_of_range, f"{name!r} is outside DynamoDB's number range "
                                                 f"(1E-130 to 9.99E+125 in magnitude)")
            # A number takes about one byte per two significant digits plus one; 21 covers a double.
            value_bytes = np.full(len(series), 21, dtype=np.int64)
        else:
            value_bytes = _utf8_lengths(series.where(series.isna(), series.astype(str)))
            _first_reason(reasons, value_bytes < 0, f"{name!r} is not valid Unicode (cannot be encoded as UTF-8)")
            value_bytes = np.maximum(value_bytes, 0)
        size += np.where(present, name_bytes + value_bytes, 0)
        if name == key or name in index_keys:
            what = "the key" if name == key else "a secondary index key"
            if name == key:
                _first_reason(reasons, ~present, f"{what} {name!r} is missing")
            _first_reason(reasons, present & (series.astype(str).to_numpy() == ""), f"{what} {name!r} is empty")
            too_long = present & (value_bytes > MAX_KEY_BYTES)
            _first_reason(reasons, too_long, pd.Series(value_bytes, index=frame.index).map(
                lambda n, what=what, name=name: f"{what} {name!r} is {n} bytes in UTF-8; DynamoDB allows "
                                                f"{MAX_KEY_BYTES}"))
    _first_reason(reasons, size > MAX_ITEM_BYTES, pd.Series(size, index=frame.index).map(
        lambda n: f"the item is about {n} bytes; DynamoDB allows {MAX_ITEM_BYTES} (400 KB)"))
    return reasons


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
        if attempt < max_retries:
            sleep(base_delay * (2 ** attempt) * (0.5 + random.random()))
    left = [r["PutRequest"]["Item"] for requests in request.values() for r in requests]
    raise UnprocessedItemsError(f"{len(left)} item(s) of a batch to {table} were still unprocessed after "
                                f"{max_retries} retries; nothing was dropped silently, rerun to finish", left)


def _ranges(rows: Sequence[int]) -> str:
    """Row positions as compact ranges: 0-24, 50-74."""
    spans: list[str] = []
    start = previous = None
    for row in sorted(rows):
        if start is None:
            start = previous = row
        elif row == previous + 1:
            previous = row
        else:
            spans.append(f"{start}-{previous}" if previous != start else str(start))
            start = previous = row
    if start is not None:
        spans.append(f"{start}-{previous}" if previous != start else str(start))
    return ", ".join(spans)


def _is_stored(client, table: str, key: str, item: dict) -> bool:
    """Whether ``item`` is stored as sent (a strongly consistent read); False when it cannot be read."""
    from botocore.exceptions import ClientError

    try:
        stored = client.get_item(TableName=table, Key={key: item[key]}, ConsistentRead=True).get("Item")
    except (ClientError, KeyError):  # e.g. a key DynamoDB refuses even to look up
        return False
    return stored == item


def write_items(client_factory: Callable[[], Any], table: str, items: Sequence[dict], threads: int = 4,
                key: str | None = None, **batch_options: Any) -> dict[str, int]:
    """Write every item; one client per thread (boto3 clients are thread-safe, sessions are not).

    Every batch is attempted even when one fails (a re-run is idempotent and has less to do); then a
    :class:`PartialWriteError` names the rows (positions in ``items``) and keys left unwritten. With
    ``key``, the items of a refused batch are read back, so the rows named are exactly those missing.
    """
    if not items:
        return {"items": 0, "batches": 0, "retries": 0}
    batches = list(_batches(items))
    clients = [client_factory() for _ in range(threads)]

    def run(indexed: tuple[int, Sequence[dict]]) -> tuple[int, list[int], str | None]:
        index, batch = indexed
        first = index * BATCH_LIMIT
        try:
            return write_batch(clients[index % threads], table, batch, **batch_options), [], None
        except UnprocessedItemsError as exc:  # the batch was written except the items handed back
            rows = [first + i for i, item in enumerate(batch) if item in exc.unprocessed]
            return 0, rows, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported below, with the rows that did not land
            # AWS refuses an invalid request whole, moto (and so the local stack) applies the items before
            # the bad one: reading the batch back tells exactly which rows landed, on either.
            client = clients[index % threads]
            rows = [first + i for i, item in enumerate(batch) if not (key and _is_stored(client, table, key, item))]
            return 0, rows, f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(run, enumerate(batches)))
    retries = sum(r for r, _, _ in outcomes)
    unwritten = sorted(row for _, rows, _ in outcomes for row in rows)
    if unwritten:
        keys = [str(next(iter(items[row][key].values()))) if key and key in items[row] else "?" for row in unwritten]
        errors = sorted({e for _, _, e in outcomes if e})
        shown = ", ".join(k[:80] for k in keys[:KEYS_IN_MESSAGE]) + (
            f" and {len(keys) - KEYS_IN_MESSAGE} more" if len(keys) > KEYS_IN_MESSAGE else "")
        raise PartialWriteError(
            f"wrote {len(items) - len(unwritten)} of {len(items)} items to {table}; NOT written: "
            f"{len(unwritten)} item(s), rows {_ranges(unwritten)} (positions in the write), keys {shown}; "
            f"every other row was written. Errors: {'; '.join(errors)[:2000]}", unwritten, keys)
    return {"items": len(items), "batches": len(batches), "retries": retries}


def last_occurrence(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """For each row, whether it is the last row of its key (``~duplicated(keep="last")`` in pandas).

    A stable sort groups equal keys in row order, so the last of each group is the key's last row.
    Arrow's hash kernels hold far more than the keys (``count_distinct`` peaks at ~90 MiB and ``unique``
    at ~50 MiB for 320,000 20-byte keys); the sort holds the keys once more plus 9 bytes a row (~10 MiB),
    so a write's memory stays near flat in the size of a day."""
    keys = _as_key_array(keys)
    n = len(keys)
    last = np.ones(n, dtype=bool)
    if n < 2:
        return last
    order = pc.sort_indices(keys).to_numpy()
    ordered = keys.take(pa.array(order))
    same_as_next = pc.equal(ordered.slice(0, n - 1), ordered.slice(1)).to_numpy(zero_copy_only=False)
    last_in_order = np.ones(n, dtype=bool)
    last_in_order[:-1] = ~same_as_next
    last[order] = last_in_order
    return last


class WriteProgress:
    """Logs how far a long write has got, at most every ``every_seconds`` (and when it ends), so a run's
    log shows it moving instead of one line after minutes."""

    def __init__(self, log: Any, table: str, total: int, every_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.table, self.total, self.every = log, table, total, every_seconds
        self.clock = clock
        self.started = self.last = clock()

    def rows_done(self, done: int) -> None:
        now = self.clock()
        if done < self.total and now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        self.log.info(f"DynamoDB {self.table}: {done:,} of {self.total:,} rows written ({rate:,.0f} rows/s)")


def day_index_name(attribute: str) -> str:
    """The name of the global secondary index on a day attribute (``dt`` -> ``dt-index``)."""
    return f"{attribute}-index"


def ensure_table(client, table: str, key: str, poll_seconds: float = 1.0, day_attribute: str | None = None) -> bool:
    """Create an on-demand table keyed by ``key`` (string) unless it exists; True when created.

    With ``day_attribute``, the table also gets a keys-only global secondary index on it, through which
    the items of one day are found without scanning the table (an existing table without the index
    gets it added; until DynamoDB has built it, a day's items are found with a Scan).
    """
    from botocore.exceptions import ClientError

    try:
        description = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        description = None
    if description is not None:
        indexes = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
        if day_attribute and day_index_name(day_attribute) not in indexes:
            client.update_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": day_attribute, "AttributeType": "S"}],
                GlobalSecondaryIndexUpdates=[{"Create": _day_index(day_attribute)}])
        return False
    attributes = [{"AttributeName": key, "AttributeType": "S"}]
    extra: dict[str, Any] = {}
    if day_attribute:
        attributes.append({"AttributeName": day_attribute, "AttributeType": "S"})
        extra["GlobalSecondaryIndexes"] = [_day_index(day_attribute)]
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}], **extra)
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 120})
    return True


def _day_index(attribute: str) -> dict[str, Any]:
    # Keys only: the index holds (day, item key) pairs, the least it can store and still list a day.
    return {"IndexName": day_index_name(attribute),
            "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}


def _key_of(item: dict[str, dict[str, str]], key: str) -> str:
    return item[key]["S"]


def stored_days(client_factory: Callable[[], Any], table: str, key: str, day_attribute: str,
                keys: Sequence[str], threads: int = 4, max_retries: int = 10,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """The day of each stored item among ``keys`` (keys not stored, or stored without a day, are absent).

    ``BatchGetItem`` of 100 keys a call, strongly consistent, projecting only key and day; unprocessed
    keys are retried like unprocessed writes.
    """
    names = {"#k": key, "#d": day_attribute}
    clients = [client_factory() for _ in range(threads)]

    def run(indexed: tuple[int, Sequence[str]]) -> dict[str, str]:
        index, chunk = indexed
        client = clients[index % threads]
        request: dict[str, Any] = {table: {"Keys": [{key: {"S": k}} for k in chunk], "ConsistentRead": True,
                                           "ProjectionExpression": "#k, #d", "ExpressionAttributeNames": names}}
        found: dict[str, str] = {}
        for attempt in range(max_retries + 1):
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                if "S" in item.get(day_attribute, {}):
                    found[_key_of(item, key)] = item[day_attribute]["S"]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            if attempt < max_retries:
                sleep(0.05 * (2 ** attempt) * (0.5 + random.random()))
        raise UnprocessedItemsError(f"{len(request[table]['Keys'])} key(s) of {table} were still unprocessed "
                                    f"by BatchGetItem after {max_retries} retries; nothing was written")

    chunks = [keys[start:start + 100] for start in range(0, len(keys), 100)]
    out: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for found in pool.map(run, enumerate(chunks)):
            out.update(found)
    return out


def _index_active(client, table: str, index: str) -> bool:
    description = client.describe_table(TableName=table)["Table"]
    return any(i["IndexName"] == index and i.get("IndexStatus", "ACTIVE") == "ACTIVE"
               for i in description.get("GlobalSecondaryIndexes", []))


def _day_pages(client, table: str, key: str, day_attribute: str, day: str, **limit: Any) -> Iterator[list[str]]:
    """The keys of the stored items whose day is ``day``, a page at a time.

    A Query on the keys-only day index reads only that day's (key, day) pairs; while the index is not
    built yet (a table created before it), a Scan with a filter reads the whole table instead.
    """
    names = {"#d": day_attribute, "#k": key}
    values = {":d": {"S": day}}
    index = day_index_name(day_attribute)
    if _index_active(client, table, index):
        pages = client.get_paginator("query").paginate(
            TableName=table, IndexName=index, KeyConditionExpression="#d = :d", ProjectionExpression="#k",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, **limit)
    else:
        pages = client.get_paginator("scan").paginate(
            TableName=table, FilterExpression="#d = :d", ProjectionExpression="#k",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values)
    for page in pages:
        yield [_key_of(item, key) for item in page.get("Items", [])]


def keys_of_day(client, table: str, key: str, day_attribute: str, day: str) -> list[str]:
    """The keys of the stored items whose day is ``day`` (see :func:`_day_pages`)."""
    return [k for page in _day_pages(client, table, key, day_attribute, day) for k in page]


def day_has_items(client, table: str, key: str, day_attribute: str, day: str) -> bool:
    """Whether any stored item has ``day`` as its day: a Query of one item on the day index (a Scan
    until the first match while the index is being built). A day that had none needs no reconciling."""
    return any(page for page in _day_pages(client, table, key, day_attribute, day, Limit=1))


def _as_key_array(keys: Iterable[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(keys, pa.ChunkedArray):
        return keys.combine_chunks()
    if isinstance(keys, pa.Array):
        return keys
    return pa.array(list(keys), type=pa.string())


def delete_stale_items(client_factory: Callable[[], Any], table: str, key: str, day_attribute: str, day: str,
                       keep: Iterable[str] | pa.Array | pa.ChunkedArray, threads: int = 4) -> dict[str, int]:
    """Delete the items of ``day`` whose key is not in ``keep`` (the day as just written: a set of keys,
    or an Arrow string array, which holds a large day compactly; the day's stored keys are compared
    with it a page at a time).

    Each delete is conditional on the item still belonging to ``day``: an item another day has written
    since (the index is eventually consistent, and runs of other days may write concurrently) is kept.
    ``BatchWriteItem`` cannot carry a condition, so these are single ``DeleteItem`` calls, in threads;
    they are few (the rows that left the day).
    """
    from botocore.exceptions import ClientError

    written = _as_key_array(keep)
    stale_found: list[str] = []
    for page in _day_pages(client_factory(), table, key, day_attribute, day):
        if page:
            stored = pa.array(page, type=pa.string())
            stale_found.extend(stored.filter(pc.invert(pc.is_in(stored, value_set=written))).to_pylist())
    stale = sorted(set(stale_found))
    if not stale:
        return {"deleted": 0, "kept": 0}
    clients = [client_factory() for _ in range(threads)]

    def run(indexed: tuple[int, str]) -> tuple[bool, str | None]:
        index, item_key = indexed
        try:
            clients[index % threads].delete_item(
                TableName=table, Key={key: {"S": item_key}}, ConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": day_attribute}, ExpressionAttributeValues={":d": {"S": day}})
            return True, None
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False, None
            return False, f"{exc.response['Error']['Code']}: {exc}"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(run, enumerate(stale)))
    failed = [(k, err) for k, (_, err) in zip(stale, outcomes) if err]
    if failed:
        shown = ", ".join(k[:80] for k, _ in failed[:KEYS_IN_MESSAGE])
        raise RuntimeError(f"{len(failed)} of {len(stale)} stale item(s) of {day} in {table} could not be "
                           f"deleted (keys {shown}); the day's new items were all written. Error: {failed[0][1]}")
    deleted = sum(1 for done, _ in outcomes if done)
    return {"deleted": deleted, "kept": len(stale) - deleted}
