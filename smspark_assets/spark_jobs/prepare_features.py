"""Spark job: raw credit-application CSVs -> model features (Parquet, partitioned by ``dt``).

Params (Pipes extra ``params``): ``raw_prefix`` (``s3://b/raw/credit_applications``), ``partitions``
(list of ``YYYY-MM-DD``), ``output_prefix`` (``s3://b/features/credit_applications``), optional
``quarantine_prefix`` (default: ``raw_prefix`` with ``/raw/`` replaced by ``/quarantine/``), ``run_id``
(names the staging folder; default a random one).

Steps, per ``dt`` partition:

1. **Read** the day's ``*.csv`` / ``*.csv.gz`` files (names starting with ``_`` or ``.``, such as
   ``_SUCCESS``, are markers and skipped; any other file, e.g. a stray ``manifest.json``, is ignored
   and named in the metadata's ``warnings``). A day with no data rows (no CSV file, a 0-byte or a
   header-only file) flows through as an empty day: a 0-row features file and a warning. Rows are
   parsed with an explicit schema in PERMISSIVE mode; a row that does not parse (a non-numeric number,
   the wrong number of fields) keeps its text in ``_corrupt_record``.
2. **Quarantine** unusable rows with a ``reason`` (see :data:`REJECT_REASONS`), written as JSON lines
   to ``<quarantine_prefix>/dt=.../`` and counted per ``dt`` and reason; they never reach the features.
   Non-finite numbers (``NaN``, ``Infinity``, and literals beyond a double's range such as ``1e400`` or a
   5000-digit income, which parse as infinity) are quarantined rather than treated as missing: they are
   not an empty cell but a broken value, and clipping them would turn them into the range's maximum.
   Bytes that are not UTF-8 are decoded by Spark as U+FFFD, which would let distinct ids collide, so
   a row holding U+FFFD anywhere is quarantined (a literal U+FFFD in the source is refused as well).
   Within a day, only the first row of an id is kept, by file name then position in the file
   (``_metadata.file_path``, ``file_block_start``, then the row's order inside its split); later
   rows are quarantined as ``duplicate_id`` and counted in ``duplicate_ids_by_dt``.
3. **Clean**: finite values outside :data:`CLIP_RANGES` (typing errors such as age 999) are clipped.
4. **Impute**: numeric nulls get the median of their ``dt`` partition (so a partition's features do
   not depend on which other partitions ran with it), falling back to :data:`FALLBACK_MEDIANS` when a
   partition has no value at all; ``<col>_missing`` (0/1) flags the columns of :data:`MISSING_INDICATORS`.
5. **Encode** categoricals one-hot over the fixed :data:`VOCABULARY` plus an ``other`` bucket (unknown
   and empty values), so the feature columns are the same for every partition.
6. **Split** ``train`` / ``validation`` / ``test`` (70/15/15) by ``pmod(xxhash64(application_id), 100)``:
   Spark's xxhash64 (seed 42) is fixed across runs, machines and Spark versions.

The output holds ``application_id, application_date, split, defaulted_12m``, the features in
:data:`FEATURE_COLUMNS` order, and ``dt``; only the given partitions are replaced, and only after the
whole run's features and quarantine were written to a staging prefix
(:func:`~smspark_assets.spark_jobs.storage.stage_partitions`): a failed re-run leaves the previous
files of every day as they were. The feature list is also written to
``<output_prefix>/_feature_columns.json`` for the channel and scoring jobs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

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

# Plausible bounds; a finite value outside is a data-entry error and is clipped to the bound
# (non-finite values never get here: they are quarantined).
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


# File names read as a day's CSV data; anything else that is not hidden is ignored with a warning.
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")
# Order of a row inside its day, for keeping the first of duplicate ids (see the module docstring).
ORDER_COLUMNS: tuple[str, ...] = ("_src_file", "_src_block", "_src_row")


def day_files(spark: SparkSession, raw_prefix: str, dt: str) -> tuple[list[str], list[str]]:
    """(locations of the day's data files, names of the ignored files), both sorted by name."""
    loc = storage.partition_location(raw_prefix, dt)
    data, ignored = [], []
    for name in storage.list_names(spark, loc):
        if name.startswith(("_", ".")):  # _SUCCESS, checksums: markers that Spark skips as well
            continue
        (data if name.lower().endswith(DATA_SUFFIXES) else ignored).append(name)
    return [f"{loc}/{n}" for n in data], ignored


def read_raw(
    spark: SparkSession, raw_prefix: str, partitions: list[str], ignored: dict[str, list[str]] | None = None
) -> DataFrame:
    """The raw rows of ``partitions`` with ``dt`` and their order columns (:data:`ORDER_COLUMNS`).

    Unparseable rows keep their text in ``_corrupt_record``; the names of files that are not CSV data
    are added to ``ignored`` (per ``dt``) when it is given.
    """
    storage.require_partitions(spark, raw_prefix, partitions, "prepare_features")
    frames = []
    for dt in partitions:
        files, skipped = day_files(spark, raw_prefix, dt)
        if ignored is not None:
            ignored[dt] = skipped
        if files:
            df = (
                spark.read.schema(RAW_SCHEMA)
                .option("header", "true")
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT)
                # Checks the header's names against the schema, so a reordered file fails loudly.
                .option("enforceSchema", "false")
                .option("multiLine", "false")
                .csv(files)
                .select(
                    "*",
                    F.col("_metadata.file_path").alias("_src_file"),
                    F.col("_metadata.file_block_start").alias("_src_block"),
                    # Increases with the line inside one split (a split is read by one task, in order).
                    F.monotonically_increasing_id().alias("_src_row"),
                )
            )
        else:  # no data file at all: an empty day, not an error
            df = spark.createDataFrame([], RAW_SCHEMA).select(
                "*",
                F.lit(None).cast("string").alias("_src_file"),
                F.lit(None).cast("long").alias("_src_block"),
                F.lit(None).cast("long").alias("_src_row"),
            )
        frames.append(df.withColumn("dt", F.lit(dt)))
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


