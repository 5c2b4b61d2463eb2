"""Spark job: raw credit-application CSVs -> model features (Parquet, partitioned by ``dt``).

Params (Pipes extra ``params``): ``raw_prefix`` (``s3://b/raw/credit_applications``), ``partitions``
(list of ``YYYY-MM-DD``), ``output_prefix`` (``s3://b/features/credit_applications``), optional
``quarantine_prefix`` (default: ``raw_prefix`` with ``/raw/`` replaced by ``/quarantine/``).

Steps, per ``dt`` partition:

1. **Read** with an explicit schema in PERMISSIVE mode; a row that does not parse (a non-numeric
   number, the wrong number of fields) keeps its text in ``_corrupt_record``. Rows whose id or label
   is empty are unusable as well. Both kinds are counted per ``dt`` and written, with the reason, as
   JSON lines to ``<quarantine_prefix>/dt=.../``; they never reach the features.
2. **Clean**: values outside :data:`CLIP_RANGES` (typing errors such as age 999) are clipped.
3. **Impute**: numeric nulls get the median of their ``dt`` partition (so a partition's features do
   not depend on which other partitions ran with it), falling back to :data:`FALLBACK_MEDIANS` when a
   partition has no value at all; ``<col>_missing`` (0/1) flags the columns of :data:`MISSING_INDICATORS`.
4. **Encode** categoricals one-hot over the fixed :data:`VOCABULARY` plus an ``other`` bucket (unknown
   and empty values), so the feature columns are the same for every partition.
5. **Split** ``train`` / ``validation`` / ``test`` (70/15/15) by ``pmod(xxhash64(application_id), 100)``:
   Spark's xxhash64 (seed 42) is fixed across runs, machines and Spark versions.

The output holds ``application_id, application_date, split, defaulted_12m``, the features in
:data:`FEATURE_COLUMNS` order, and ``dt``; only the given partitions are overwritten. The feature
list is also written to ``<output_prefix>/_feature_columns.json`` for the channel and scoring jobs.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smspark_assets.spark_jobs import storage
from smspark_assets.spark_jobs.session import apply_runtime_conf

ID_COLUMN = "application_id"
LABEL = "defaulted_12m"
CORRUPT = "_corrupt_record"
FEATURE_LIST_FILE = "_feature_columns.json"

RAW_SCHEMA = T.StructType(
    [
        T.StructField("application_id", T.StringType()),
        T.StructField("application_date", T.StringType()),
        T.StructField("age", T.IntegerType()),
        T.StructField("annual_income", T.DoubleType()),
        T.StructField("employment_years", T.IntegerType()),
        T.StructField("home_ownership", T.StringType()),
        T.StructField("purpose", T.StringType()),
        T.StructField("state", T.StringType()),
        T.StructField("loan_amount", T.DoubleType()),
        T.StructField("loan_term_months", T.IntegerType()),
        T.StructField("interest_rate", T.DoubleType()),
        T.StructField("credit_score", T.IntegerType()),
        T.StructField("debt_to_income", T.DoubleType()),
        T.StructField("revolving_utilization", T.DoubleType()),
        T.StructField("num_open_accounts", T.IntegerType()),
        T.StructField("num_delinquencies", T.IntegerType()),
        T.StructField("months_since_last_delinquency", T.IntegerType()),
        T.StructField("num_credit_inquiries_6m", T.IntegerType()),
        T.StructField("defaulted_12m", T.IntegerType()),
        T.StructField(CORRUPT, T.StringType()),
    ]
)

# Plausible bounds; anything outside is a data-entry error and is clipped to the bound.
CLIP_RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 100),
    "annual_income": (0, 10_000_000),
    "employment_years": (0, 60),
    "loan_amount": (0, 1_000_000),
    "loan_term_months": (1, 480),
    "interest_rate": (0, 100),
    "credit_score": (300, 850),
    "debt_to_income": (0, 100),
    "revolving_utilization": (0, 2),
    "num_open_accounts": (0, 200),
    "num_delinquencies": (0, 100),
    "months_since_last_delinquency": (0, 1200),
    "num_credit_inquiries_6m": (0, 100),
}
NUMERIC_COLUMNS: tuple[str, ...] = tuple(CLIP_RANGES)
# Used only when a whole partition has no value for a column (typical values of the demo data).
FALLBACK_MEDIANS: dict[str, float] = {
    "age": 41, "annual_income": 65000, "employment_years": 4, "loan_amount": 12000, "loan_term_months": 36,
    "interest_rate": 12.4, "credit_score": 690, "debt_to_income": 17, "revolving_utilization": 0.47,
    "num_open_accounts": 9, "num_delinquencies": 0, "months_since_last_delinquency": 60,
    "num_credit_inquiries_6m": 1,
}
MISSING_INDICATORS: tuple[str, ...] = (
    "annual_income",
    "employment_years",
    "credit_score",
    "debt_to_income",
    "revolving_utilization",
    "months_since_last_delinquency",
)
# Fixed vocabularies (values as normalized: upper-case codes, lower-case purposes); the rest -> "other".
VOCABULARY: dict[str, tuple[str, ...]] = {
    "home_ownership": ("RENT", "MORTGAGE", "OWN"),
    "purpose": (
        "debt_consolidation", "credit_card", "home_improvement", "major_purchase", "car",
        "medical", "small_business", "moving", "vacation",
    ),
    "state": ("CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI"),
}
SPLIT_BUCKETS = {"train": 70, "validation": 85}  # cumulative upper bounds of pmod(hash, 100)


def _one_hot_name(column: str, value: str) -> str:
    return f"{column}__{value.lower()}"


def feature_columns() -> list[str]:
    """The model's feature columns, in the order the channels and the endpoint use them."""
    cols = list(NUMERIC_COLUMNS) + ["loan_to_income"]
    cols += [f"{c}_missing" for c in MISSING_INDICATORS]
    for column, values in VOCABULARY.items():
        cols += [_one_hot_name(column, v) for v in values] + [f"{column}__other"]
    return cols


