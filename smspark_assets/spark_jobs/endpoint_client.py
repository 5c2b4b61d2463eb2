"""Calling a SageMaker endpoint from Spark executors with the shared SageMaker-Spark layer.

The scoring job only uses :class:`EndpointScorer`; the pieces it is made of are the shared ones of
:mod:`smspark_assets.sagemaker` (no second CSV writer, planner or reader to keep in step):

* :meth:`CSVSerializer.serialize_table <smspark_assets.sagemaker.serializers.CSVSerializer.serialize_table>`
  turns an Arrow batch of numeric features into ``text/csv`` records (floats as float32 in shortest
  form, booleans as 0/1, nulls as empty cells) with one vectorized writer;
* :func:`~smspark_assets.sagemaker.batching.plan_batches` packs consecutive records into requests of
  at most ``max_payload_bytes`` (XGBoost keeps CSV: its container reads it natively). A row that alone
  exceeds the limit raises :class:`PayloadTooLargeError`, naming the row's id and size;
* :class:`~smspark_assets.sagemaker.deserializers.XGBoostCSVDeserializer` reads the answer (one line per
  record, or one comma-joined line) and checks that it holds exactly one prediction per row sent: results
  are matched to rows by position, so a mismatch raises :class:`PredictionCountError` with the endpoint
  and the first row id of the request, and never passes silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from smspark_assets.sagemaker.batching import MAX_REQUEST_BYTES, RecordTooLarge, plan_batches
from smspark_assets.sagemaker.deserializers import ResponseMismatch, XGBoostCSVDeserializer
from smspark_assets.sagemaker.serializers import CSVSerializer, SerializedRecords

MAX_PAYLOAD_BYTES = MAX_REQUEST_BYTES  # 5 MiB, SageMaker's limit for a real-time InvokeEndpoint request
CONTENT_TYPE = CSVSerializer.content_type
ACCEPT = XGBoostCSVDeserializer.accept


class PayloadTooLargeError(RecordTooLarge):
    """One row is larger than a whole request may be (the shared :class:`RecordTooLarge`, with the row's id)."""


class PredictionCountError(ResponseMismatch):
    """The endpoint's answer cannot be matched to the rows sent: a different number of predictions than
    rows, or something that is not one number per row (the shared :class:`ResponseMismatch`, with the
    endpoint and the request's first row id)."""


def check_max_payload_bytes(max_payload_bytes: Any) -> int:
    """``max_payload_bytes`` as an int in ``1..5 MiB``; anything else is refused with the allowed range."""
    if isinstance(max_payload_bytes, bool) or not isinstance(max_payload_bytes, (int, np.integer)):
        raise ValueError(f"max_payload_bytes must be an integer number of bytes, got {max_payload_bytes!r}")
    value = int(max_payload_bytes)
    if not 1 <= value <= MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"max_payload_bytes={value} is not allowed: it must be between 1 and {MAX_PAYLOAD_BYTES} "
            "(5 MiB, SageMaker's InvokeEndpoint limit)"
        )
    return value


def row_id_at(ids: Sequence[Any] | pa.Array | pa.ChunkedArray | None, i: int) -> Any:
    """The id of row ``i`` for an error message (Arrow scalars turned into Python values)."""
    if ids is None:
        return f"#{i}"
    value = ids[i]
    return value.as_py() if isinstance(value, pa.Scalar) else value


def plan_requests(records: SerializedRecords, max_payload_bytes: int, ids: Any = None) -> np.ndarray:
    """Request boundaries ``b`` (records ``[b[i], b[i+1])`` form request ``i``) by the shared planner.

    A record too large to be sent alone is reported by its row id, which the shared planner cannot know.
    """
    try:
        return plan_batches(records, max_payload_bytes)
    except RecordTooLarge:
        # The same test as the planner's: a body holding this record alone would exceed the limit.
        framing = len(records.prefix) + len(records.suffix) - len(records.separator)
        i = int(np.flatnonzero(records.record_sizes + framing > max_payload_bytes)[0])
        size = records.body_size(i, i + 1)
        raise PayloadTooLargeError(
            f"row {row_id_at(ids, i)!r} serializes to {size} bytes, more than max_payload_bytes="
            f"{max_payload_bytes} (as {records.content_type}; a request may carry at most {MAX_PAYLOAD_BYTES} "
            "bytes); it cannot be sent to the endpoint"
        ) from None


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
    """One table's predictions (float64, row order), the requests sent and their total body bytes."""

    predictions: np.ndarray
    requests: int
    payload_bytes: int


class EndpointScorer:
    """Scores Arrow tables through ``InvokeEndpoint`` with up to ``max_concurrency`` requests in flight.

    Requests are ``text/csv`` and answers are read as XGBoost's ``text/csv`` with exactly one prediction
    per row (a multi-output answer, e.g. ``multi:softprob``, is refused: the scores table has one
    ``prediction`` per row).
    """

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
        self.serializer = CSVSerializer()
        self.deserializer = XGBoostCSVDeserializer("prediction", output_dim=1)

    def _invoke(self, records: SerializedRecords, start: int, stop: int, ids: Any) -> np.ndarray:
        response = self.client.invoke_endpoint(
            EndpointName=self.endpoint_name, Body=records.body(start, stop),
            ContentType=records.content_type, Accept=self.deserializer.accept,
        )
        try:
            columns = self.deserializer.deserialize(response["Body"].read(), stop - start)
        except ResponseMismatch as exc:
            raise PredictionCountError(
                f"endpoint {self.endpoint_name!r}, request of {stop - start} rows starting at row id "
                f"{row_id_at(ids, start)!r}: {exc}; refusing to match predictions to rows"
            ) from None
        return columns[self.deserializer.column]

    def score(self, table: pa.Table, ids: Sequence[Any] | pa.Array | None = None) -> ScoreResult:
        """Predictions for every row of ``table``, in row order (its requests are sent one after another).

        ``ids`` (one per row, e.g. the id column) only serve to name rows in error messages.
        """
        if table.num_rows == 0:
            return ScoreResult(np.empty(0, dtype=np.float64), 0, 0)
        records = self.serializer.serialize_table(table, self.feature_columns)
        bounds = plan_requests(records, self.max_payload_bytes, ids)
        parts = [self._invoke(records, int(a), int(b), ids) for a, b in zip(bounds[:-1], bounds[1:])]
        return ScoreResult(np.concatenate(parts), len(parts), int(records.offsets[-1]))

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