# Every reason a raw row can be quarantined for, in the order they are tested (the first one wins).
REJECT_REASONS: tuple[str, ...] = (
    "invalid_utf8", "malformed_csv", "missing_id", "missing_label", "invalid_label",
    "invalid_date", "non_finite_number", "duplicate_id",
)
REPLACEMENT_CHAR = "\ufffd"  # what Spark's UTF-8 decoder puts in place of bytes that are not UTF-8
_TEXT_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in RAW_SCHEMA.fields if isinstance(f.dataType, T.StringType)
)  # includes _corrupt_record: a number with undecodable bytes does not parse and lands there
_DOUBLE_COLUMNS: tuple[str, ...] = tuple(
    c for c in NUMERIC_COLUMNS if isinstance(RAW_SCHEMA[c].dataType, T.DoubleType)
)


def _non_finite(column: str) -> Column:
    c = F.col(column)
    return F.isnan(c) | (F.abs(c) == F.lit(float("inf")))


def _columns_where(test: Callable[[str], Column], columns: tuple[str, ...]) -> Column:
    """The names of ``columns`` for which ``test(name)`` holds, comma-separated (NULL when none)."""
    names = F.concat_ws(",", *[F.when(test(c), F.lit(c)) for c in columns])
    return F.when(names != "", names)


def _reject_reason() -> Column:
    """The first of :data:`REJECT_REASONS` (except ``duplicate_id``) that applies to a raw row, else NULL."""
    undecodable = F.lit(False)
    for c in _TEXT_COLUMNS:
        undecodable = undecodable | F.coalesce(F.col(c).contains(REPLACEMENT_CHAR), F.lit(False))
    non_finite = F.lit(False)
    for c in _DOUBLE_COLUMNS:
        non_finite = non_finite | F.coalesce(_non_finite(c), F.lit(False))
    date_text = F.trim(F.col("application_date"))
    # try_cast: ANSI mode (Spark 4's default) would fail the whole job on one bad date. The SQL form also
    # runs on Spark 3.5 (EMR 7), whose Column has no try_cast.
    parsed = F.expr("try_cast(trim(application_date) AS DATE)")
    bad_date = date_text.isNotNull() & (date_text != "") & parsed.isNull()
    return (
        F.when(undecodable, F.lit("invalid_utf8"))
        .when(F.col(CORRUPT).isNotNull(), F.lit("malformed_csv"))
        .when(F.col(ID_COLUMN).isNull() | (F.trim(F.col(ID_COLUMN)) == ""), F.lit("missing_id"))
        .when(F.col(LABEL).isNull(), F.lit("missing_label"))
        .when(~F.col(LABEL).isin(0, 1), F.lit("invalid_label"))
        .when(bad_date, F.lit("invalid_date"))
        .when(non_finite, F.lit("non_finite_number"))
    )


def _reject_detail(reason: Column) -> Column:
    """Which columns a rejected row failed on, for the reasons that concern columns."""
    return (
        F.when(reason == "invalid_utf8",
               _columns_where(lambda c: F.coalesce(F.col(c).contains(REPLACEMENT_CHAR), F.lit(False)), _TEXT_COLUMNS))
        .when(reason == "invalid_date", F.lit("application_date"))
        .when(reason == "non_finite_number",
              _columns_where(lambda c: F.coalesce(_non_finite(c), F.lit(False)), _DOUBLE_COLUMNS))
    )


