"""Spark job: score feature rows through a live SageMaker endpoint, write the scores as Parquet by ``dt``.

Params: ``features_prefix``, ``partitions``, ``endpoint_name``, ``output_prefix``
(``s3://b/scores/credit_applications``); optional ``feature_columns`` (default: the JSON list next to
the features), ``endpoint_url`` (the local service; ``None`` on AWS), ``region``,
``max_payload_bytes`` (default and maximum 5 MiB), ``id_column`` (``application_id``), ``model_name``
(recorded in every row; default the endpoint name), ``model_version`` (the registry version the endpoint
serves, recorded in every row; null when not given), ``passthrough_columns`` (copied from the features;
default: whichever of ``application_date``, ``split``, ``defaulted_12m`` exist), ``max_concurrency``
(requests in flight per Spark task, default 4), ``rows_per_batch`` (Arrow batch size, default 10,000),
``run_id`` (names the staging folder; default a random one).

Executors call ``InvokeEndpoint`` (``text/csv`` in and out: XGBoost keeps CSV) from ``mapInArrow``
through :class:`~smspark_assets.spark_jobs.endpoint_client.EndpointScorer`, built on the shared
SageMaker-Spark layer of :mod:`smspark_assets.sagemaker`: rows are serialized vectorized by
``CSVSerializer.serialize_table``, packed into requests of at most ``max_payload_bytes`` by
``batching.plan_batches`` (a row too large alone is named by its id), and the answers are read by
``XGBoostCSVDeserializer``, which checks there is exactly one prediction per row before predictions are
matched to rows by position. Output columns: the id, the passthrough columns, ``prediction`` (double),
``model_name``, ``model_version``, ``scored_at`` (one UTC timestamp per run) and ``dt``; only the given partitions are
replaced, and only after every day was scored and written to a staging prefix
(:func:`~smspark_assets.spark_jobs.storage.stage_partitions`): a failed re-run (an endpoint error, a
count mismatch) leaves the previous scores of every day as they were. A day with no feature rows is
scored as 0 rows: its partition holds one 0-row Parquet file with the scores' schema, and the
metadata names it in ``empty_days`` and ``warnings``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from smspark_assets.environment import region as default_region
from smspark_assets.spark_jobs import progress, storage
from smspark_assets.spark_jobs.endpoint_client import MAX_PAYLOAD_BYTES, EndpointScorer, check_max_payload_bytes
from smspark_assets.spark_jobs.prepare_features import ID_COLUMN
from smspark_assets.spark_jobs.session import apply_runtime_conf
from smspark_assets.spark_jobs.write_channels import check_columns, read_features, resolve_feature_columns

DEFAULT_PASSTHROUGH: tuple[str, ...] = ("application_date", "split", "defaulted_12m")
# model_version: the registry version the endpoint serves (null when the endpoint handle names none).
SCORE_COLUMNS: tuple[str, ...] = ("prediction", "model_name", "model_version", "scored_at")


def score_endpoint(
    spark: SparkSession,
    features_prefix: str,
    partitions: list[str],
    endpoint_name: str,
    output_prefix: str,
    feature_columns: list[str] | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    id_column: str = ID_COLUMN,
    model_name: str | None = None,
    model_version: str | int | None = None,
    passthrough_columns: list[str] | None = None,
    max_concurrency: int = 4,
    rows_per_batch: int = 10_000,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Score ``partitions`` through ``endpoint_name``; return the metadata (rows per dt, requests, rows/s)."""
    parts = storage.validate_partitions(partitions)
    max_payload_bytes = check_max_payload_bytes(max_payload_bytes)
    if not isinstance(endpoint_name, str) or not endpoint_name:
        raise ValueError(f"endpoint_name must be a non-empty string, got {endpoint_name!r}")
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
    if not isinstance(rows_per_batch, int) or rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be a positive integer, got {rows_per_batch!r}")
    apply_runtime_conf(spark)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(rows_per_batch))
    region = region or default_region()
    model_name = model_name or endpoint_name
    version_text = None if model_version is None else str(model_version)

    cols = resolve_feature_columns(spark, features_prefix, feature_columns)
    df = read_features(spark, features_prefix, parts, "score_endpoint")
    check_columns(df, cols, "score_endpoint")
    if id_column not in df.columns:
        raise ValueError(f"score_endpoint: id column {id_column!r} not in the features; available: {df.columns}")
    if passthrough_columns is None:
        passthrough = [c for c in DEFAULT_PASSTHROUGH if c in df.columns and c != id_column]
    else:
        missing = [c for c in passthrough_columns if c not in df.columns]
        if missing:
            raise ValueError(f"score_endpoint: passthrough column(s) {missing} not in the features; available: {df.columns}")
        passthrough = [c for c in passthrough_columns if c not in (id_column, "dt")]
    clash = [c for c in passthrough if c in SCORE_COLUMNS]
    if clash:
        raise ValueError(f"score_endpoint: passthrough column(s) {clash} would be overwritten by the score columns")

    keep = [id_column, *passthrough, "dt"]
    source = df.select(*keep, *[c for c in cols if c not in keep])
    out_schema = T.StructType(
        [df.schema[c] for c in keep]
        + [
            T.StructField("prediction", T.DoubleType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("model_version", T.StringType(), True),
            T.StructField("scored_at", T.TimestampType(), False),
        ]
    )
    scored_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    requests_acc = spark.sparkContext.accumulator(0)
    bytes_acc = spark.sparkContext.accumulator(0)
    ep_url = endpoint_url

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = EndpointScorer(
            endpoint_name, cols, endpoint_url=ep_url, region=region,
            max_payload_bytes=max_payload_bytes, max_concurrency=max_concurrency,
        )
        stream = ((pa.Table.from_batches([b]), b.column(id_column)) for b in batches if b.num_rows)
        for table, result in scorer.score_stream(stream):
            requests_acc.add(result.requests)
            bytes_acc.add(result.payload_bytes)
            n = table.num_rows
            yield pa.RecordBatch.from_arrays(
                [table.column(c).combine_chunks() for c in keep]
                + [
                    pa.array(result.predictions, pa.float64()),
                    pa.repeat(pa.scalar(model_name, pa.string()), n),
                    pa.repeat(pa.scalar(version_text, pa.string()), n),
                    pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), n),
                ],
                names=[*keep, *SCORE_COLUMNS],
            )

    # The scoring stage has a task per input split, a few for a day: its progress lines also count the
    # rows the endpoint has answered so far (a Parquet count reads the files' footers only).
    if progress.active():
        progress.count_rows(f"rows scored through {endpoint_name}", "MapInArrow", total=source.count())
    t0 = time.perf_counter()
    scored = source.mapInArrow(score_partition, out_schema)
    storage.replace_partitions(scored, output_prefix, parts, "parquet", sort_by=[id_column], run_id=run_id)
    elapsed = time.perf_counter() - t0

    present = [d for d in parts if storage.exists(spark, storage.partition_location(output_prefix, d))]
    got: dict[str, int] = {}
    if present:
        written = spark.read.option("basePath", storage.location(output_prefix)).parquet(
            *[storage.partition_location(output_prefix, d) for d in present]
        )
        got = {r["dt"]: int(r["count"]) for r in written.groupBy("dt").count().collect()}
    rows_by_dt = {d: got.get(d, 0) for d in parts}
    rows = sum(rows_by_dt.values())
    empty_days = [d for d in parts if rows_by_dt[d] == 0]
    return {
        "partitions": parts,
        "rows_scored": rows,
        "rows_scored_by_dt": rows_by_dt,
        "empty_days": empty_days,
        "warnings": [f"dt={d}: no feature rows; 0 rows scored" for d in empty_days],
        "requests": int(requests_acc.value),
        "payload_bytes": int(bytes_acc.value),
        "rows_per_s": round(rows / elapsed, 1) if elapsed > 0 else None,
        "duration_s": round(elapsed, 3),
        "endpoint_name": endpoint_name,
        "model_name": model_name,
        "model_version": version_text,
        "max_payload_bytes": max_payload_bytes,
        "feature_columns": cols,
        "output_prefix": output_prefix,
        "scored_at": scored_at.isoformat(),
    }


def main() -> None:
    from smspark_assets.spark_jobs.pipes_runner import run_under_pipes

    run_under_pipes(score_endpoint, "smspark-score-endpoint")


if __name__ == "__main__":
    main()
