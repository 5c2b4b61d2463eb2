"""Daily credit scores from batch transform jobs, for an endpoint in mode ``none`` (no live endpoint).

The Spark scoring job (:mod:`smspark_assets.spark_jobs.score_endpoint`) needs an endpoint to call. With
endpoint mode ``none`` the same SageMaker model scores each day through a transform job instead
(:func:`~smspark_assets.sagemaker.transform.run_transform_job`, on AWS as on the local stack), and this
module writes the SAME table: Parquet under ``<scores>/dt=<day>/`` with the id, the passthrough columns,
``prediction``, ``model_name``, ``model_version`` and ``scored_at``, with the types Spark writes.

Per day:

1. The day's features are read as Arrow record batches and cut into input objects of at most
   ``rows_per_object`` rows, written as header-less CSV in the endpoint's ``feature_columns`` order, under
   a folder named by a fingerprint of the features. Memory holds one object's features at a time; only
   the id and passthrough columns (and later the predictions) are kept for the whole day.
2. One transform job (``SplitType`` Line, ``BatchStrategy`` MultiRecord, ``AssembleWith`` Line) scores
   the folder. Its name is derived from the model and the fingerprint, so a re-run adopts the completed
   job instead of paying for it again.
3. Every ``<object>.out`` is read back and checked to hold exactly one prediction per input row (a
   mismatch fails naming the object) before anything is written; then joined to its rows by position.
4. The day's new Parquet files are written first and the previous ones deleted after, so a failure
   leaves the day's previous scores in place (unlike the Spark job, days of a range are replaced one by
   one: every replaced day is complete and correct).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smspark_assets.layout import layout
from smspark_assets.sagemaker.deserializers import ResponseMismatch, XGBoostCSVDeserializer
from smspark_assets.sagemaker.serializers import CSVSerializer
from smspark_assets.sagemaker.transform import TransformRequest, output_uri_for, run_transform_job

ID_COLUMN = "application_id"
# The Spark scoring job's passthrough columns and score columns (kept equal by a test), so the table's
# schema does not depend on how a day was scored.
DEFAULT_PASSTHROUGH: tuple[str, ...] = ("application_date", "split", "defaulted_12m")
SCORE_COLUMNS: tuple[str, ...] = ("prediction", "model_name", "model_version", "scored_at")
FEATURE_LIST_FILE = "_feature_columns.json"
ROWS_PER_OBJECT = 100_000
MAX_PAYLOAD_MB = 6  # what a real-time endpoint takes; requests of the job are cut at this size
JOB_PREFIX = "credit-scores"


def work_prefix() -> str:
    """Where the transform jobs' CSV inputs (``input/``) and ``.out`` answers (``output/``) live: next to
    the model's training output, which SageMaker's execution role already reads and writes, and outside
    the scores table's location, whose every object the catalog reads as Parquet."""
    return f"{layout().model_output}/transform"


