"""Published outputs: the latest score per application in DynamoDB, and a model performance table."""


import io
import re
from typing import Any, Iterator

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smspark_assets.assets.day_metadata import add_day_metadata, run_range, table_schema
from smspark_assets.assets.scoring import SCORES_TABLE, credit_scores
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.catalog import CatalogResource, columns_of, publish_parquet_table
from smspark_assets.resources.dynamodb_writes import STREAM_ROWS, FrameStream, invalid_item_reasons, last_occurrence
from smspark_assets.resources.storage import ObjectStoreResource

LATEST_SCORES_TABLE = "credit_scores_latest"
SERVED_COLUMNS = ["application_id", "prediction", "model_name", "model_version", "scored_at"]
QUARANTINE_FILE = "rejected.parquet"


@dg.asset(
    deps=[credit_scores],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="outputs",
    kinds={"dynamodb"},
    io_manager_key="dynamodb_io_manager",
    metadata={"dynamodb/table": LATEST_SCORES_TABLE, "dynamodb/key": "application_id",
              "dynamodb/partition_attribute": "dt"},
)
def credit_scores_dynamodb(context: dg.AssetExecutionContext, store: ObjectStoreResource,
                           catalog: CatalogResource) -> Any:
    """The latest score per application id, served to applications from the DynamoDB table
    `credit_scores_latest` (key `application_id`), upserted day by day with batch writes. Rows DynamoDB
    would refuse (an id over 2,048 bytes, an item over 400 KB, ...) are quarantined with their reason
    under `quarantine/credit_scores_dynamodb/dt=.../`; the rest of the day is written whole, and items
    that left a re-scored day are deleted."""
    days = list(context.partition_keys)
    quarantined: dict[str, int] = {}
    reasons_seen: dict[str, int] = {}
    rows_by_day: dict[str, int] = {}
    reasons_by_day: dict[str, dict[str, int]] = {}
    ids_by_day: dict[str, pa.Array] = {}
    schema: pa.Schema | None = None
    # First pass, a bounded frame at a time (memory stays flat in the day's size): count, find the rows
    # DynamoDB would refuse and quarantine them. The writer reads the days again, frame by frame.
    for day in days:
        rejected_parts, rows, good_ids = [], 0, []
        for frame in _day_frames(store, day):
            schema = schema or _item_schema(frame)
            reasons = invalid_item_reasons(frame, "application_id", ["dt"])
            bad = reasons.notna()
            rows += len(frame)
            good_ids.append(pa.array(frame.loc[~bad, "application_id"].astype(str), pa.string()))
            if bad.any():
                rejected_parts.append(frame[bad].assign(quarantine_reason=reasons[bad]))
                for reason, count in reasons[bad].str.replace(r"\d+ bytes", "N bytes", regex=True).value_counts().items():
                    reasons_seen[reason] = reasons_seen.get(reason, 0) + int(count)
                    reasons_by_day.setdefault(day, {})[reason] = reasons_by_day.get(day, {}).get(reason, 0) + int(count)
        rows_by_day[day] = rows
        ids_by_day[day] = pa.concat_arrays(good_ids) if good_ids else pa.array([], pa.string())
        uri = f"{dynamodb_quarantine_prefix()}/dt={day}/{QUARANTINE_FILE}"
        if rejected_parts:
            # One PUT per day: the day's quarantine is replaced whole, never half-written.
            rejected = pd.concat(rejected_parts, ignore_index=True)
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(rejected, preserve_index=False), sink)
            store.write_bytes(uri, sink.getvalue())
            quarantined[day] = len(rejected)
            context.log.warning(f"{day}: {len(rejected)} row(s) quarantined, not written to DynamoDB: {uri}")
        elif store.exists(uri):
            store.delete(uri)  # a re-scored day without bad rows leaves no quarantine of its last run
    items_by_day = _items_by_day(ids_by_day)
    _add_dynamodb_day_metadata(context, catalog, schema, items_by_day, rows_by_day, quarantined, reasons_by_day)
    metadata: dict[str, object] = {"days": len(days), "dagster/row_count": sum(items_by_day.values()),
                                   "items_quarantined": sum(quarantined.values())}
    if quarantined:
        metadata["quarantine"] = dg.MetadataValue.path(dynamodb_quarantine_prefix())
        metadata["quarantined_by_day"] = dg.MetadataValue.json(quarantined)
        metadata["quarantine_reasons"] = dg.MetadataValue.json(reasons_seen)
    context.add_output_metadata(metadata)

    def good_frames() -> Iterator[pd.DataFrame]:
        for day in days:
            for frame in _day_frames(store, day):
                yield frame[invalid_item_reasons(frame, "application_id", ["dt"]).isna()]

    # One item per application: when an id appears on several days, the latest day's score wins.
    return FrameStream(good_frames, later_rows_win=True)


