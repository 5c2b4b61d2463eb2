"""Calling a SageMaker endpoint from Spark executors: CSV requests of at most 5 MiB, predictions by position.

Kept in one module so that it can be swapped for the shared serializers/deserializers/batching of
``smspark_assets.sagemaker`` later; the scoring job only uses :class:`EndpointScorer`.

* :func:`serialize_csv` turns an Arrow table of numeric features into ``text/csv`` rows (no header,
  no quoting) with one vectorized writer, and finds the byte offset where each row ends.
  Floating-point features are sent as float32: the built-in algorithms (XGBoost included) compute in
  float32, and a float32's shortest decimal form parses back to the same float32, so predictions are
  exactly those of the double values while the payload is about half as long.
* :func:`plan_requests` packs consecutive rows into requests of at most ``max_payload_bytes`` by a
  binary search over those offsets (a loop per request, not per row). A row that alone exceeds the
  limit raises :class:`PayloadTooLargeError` naming its id and size.
* :func:`parse_csv_predictions` reads the response (one comma-joined line, or one value per line, as
  the XGBoost containers answer; a JSON ``{"predictions": [...]}`` body is accepted too), and
  :class:`PredictionCountError` is raised when the number of predictions differs from the rows sent:
  results are matched to rows by position, so a mismatch must never pass silently.
"""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024  # SageMaker's limit for a real-time InvokeEndpoint request
CONTENT_TYPE = "text/csv"
ACCEPT = "text/csv"
_NEWLINE = ord("\n")


class PayloadTooLargeError(ValueError):
    """One row is larger than a whole request may be."""


class PredictionCountError(RuntimeError):
    """The endpoint answered a different number of predictions than rows were sent."""


def check_max_payload_bytes(max_payload_bytes: Any) -> int:
    if isinstance(max_payload_bytes, bool) or not isinstance(max_payload_bytes, (int, np.integer)):
        raise ValueError(f"max_payload_bytes must be an integer number of bytes, got {max_payload_bytes!r}")
    value = int(max_payload_bytes)
    if not 1 <= value <= MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"max_payload_bytes={value} is not allowed: it must be between 1 and {MAX_PAYLOAD_BYTES} "
            "(5 MiB, SageMaker's InvokeEndpoint limit)"
        )
    return value


def _as_wire_column(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    t = col.type
    if pa.types.is_floating(t):
        return pc.cast(col, pa.float32(), safe=False)
    if pa.types.is_boolean(t):
        return pc.cast(col, pa.int8())
    if pa.types.is_integer(t):
        return col
    raise TypeError(f"feature columns must be numeric to be sent as text/csv; got type {t}")


def serialize_csv(table: pa.Table, columns: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """``(body, row_ends)``: the rows of ``table[columns]`` as CSV and the end offset of every row.

    Empty cells stand for missing values (as the XGBoost container reads them).
    """
    wire = pa.table({c: _as_wire_column(table.column(c)) for c in columns})
    sink = io.BytesIO()
    pacsv.write_csv(wire, sink, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65536))
    body = sink.getvalue()
    # Numbers never contain a newline, so every newline ends exactly one row.
    row_ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == _NEWLINE) + 1
    if row_ends.size != table.num_rows:
        raise RuntimeError(f"CSV serialization produced {row_ends.size} lines for {table.num_rows} rows")
    return body, row_ends


def row_id_at(ids: Sequence[Any] | pa.Array | None, i: int) -> Any:
    """The id of row ``i`` for an error message (Arrow scalars turned into Python values)."""
    if ids is None:
        return f"#{i}"
    value = ids[i]
    return value.as_py() if isinstance(value, pa.Scalar) else value


