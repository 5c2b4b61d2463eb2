"""RecordIO-protobuf for the first-party algorithms: streaming a channel file, requests and responses.

The codec itself is :mod:`smspark_assets.sagemaker.recordio` (vectorized). This module adds what the
algorithms need on top: reading a file of any size in bounded chunks cut at frame boundaries, turning
``features["values"]`` / ``label["values"]`` into float32 matrices (CSR when the tensors are sparse),
and encoding answers under ``Record.label[<output name>]`` as Float32 tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import BadRequest, ChannelError
from smspark_assets.sagemaker import recordio

if TYPE_CHECKING:  # pragma: no cover
    from smspark_assets.local.algorithms.common_io import Batch
    from smspark_assets.local.algorithms.common_serving import Output

# Bytes read per step; a chunk holds many records, so decoding is one vectorized call per chunk.
CHUNK_BYTES = 16 << 20


def _complete_prefix(buf: np.ndarray) -> int:
    """Length of the longest prefix of ``buf`` made of whole frames (headers chained from offset 0)."""
    size = buf.size
    aligned = size - size % 4
    if aligned < 8:
        return 0
    words = buf[:aligned].view("<u4")
    cand = np.flatnonzero(words == recordio.MAGIC).astype(np.int64) * 4
    cand = cand[cand + 8 <= aligned]
    if cand.size == 0 or cand[0] != 0:
        raise ChannelError("not a recordIO-protobuf stream: no frame header (magic 0xCED7230A) at the start of a chunk")
    lengths = words[cand // 4 + 1].astype(np.int64)
    nxt = cand + 8 + lengths + (-lengths) % 4
    ok = np.empty(cand.size, dtype=bool)
    ok[:-1] = nxt[:-1] == cand[1:]
    ok[-1] = True
    if ok.all():
        complete = nxt <= size
        # The chain is proven; keep frames up to the first one that runs past the chunk.
        last = int(np.argmin(complete)) if not complete.all() else cand.size
        return int(nxt[last - 1]) if last > 0 else 0
    # A magic-looking word inside a payload: walk the headers one by one (rare).
    raw = buf.tobytes()
    pos = 0
    while pos + 8 <= size:
        if int.from_bytes(raw[pos:pos + 4], "little") != recordio.MAGIC:
            raise ChannelError(f"corrupt recordIO-protobuf stream: bad frame header at byte {pos}")
        length = int.from_bytes(raw[pos + 4:pos + 8], "little")
        end = pos + 8 + length + (-length) % 4
        if pos + 8 + length > size:
            break
        pos = min(end, size)
    return pos


def records_to_batch(data: bytes | np.ndarray, feature_dim: int | None, *, what: str,
                     float32_only: bool = False) -> "Batch":
    """Decode whole frames into a :class:`~.common_io.Batch` (features ``values``, label ``values``)."""
    from smspark_assets.local.algorithms.common_io import Batch

    try:
        decoded = recordio.decode(data)
    except recordio.RecordIOError as exc:
        raise ChannelError(f"{what}: {exc}") from None
    if "values" not in decoded.features:
        raise ChannelError(f"{what}: records have no features['values'] tensor "
                           f"(feature keys: {sorted(decoded.features) or 'none'})")
    column = decoded.features["values"]
    if not column.present.all():
        raise ChannelError(f"{what}: record {int(np.flatnonzero(~column.present)[0])} has no features['values']")
    if float32_only and np.any(column.kinds != recordio.KIND_F32):
        raise ChannelError(f"{what}: features must be Float32 tensors for this algorithm (found another tensor type)")
    try:
        if column.is_sparse:
            values, indices, indptr, width = column.to_csr(feature_dim)
            if indices.size and indices.max() >= width:
                raise ValueError(f"a sparse key ({int(indices.max())}) lies outside the shape ({width})")
            features: np.ndarray | sp.csr_matrix = sp.csr_matrix(
                (values.astype(np.float32, copy=False), indices, indptr), shape=(decoded.n_records, width))
        else:
            features = column.to_dense().astype(np.float32, copy=False)
    except ValueError as exc:
        raise ChannelError(f"{what}: {exc}") from None
    labels = None
    if "values" in decoded.label:
        try:
            labels = decoded.label["values"].scalars().astype(np.float32)
        except ValueError as exc:
            raise ChannelError(f"{what}: {exc}") from None
    return Batch(features, labels)


def read_blocks(path: Path, feature_dim: int | None, *, float32_only: bool = False) -> Iterator["Batch"]:
    """Batches of the records of one file, read ``CHUNK_BYTES`` at a time (memory stays bounded)."""
    leftover = np.empty(0, dtype=np.uint8)
    offset = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK_BYTES)
            if not chunk:
                break
            buf = np.concatenate((leftover, np.frombuffer(chunk, dtype=np.uint8))) if leftover.size else \
                np.frombuffer(chunk, dtype=np.uint8)
            cut = _complete_prefix(buf)
            if cut:
                yield records_to_batch(buf[:cut], feature_dim, what=f"{path.name} (from byte {offset})",
                                       float32_only=float32_only)
                offset += cut
            leftover = buf[cut:].copy()
    if leftover.size:
        raise ChannelError(f"{path.name}: truncated recordIO-protobuf stream: {leftover.size} byte(s) after the "
                           f"last complete record at byte {offset}")


def decode_request(body: bytes, feature_dim: int | None) -> np.ndarray | sp.csr_matrix:
    """A request body's records as float32 features (CSR when sparse)."""
    if not body:
        raise BadRequest("empty application/x-recordio-protobuf request")
    try:
        return records_to_batch(body, feature_dim, what="request").features
    except ChannelError as exc:
        raise BadRequest(str(exc)) from None


def encode_response(outputs: Sequence["Output"]) -> bytes:
    """One Record per answer, each output under ``label[<name>]`` as a Float32 tensor."""
    n = len(outputs[0].values)
    label = {o.name: recordio.Dense(np.asarray(o.values, dtype=np.float32)) for o in outputs}
    return recordio.encode_records(n, None, label)


def encode_records(features: np.ndarray | sp.csr_matrix, labels: np.ndarray | None = None) -> bytes:
    """Training records: Float32 ``features['values']`` (sparse stays sparse) and ``label['values']``."""
    y = None if labels is None else np.asarray(labels, dtype=np.float32)
    if sp.issparse(features):
        csr = features.tocsr()
        return recordio.encode_csr(csr.data.astype(np.float32), csr.indices, csr.indptr, csr.shape[1], y)
    return recordio.encode_dense(np.asarray(features, dtype=np.float32), y)
