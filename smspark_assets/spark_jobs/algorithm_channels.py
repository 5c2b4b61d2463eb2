"""Spark job: the recordIO-protobuf training channels of the demo model of every built-in algorithm.

One Spark application writes them all (a JVM start costs more than writing a few thousand records),
each with the codec's Spark channel writer
(:func:`smspark_assets.sagemaker.spark_channels.write_recordio_channel`)::

    <output_prefix>/<model>/<channel>/part-*.pbr

=====================  ======================================================  ==============================
model                  features -> label                                        channels
=====================  ======================================================  ==============================
``kmeans``             standardized numeric credit features (no label)          train, test
``linear_binary``      every credit feature -> ``defaulted_12m``                train, validation, test
``linear_regressor``   every credit feature but the rate -> ``interest_rate``   train, validation, test
``linear_multiclass``  every credit feature but the rate -> loan grade (A-D)     train, validation, test
``pca``                standardized numeric credit features (no label)          train
``fm``                 one-hot ``[user | item]`` (sparse) -> ``rating``          train, test
``lda``                a document's word counts (sparse, no label)              train, test
=====================  ======================================================  ==============================

The credit rows keep the feature job's ``split`` (``train`` / ``validation`` / ``test`` by id hash);
at most ``max_rows`` of them are used (a deterministic sample by id hash), so the demo models stay
quick to train however many days are materialized. Standardization uses the train split's means and
standard deviations, which are reported so that a caller can standardize new rows the same way.

Determinism: every channel is repartitioned by a hash of the row id and sorted by it, so the same
input writes the same bytes (the training job names are derived from a hash of them).

The job also reports what the quality gates compare against, measured on the data itself: the
one-cluster mean squared distance of the K-means test rows, the total variance PCA can capture,
the label variance of the regressor's test rows and the class shares of the multiclass test rows.
"""

from __future__ import annotations

import math
import time
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from smspark_assets.sagemaker.spark_channels import write_recordio_channel
from smspark_assets.spark_jobs import storage
from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS, ID_COLUMN, LABEL, NUMERIC_COLUMNS
from smspark_assets.spark_jobs.session import apply_runtime_conf
from smspark_assets.spark_jobs.write_channels import check_columns, read_features

# Segments and components are found on the applicant's numbers; one-hot columns would dominate distances.
STANDARDIZED_COLUMNS: list[str] = [*NUMERIC_COLUMNS, "loan_to_income"]
RATE = "interest_rate"
# Loan grades by interest rate (upper bounds, percent), as a lender's price grid would band them.
GRADE_BOUNDS: tuple[tuple[str, float], ...] = (("A", 9.0), ("B", 12.0), ("C", 15.0), ("D", math.inf))
DEFAULT_MAX_ROWS = 20_000
ROWS_PER_PARTITION = 200_000
MODELS = ("kmeans", "linear_binary", "linear_regressor", "linear_multiclass", "pca", "fm", "lda")


def grade_column(rate: Column) -> Column:
    """The loan grade index (0 = A ... 3 = D) of an interest rate."""
    expr = F.lit(len(GRADE_BOUNDS) - 1)
    for index in range(len(GRADE_BOUNDS) - 2, -1, -1):
        expr = F.when(rate < F.lit(GRADE_BOUNDS[index][1]), F.lit(index)).otherwise(expr)
    return expr.cast("int")


def sample_credit(df: DataFrame, max_rows: int) -> tuple[DataFrame, int]:
    """At most about ``max_rows`` rows, chosen by id hash (the same rows on every run)."""
    total = df.count()
    if total <= max_rows:
        return df, total
    keep = int(1_000_000 * max_rows / total)
    sampled = df.where(F.expr(f"pmod(xxhash64(`{ID_COLUMN}`, 7), 1000000)") < keep)
    return sampled, sampled.count()


