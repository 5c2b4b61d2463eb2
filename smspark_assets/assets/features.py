"""Spark-prepared features: typed, cleaned, imputed and encoded applications with a stable split."""

from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.json as pa_json

from smspark_assets.assets.day_metadata import add_day_metadata, plain, run_range, table_schema
from smspark_assets.assets.raw import raw_credit_applications
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.catalog import CatalogResource, columns_of, publish_parquet_table
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource

FEATURES_TABLE = "credit_features"
RAW_QUARANTINE_TABLE = "credit_applications_quarantine"
# The Spark job keeps rejected rows as JSON lines (readable as they were); the catalog gets a Parquet
# copy per day because Athena joins it with the other tables, and the local Athena reads Parquet only.
QUARANTINE_SCHEMA = pa.schema([("reason", pa.string()), ("detail", pa.string()),
                               ("application_id", pa.string()), ("raw_record", pa.string())])
# Per-day figures of the job, by the name the day's materialization shows them under.
_DAY_FIGURES = {"rows_read": "rows_read_by_dt", "rows_written": "rows_written_by_dt",
                "malformed_rows": "malformed_by_dt", "duplicate_ids_dropped": "duplicate_ids_by_dt"}


def raw_quarantine_table_location() -> str:
    """Where the catalog's copy of the quarantined raw rows lives (Parquet, by ``dt``)."""
    return s3_uri(layout().bucket, "tables/credit_applications_quarantine")


@dg.asset(
    deps=[raw_credit_applications],
    partitions_def=daily_partitions,
    # One Spark application for a whole backfill range rather than one JVM per day.
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="features",
    kinds={"spark", "parquet", "s3", "athena"},
    metadata={"uri": dg.MetadataValue.path(layout().features), "dagster/table_name": f"smspark.{FEATURES_TABLE}"},
)
def credit_features(context: dg.AssetExecutionContext, spark: SparkJobRunner, catalog: CatalogResource,
                    store: ObjectStoreResource) -> dg.MaterializeResult:
    """Typed, cleaned and imputed credit applications with one-hot categoricals and a deterministic
    train/validation/test split by application id hash, as Parquet partitioned by `dt`; catalog table
    `smspark.credit_features`. Malformed raw rows are counted and kept in quarantine, never dropped
    silently, and are queryable as `smspark.credit_applications_quarantine` (with their reason)."""
    paths = layout()
    days = list(context.partition_keys)
    invocation = spark.run(context, "prepare_features", {
        "raw_prefix": paths.raw,
        "partitions": days,
        "output_prefix": paths.features,
        "quarantine_prefix": paths.quarantine,
    })
    reported = {k: plain(v) for k, v in (invocation.get_materialize_result().metadata or {}).items()}
    add_day_metadata(context, {day: _day_figures(reported, day) for day in days})

    written = [d for d in days if int((reported.get("rows_written_by_dt") or {}).get(d, 0))]
    schema = _written_schema(store, paths.features, written)
    run_metadata: dict[str, Any] = {
        "run_partitions": run_range(days),
        "run_rows_read": reported.get("rows_read"), "run_rows_written": reported.get("rows_written"),
        "run_rows_rejected": reported.get("rows_rejected"), "run_malformed_rows": reported.get("malformed_rows"),
        "run_duration_s": reported.get("duration_s"),
        "num_features": reported.get("num_features"),
        "feature_columns": dg.MetadataValue.json(reported.get("feature_columns") or []),
        "feature_list_uri": dg.MetadataValue.path(str(reported.get("feature_list_uri", ""))),
        "quarantine": dg.MetadataValue.path(paths.quarantine),
        "table": f"{catalog.database}.{FEATURES_TABLE}",
    }
    if schema is not None:
        run_metadata["dagster/column_schema"] = table_schema(schema)
        # Every day of the run, empty ones too: a query over an empty day returns no rows, not an error.
        catalog.register_table(FEATURES_TABLE, paths.features, columns_of(schema, exclude=("dt",)),
                               [("dt", "string")], days,
                               description="Prepared credit application features, by day (dt)")
    run_metadata["quarantine_table"] = f"{catalog.database}.{RAW_QUARANTINE_TABLE}"
    _publish_quarantine(catalog, store, paths.quarantine, days)
    return dg.MaterializeResult(metadata=run_metadata)


def _day_figures(reported: dict[str, Any], day: str) -> dict[str, Any]:
    """The job's figures for one day, under the names the run reports its totals with."""
    figures: dict[str, Any] = {name: int((reported.get(key) or {}).get(day, 0)) for name, key in _DAY_FIGURES.items()}
    rejected = {reason: int(n) for reason, n in ((reported.get("rejected_by_dt") or {}).get(day) or {}).items()}
    figures["dagster/row_count"] = figures["rows_written"]
    figures["rows_rejected"] = sum(rejected.values())
    figures["rejected_by_reason"] = dg.MetadataValue.json(dict(sorted(rejected.items())))
    figures["split_counts"] = dg.MetadataValue.json((reported.get("split_counts_by_dt") or {}).get(day) or {})
    figures["medians"] = dg.MetadataValue.json((reported.get("medians_by_dt") or {}).get(day) or {})
    ignored = (reported.get("ignored_files_by_dt") or {}).get(day)
    if ignored:
        figures["ignored_files"] = dg.MetadataValue.json(ignored)
    # The job's warnings name their day as `dt=YYYY-MM-DD`.
    figures["warnings"] = dg.MetadataValue.json([w for w in reported.get("warnings") or [] if f"dt={day}" in w])
    figures["partitions"] = dg.MetadataValue.json([day])
    return figures


def _written_schema(store: ObjectStoreResource, prefix: str, days: list[str]) -> pa.Schema | None:
    """The schema of the features as written (one Parquet footer), or None when no day has rows."""
    for day in days:
        first = next((o for o in store.list_objects(f"{prefix}/dt={day}") if o.uri.endswith(".parquet")), None)
        if first is not None:
            return store.parquet_dataset(first.uri).schema
    return None


def _publish_quarantine(catalog: CatalogResource, store: ObjectStoreResource, quarantine: str,
                        days: list[str]) -> None:
    """Copy each day's rejected rows (JSON lines) into the Parquet quarantine table, replacing the day."""
    location = raw_quarantine_table_location()
    options = pa_json.ParseOptions(explicit_schema=QUARANTINE_SCHEMA, unexpected_field_behavior="ignore")
    for day in days:
        parts = [o for o in store.list_objects(f"{quarantine}/dt={day}/") if o.uri.endswith(".json")]
        tables = [pa_json.read_json(pa.BufferReader(store.read_bytes(o.uri)), parse_options=options)
                  for o in parts if o.size]
        rows = pa.concat_tables(tables) if tables else QUARANTINE_SCHEMA.empty_table()
        publish_parquet_table(catalog, store, RAW_QUARANTINE_TABLE, location, rows, day=day,
                              description="Raw credit application rows refused by the feature job, with the reason")