def _day_frames(store: ObjectStoreResource, day: str) -> Iterator[pd.DataFrame]:
    """A scored day as pandas frames of at most ``STREAM_ROWS`` rows, in the served columns plus ``dt``.
    Days scored before the registry existed have no ``model_version``: it is null there."""
    dataset = store.parquet_dataset(f"{layout().scores}/dt={day}")
    present = [c for c in SERVED_COLUMNS if c in dataset.schema.names]
    for batch in dataset.to_batches(columns=present, batch_size=STREAM_ROWS):
        frame = batch.to_pandas()
        for column in SERVED_COLUMNS:
            if column not in frame:
                frame[column] = None
        frame = frame[SERVED_COLUMNS].assign(dt=day)
        frame["scored_at"] = frame["scored_at"].astype(str)
        yield frame


def _item_schema(frame: pd.DataFrame) -> pa.Schema:
    """The items' columns; a column that is all null in the first frame (``model_version`` of old days) is
    a string, as it is in the scores."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema])


def _items_by_day(ids_by_day: dict[str, pa.Array]) -> dict[str, int]:
    """Items each day hands to the writer: its valid ids that no later day of the run scores again."""
    days = list(ids_by_day)
    if not days:
        return {}
    # An id counts for the day of its last row: days are in order, so that is its latest day.
    last = last_occurrence(pa.concat_arrays([ids_by_day[day] for day in days]))
    bounds = np.cumsum([0] + [len(ids_by_day[day]) for day in days])
    return {day: int(last[bounds[i]:bounds[i + 1]].sum()) for i, day in enumerate(days)}


DYNAMODB_QUARANTINE_TABLE = "credit_scores_dynamodb_quarantine"


def _add_dynamodb_day_metadata(context: dg.AssetExecutionContext, catalog: CatalogResource,
                               schema: pa.Schema | None, items_by_day: dict[str, int], rows_by_day: dict[str, int],
                               quarantined: dict[str, int], reasons_by_day: dict[str, dict[str, int]]) -> None:
    """Each day's own figures on its materialization (the writer's figures are the run's), the item
    schema, and the quarantine as a catalog table (``smspark.credit_scores_dynamodb_quarantine``)."""
    add_day_metadata(context, {day: {
        "scored_rows": rows, "items_quarantined": quarantined.get(day, 0),
        # The day's items handed to the writer (its figures are the run's): not the quarantined rows, nor ids
        # a later day of this run scored. An item a later day already holds in the table is kept by the
        # writer (counted run-wide in items_kept_for_a_later_day), so re-running an old day may count fewer.
        "items_written": int(items_by_day.get(day, 0)), "dagster/row_count": int(items_by_day.get(day, 0)),
        "quarantine_reasons": dg.MetadataValue.json(reasons_by_day.get(day, {})),
        "partitions": dg.MetadataValue.json([day]),
    } for day, rows in rows_by_day.items()})
    if schema is None:
        return
    context.add_output_metadata({"run_partitions": run_range(list(rows_by_day)),
                                 "dagster/column_schema": table_schema(schema)})
    quarantine_columns = columns_of(schema.append(pa.field("quarantine_reason", pa.string())), exclude=("dt",))
    catalog.register_table(DYNAMODB_QUARANTINE_TABLE, dynamodb_quarantine_prefix(), quarantine_columns,
                           [("dt", "string")], sorted(quarantined),
                           description="Scored rows DynamoDB would refuse, with the reason, by day (dt)")


def dynamodb_quarantine_prefix() -> str:
    """Where rows DynamoDB would refuse are kept, by day (next to the raw rows' quarantine)."""
    return s3_uri(layout().bucket, "quarantine/credit_scores_dynamodb")


# {model} is a SageMaker model name (checked against MODEL_NAME_RE before it is put into the SQL).
PERFORMANCE_SQL = f"""
SELECT decile,
       COUNT(*) AS applications,
       AVG(prediction) AS mean_predicted_default,
       AVG(CAST(defaulted_12m AS DOUBLE)) AS observed_default_rate
FROM (
  SELECT prediction, defaulted_12m, NTILE(10) OVER (ORDER BY prediction) AS decile
  FROM {SCORES_TABLE}
  WHERE split = 'test' AND model_name = '{{model}}'
)
GROUP BY decile
ORDER BY decile
"""
MODEL_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# Models created from a registry version: <group>-v<version>-<hash> (smspark_assets.sagemaker.registry).
_VERSION_IN_NAME = re.compile(r"-v(\d+)-[0-9a-f]{8}$")


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged."""
    labels = np.asarray(labels, dtype=bool)
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dg.asset(deps=[credit_scores], group_name="outputs", kinds={"athena", "parquet"},
          io_manager_key="parquet_io_manager")
def credit_model_performance(context: dg.AssetExecutionContext, catalog: CatalogResource,
                             credit_default_endpoint: dict[str, Any], store: ObjectStoreResource) -> pd.DataFrame:
    """Calibration by decile on the held-out test split, for the model the endpoint serves, computed in SQL
    over the catalog table (Athena on AWS, DuckDB locally): predicted versus observed default rate.

    It depends on the endpoint, so a newly served model marks it stale. When the scores hold no test rows of
    the served model yet (the days were not re-scored since it was deployed), it evaluates the model that
    scored the most test rows and says so: `evaluates_served_model` is false."""
    served = str(credit_default_endpoint.get("model_name") or "")
    counts = catalog.query(f"SELECT model_name, COUNT(*) AS n FROM {SCORES_TABLE} WHERE split = 'test' "
                           "GROUP BY model_name ORDER BY n DESC, model_name")
    found = dict(zip(counts["model_name"].astype(str), counts["n"].astype(int)))
    if not found:
        raise dg.Failure(f"{SCORES_TABLE} holds no test rows; materialize credit_scores first")
    evaluated = served if served in found else next(iter(found))
    if not MODEL_NAME_RE.match(evaluated):
        raise dg.Failure(f"model name {evaluated!r} in {SCORES_TABLE} is not a SageMaker model name")
    if evaluated != served:
        context.log.warning(f"no test row of {SCORES_TABLE} was scored by the served model {served}; evaluating "
                            f"{evaluated} instead (re-score the days with credit_scores)")
    version = (credit_default_endpoint.get("model_version") if evaluated == served else None)
    if version is None and (match := _VERSION_IN_NAME.search(evaluated)):
        version = int(match.group(1))
    sql = PERFORMANCE_SQL.format(model=evaluated)
    deciles = catalog.query(sql)
    test = catalog.query(f"SELECT prediction, defaulted_12m FROM {SCORES_TABLE} "
                         f"WHERE split = 'test' AND model_name = '{evaluated}'")
    test_auc = auc(test["defaulted_12m"].to_numpy(), test["prediction"].to_numpy())
    deciles = deciles.assign(model_name=evaluated, model_version=None if version is None else str(version))
    context.add_output_metadata({
        "model_name": evaluated,
        "model_version": int(version) if version is not None else 0,
        "served_model": served,
        "evaluates_served_model": evaluated == served,
        "models_in_scores": dg.MetadataValue.json(found),
        "test_auc": test_auc,
        "test_applications": len(test),
        "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
        "deciles": dg.MetadataValue.md(deciles.to_markdown(index=False) if len(deciles) else "(empty)"),
    })
    # Also a catalog table (one object, replaced per run), so it joins with the scores in SQL.
    table = pa.Table.from_pandas(deciles.assign(model_version=deciles["model_version"].astype("string")),
                                 preserve_index=False)
    publish_parquet_table(catalog, store, PERFORMANCE_TABLE, performance_table_location(), table,
                          description="Calibration by decile on the test split of the evaluated model")
    context.add_output_metadata({"table": f"{catalog.database}.{PERFORMANCE_TABLE}",
                                 "dagster/column_schema": table_schema(table.schema)})
    return deciles


PERFORMANCE_TABLE = "credit_model_performance"


def performance_table_location() -> str:
    """Where the catalog's copy of the performance table lives (one Parquet object)."""
    return s3_uri(layout().bucket, "tables/credit_model_performance")
