"""Scoring: Spark sends every day's features through the live endpoint and writes the scored table."""


from typing import Any

import dagster as dg
from pydantic import Field

from smspark_assets.assets.features import credit_features
from smspark_assets.environment import region
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.catalog import CatalogResource, columns_of
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.tables import parquet_rows

SCORES_TABLE = "credit_scores"
ALL_ROWS_SCORED = "every_feature_row_scored"
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


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
    check_specs=[dg.AssetCheckSpec(ALL_ROWS_SCORED, asset="credit_scores",
                                   description="Every feature row of the day got exactly one prediction.")],
)
def credit_scores(context: dg.AssetExecutionContext, config: ScoringConfig, credit_default_endpoint: dict[str, Any],
                  spark: SparkJobRunner, sagemaker: SageMakerResource, catalog: CatalogResource,
                  store: ObjectStoreResource) -> dg.MaterializeResult:
    """Every application of the day with the model's `prediction` (probability of default), scored by
    Spark executors through the live endpoint in requests of at most 5 MiB; Parquet partitioned by `dt`,
    registered as the catalog table `smspark.credit_scores` (Athena on AWS, DuckDB locally)."""
    if not 0 < config.max_payload_mb <= 5.0:
        raise dg.Failure(f"max_payload_mb={config.max_payload_mb} is not allowed: SageMaker takes requests "
                         "of more than 0 and at most 5 MiB")
    paths = layout()
    days = list(context.partition_keys)
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
    })
    reported = dict(invocation.get_materialize_result().metadata or {})
    first = next((o for o in store.list_objects(f"{paths.scores}/dt={days[0]}") if o.uri.endswith(".parquet")), None)
    if first is None:
        raise dg.Failure(f"the scoring job wrote nothing under {paths.scores}/dt={days[0]}")
    schema = store.parquet_dataset(first.uri).schema
    catalog.register_table(SCORES_TABLE, paths.scores, columns_of(schema, exclude=("dt",)), [("dt", "string")], days)
    feature_rows = {day: parquet_rows(store, f"{paths.features}/dt={day}") for day in days}
    scored_rows = dict(_plain(reported.get("rows_scored_by_dt")) or {})
    unscored = {day: n - int(scored_rows.get(day, 0)) for day, n in feature_rows.items()
                if n != int(scored_rows.get(day, 0))}
    return dg.MaterializeResult(
        metadata={**reported, "table": f"{catalog.database}.{SCORES_TABLE}",
                  "endpoint_name": credit_default_endpoint["endpoint_name"],
                  "model_name": credit_default_endpoint["model_name"]},
        check_results=[dg.AssetCheckResult(
            check_name=ALL_ROWS_SCORED, passed=not unscored,
            metadata={"feature_rows": sum(feature_rows.values()), "scored_rows": sum(map(int, scored_rows.values())),
                      "days_with_a_difference": dg.MetadataValue.json(unscored)})],
    )


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)
