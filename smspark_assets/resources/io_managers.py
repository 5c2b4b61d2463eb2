"""IO managers: small JSON handles and pandas tables in S3, and pandas tables served from DynamoDB.

Spark DataFrames never pass through an IO manager: Spark assets write their data themselves and return
``MaterializeResult``. What flows here is small (handles to models and endpoints) or table-shaped and
modest (an evaluation table; the latest score per application for DynamoDB).
"""


import io
import json
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smspark_assets.resources.aws import DynamoDBResource
from smspark_assets.resources.dynamodb_writes import (KEYS_IN_MESSAGE, delete_stale_items, ensure_table,
                                                      invalid_item_reasons, stored_days, to_attribute_values,
                                                      write_items)
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
    """Upserts a pandas DataFrame into a DynamoDB table, one item per row, a day at a time.

    The table and its hash key come from the asset's definition metadata (``dynamodb/table``,
    ``dynamodb/key``); the table is created on demand (on-demand capacity). With
    ``dynamodb/partition_attribute`` (the item's day, e.g. ``dt``) on a partitioned asset, the table gets
    a keys-only index on that attribute and each written day is reconciled: an item a later day wrote
    is not overwritten, and the items of the day that are no longer in it are deleted (unless another
    day has overwritten them since). Rows DynamoDB would refuse fail the output before anything is
    written (the asset quarantines them first). Loading reads the items of the asset's partition back,
    or the whole table.
    """

    dynamodb: dg.ResourceDependency[DynamoDBResource]
    table_prefix: str = ""
    threads: int = 4

    def _table(self, context: dg.OutputContext | dg.InputContext) -> tuple[str, str]:
        meta = context.definition_metadata or {}
        table = str(meta.get("dynamodb/table") or context.asset_key.path[-1])
        key = str(meta.get("dynamodb/key") or "id")
        return self.table_prefix + table, key

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        table, key = self._table(context)
        day_attribute = (context.definition_metadata or {}).get("dynamodb/partition_attribute")
        day_attribute = str(day_attribute) if day_attribute else None
        _refuse_unwritable(obj, table, key, day_attribute)
        client = self.dynamodb.dynamodb
        created = ensure_table(client, table, key, day_attribute=day_attribute)
        factory = lambda: self.dynamodb.client("dynamodb")  # noqa: E731 - one client per worker thread
        keys = obj[key].astype(str)
        frame = obj
        kept_for_later = 0
        if day_attribute and day_attribute in obj.columns and not created and len(obj):
            # A re-run (or a late day) must not put an older score over the one a later day wrote.
            stored = pd.Series(stored_days(factory, table, key, day_attribute, keys.tolist(), threads=self.threads),
                               dtype=object)
            later = keys.map(stored).fillna("").to_numpy(dtype=object) > obj[day_attribute].astype(str).to_numpy()
            kept_for_later = int(later.sum())
            frame = obj[~later]
        stats = write_items(factory, table, to_attribute_values(frame), threads=self.threads, key=key)
        stale = {"deleted": 0, "kept": 0}
        if day_attribute and context.has_asset_partitions:
            written = set(keys)
            for day in context.asset_partition_keys:
                outcome = delete_stale_items(factory, table, key, day_attribute, day, written, threads=self.threads)
                stale = {k: stale[k] + outcome[k] for k in stale}
        context.add_output_metadata({
            "dynamodb/table": table, "dynamodb/key": key, "table_created": created,
            "items_written": stats["items"], "batches": stats["batches"], "unprocessed_retries": stats["retries"],
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


def _refuse_unwritable(obj: pd.DataFrame, table: str, key: str, day_attribute: str | None) -> None:
    """Refuse, before any write, a frame DynamoDB would take only in part: a day is written whole."""
    if key not in obj.columns:
        raise ValueError(f"cannot write to DynamoDB table {table}: key column {key!r} is missing; "
                         f"columns are {list(obj.columns)}")
    if pd.api.types.is_numeric_dtype(obj[key]) or pd.api.types.is_bool_dtype(obj[key]):
        raise ValueError(f"key column {key!r} holds {obj[key].dtype} values; the table's key is a string: "
                         f"convert it before writing")
    duplicated = int(obj[key].duplicated().sum())
    if duplicated:
        raise ValueError(f"{duplicated} rows share a {key!r} with another row; one item per key is allowed")
    reasons = invalid_item_reasons(obj, key, [day_attribute] if day_attribute else [])
    bad = reasons.notna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        listed = "; ".join(f"row {row} ({key}={str(obj[key].iloc[row])[:40]!r}): {reasons.iloc[row]}"
                           for row in rows[:KEYS_IN_MESSAGE])
        raise ValueError(f"{len(rows)} of {len(obj)} rows would be refused by DynamoDB, so nothing was written "
                         f"to {table}: {listed}{' ...' if len(rows) > KEYS_IN_MESSAGE else ''}. "
                         f"Quarantine them first (see dynamodb_writes.invalid_item_reasons).")


def _plain(value: dict[str, Any]) -> Any:
    (kind, raw), = value.items()
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw else number
    return raw
