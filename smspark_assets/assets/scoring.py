"""Scoring: Spark sends every day's features through the live endpoint (without one: a transform job per
day, `batch_scoring.py`) and writes the scored table."""


from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from smspark_assets.assets.batch_scoring import score_days_with_transform_jobs
from smspark_assets.assets.day_metadata import add_day_metadata, daily_check_spec, day_check_events, plain, run_range, table_schema
from smspark_assets.assets.features import credit_features
from smspark_assets.environment import region
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.catalog import CatalogResource, columns_of
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.endpoints import ensure_endpoint
from smspark_assets.tables import parquet_rows

SCORES_TABLE = "credit_scores"
ALL_ROWS_SCORED = "every_feature_row_scored"
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
SCORE_COLUMN_DESCRIPTIONS = {
    "application_id": "The application's id (the table's key within a day)",
    "prediction": "The model's probability of default within 12 months",
    "model_name": "The SageMaker model that scored the row",
    "model_version": "The model registry version the endpoint served (null when none)",
    "scored_at": "When the run scored the day (UTC, one value per run)",
    "split": "train / validation / test, by application id hash",
    "defaulted_12m": "The observed label, when known",
}


class ScoringConfig(dg.Config):
    max_payload_mb: float = Field(default=5.0,
                                  description="Largest request body sent to the endpoint, in MiB: (0, 5].")


@dg.asset(
    deps=[credit_features],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="scoring",
    kinds={"spark", "sagemaker", "parquet", "athena"},
    metadata={"uri": dg.MetadataValue.path(layout().scores), "dagster/table_name": f"smspark.{SCORES_TABLE}"},
    # Evaluated per day: a backfill of 14 days shows 14 results, one on each partition.
    check_specs=[daily_check_spec(ALL_ROWS_SCORED, "credit_scores", daily_partitions,
                                  "Every feature row of the day got exactly one prediction.")],
)
def credit_scores(context: dg.AssetExecutionContext, config: ScoringConfig, credit_default_endpoint: dict[str, Any],
                  spark: SparkJobRunner, sagemaker: SageMakerResource, catalog: CatalogResource,
                  store: ObjectStoreResource) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """Every application of the day with the model's `prediction` (probability of default), scored by
    Spark executors through the live endpoint in requests of at most 5 MiB; Parquet partitioned by `dt`,
    registered as the catalog table `smspark.credit_scores` (Athena on AWS, DuckDB locally). With endpoint
    mode `none` there is no endpoint: each day is scored by a batch transform job of the same model, into
    the same table."""
    if not 0 < config.max_payload_mb <= 5.0:
        raise dg.Failure(f"max_payload_mb={config.max_payload_mb} is not allowed: SageMaker takes requests "
                         "of more than 0 and at most 5 MiB")
    paths = layout()
    days = list(context.partition_keys)
    recreated = False
    if credit_default_endpoint.get("endpoint_mode") == "none":  # no endpoint: a transform job per day
        reported = score_days_with_transform_jobs(
            sagemaker.sagemaker, store, days, credit_default_endpoint, paths.features, paths.scores,
            sagemaker.instance_type, sagemaker.poll_seconds, log=context.log.info)
    else:
        # An endpoint the idle reaper deleted is created again from the config its asset deployed.
        recreated = bool(credit_default_endpoint.get("config_name")) and ensure_endpoint(
            sagemaker.sagemaker, credit_default_endpoint["endpoint_name"], credit_default_endpoint["config_name"],
            sagemaker.poll_seconds, {"asset": "credit_default_endpoint"}, context.log.info)
        invocation = spark.run(context, "score_endpoint", {
            "features_prefix": paths.features,
            "partitions": days,
            "feature_columns": credit_default_endpoint.get("feature_columns"),
            "endpoint_name": credit_default_endpoint["endpoint_name"],
            "region": sagemaker.region_name or region(),
            "output_prefix": paths.scores,
            "max_payload_bytes": min(int(config.max_payload_mb * 1024 * 1024), MAX_PAYLOAD_BYTES),
            "id_column": "application_id",
            "model_name": credit_default_endpoint["model_name"],
            "model_version": credit_default_endpoint.get("model_version"),
        })
        reported = {k: plain(v) for k, v in (invocation.get_materialize_result().metadata or {}).items()}
    scored_rows = {day: int((reported.get("rows_scored_by_dt") or {}).get(day, 0)) for day in days}
    schema = None
    for day in days:  # the first day with rows gives the table's columns (an empty day writes no file)
        first = next((o for o in store.list_objects(f"{paths.scores}/dt={day}") if o.uri.endswith(".parquet")), None)
        if first is not None:
            schema = store.parquet_dataset(first.uri).schema
            break
    if schema is None:
        raise dg.Failure(f"the scoring job wrote nothing under {paths.scores} for {run_range(days)}")
    catalog.register_table(SCORES_TABLE, paths.scores, columns_of(schema, exclude=("dt",)), [("dt", "string")], days,
                           description="Credit applications scored by the served model, by day (dt)")
    feature_rows = {day: parquet_rows(store, f"{paths.features}/dt={day}") for day in days}
    add_day_metadata(context, {day: {
        "dagster/row_count": scored_rows[day], "rows_scored": scored_rows[day], "feature_rows": feature_rows[day],
        "partitions": dg.MetadataValue.json([day]),
        "warnings": dg.MetadataValue.json([w for w in reported.get("warnings") or [] if f"dt={day}" in w]),
    } for day in days})
    yield dg.MaterializeResult(metadata={
        "run_partitions": run_range(days),
        "run_rows_scored": reported.get("rows_scored"), "run_requests": reported.get("requests"),
        "run_payload_bytes": reported.get("payload_bytes"), "run_duration_s": reported.get("duration_s"),
        "rows_per_s": reported.get("rows_per_s"), "max_payload_bytes": reported.get("max_payload_bytes"),
        "scored_at": reported.get("scored_at"),
        "feature_columns": dg.MetadataValue.json(reported.get("feature_columns") or []),
        "table": f"{catalog.database}.{SCORES_TABLE}",
        "endpoint_name": credit_default_endpoint["endpoint_name"] or "none (batch transform)",
        "model_name": credit_default_endpoint["model_name"],
        **({"transform_jobs": dg.MetadataValue.json(reported["transform_jobs"])} if "transform_jobs" in reported else {}),
        "recreated_endpoint": recreated,
        "dagster/column_schema": table_schema(schema, SCORE_COLUMN_DESCRIPTIONS),
    })
    yield from day_check_events(context, ALL_ROWS_SCORED, {
        day: (scored_rows[day] == feature_rows[day],
              {"feature_rows": feature_rows[day], "scored_rows": scored_rows[day],
               "difference": feature_rows[day] - scored_rows[day]})
        for day in days})
