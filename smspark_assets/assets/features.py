"""Spark-prepared features: typed, cleaned, imputed and encoded applications with a stable split."""

import dagster as dg

from smspark_assets.assets.raw import raw_credit_applications
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.spark import SparkJobRunner


@dg.asset(
    deps=[raw_credit_applications],
    partitions_def=daily_partitions,
    # One Spark application for a whole backfill range rather than one JVM per day.
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="features",
    kinds={"spark", "parquet", "s3"},
    metadata={"uri": dg.MetadataValue.path(layout().features)},
)
def credit_features(context: dg.AssetExecutionContext, spark: SparkJobRunner) -> dg.MaterializeResult:
    """Typed, cleaned and imputed credit applications with one-hot categoricals and a deterministic
    train/validation/test split by application id hash, as Parquet partitioned by `dt`. Malformed raw
    rows are counted and kept in quarantine, never dropped silently."""
    paths = layout()
    invocation = spark.run(context, "prepare_features", {
        "raw_prefix": paths.raw,
        "partitions": list(context.partition_keys),
        "output_prefix": paths.features,
        "quarantine_prefix": paths.quarantine,
    })
    return invocation.get_materialize_result()