def with_reject_reason(raw: DataFrame) -> DataFrame:
    """``raw`` with ``_reject_reason`` (NULL for usable rows), including ``duplicate_id``.

    Among the rows of a ``(dt, id)`` that are otherwise usable, the first in file order is kept and
    the others become ``duplicate_id``; a rejected row never displaces a usable one.
    """
    reason = _reject_reason()
    # One shuffle by day serves the window (hash by dt satisfies its clustering on (dt, id)) and keeps
    # each day in one task, so each day is written as one file sorted by id, the same on every run.
    # The cost: a day is processed by one task (parallelism across days, not within a day).
    raw = raw.repartition("dt")
    first = Window.partitionBy("dt", F.trim(F.col(ID_COLUMN))).orderBy(
        F.col("_base_reason").isNotNull(), *[F.col(c).asc_nulls_last() for c in ORDER_COLUMNS]
    )
    return (
        raw.withColumn("_base_reason", reason)
        .withColumn(
            "_reject_reason",
            F.when(
                F.col("_base_reason").isNull() & F.col(ID_COLUMN).isNotNull() & (F.row_number().over(first) > 1),
                F.lit("duplicate_id"),
            ).otherwise(F.col("_base_reason")),
        )
        .drop("_base_reason")
    )


def _clip(column: str) -> Column:
    lo, hi = CLIP_RANGES[column]
    c = F.col(column).cast("double")
    return F.when(c.isNull(), None).otherwise(F.least(F.greatest(c, F.lit(float(lo))), F.lit(float(hi))))


def _clean(valid: DataFrame) -> DataFrame:
    """Typed, trimmed, normalized and clipped columns (nulls kept)."""
    return valid.select(
        F.trim(F.col(ID_COLUMN)).alias(ID_COLUMN),
        # Dates that do not parse were quarantined; try_cast keeps ANSI mode from failing on any left.
        F.expr("try_cast(trim(application_date) AS DATE)").alias("application_date"),
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


def _warnings(parts: list[str], rows_read: dict[str, int], rows_written: dict[str, int],
              ignored: dict[str, list[str]], duplicates: dict[str, int]) -> list[str]:
    """Human-readable warnings for the metadata: empty days, ignored files, dropped duplicate ids."""
    out = []
    for dt in parts:
        if ignored.get(dt):
            out.append(f"dt={dt}: ignored {len(ignored[dt])} file(s) that are not CSV data: {', '.join(ignored[dt])}")
        if rows_read[dt] == 0:
            out.append(f"dt={dt}: no data rows (no CSV file, or only empty/header-only files); 0 features written")
        elif rows_written[dt] == 0:
            out.append(f"dt={dt}: all {rows_read[dt]} rows were quarantined; 0 features written")
        if duplicates.get(dt):
            out.append(f"dt={dt}: dropped {duplicates[dt]} row(s) repeating an earlier application_id (kept the first)")
    return out


def prepare_features(
    spark: SparkSession,
    raw_prefix: str,
    partitions: list[str],
    output_prefix: str,
    quarantine_prefix: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run the job for ``partitions``; return its metadata (plain types)."""
    parts = storage.validate_partitions(partitions)
    apply_runtime_conf(spark)
    quarantine_prefix = quarantine_prefix or default_quarantine_prefix(raw_prefix)
    t0 = time.perf_counter()

    ignored: dict[str, list[str]] = {}
    raw = with_reject_reason(read_raw(spark, raw_prefix, parts, ignored))
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
            _reject_detail(F.col("_reject_reason")).alias("detail"),
            F.col(ID_COLUMN),
            # Rows that parsed but were refused are kept as their fields re-joined (a number beyond a
            # double's range shows as Infinity, undecodable bytes as U+FFFD).
            F.coalesce(
                F.col(CORRUPT),
                F.concat_ws(",", *[F.col(f.name).cast("string") for f in RAW_SCHEMA.fields if f.name != CORRUPT]),
            ).alias("raw_record"),
            F.col("dt"),
        )
        # Both outputs are staged first and published together only once both writes succeeded.
        staged_quarantine = storage.stage_partitions(
            quarantine, quarantine_prefix, parts, "json", sort_by=[ID_COLUMN, "raw_record"],
            run_id=run_id, empty_days_as_files=False,
        )
        try:
            valid = raw.where(F.col("_reject_reason").isNull())
            medians_by_dt = partition_medians(valid)
            features = build_features(valid, medians_by_dt)
            staged_features = storage.stage_partitions(
                features, output_prefix, parts, "parquet", sort_by=[ID_COLUMN], run_id=run_id,
            )
        except BaseException:
            staged_quarantine.discard()
            raise
        staged_features.commit()
        staged_quarantine.commit()
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
    duplicates = {dt: rejected_by_dt[dt].get("duplicate_id", 0) for dt in parts}
    by_reason: dict[str, int] = {}
    for counts in rejected_by_dt.values():
        for reason, n in counts.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "partitions": parts,
        "rows_read": sum(rows_read.values()),
        "rows_read_by_dt": rows_read,
        "malformed_rows": sum(malformed.values()),
        "malformed_by_dt": malformed,
        "rejected_by_dt": rejected_by_dt,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rows_rejected": sum(by_reason.values()),
        "duplicate_ids_dropped": sum(duplicates.values()),
        "duplicate_ids_by_dt": duplicates,
        "empty_days": [dt for dt in parts if rows_written[dt] == 0],
        "ignored_files_by_dt": {dt: names for dt, names in ignored.items() if names},
        "warnings": _warnings(parts, rows_read, rows_written, ignored, duplicates),
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