def plan_requests(row_ends: np.ndarray, max_payload_bytes: int, ids: Sequence[Any] | None = None) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of consecutive rows whose bytes fit in ``max_payload_bytes`` each."""
    ranges: list[tuple[int, int]] = []
    n = int(row_ends.size)
    start, start_byte = 0, 0
    while start < n:
        stop = int(np.searchsorted(row_ends, start_byte + max_payload_bytes, side="right"))
        if stop <= start:
            size = int(row_ends[start] - start_byte)
            row_id = row_id_at(ids, start)
            raise PayloadTooLargeError(
                f"row {row_id!r} serializes to {size} bytes, more than max_payload_bytes={max_payload_bytes} "
                f"(a request may carry at most {MAX_PAYLOAD_BYTES} bytes); it cannot be sent to the endpoint"
            )
        ranges.append((start, stop))
        start_byte = int(row_ends[stop - 1])
        start = stop
    return ranges


def parse_csv_predictions(body: bytes | str) -> np.ndarray:
    """Predictions as float64 from a ``text/csv`` (or JSON ``predictions``) response body."""
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    text = text.strip()
    if not text:
        return np.empty(0, dtype=np.float64)
    if text[0] in "{[":
        obj = json.loads(text)
        preds = obj.get("predictions", obj) if isinstance(obj, dict) else obj
        values = [p.get("score", p.get("predicted_label")) if isinstance(p, dict) else p for p in preds]
        return np.asarray(values, dtype=np.float64)
    try:
        return np.array(text.replace("\n", ",").split(","), dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"the endpoint's text/csv response is not a list of numbers: {text[:200]!r}") from exc


def make_runtime_client(endpoint_url: str | None, region: str | None, timeout_s: float = 120.0) -> Any:
    """A boto3 ``sagemaker-runtime`` client; against a local endpoint, dummy credentials when none are set."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        retries={"max_attempts": 5, "mode": "standard"},
        read_timeout=timeout_s,
        connect_timeout=10,
        max_pool_connections=32,
    )
    session = boto3.session.Session(region_name=region)
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        if session.get_credentials() is None:
            # The local service does not check signatures, but botocore refuses to send unsigned requests.
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
    return session.client("sagemaker-runtime", **kwargs)


@dataclass
class ScoreResult:
    predictions: np.ndarray
    requests: int
    payload_bytes: int


class EndpointScorer:
    """Scores Arrow tables through ``InvokeEndpoint`` with up to ``max_concurrency`` requests in flight."""

    def __init__(
        self,
        endpoint_name: str,
        feature_columns: Sequence[str],
        endpoint_url: str | None = None,
        region: str | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_concurrency: int = 4,
        client: Any = None,
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name must be a non-empty string")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.endpoint_name = endpoint_name
        self.feature_columns = list(feature_columns)
        self.max_payload_bytes = check_max_payload_bytes(max_payload_bytes)
        self.max_concurrency = int(max_concurrency)
        self.client = client or make_runtime_client(endpoint_url, region)

    def _invoke(self, body: bytes, n_rows: int, first_id: Any) -> np.ndarray:
        response = self.client.invoke_endpoint(
            EndpointName=self.endpoint_name, Body=body, ContentType=CONTENT_TYPE, Accept=ACCEPT
        )
        preds = parse_csv_predictions(response["Body"].read())
        if preds.size != n_rows:
            raise PredictionCountError(
                f"endpoint {self.endpoint_name!r} returned {preds.size} predictions for {n_rows} rows "
                f"(request starting at row id {first_id!r}); refusing to match predictions to rows"
            )
        return preds

    def score(self, table: pa.Table, ids: Sequence[Any] | None = None) -> ScoreResult:
        """Predictions for every row of ``table``, in row order (its requests are sent one after another)."""
        if table.num_rows == 0:
            return ScoreResult(np.empty(0, dtype=np.float64), 0, 0)
        body, row_ends = serialize_csv(table, self.feature_columns)
        ranges = plan_requests(row_ends, self.max_payload_bytes, ids)
        row_starts = np.concatenate([[0], row_ends[:-1]])
        parts = [
            self._invoke(body[int(row_starts[a]) : int(row_ends[b - 1])], b - a, row_id_at(ids, a))
            for a, b in ranges
        ]
        return ScoreResult(np.concatenate(parts), len(ranges), len(body))

    def score_stream(
        self, tables: Iterable[tuple[pa.Table, Sequence[Any] | None]]
    ) -> Iterator[tuple[pa.Table, ScoreResult]]:
        """Score a stream of tables, yielding ``(table, result)`` in input order.

        Up to ``max_concurrency`` tables are serialized and in flight at once, so the executor's CPU
        work (serializing the next batch) overlaps the endpoint's (predicting this one); pyarrow and
        the HTTP client release the GIL while they work.
        """
        if self.max_concurrency == 1:
            for table, ids in tables:
                yield table, self.score(table, ids)
            return
        pending: deque[tuple[pa.Table, Future[ScoreResult]]] = deque()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="invoke") as pool:
            try:
                for table, ids in tables:
                    pending.append((table, pool.submit(self.score, table, ids)))
                    if len(pending) >= self.max_concurrency:
                        done_table, fut = pending.popleft()
                        yield done_table, fut.result()
                while pending:
                    done_table, fut = pending.popleft()
                    yield done_table, fut.result()
            finally:
                for _, fut in pending:
                    fut.cancel()
