"""Request batching: serialized records -> request bodies of at most 5 MiB -> result columns, by position.

SageMaker refuses ``InvokeEndpoint`` payloads above 5 MiB (``reference/sagemaker_contracts.md`` §1.10).
:func:`plan_batches` cuts a batch of serialized records at record boundaries into bodies no larger than
``max_bytes`` (greedy, in order, one ``searchsorted`` per body rather than a loop over records), and
:func:`transform` sends them and glues the answers back together in request order. Unlike the Spark
SDK's ``RequestBatchIterator``:

* the record cap is exact (it never lets a batch take one record more than ``max_records``);
* a response with a different number of records than the request is an error, never a misalignment;
* a single record that alone exceeds the limit is rejected with its index and size before anything is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from smspark_assets.sagemaker.deserializers import Columns, ResponseDeserializer, ResponseMismatch
from smspark_assets.sagemaker.serializers import SerializedRecords

__all__ = ["MAX_REQUEST_BYTES", "RecordTooLarge", "BatchStats", "plan_batches", "iter_bodies", "transform",
           "Invoke"]

MAX_REQUEST_BYTES = 5 * 1024 * 1024  # 5 MiB, SageMaker's InvokeEndpoint payload limit

# invoke(body, content_type, accept) -> response body
Invoke = Callable[[bytes, str, str], bytes]


class RecordTooLarge(ValueError):
    """One record alone is larger than the request size limit."""


def _check_limit(max_bytes: int) -> int:
    max_bytes = int(max_bytes)
    if not 0 < max_bytes <= MAX_REQUEST_BYTES:
        raise ValueError(f"max_bytes must be in 1..{MAX_REQUEST_BYTES} (5 MiB, SageMaker's request limit); "
                         f"got {max_bytes}")
    return max_bytes


def plan_batches(records: SerializedRecords, max_bytes: int = MAX_REQUEST_BYTES,
                 max_records: int | None = None) -> np.ndarray:
    """Boundaries ``b`` such that records ``[b[i], b[i+1])`` form body ``i``, each at most ``max_bytes``."""
    max_bytes = _check_limit(max_bytes)
    if max_records is not None and max_records < 1:
        raise ValueError(f"max_records must be at least 1, got {max_records}")
    n = len(records)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    framing = len(records.prefix) + len(records.suffix) - len(records.separator)
    sizes = records.record_sizes
    too_big = sizes + framing > max_bytes
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise RecordTooLarge(f"record {i} serializes to {int(sizes[i]) + framing} bytes as "
                             f"{records.content_type}, "
                             f"more than the request limit of {max_bytes} bytes; it cannot be sent alone")
    offsets = records.offsets
    bounds = [0]
    start = 0
    budget = max_bytes - framing
    while start < n:
        # The furthest stop with offsets[stop] - offsets[start] <= budget.
        stop = int(np.searchsorted(offsets, offsets[start] + budget, side="right")) - 1
        if max_records is not None:
            stop = min(stop, start + max_records)
        stop = min(max(stop, start + 1), n)
        bounds.append(stop)
        start = stop
    return np.asarray(bounds, dtype=np.int64)


def iter_bodies(records: SerializedRecords, max_bytes: int = MAX_REQUEST_BYTES,
                max_records: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """``(start, stop, body)`` for every request body of the plan."""
    bounds = plan_batches(records, max_bytes, max_records)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        yield int(start), int(stop), records.body(int(start), int(stop))


@dataclass
class BatchStats:
    """What :func:`transform` did: requests sent, bytes sent and received, seconds spent invoking."""

    requests: int = 0
    records: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    invoke_seconds: float = 0.0
    body_sizes: list[int] = field(default_factory=list)


def transform(records: SerializedRecords, invoke: Invoke, deserializer: ResponseDeserializer,
              max_bytes: int = MAX_REQUEST_BYTES, max_records: int | None = None,
              stats: BatchStats | None = None) -> Columns:
    """Send ``records`` in bodies of at most ``max_bytes`` and return the result columns in input order."""
    parts: list[Columns] = []
    for start, stop, body in iter_bodies(records, max_bytes, max_records):
        t0 = time.perf_counter()
        answer = invoke(body, records.content_type, deserializer.accept)
        elapsed = time.perf_counter() - t0
        try:
            columns = deserializer.deserialize(answer, stop - start)
        except ResponseMismatch as exc:
            raise ResponseMismatch(f"records {start}..{stop - 1}: {exc}") from None
        parts.append(columns)
        if stats is not None:
            stats.requests += 1
            stats.records += stop - start
            stats.bytes_sent += len(body)
            stats.bytes_received += len(answer)
            stats.invoke_seconds += elapsed
            stats.body_sizes.append(len(body))
    if not parts:
        return {name: (np.empty(0) if kind == "scalar" else np.empty((0, 0)))
                for name, kind in deserializer.columns.items()}
    out: Columns = {}
    for name in parts[0]:
        arrays = [p[name] for p in parts]
        if arrays[0].ndim == 2:
            widths = {a.shape[1] for a in arrays}
            if len(widths) > 1:
                raise ResponseMismatch(f"column {name!r}: batches answered vectors of different lengths "
                                       f"{sorted(widths)}")
        out[name] = np.concatenate(arrays)
    return out