def split_statistics(df: DataFrame, columns: list[str]) -> dict[str, Any]:
    """Per split, in one Spark job: rows, moments of ``columns``, default rate, rate variance, grade counts.

    Everything the standardization and the gate baselines need; one aggregation instead of one job each.
    """
    grade = grade_column(F.col(RATE))
    aggs = [F.count(F.lit(1)).alias("rows"), F.avg(F.col(LABEL).cast("double")).alias("positive_rate"),
            F.var_pop(F.col(RATE).cast("double")).alias("rate_variance")]
    aggs += [F.sum(F.when(grade == k, 1).otherwise(0)).alias(f"grade{k}") for k in range(len(GRADE_BOUNDS))]
    for c in columns:
        x = F.col(c).cast("double")
        aggs += [F.avg(x).alias(f"mean_{c}"), F.stddev_samp(x).alias(f"std_{c}")]
    rows = {r["split"]: r.asDict() for r in df.groupBy("split").agg(*aggs).collect()}
    for row in rows.values():  # variances follow from the standard deviations (fewer aggregates to run)
        n = int(row["rows"])
        for c in columns:
            var_samp = float(row[f"std_{c}"] or 0.0) ** 2
            row[f"varsamp_{c}"] = var_samp
            row[f"varpop_{c}"] = var_samp * (n - 1) / n if n else 0.0
    for split in ("train", "validation", "test"):
        if split not in rows:
            raise ValueError(f"algorithm_channels: no {split!r} rows among the credit features; "
                             "materialize more days")
    return rows


def standardize(df: DataFrame, columns: list[str], train: dict[str, Any]
                ) -> tuple[DataFrame, dict[str, float], dict[str, float]]:
    """``df`` with ``std_features`` (array<double>): ``columns`` standardized by the train split's moments."""
    means = {c: float(train[f"mean_{c}"] or 0.0) for c in columns}
    # A constant column (possible in a tiny sample) is centred, not divided by zero.
    stds = {c: float(train[f"std_{c}"]) if train[f"std_{c}"] else 1.0 for c in columns}
    std_cols = [((F.col(c).cast("double") - F.lit(means[c])) / F.lit(stds[c])) for c in columns]
    return df.withColumn("std_features", F.array(*std_cols)), means, stds


def dense_features(columns: list[str]) -> Column:
    return F.array(*[F.col(c).cast("double") for c in columns])


def sparse_vector(size: int, indices: Column, values: Column) -> Column:
    """A Spark ML sparse vector as the struct it travels as in Arrow (the channel writer reads it as CSR)."""
    return F.struct(F.lit(0).cast("byte").alias("type"), F.lit(int(size)).alias("size"),
                    indices.alias("indices"), values.alias("values"))


def _ordered(df: DataFrame, id_column: str, partitions: int) -> DataFrame:
    """Deterministic partitioning and order (by id hash, then id), so the written bytes are reproducible."""
    if partitions == 1:  # small channels: one file, no shuffle
        return df.coalesce(1).sortWithinPartitions(id_column)
    return df.repartition(partitions, F.xxhash64(F.col(id_column))).sortWithinPartitions(id_column)


def _partitions(rows: int) -> int:
    return max(1, math.ceil(rows / ROWS_PER_PARTITION))


def _write(df: DataFrame, uri: str, id_column: str, label: str | None, partitions: int) -> dict[str, Any]:
    cols = [id_column, "features"] + ([label] if label else [])
    out = _ordered(df.select(*cols), id_column, partitions)
    result = write_recordio_channel(out, uri, features_col="features", label_col=label)
    if result.records == 0:
        raise ValueError(f"algorithm_channels: the channel {uri} would be empty; materialize more data")
    return {"uri": result.uri, "records": result.records, "bytes": result.bytes, "files": len(result.files)}


def _write_splits(df: DataFrame, prefix: str, splits: tuple[str, ...], id_column: str,
                  label: str | None, partitions: int) -> dict[str, dict[str, Any]]:
    return {split: _write(df.where(F.col("split") == split), f"{prefix}/{split}", id_column, label,
                          partitions)
            for split in splits}


