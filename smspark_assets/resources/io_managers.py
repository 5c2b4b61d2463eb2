"""IO managers: small JSON handles and pandas tables in S3, and pandas tables served from DynamoDB.

Spark DataFrames never pass through an IO manager: Spark assets write their data themselves and return
``MaterializeResult``. What flows here is small (handles to models and endpoints) or table-shaped and
modest (an evaluation table), or streamed: the latest score per application for DynamoDB may come as a
:class:`~smspark_assets.resources.dynamodb_writes.FrameStream`, written a bounded frame at a time.
"""


import io
import itertools
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smspark_assets.resources.aws import DynamoDBResource
from smspark_assets.resources.dynamodb_writes import (KEYS_IN_MESSAGE, FrameStream, PartialWriteError,
                                                      WriteProgress, day_has_items, delete_stale_items,
                                                      ensure_table, invalid_item_reasons, last_occurrence,
                                                      stored_days, to_attribute_values, write_items)
from smspark_assets.resources.storage import ObjectStoreResource


def _object_uri(prefix: str, context: dg.OutputContext | dg.InputContext, extension: str) -> str:
    parts = list(context.asset_key.path)
    if context.has_asset_partitions:
        parts.append(context.asset_partition_key)
    return prefix.rstrip("/") + "/" + "/".join(parts) + extension


class JsonObjectIOManager(dg.ConfigurableIOManager):
    """Stores a JSON-serialisable value at ``<prefix>/<asset key>[/<partition>].json``."""

    store: dg.ResourceDependency[ObjectStoreResource]
    prefix: str

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        uri = _object_uri(self.prefix, context, ".json")
        self.store.write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())
        context.add_output_metadata({"uri": dg.MetadataValue.path(uri)})

    def load_input(self, context: dg.InputContext) -> Any:
        uri = _object_uri(self.prefix, context, ".json")
        if not self.store.exists(uri):
            raise FileNotFoundError(f"{uri} does not exist: materialize {context.asset_key.to_user_string()} first")
        return json.loads(self.store.read_bytes(uri))