FEATURE_COLUMNS: list[str] = feature_columns()


def split_column(id_col: str = ID_COLUMN) -> Column:
    """``train``/``validation``/``test`` from the id's xxhash64 (70/15/15), stable across runs."""
    bucket = F.expr(f"pmod(xxhash64(`{id_col}`), 100)")
    return (
        F.when(bucket < SPLIT_BUCKETS["train"], "train")
        .when(bucket < SPLIT_BUCKETS["validation"], "validation")
        .otherwise("test")
    )


def read_raw(spark: SparkSession, raw_prefix: str, partitions: list[str]) -> DataFrame:
    """The raw rows of ``partitions`` with ``dt``; unparseable rows keep their text in ``_corrupt_record``."""
    storage.require_partitions(spark, raw_prefix, partitions, "prepare_features")
    frames = []
    for dt in partitions:
        df = (
            spark.read.schema(RAW_SCHEMA)
            .option("header", "true")
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            # Checks the header's names against the schema, so a reordered file fails loudly.
            .option("enforceSchema", "false")
            .option("multiLine", "false")
            .csv(storage.partition_location(raw_prefix, dt))
            .withColumn("dt", F.lit(dt))
        )
        frames.append(df)
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out


class RawHeaderError(ValueError):
    """A raw file's header names other columns (or another order) than :data:`RAW_SCHEMA`."""


def _collect_checking_header(df: DataFrame) -> list[Any]:
    """``df.collect()``, turning Spark's buried header-mismatch failure into a clear error."""
    try:
        return df.collect()
    except Exception as exc:
        text = str(exc)
        if "CSV header does not conform to the schema" not in text:
            raise
        header = re.search(r"Header: ([^\n]*)", text)
        path = re.search(r"reading file ([^\s]+?)\.?\s", text)
        expected = [f.name for f in RAW_SCHEMA.fields if f.name != CORRUPT]
        raise RawHeaderError(
            f"raw CSV header does not match the expected columns"
            f"{' in ' + path.group(1) if path else ''}: found [{header.group(1).strip() if header else '?'}], "
            f"expected [{', '.join(expected)}] in this order"
        ) from None


