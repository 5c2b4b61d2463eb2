"""Spark job: features -> the ``train`` and ``validation`` channels of the SageMaker XGBoost container.

Params: ``features_prefix`` (``s3://b/features/credit_applications``), ``partitions`` (every ``dt`` to
use), ``output_prefix`` (``s3://b/channels/credit_default/<version>``), optional ``label``
(``defaulted_12m``), ``feature_columns`` (ordered; default: ``<features_prefix>/_feature_columns.json``,
which the feature job writes), ``rows_per_file`` (default 250,000).

Format (the container's ``text/csv``): label first, then the features in the given order; no header,
no index, numbers only. Output::

    <output_prefix>/train/part-00000.csv ...      (rows with split = train)
    <output_prefix>/validation/part-00000.csv ... (rows with split = validation)

Determinism: a row's file is ``pmod(xxhash64(id), n_files)`` and rows are sorted by ``(dt, id)`` inside
each file, and the files get fixed names, so the same input gives the same bytes and names on every
run (the training job's name is derived from a hash of its inputs, so this matters).
"""

from __future__ import annotations

import math
import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smspark_assets.spark_jobs import storage
from smspark_assets.spark_jobs.prepare_features import FEATURE_LIST_FILE, ID_COLUMN, LABEL
from smspark_assets.spark_jobs.session import apply_runtime_conf

CHANNELS: tuple[str, ...] = ("train", "validation")
DEFAULT_ROWS_PER_FILE = 250_000
_FILE_COL = "_file"


def read_feature_list(spark: SparkSession, features_prefix: str) -> list[str]:
    """The ordered feature columns recorded next to the features (a JSON list or ``{"feature_columns": [...]}``)."""
    loc = f"{storage.location(features_prefix)}/{FEATURE_LIST_FILE}"
    try:
        obj = storage.read_json(spark, loc)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no feature list at {features_prefix.rstrip('/')}/{FEATURE_LIST_FILE}; run prepare_features first "
            "or pass feature_columns explicitly"
        ) from None
    cols = obj.get("feature_columns") if isinstance(obj, dict) else obj
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        raise ValueError(f"{loc} does not hold a list of feature column names: {obj!r}")
    return cols


def resolve_feature_columns(spark: SparkSession, features_prefix: str, feature_columns: list[str] | None) -> list[str]:
    if feature_columns is None:
        return read_feature_list(spark, features_prefix)
    if not isinstance(feature_columns, (list, tuple)) or not feature_columns:
        raise ValueError(f"feature_columns must be a non-empty list of column names, got {feature_columns!r}")
    dupes = sorted({c for c in feature_columns if list(feature_columns).count(c) > 1})
    if dupes:
        raise ValueError(f"feature_columns lists {dupes} more than once")
    return list(feature_columns)


def read_features(spark: SparkSession, features_prefix: str, partitions: list[str], what: str) -> DataFrame:
    """The feature rows of ``partitions`` (with ``dt`` as a string column)."""
    storage.require_partitions(spark, features_prefix, partitions, what)
    return spark.read.option("basePath", storage.location(features_prefix)).parquet(
        *[storage.partition_location(features_prefix, dt) for dt in partitions]
    )


def check_columns(df: DataFrame, required: list[str], what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} not in the input; available: {df.columns}")
    numeric = (T.NumericType, T.BooleanType)
    not_numeric = [f"{f.name} ({f.dataType.simpleString()})" for f in df.schema.fields
                   if f.name in required and not isinstance(f.dataType, numeric)]
    if not_numeric:
        raise ValueError(f"{what}: column(s) must be numeric: {not_numeric}")


