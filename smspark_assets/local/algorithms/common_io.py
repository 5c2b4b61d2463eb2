"""Streaming a training channel as mini-batches of float32 features (and labels).

The first-party algorithms read their channels in File mode: every file under
``input/data/<channel>/`` in name order, parsed block by block and cut into mini-batches, so that
peak memory depends on the block and batch sizes, never on the size of the channel.

Formats:

* ``text/csv`` (optionally ``;label_size=N``): dense rows, the first ``label_size`` columns are the
  label. Parsed with Arrow's streaming CSV reader (multi-threaded, no per-row Python).
* ``application/x-recordio-protobuf``: SageMaker ``Record`` messages, dense or sparse Float32 tensors
  under the ``values`` key, label under ``values`` (decoded by :mod:`smspark_assets.sagemaker.recordio`).

:class:`Channel` also offers a bounded in-memory cache: when the decoded channel fits in
``cache_bytes`` the second and later epochs are served from memory (that is what makes multi-epoch
training fast); a channel bigger than the budget is simply re-read from disk each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import ChannelError
# Re-exported: the algorithms and the model server name content types through this module.
from smspark_assets.sagemaker.algorithms.content_types import (  # noqa: F401
    CSV,
    JSON,
    JSONLINES,
    RECORDIO,
    parse_content_type,
)

# Rows per parsed block before re-batching; bounds the transient memory of the reader.
_CSV_BLOCK_BYTES = 8 << 20


@dataclass
class Batch:
    """A mini-batch: ``features`` is a float32 ndarray (n, d) or a float32 CSR matrix; ``labels`` (n,) or None."""

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None

    @property
    def size(self) -> int:
        return int(self.features.shape[0])

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.features)

    def dense(self) -> np.ndarray:
        return self.features.toarray() if sp.issparse(self.features) else self.features

    @property
    def nbytes(self) -> int:
        f = self.features
        size = (f.data.nbytes + f.indices.nbytes + f.indptr.nbytes) if sp.issparse(f) else f.nbytes
        return size + (0 if self.labels is None else self.labels.nbytes)


def channel_files(directory: Path) -> list[Path]:
    """Every data file of a channel, in name order (hidden files and SageMaker manifests skipped)."""
    if not directory.exists():
        raise ChannelError(f"channel directory {directory.name!r} does not exist")
    files = sorted(
        p for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and not p.name.startswith("_") and p.stat().st_size > 0
    )
    return files


def _concat(batches: Sequence[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    if batches[0].is_sparse:
        features: np.ndarray | sp.csr_matrix = sp.vstack([b.features for b in batches], format="csr")
    else:
        features = np.concatenate([b.features for b in batches])
    labels = None if batches[0].labels is None else np.concatenate([b.labels for b in batches])
    return Batch(features, labels)


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    return Batch(batch.features[start:stop], None if batch.labels is None else batch.labels[start:stop])


def rebatch(blocks: Iterable[Batch], batch_size: int) -> Iterator[Batch]:
    """Cut a stream of blocks of any size into batches of exactly ``batch_size`` rows (the last may be smaller)."""
    pending: list[Batch] = []
    pending_rows = 0
    for block in blocks:
        if block.size == 0:
            continue
        start = 0
        if pending:
            need = batch_size - pending_rows
            head = _slice(block, 0, need)
            pending.append(head)
            pending_rows += head.size
            start = head.size
            if pending_rows < batch_size:
                continue
            yield _concat(pending)
            pending, pending_rows = [], 0
        while block.size - start >= batch_size:
            yield _slice(block, start, start + batch_size)
            start += batch_size
        if start < block.size:
            pending.append(_slice(block, start, block.size))
            pending_rows += block.size - start
    if pending:
        yield _concat(pending)


def _csv_blocks(path: Path, label_size: int) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "rb") as fh:
        first = fh.readline()
    ncols = first.count(b",") + 1
    if ncols <= label_size:
        raise ChannelError(f"{path.name}: CSV rows have {ncols} column(s) but label_size={label_size}; "
                           "each row needs the label column(s) followed by at least one feature")
    names = [f"c{i}" for i in range(ncols)]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, block_size=_CSV_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.float32() for n in names}),
        )
    except pa.ArrowInvalid as exc:
        raise ChannelError(f"{path.name}: not a numeric CSV without header: {exc}") from None
    row = 0
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise ChannelError(f"{path.name}: not a numeric CSV without header near row {row + 1}: {exc}") from None
        n = rb.num_rows
        if n == 0:
            continue
        columns = []
        for i, col in enumerate(rb.columns):
            if col.null_count:
                bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise ChannelError(f"{path.name}: row {row + bad + 1} has an empty value in column {i + 1}; "
                                   "every CSV value must be a number")
            columns.append(col.to_numpy())
        matrix = np.empty((n, ncols), dtype=np.float32)
        for i, col in enumerate(columns):
            matrix[:, i] = col
        labels = None
        if label_size == 1:
            labels = np.ascontiguousarray(matrix[:, 0])
        elif label_size > 1:
            # Several label columns: only the first is used as the training target (as the DG describes).
            labels = np.ascontiguousarray(matrix[:, 0])
        yield Batch(np.ascontiguousarray(matrix[:, label_size:]), labels)
        row += n


def _recordio_blocks(path: Path, feature_dim: int | None, float32_only: bool) -> Iterator[Batch]:
    from smspark_assets.local.algorithms import common_recordio

    yield from common_recordio.read_blocks(path, feature_dim, float32_only=float32_only)


def iter_blocks(directory: Path, content_type: str, *, default_label_size: int = 0,
                allowed: Sequence[str] = (CSV, RECORDIO), feature_dim: int | None = None,
                channel: str = "train", float32_only: bool = False) -> Iterator[Batch]:
    """Parsed blocks (of varying size) of every file of a channel."""
    mime, params = parse_content_type(content_type)
    if mime not in allowed:
        raise ChannelError(f"channel {channel!r} has content type {content_type!r}; "
                           f"this algorithm accepts {', '.join(allowed)}")
    files = channel_files(directory)
    if not files:
        raise ChannelError(f"channel {channel!r} has no data files")
    if mime == CSV:
        try:
            label_size = int(params.get("label_size", default_label_size))
        except ValueError:
            raise ChannelError(f"channel {channel!r}: label_size={params['label_size']!r} is not an integer") from None
        if label_size < 0:
            raise ChannelError(f"channel {channel!r}: label_size must be >= 0, got {label_size}")
        for f in files:
            yield from _csv_blocks(f, label_size)
    elif mime == RECORDIO:
        for f in files:
            yield from _recordio_blocks(f, feature_dim, float32_only)
    else:  # pragma: no cover - guarded by ``allowed``
        raise ChannelError(f"content type {mime} is not readable here")


def check_batch(batch: Batch, *, feature_dim: int | None, need_labels: bool, channel: str) -> None:
    """Refuse a batch whose width does not match ``feature_dim`` or that lacks labels."""
    width = batch.features.shape[1]
    if feature_dim is not None and width != feature_dim:
        raise ChannelError(f"channel {channel!r} has {width} feature(s) per record but feature_dim={feature_dim}")
    if need_labels and batch.labels is None:
        raise ChannelError(f"channel {channel!r} has no labels; this algorithm needs a label per record "
                           "(CSV: label in the first column with label_size=1; recordIO: label['values'])")
    values = batch.features.data if batch.is_sparse else batch.features
    if not np.isfinite(values).all():
        raise ChannelError(f"channel {channel!r} has a non-finite feature value (NaN or inf)")
    if batch.labels is not None and not np.isfinite(batch.labels).all():
        raise ChannelError(f"channel {channel!r} has a non-finite label (NaN or inf)")


_DONE = object()


def prefetch(items: Iterable[Batch], depth: int = 4) -> Iterator[Batch]:
    """Produce ``items`` in a background thread, ``depth`` ahead, so parsing overlaps training.

    NumPy/Arrow release the GIL in their kernels, so on two cores decoding the next block and updating
    the model on the current one run in parallel. Errors are re-raised in the consumer; closing the
    consumer stops the producer.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="channel-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class Channel:
    """A channel read as mini-batches, epoch after epoch, with an optional bounded in-memory cache."""

    def __init__(self, directory: Path, content_type: str, *, batch_size: int, name: str = "train",
                 default_label_size: int = 0, allowed: Sequence[str] = (CSV, RECORDIO),
                 feature_dim: int | None = None, need_labels: bool = False,
                 cache_bytes: int = 0, float32_only: bool = False) -> None:
        self.directory = directory
        self.content_type = content_type
        self.batch_size = batch_size
        self.name = name
        self.default_label_size = default_label_size
        self.allowed = tuple(allowed)
        self.feature_dim = feature_dim
        self.need_labels = need_labels
        self.cache_bytes = cache_bytes
        self.float32_only = float32_only
        self._cache: list[Batch] | None = None
        self.rows_seen = 0

    def _read(self) -> Iterator[Batch]:
        blocks = iter_blocks(self.directory, self.content_type, default_label_size=self.default_label_size,
                             allowed=self.allowed, feature_dim=self.feature_dim, channel=self.name,
                             float32_only=self.float32_only)
        for batch in prefetch(rebatch(blocks, self.batch_size)):
            check_batch(batch, feature_dim=self.feature_dim, need_labels=self.need_labels, channel=self.name)
            yield batch

    def batches(self, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """One epoch of mini-batches. With a cache and ``rng``, the batch order is shuffled."""
        if self._cache is not None:
            order = rng.permutation(len(self._cache)) if rng is not None else range(len(self._cache))
            for i in order:
                yield self._cache[i]
            return
        cache: list[Batch] | None = [] if self.cache_bytes > 0 else None
        if cache is not None:
            # Decoded float32 data is about as big as recordIO and smaller than CSV text, so a channel whose
            # files are far bigger than the budget will not fit: do not build a cache only to drop it.
            on_disk = sum(f.stat().st_size for f in channel_files(self.directory))
            if on_disk > 2 * self.cache_bytes:
                cache = None
        used = 0
        rows = 0
        for batch in self._read():
            rows += batch.size
            if cache is not None:
                used += batch.nbytes
                if used <= self.cache_bytes:
                    # Copy so the cache never pins a bigger parsed block alive through a view.
                    cache.append(Batch(batch.features.copy(), None if batch.labels is None else batch.labels.copy()))
                else:
                    cache = None
            yield batch
        if rows == 0:
            raise ChannelError(f"channel {self.name!r} has no records")
        self.rows_seen = rows
        self._cache = cache

    @property
    def cached(self) -> bool:
        return self._cache is not None


# In-memory cache budget for multi-epoch training: decoded channels up to this size are kept after the
# first epoch. Small enough that a job on a huge channel (re-read from disk) stays far below 1 GB RSS.
DEFAULT_CACHE_BYTES = 384 << 20