def _reject_reason() -> Column:
    return (
        F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_csv"))
        .when(F.col(ID_COLUMN).isNull() | (F.trim(F.col(ID_COLUMN)) == ""), F.lit("missing_id"))
        .when(F.col(LABEL).isNull(), F.lit("missing_label"))
        .when(~F.col(LABEL).isin(0, 1), F.lit("invalid_label"))
    )


def _clip(column: str) -> Column:
    lo, hi = CLIP_RANGES[column]
    c = F.col(column).cast("double")
    return F.when(c.isNull(), None).otherwise(F.least(F.greatest(c, F.lit(float(lo))), F.lit(float(hi))))


def _clean(valid: DataFrame) -> DataFrame:
    """Typed, trimmed, normalized and clipped columns (nulls kept)."""
    return valid.select(
        F.trim(F.col(ID_COLUMN)).alias(ID_COLUMN),
        F.to_date(F.col("application_date")).alias("application_date"),
        F.col(LABEL).cast("int").alias(LABEL),
        F.upper(F.trim(F.col("home_ownership"))).alias("home_ownership"),
        F.lower(F.trim(F.col("purpose"))).alias("purpose"),
        F.upper(F.trim(F.col("state"))).alias("state"),
        *[_clip(c).alias(c) for c in NUMERIC_COLUMNS],
        F.col("dt"),
    )


def partition_medians(valid: DataFrame) -> dict[str, dict[str, float | None]]:
    """Exact medians of the clipped numeric columns per ``dt`` (one small aggregation, collected)."""
    rows = _clean(valid).groupBy("dt").agg(
        *[F.expr(f"percentile(`{c}`, 0.5)").alias(c) for c in NUMERIC_COLUMNS]
    ).collect()
    return {r["dt"]: {c: (None if r[c] is None else float(r[c])) for c in NUMERIC_COLUMNS} for r in rows}


def build_features(valid: DataFrame, medians: dict[str, dict[str, float | None]]) -> DataFrame:
    """Features from parsed, valid rows and their partitions' ``medians``. Pure DataFrame logic, no I/O."""
    clipped = _clean(valid)

    def median_of(c: str) -> Column:
        # The few partitions of a run become a literal map dt -> median: no join, no second pass.
        pairs = [x for d, m in sorted(medians.items()) if m.get(c) is not None for x in (F.lit(d), F.lit(m[c]))]
        return F.create_map(*pairs)[F.col("dt")] if pairs else F.lit(None).cast("double")

    imputed = [
        F.coalesce(F.col(c), median_of(c), F.lit(float(FALLBACK_MEDIANS[c]))).alias(c)
        for c in NUMERIC_COLUMNS
    ]
    indicators = [F.col(c).isNull().cast("int").alias(f"{c}_missing") for c in MISSING_INDICATORS]
    one_hots = []
    for column, values in VOCABULARY.items():
        for v in values:
            one_hots.append(F.when(F.col(column) == F.lit(v), 1).otherwise(0).alias(_one_hot_name(column, v)))
        known = F.col(column).isin(*values)
        # NULL (missing) and unknown categories share the "other" bucket.
        one_hots.append(F.when(known, 0).otherwise(1).alias(f"{column}__other"))
    staged = clipped.select(
        ID_COLUMN, "application_date", LABEL, "dt", *imputed, *indicators, *one_hots,
    )
    staged = staged.withColumn(
        "loan_to_income", F.col("loan_amount") / F.greatest(F.col("annual_income"), F.lit(1000.0))
    )
    features = staged.select(
        ID_COLUMN,
        "application_date",
        split_column().alias("split"),
        LABEL,
        *FEATURE_COLUMNS,
        "dt",
    )
    return features


def default_quarantine_prefix(raw_prefix: str) -> str:
    if "/raw/" in raw_prefix:
        return raw_prefix.replace("/raw/", "/quarantine/", 1)
    return raw_prefix.rstrip("/") + "_quarantine"