def score_schema(kept: pa.Schema) -> pa.Schema:
    """The scored table's columns as Spark writes them: the kept feature columns (nullable, as Spark reads
    files), then the score columns with Spark's nullability; ``scored_at`` is Spark's default Parquet
    timestamp (INT96), which pyarrow reads as ``timestamp[ns]``."""
    return pa.schema([pa.field(f.name, f.type, nullable=True) for f in kept] + [
        pa.field("prediction", pa.float64(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=True),
        pa.field("scored_at", pa.timestamp("ns"), nullable=False),
    ])


@dataclass(frozen=True)
class DayScores:
    """What scoring one day did (for the asset's per-day metadata)."""

    day: str
    rows: int
    input_objects: int
    job_name: str | None  # None for a day without feature rows: no job runs
    adopted: bool


def _chunks(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one fewer) from ``batches``, whatever their sizes, so the
    object boundaries depend only on the row order."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def feature_columns_of(store: Any, features_prefix: str, given: Sequence[str] | None) -> list[str]:
    """The model's feature columns: the endpoint handle's, else the list the feature job wrote."""
    if given:
        return list(given)
    uri = f"{features_prefix.rstrip('/')}/{FEATURE_LIST_FILE}"
    if not store.exists(uri):
        raise dg.Failure(f"the endpoint handle names no feature_columns and there is no feature list at {uri}; "
                         "materialize credit_features first")
    listed = json.loads(store.read_bytes(uri))
    cols = listed.get("feature_columns") if isinstance(listed, dict) else listed
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        raise dg.Failure(f"{uri} does not hold a list of feature column names: {listed!r}")
    return cols


def predictions_of(body: bytes, n_rows: int) -> np.ndarray:
    """One probability per row from a ``.out`` object of ``n_rows`` rows.

    With ``AssembleWith`` Line each request's answer ends a line. The XGBoost containers answer a request
    either one line per record (the local stack, newer containers) or all values comma-joined on one line
    (older ones), so the ``.out`` holds one line per row or one line per request; both are read.
    Anything else raises :class:`ResponseMismatch` with the counts.
    """
    try:
        values = XGBoostCSVDeserializer().deserialize(body, n_rows)["prediction"]
    except ResponseMismatch:
        # One line per request: every value separated by a comma or a newline, read by Arrow in one call.
        flat = bytes(body).strip().replace(b",", b"\n")
        values = (pacsv.read_csv(pa.py_buffer(flat), read_options=pacsv.ReadOptions(column_names=["v"]),
                                 convert_options=pacsv.ConvertOptions(column_types={"v": pa.float64()}))
                  .column("v").to_numpy() if flat else np.empty(0))
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise ResponseMismatch(f"{values.size} values of shape {values.shape} for {n_rows} rows; "
                               "expected one prediction per row")
    return np.asarray(values, dtype=np.float64)


def _write_parquet(store: Any, uri: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    # INT96 like Spark's default, so the catalog sees one timestamp type however a day was scored.
    pq.write_table(table, sink, compression="snappy", use_deprecated_int96_timestamps=True)
    store.write_bytes(uri, sink.getvalue().to_pybytes())


def score_day(sm: Any, store: Any, day: str, features_prefix: str, scores_prefix: str, feature_columns: list[str],
              model_name: str, model_version: str | None, scored_at: dt.datetime, instance_type: str,
              poll_seconds: float, rows_per_object: int = ROWS_PER_OBJECT,
              log: Callable[[str], None] = print) -> DayScores:
    """Score one day's features with a transform job of ``model_name``; replace ``<scores>/dt=<day>/``."""
    day_uri = f"{features_prefix.rstrip('/')}/dt={day}"
    if not any(o.uri.endswith(".parquet") for o in store.list_objects(f"{day_uri}/")):
        raise dg.Failure(f"no feature Parquet under {day_uri}; materialize credit_features for {day} first")
    dataset = store.parquet_dataset(day_uri)
    available = dataset.schema.names
    missing = [c for c in [ID_COLUMN, *feature_columns] if c not in available]
    if missing:
        raise dg.Failure(f"dt={day}: column(s) {missing} are not in the features at {day_uri}; "
                         f"available: {available}")
    kept = [ID_COLUMN, *[c for c in DEFAULT_PASSTHROUGH if c in available]]
    schema = score_schema(pa.schema([dataset.schema.field(c) for c in kept]))
    fingerprint = hashlib.sha256(json.dumps([store.fingerprint(day_uri), feature_columns, rows_per_object])
                                 .encode()).hexdigest()[:16]
    input_prefix = f"{work_prefix()}/input/dt={day}/{fingerprint}/"
    output_prefix = f"{work_prefix()}/output/dt={day}/{fingerprint}"
    token = uuid.uuid4().hex[:12]
    out_dir = f"{scores_prefix.rstrip('/')}/dt={day}"
    previous = [o.uri for o in store.list_objects(f"{out_dir}/")]  # the slash: never a neighbour folder

    # 1. Input objects; only the kept columns (id and passthrough) stay in memory for the join.
    serializer = CSVSerializer()
    objects: list[tuple[str, pa.Table]] = []
    columns = kept + [c for c in feature_columns if c not in kept]
    for i, chunk in enumerate(_chunks(dataset.to_batches(columns=columns), rows_per_object)):
        uri = f"{input_prefix}part-{i:05d}.csv"
        if not store.exists(uri):  # same fingerprint, same content: a re-run keeps what it wrote
            store.write_bytes(uri, serializer.serialize_table(chunk, feature_columns).body())
        objects.append((uri, chunk.select(kept)))
    rows = sum(t.num_rows for _, t in objects)

    written: list[str] = []
    job_name, adopted = None, False
    if rows == 0:  # like the Spark job: one 0-row file with the table's schema, no job
        uri = f"{out_dir}/part-00000-{token}.parquet"
        _write_parquet(store, uri, schema.empty_table())
        written.append(uri)
    else:
        # 2. One transform job per day, adopted when it already completed.
        request = TransformRequest(
            model_name=model_name, input_uri=input_prefix, output_uri=output_prefix, content_type="text/csv",
            input_fingerprint=fingerprint, accept="text/csv", split_type="Line", batch_strategy="MultiRecord",
            assemble_with="Line", max_payload_mb=MAX_PAYLOAD_MB, instance_type=instance_type,
            tags={"project": "smspark_assets", "asset": "credit_scores"})
        result = run_transform_job(sm, request, f"{JOB_PREFIX}-{day}", poll_seconds, log)
        job_name, adopted = result.job_name, result.adopted
        # 3. Every answer is read and counted before anything is written (8 bytes a row stay in memory).
        predictions: list[np.ndarray] = []
        for uri, table in objects:
            out_uri = output_uri_for(uri, input_prefix, output_prefix)
            if not store.exists(out_uri):
                raise dg.Failure(f"transform job {job_name} wrote no {out_uri} for its input {uri}")
            try:
                predictions.append(predictions_of(store.read_bytes(out_uri), table.num_rows))
            except (ResponseMismatch, pa.ArrowInvalid) as exc:
                raise dg.Failure(f"{out_uri} does not hold one prediction per row of {uri} "
                                 f"({table.num_rows} rows): {exc}") from None
        # Then joined by position, one output file per input object; a failed write removes its siblings.
        try:
            for i, ((_, table), values) in enumerate(zip(objects, predictions)):
                n = table.num_rows
                scored = pa.Table.from_arrays(
                    [*table.columns, pa.array(values),
                     pa.repeat(pa.scalar(model_name, pa.string()), n),
                     pa.repeat(pa.scalar(model_version, pa.string()), n),
                     pa.repeat(pa.scalar(scored_at.replace(tzinfo=None), pa.timestamp("ns")), n)],
                    schema=schema)
                scored = scored.take(pc.sort_indices(scored, sort_keys=[(ID_COLUMN, "ascending")]))
                uri_out = f"{out_dir}/part-{i:05d}-{token}.parquet"
                _write_parquet(store, uri_out, scored)
                written.append(uri_out)
        except BaseException:
            for uri in written:
                store.delete(uri)
            raise
    # 4. Only now the previous files go: the day never lacks a complete set of scores.
    for uri in previous:
        if uri not in written:
            store.delete(uri)
    return DayScores(day, rows, len(objects), job_name, adopted)


def score_days_with_transform_jobs(sm: Any, store: Any, days: Sequence[str], handle: dict[str, Any],
                                   features_prefix: str, scores_prefix: str, instance_type: str,
                                   poll_seconds: float, rows_per_object: int = ROWS_PER_OBJECT,
                                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score ``days`` with transform jobs of the handle's model; the same report as the Spark job's
    (``rows_scored_by_dt``, ``warnings``, ...) plus the transform job of every day."""
    if not handle.get("model_name"):
        raise dg.Failure(f"the endpoint handle names no model_name to run a transform job of: {handle!r}")
    if rows_per_object < 1:
        raise dg.Failure(f"rows_per_object must be at least 1, got {rows_per_object}")
    version = handle.get("model_version")
    version_text = None if version is None else str(version)
    cols = feature_columns_of(store, features_prefix, handle.get("feature_columns"))
    scored_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    started = time.perf_counter()
    results = [score_day(sm, store, day, features_prefix, scores_prefix, cols, handle["model_name"], version_text,
                         scored_at, instance_type, poll_seconds, rows_per_object, log) for day in days]
    elapsed = time.perf_counter() - started
    rows_by_dt = {r.day: r.rows for r in results}
    rows = sum(rows_by_dt.values())
    empty = [r.day for r in results if r.rows == 0]
    return {
        "partitions": list(days), "rows_scored": rows, "rows_scored_by_dt": rows_by_dt, "empty_days": empty,
        "warnings": [f"dt={d}: no feature rows; 0 rows scored" for d in empty],
        "requests": sum(r.input_objects for r in results),  # input objects: SageMaker cuts them into requests
        "payload_bytes": None, "duration_s": round(elapsed, 3),
        "rows_per_s": round(rows / elapsed, 1) if elapsed > 0 else None,
        "max_payload_bytes": MAX_PAYLOAD_MB * 1024 * 1024, "feature_columns": cols,
        "model_name": handle["model_name"], "model_version": version_text, "scored_at": scored_at.isoformat(),
        "transform_jobs": {r.day: r.job_name for r in results},
        "adopted_days": [r.day for r in results if r.adopted],
    }