class ParquetObjectIOManager(dg.ConfigurableIOManager):
    """Stores a pandas DataFrame as one Parquet object at ``<prefix>/<asset key>[/<partition>].parquet``."""

    store: dg.ResourceDependency[ObjectStoreResource]
    prefix: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        uri = _object_uri(self.prefix, context, ".parquet")
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(obj, preserve_index=False), sink)
        self.store.write_bytes(uri, sink.getvalue())
        context.add_output_metadata({"uri": dg.MetadataValue.path(uri), "dagster/row_count": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        uri = _object_uri(self.prefix, context, ".parquet")
        return pq.read_table(io.BytesIO(self.store.read_bytes(uri))).to_pandas()


class DynamoDBTableIOManager(dg.ConfigurableIOManager):
    """Upserts a table into DynamoDB, one item per row, a day at a time: a pandas DataFrame, or a
    :class:`FrameStream` of frames for a table too large to hold at once (memory stays flat in its size).

    The table and its hash key come from the asset's definition metadata (``dynamodb/table``,
    ``dynamodb/key``); the table is created on demand (on-demand capacity). With
    ``dynamodb/partition_attribute`` (the item's day, e.g. ``dt``) on a partitioned asset, the table gets
    a keys-only index on that attribute and each written day is reconciled: an item a later day wrote
    is not overwritten, and the items of the day that are no longer in it are deleted (unless another
    day has overwritten them since). Rows DynamoDB would refuse fail the output before anything is
    written (the asset quarantines them first): every frame is checked before the first is written.
    Loading reads the items of the asset's partition back, or the whole table.
    """

    dynamodb: dg.ResourceDependency[DynamoDBResource]
    table_prefix: str = ""
    threads: int = 4

    def _table(self, context: dg.OutputContext | dg.InputContext) -> tuple[str, str]:
        meta = context.definition_metadata or {}
        table = str(meta.get("dynamodb/table") or context.asset_key.path[-1])
        key = str(meta.get("dynamodb/key") or "id")
        return self.table_prefix + table, key

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | FrameStream) -> None:
        table, key = self._table(context)
        day_attribute = (context.definition_metadata or {}).get("dynamodb/partition_attribute")
        day_attribute = str(day_attribute) if day_attribute else None
        stream = obj if isinstance(obj, FrameStream) else FrameStream.of(obj)
        plan = _check_stream(stream, table, key, day_attribute)
        client = self.dynamodb.dynamodb
        created = ensure_table(client, table, key, day_attribute=day_attribute)
        # One client per worker thread, made once for every frame of the stream (and reused, with their
        # open connections, from one frame to the next). The items were checked above
        # (invalid_item_reasons) and DynamoDB checks every request again, so botocore's own check of
        # each request is skipped.
        clients = itertools.cycle([self.dynamodb.client("dynamodb", validate_parameters=False)
                                   for _ in range(self.threads)])
        factory = lambda: next(clients)  # noqa: E731
        # A day that held no items before this write has nothing to reconcile afterwards (one small
        # Query): a first write of a day never lists the day.
        days = list(context.asset_partition_keys) if day_attribute and context.has_asset_partitions else []
        to_reconcile = [day for day in days
                        if not created and day_has_items(client, table, key, str(day_attribute), day)]
        totals = {"items": 0, "batches": 0, "retries": 0}
        kept_for_later = 0
        position = 0
        progress = WriteProgress(context.log, table, len(plan.keys))
        for frame in stream:
            first = position
            position += len(frame)
            if plan.superseded is not None:
                frame = frame[~plan.superseded[first:position]]
            if day_attribute and day_attribute in frame.columns and not created and len(frame):
                # A re-run (or a late day) must not put an older score over the one a later day wrote.
                keys = frame[key].astype(str)
                stored = pd.Series(stored_days(factory, table, key, day_attribute, keys.tolist(),
                                               threads=self.threads), dtype=object)
                later = (keys.map(stored).fillna("").to_numpy(dtype=object)
                         > frame[day_attribute].astype(str).to_numpy())
                kept_for_later += int(later.sum())
                frame = frame[~later]
            try:
                stats = write_items(factory, table, to_attribute_values(frame), threads=self.threads, key=key)
            except PartialWriteError as exc:
                raise PartialWriteError(f"output rows {first}..{position - 1} (rows before {first} were written): "
                                        f"{exc}", exc.unwritten_rows, exc.unwritten_keys) from exc
            totals = {k: totals[k] + stats[k] for k in totals}
            progress.rows_done(position)
        stale = {"deleted": 0, "kept": 0}
        for day in to_reconcile:
            outcome = delete_stale_items(factory, table, key, str(day_attribute), day, plan.keys,
                                         threads=self.threads)
            stale = {k: stale[k] + outcome[k] for k in stale}
        context.add_output_metadata({
            "dynamodb/table": table, "dynamodb/key": key, "table_created": created,
            "items_written": totals["items"], "batches": totals["batches"], "unprocessed_retries": totals["retries"],
            "items_kept_for_a_later_day": kept_for_later,
            "stale_items_deleted": stale["deleted"], "stale_items_kept_other_day": stale["kept"],
        })

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        upstream = context.upstream_output or context
        table, _ = self._table(upstream)
        attr = (upstream.definition_metadata or {}).get("dynamodb/partition_attribute")
        kwargs: dict[str, Any] = {"TableName": table}
        if attr and context.has_asset_partitions:
            kwargs.update(FilterExpression="#p = :v", ExpressionAttributeNames={"#p": str(attr)},
                          ExpressionAttributeValues={":v": {"S": context.asset_partition_key}})
        items: list[dict] = []
        for page in self.dynamodb.dynamodb.get_paginator("scan").paginate(**kwargs):
            items.extend(page["Items"])
        return pd.DataFrame([{k: _plain(v) for k, v in item.items()} for item in items])


@dataclass(frozen=True)
class _WritePlan:
    """What a checked stream will write: every key (Arrow strings, in row order) and, when later rows
    win, which rows a later row of the same key supersedes."""

    keys: pa.Array
    superseded: np.ndarray | None


def _check_stream(stream: FrameStream, table: str, key: str, day_attribute: str | None) -> _WritePlan:
    """Refuse, before any write, a table DynamoDB would take only in part: a day is written whole."""
    keys: list[pa.Array] = []
    bad_rows: list[str] = []
    bad_count = total = 0
    for frame in stream:
        if key not in frame.columns:
            raise ValueError(f"cannot write to DynamoDB table {table}: key column {key!r} is missing; "
                             f"columns are {list(frame.columns)}")
        if len(frame) and (pd.api.types.is_numeric_dtype(frame[key]) or pd.api.types.is_bool_dtype(frame[key])):
            raise ValueError(f"key column {key!r} holds {frame[key].dtype} values; the table's key is a string: "
                             f"convert it before writing")
        reasons = invalid_item_reasons(frame, key, [day_attribute] if day_attribute else [])
        bad = np.flatnonzero(reasons.notna().to_numpy())
        bad_count += len(bad)
        bad_rows.extend(f"row {total + row} ({key}={str(frame[key].iloc[row])[:40]!r}): {reasons.iloc[row]}"
                        for row in bad[:max(0, KEYS_IN_MESSAGE - len(bad_rows))])
        if not len(bad):  # the keys are only kept while they can all be written
            keys.append(pa.array(frame[key].astype(str).to_numpy(dtype=object), type=pa.string()))
        total += len(frame)
    if bad_count:
        raise ValueError(f"{bad_count} of {total} rows would be refused by DynamoDB, so nothing was written "
                         f"to {table}: {'; '.join(bad_rows)}{' ...' if bad_count > KEYS_IN_MESSAGE else ''}. "
                         f"Quarantine them first (see dynamodb_writes.invalid_item_reasons).")
    all_keys = pa.chunked_array(keys, type=pa.string()).combine_chunks()
    last = last_occurrence(all_keys)
    duplicated = len(all_keys) - int(last.sum())
    if not duplicated:
        return _WritePlan(all_keys, None)
    if not stream.later_rows_win:
        raise ValueError(f"{duplicated} rows share a {key!r} with another row; one item per key is allowed")
    # The last row of each key is written; the earlier ones are superseded (drop_duplicates keep="last").
    return _WritePlan(all_keys, ~last)


def _plain(value: dict[str, Any]) -> Any:
    (kind, raw), = value.items()
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw else number
    return raw