def _write_channel(df: DataFrame, out_loc: str, id_column: str, rows_per_file: int) -> tuple[int, list[str]]:
    """Write ``df`` (label + features, plus ``dt`` and the id for ordering) as fixed-name CSV files."""
    spark = df.sparkSession
    rows = df.count()
    n_files = max(1, math.ceil(rows / rows_per_file))
    staging = f"{out_loc}/_staging"
    storage.delete(spark, out_loc)
    payload_cols = [c for c in df.columns if c not in ("dt", id_column)]
    (
        df.withColumn(_FILE_COL, F.expr(f"pmod(xxhash64(`{id_column}`), {n_files})"))
        .repartition(n_files, _FILE_COL)
        .sortWithinPartitions(_FILE_COL, "dt", id_column)
        .select(*payload_cols, _FILE_COL)
        .write.mode("overwrite")
        .partitionBy(_FILE_COL)
        .option("header", "false")
        .option("emptyValue", "")
        .csv(staging)
    )
    names: list[str] = []
    for k in range(n_files):
        sub = f"{staging}/{_FILE_COL}={k}"
        parts = [n for n in storage.list_names(spark, sub) if n.startswith("part-")]
        if not parts:
            continue
        if len(parts) != 1:  # repartition by _file puts each file's rows in one task
            raise RuntimeError(f"expected one CSV part under {sub}, found {parts}")
        name = f"part-{k:05d}.csv"
        storage.rename(spark, f"{sub}/{parts[0]}", f"{out_loc}/{name}")
        names.append(name)
    storage.delete(spark, staging)
    # The local filesystem leaves hidden .crc side files; a training container reads every file of a
    # channel, so only the CSV parts may remain.
    storage.remove_local_side_files(out_loc)
    return rows, names


def write_channels(
    spark: SparkSession,
    features_prefix: str,
    partitions: list[str],
    output_prefix: str,
    label: str = LABEL,
    feature_columns: list[str] | None = None,
    id_column: str = ID_COLUMN,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
) -> dict[str, Any]:
    """Write the ``train`` and ``validation`` channels; return their row counts, files and the feature list."""
    parts = storage.validate_partitions(partitions)
    if not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ValueError(f"rows_per_file must be a positive integer, got {rows_per_file!r}")
    apply_runtime_conf(spark)
    t0 = time.perf_counter()
    cols = resolve_feature_columns(spark, features_prefix, feature_columns)
    if label in cols:
        raise ValueError(f"the label {label!r} cannot also be a feature column")
    df = read_features(spark, features_prefix, parts, "write_channels")
    check_columns(df, [label, *cols], "write_channels")
    for c in ("split", id_column):
        if c not in df.columns:
            raise ValueError(f"write_channels: the features have no {c!r} column; available: {df.columns}")

    null_labels = df.where(F.col(label).isNull()).count()
    if null_labels:
        raise ValueError(f"write_channels: {null_labels} row(s) have an empty label {label!r}; the features must be labelled")

    # Integers stay integers ("1", not "1.0"); the rest are written as doubles.
    def as_number(c: str) -> Any:
        dtype = df.schema[c].dataType
        if isinstance(dtype, (T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.BooleanType)):
            return F.col(c).cast("int").alias(c)
        return F.col(c).cast("double").alias(c)

    out_loc = storage.location(output_prefix)
    counts: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    for channel in CHANNELS:
        subset = df.where(F.col("split") == channel).select(
            "dt", id_column, as_number(label), *[as_number(c) for c in cols]
        )
        rows, names = _write_channel(subset, f"{out_loc}/{channel}", id_column, rows_per_file)
        counts[channel] = rows
        files[channel] = [f"{output_prefix.rstrip('/')}/{channel}/{n}" for n in names]
        if rows == 0:
            raise ValueError(f"write_channels: the {channel!r} channel is empty for partitions {parts}")
    storage.delete(spark, f"{out_loc}/_SUCCESS")
    return {
        "partitions": parts,
        "rows_by_channel": counts,
        "files_by_channel": files,
        "channel_uris": {c: f"{output_prefix.rstrip('/')}/{c}/" for c in CHANNELS},
        "label": label,
        "feature_columns": cols,
        "num_features": len(cols),
        "content_type": "text/csv",
        "duration_s": round(time.perf_counter() - t0, 3),
    }


def main() -> None:
    from smspark_assets.spark_jobs.pipes_runner import run_under_pipes

    run_under_pipes(write_channels, "smspark-write-channels")


if __name__ == "__main__":
    main()