def _credit_models(credit: DataFrame, out: str, partitions: int) -> dict[str, dict[str, Any]]:
    stats = split_statistics(credit, STANDARDIZED_COLUMNS)
    std, means, stds = standardize(credit, STANDARDIZED_COLUMNS, stats["train"])
    models: dict[str, dict[str, Any]] = {}
    dim = len(STANDARDIZED_COLUMNS)
    no_rate = [c for c in FEATURE_COLUMNS if c != RATE]
    test = stats["test"]

    km = std.select(ID_COLUMN, "split", F.col("std_features").alias("features"))
    models["kmeans"] = {
        "channels": _write_splits(km, f"{out}/kmeans", ("train", "test"), ID_COLUMN, None, partitions),
        "feature_dim": dim, "feature_columns": STANDARDIZED_COLUMNS,
        # The one-cluster mean squared distance of the test rows (their total variance): what any
        # clustering must improve on.
        "test_one_cluster_msd": sum(float(test[f"varpop_{c}"] or 0.0) / stds[c] ** 2
                                    for c in STANDARDIZED_COLUMNS),
    }
    models["pca"] = {
        "channels": _write_splits(km, f"{out}/pca", ("train",), ID_COLUMN, None, partitions),
        "feature_dim": dim, "feature_columns": STANDARDIZED_COLUMNS,
        # The total variance of the train rows bounds what components can capture.
        "train_total_variance": sum(float(stats["train"][f"varsamp_{c}"] or 0.0) / stds[c] ** 2
                                    for c in STANDARDIZED_COLUMNS),
    }

    splits3 = ("train", "validation", "test")
    binary = credit.select(ID_COLUMN, "split", dense_features(FEATURE_COLUMNS).alias("features"),
                           F.col(LABEL).cast("double").alias("label"))
    models["linear_binary"] = {
        "channels": _write_splits(binary, f"{out}/linear_binary", splits3, ID_COLUMN, "label", partitions),
        "feature_dim": len(FEATURE_COLUMNS), "feature_columns": FEATURE_COLUMNS, "label": LABEL,
        "test_positive_rate": float(test["positive_rate"] or 0.0),
    }
    reg = credit.select(ID_COLUMN, "split", dense_features(no_rate).alias("features"),
                        F.col(RATE).cast("double").alias("label"))
    models["linear_regressor"] = {
        "channels": _write_splits(reg, f"{out}/linear_regressor", splits3, ID_COLUMN, "label", partitions),
        "feature_dim": len(no_rate), "feature_columns": no_rate, "label": RATE,
        "test_label_variance": float(test["rate_variance"] or 0.0),
    }
    multi = credit.select(ID_COLUMN, "split", dense_features(no_rate).alias("features"),
                          grade_column(F.col(RATE)).cast("double").alias("label"))
    shares = [int(test[f"grade{k}"] or 0) / max(int(test["rows"]), 1) for k in range(len(GRADE_BOUNDS))]
    models["linear_multiclass"] = {
        "channels": _write_splits(multi, f"{out}/linear_multiclass", splits3, ID_COLUMN, "label", partitions),
        "feature_dim": len(no_rate), "feature_columns": no_rate, "label": "loan_grade",
        "classes": [g for g, _ in GRADE_BOUNDS], "grade_upper_bounds": [b for _, b in GRADE_BOUNDS[:-1]],
        "test_class_shares": {g: round(share, 4) for (g, _), share in zip(GRADE_BOUNDS, shares)},
        "test_majority_share": max(shares),
    }
    for name in ("kmeans", "pca"):
        models[name]["standardization"] = {"means": means, "stds": stds}
    return models