def prepare_features(
    spark: SparkSession,
    raw_prefix: str,
    partitions: list[str],
    output_prefix: str,
    quarantine_prefix: str | None = None,
) -> dict[str, Any]:
    """Run the job for ``partitions``; return its metadata (plain types)."""
    parts = storage.validate_partitions(partitions)
    apply_runtime_conf(spark)
    quarantine_prefix = quarantine_prefix or default_quarantine_prefix(raw_prefix)
    t0 = time.perf_counter()

    raw = read_raw(spark, raw_prefix, parts).withColumn("_reject_reason", _reject_reason())
    # Parsed once, used for the counts, the quarantine and the features.
    raw = raw.persist()
    try:
        # One pass gives both the rows read and the rejections per dt.
        rows_read = {dt: 0 for dt in parts}
        rejected_by_dt: dict[str, dict[str, int]] = {dt: {} for dt in parts}
        for r in _collect_checking_header(raw.groupBy("dt", "_reject_reason").count()):
            rows_read[r["dt"]] += int(r["count"])
            if r["_reject_reason"] is not None:
                rejected_by_dt[r["dt"]][r["_reject_reason"]] = int(r["count"])
        rejected = raw.where(F.col("_reject_reason").isNotNull())
        quarantine = rejected.select(
            F.col("_reject_reason").alias("reason"),
            F.col(ID_COLUMN),
            # Rows that parsed but lack an id/label are kept as their fields re-joined.
            F.coalesce(
                F.col(CORRUPT),
                F.concat_ws(",", *[F.col(f.name).cast("string") for f in RAW_SCHEMA.fields if f.name != CORRUPT]),
            ).alias("raw_record"),
            F.col("dt"),
        )
        storage.overwrite_partitions(quarantine, quarantine_prefix, parts, "json", sort_by=[ID_COLUMN])

        valid = raw.where(F.col("_reject_reason").isNull())
        medians_by_dt = partition_medians(valid)
        features = build_features(valid, medians_by_dt)
        storage.overwrite_partitions(features, output_prefix, parts, "parquet", sort_by=[ID_COLUMN])
    finally:
        raw.unpersist()

    # Counted from what was written, so the metadata describes the files, not the plan.
    present = [dt for dt in parts if storage.exists(spark, storage.partition_location(output_prefix, dt))]
    split_by_dt: dict[str, dict[str, int]] = {dt: {"train": 0, "validation": 0, "test": 0} for dt in parts}
    if present:
        out = spark.read.option("basePath", storage.location(output_prefix)).parquet(
            *[storage.partition_location(output_prefix, dt) for dt in present]
        )
        for r in out.groupBy("dt", "split").count().collect():
            split_by_dt[r["dt"]][r["split"]] = int(r["count"])
    rows_written = {dt: sum(split_by_dt[dt].values()) for dt in parts}
    split_totals = {s: sum(d[s] for d in split_by_dt.values()) for s in ("train", "validation", "test")}

    storage.write_json(
        spark,
        f"{storage.location(output_prefix)}/{FEATURE_LIST_FILE}",
        {"feature_columns": FEATURE_COLUMNS, "label": LABEL, "id_column": ID_COLUMN},
    )
    malformed = {dt: rejected_by_dt[dt].get("malformed_csv", 0) for dt in parts}
    return {
        "partitions": parts,
        "rows_read": sum(rows_read.values()),
        "rows_read_by_dt": rows_read,
        "malformed_rows": sum(malformed.values()),
        "malformed_by_dt": malformed,
        "rejected_by_dt": rejected_by_dt,
        "rows_written": sum(rows_written.values()),
        "rows_written_by_dt": rows_written,
        "split_counts": split_totals,
        "split_counts_by_dt": split_by_dt,
        "feature_columns": FEATURE_COLUMNS,
        "num_features": len(FEATURE_COLUMNS),
        "medians_by_dt": medians_by_dt,
        "output_prefix": output_prefix,
        "quarantine_prefix": quarantine_prefix,
        "feature_list_uri": f"{output_prefix.rstrip('/')}/{FEATURE_LIST_FILE}",
        "duration_s": round(time.perf_counter() - t0, 3),
    }


def main() -> None:
    from smspark_assets.spark_jobs.pipes_runner import run_under_pipes

    run_under_pipes(prepare_features, "smspark-prepare-features")


if __name__ == "__main__":
    main()