def _interactions_model(spark: SparkSession, uri: str, out: str) -> dict[str, Any]:
    df = spark.read.parquet(storage.location(uri))
    check_columns(df, ["user", "item", "rating"], "algorithm_channels (interactions)")
    bounds = df.agg(F.max("user").alias("u"), F.max("item").alias("i"), F.min("user").alias("mu"),
                    F.min("item").alias("mi")).collect()[0]
    if bounds["mu"] is None or min(bounds["mu"], bounds["mi"]) < 0:
        raise ValueError("algorithm_channels: interactions need non-negative 0-based user and item ids")
    users, items = int(bounds["u"]) + 1, int(bounds["i"]) + 1
    feats = sparse_vector(users + items, F.array(F.col("user"), F.col("item") + F.lit(users)),
                          F.array(F.lit(1.0), F.lit(1.0)))
    fm = df.select("interaction_id", "split", feats.alias("features"),
                   F.col("rating").cast("double").alias("label"))
    return {"channels": _write_splits(fm, f"{out}/fm", ("train", "test"), "interaction_id", "label", 1),
            "feature_dim": users + items, "users": users, "items": items, "label": "rating"}


def _documents_model(spark: SparkSession, uri: str, out: str, vocabulary: int) -> dict[str, Any]:
    df = spark.read.parquet(storage.location(uri))
    for c in ("doc_id", "split", "word_ids", "counts"):
        if c not in df.columns:
            raise ValueError(f"algorithm_channels (documents): no {c!r} column; available: {df.columns}")
    top = df.agg(F.max(F.array_max("word_ids"))).collect()[0][0]
    if top is not None and top >= vocabulary:
        raise ValueError(f"algorithm_channels: a word id {top} is outside the vocabulary of {vocabulary} "
                         "words")
    counts = sparse_vector(vocabulary, F.col("word_ids"), F.col("counts").cast("array<double>"))
    docs = df.select("doc_id", "split", counts.alias("features"))
    return {"channels": _write_splits(docs, f"{out}/lda", ("train", "test"), "doc_id", None, 1),
            "feature_dim": int(vocabulary)}


def algorithm_channels(
    spark: SparkSession,
    features_prefix: str,
    partitions: list[str],
    output_prefix: str,
    interactions_uri: str,
    documents_uri: str,
    vocabulary: int,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, Any]:
    """Write every demo model's channels; return, per model, its channel URIs, sizes and gate baselines."""
    parts = storage.validate_partitions(partitions)
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 100:
        raise ValueError(f"max_rows must be an integer of at least 100, got {max_rows!r}")
    if not isinstance(vocabulary, int) or isinstance(vocabulary, bool) or vocabulary < 1:
        raise ValueError(f"vocabulary must be a positive integer, got {vocabulary!r}")
    apply_runtime_conf(spark)
    t0 = time.perf_counter()
    out = output_prefix.rstrip("/")
    credit = read_features(spark, features_prefix, parts, "algorithm_channels")
    check_columns(credit, [LABEL, *FEATURE_COLUMNS], "algorithm_channels")
    credit, credit_rows = sample_credit(credit, max_rows)
    credit = credit.persist()
    seconds: dict[str, float] = {}
    try:
        models = _credit_models(credit, out, _partitions(credit_rows))
    finally:
        credit.unpersist()
    seconds["credit"] = round(time.perf_counter() - t0, 3)
    models["fm"] = _interactions_model(spark, interactions_uri, out)
    seconds["interactions"] = round(time.perf_counter() - t0 - seconds["credit"], 3)
    models["lda"] = _documents_model(spark, documents_uri, out, vocabulary)
    seconds["documents"] = round(time.perf_counter() - t0 - seconds["credit"] - seconds["interactions"], 3)
    return {
        "partitions": parts,
        "credit_rows_used": credit_rows,
        "models": models,
        "records_by_model": {name: {ch: m["channels"][ch]["records"] for ch in m["channels"]}
                             for name, m in models.items()},
        "content_type": "application/x-recordio-protobuf",
        "seconds_by_source": seconds,
        "duration_s": round(time.perf_counter() - t0, 3),
    }


def main() -> None:
    from smspark_assets.spark_jobs.pipes_runner import run_under_pipes

    run_under_pipes(algorithm_channels, "smspark-algorithm-channels")


if __name__ == "__main__":
    main()
