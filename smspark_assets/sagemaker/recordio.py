"""``application/x-recordio-protobuf``: SageMaker's training and inference wire format, vectorized.

A stream is a sequence of frames (``reference/sagemaker_contracts.md`` §2)::

    magic 0xCED7230A (uint32 LE) | length L (uint32 LE) | L bytes: one ``aialgs.data.Record`` | 0-3 zero bytes

and a ``Record`` holds two ``map<string, Value>`` fields, ``features`` (1) and ``label`` (2), whose values are
Float32/Float64/Int32 tensors (packed ``values``, sparse ``keys`` and ``shape``) or ``Bytes``.

Encoding builds the whole byte stream at once: every record is described as a list of *pieces*
(constant bytes, varints, fixed-width blobs, varint blobs, padding) whose per-row lengths are computed
with NumPy; the frame offsets follow from one cumulative sum and each piece is written for all rows in a
single vectorized assignment. When every row has the same length (dense float rows) the output is a
2-D array and each piece is a column slice, i.e. memory speed. The bytes are those of the SageMaker
Python SDK's ``write_numpy_to_dense_tensor`` / ``write_spmatrix_to_sparse_tensor`` for the same dtypes,
and of the SageMaker-Spark SDK's ``ProtobufConverter`` for float32 rows.

Decoding reads any valid stream: frames are located with a vectorized magic-number scan (verified as a
chain, so a magic-looking float inside a payload cannot fool it), then every message level is parsed
for all records in lock step (one NumPy pass per field position, not per record). Streams whose records
all share one layout (dense rows) take a fast path that slices the values out of a 2-D view. Corrupt
input raises :class:`RecordIOError` naming the byte offset.

Variable-length records (sparse rows, int32 tensors) have per-element work that NumPy can only do
through per-element index arrays. When numba is installed, :mod:`.recordio_kernels` does that work in
compiled loops instead (piece writes, ragged byte copies, varint keys, the canonical entry headers);
without it (or with ``SMSPARK_RECORDIO_NUMBA=0``) the NumPy code below runs, with the same bytes. Dense
streams of one layout always take the NumPy 2-D paths, which already run at memory speed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Union

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "MAGIC", "CONTENT_TYPE", "RecordIOError", "Dense", "Sparse", "TensorColumn", "DecodedRecords",
    "EncodedRecords", "encode_dense", "encode_dense_frames", "encode_csr", "encode_csr_frames",
    "encode_records",
    "encode_frames", "decode", "read_dense", "read_csr", "frame_offsets", "protobuf_record_class",
    "sdk_style_encode", "KIND_NONE", "KIND_F32", "KIND_F64", "KIND_I32", "KIND_BYTES",
]

MAGIC = 0xCED7230A
CONTENT_TYPE = "application/x-recordio-protobuf"
# dmlc's recordio keeps the top 3 bits of the length word for a continuation flag.
MAX_RECORD_BYTES = (1 << 29) - 1

# Value.oneof field numbers (record.proto) and the wire tag byte of each as a length-delimited field.
KIND_NONE, KIND_F32, KIND_F64, KIND_I32, KIND_BYTES = 0, 2, 3, 7, 9
_KIND_DTYPE = {KIND_F32: np.dtype("<f4"), KIND_F64: np.dtype("<f8"), KIND_I32: np.dtype("<i4")}
_KIND_NAME = {KIND_F32: "float32", KIND_F64: "float64", KIND_I32: "int32", KIND_BYTES: "bytes"}

_U8 = np.uint8
_I64 = np.int64


def _load_kernels():
    """The compiled sparse loops (:mod:`.recordio_kernels`), or ``None`` to use the NumPy path.

    numba is optional: without it (or with ``SMSPARK_RECORDIO_NUMBA=0``) every function below keeps its
    vectorized NumPy implementation, which writes and reads the same bytes.
    """
    if os.environ.get("SMSPARK_RECORDIO_NUMBA", "1") == "0":
        return None
    try:
        from smspark_assets.sagemaker import recordio_kernels
    except ImportError:
        return None
    return recordio_kernels


# The kernels module, None (the NumPy path), or _UNLOADED until first needed: importing numba costs
# ~0.7 s, which every process that imports this module (the Spark workers scoring CSV, the model
# servers, the Dagster processes) would pay whether or not it reads or writes RecordIO. A module
# attribute (not a constant) so that tests can switch between the two paths.
_UNLOADED: Any = object()
_kernels: Any = _UNLOADED


def _compiled() -> Any:
    """The compiled kernels (imported on first use), or None for the NumPy path."""
    global _kernels
    if _kernels is _UNLOADED:
        _kernels = _load_kernels()
    return _kernels


class RecordIOError(ValueError):
    """A recordIO-protobuf stream is corrupt; ``offset`` is the byte where the problem was found."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = int(offset)


# --------------------------------------------------------------------------------------------------
# Varints
# --------------------------------------------------------------------------------------------------


def _varint_scalar(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes each uint64 takes as a varint (1..10)."""
    v = np.asarray(values, dtype=np.uint64)
    sizes = np.ones(v.shape, dtype=_I64)
    if v.size == 0:
        return sizes
    top = int(v.max())
    for k in range(1, 10):
        threshold = 1 << (7 * k)
        if top < threshold:
            break
        sizes += v >= np.uint64(threshold)
    return sizes


def _varint_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's varint bytes, left-aligned in a ``(n, max_size)`` matrix, and the sizes."""
    v = np.asarray(values, dtype=np.uint64)
    sizes = _varint_sizes(v)
    width = int(sizes.max()) if v.size else 1
    mat = np.empty((v.size, width), dtype=_U8)
    for k in range(width):
        byte = ((v >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(_U8)
        if k < width - 1:
            byte |= np.where(sizes > k + 1, 0x80, 0).astype(_U8)
        mat[:, k] = byte
    return mat, sizes


def _varint_stream(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated varint bytes of ``values`` and each value's size."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size and int(v.max()) < 0x80:
        return v.astype(_U8), np.ones(v.size, dtype=_I64)
    if v.size and int(v.max()) < 1 << 14:
        # One or two bytes each (sparse keys below 16384): two scatters, no byte matrix.
        two = v >= 0x80
        sizes = 1 + two.astype(_I64)
        first = np.cumsum(sizes) - sizes
        stream = np.empty(int(first[-1] + sizes[-1]), dtype=_U8)
        stream[first] = (v & np.uint64(0x7F)).astype(_U8) | (two.astype(_U8) << 7)
        stream[first[two] + 1] = (v[two] >> np.uint64(7)).astype(_U8)
        return stream, sizes
    mat, sizes = _varint_matrix(v)
    return mat[np.arange(mat.shape[1]) < sizes[:, None]], sizes


def _as_varint_u64(values: np.ndarray) -> np.ndarray:
    """Protobuf int32 values as the uint64 their varint encodes (negatives are sign-extended to 64 bits)."""
    return np.asarray(values).astype(np.int64).view(np.uint64)


# --------------------------------------------------------------------------------------------------
# Index helpers
# --------------------------------------------------------------------------------------------------


def _segment_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concat(arange(s, s + l) for s, l in zip(starts, lengths))`` without a Python loop.

    Uses int32 when every position fits: the index arrays are the main memory traffic of the scatters.
    """
    lengths = np.asarray(lengths)
    starts = np.asarray(starts)
    keep = lengths > 0
    if not keep.all():
        starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=_I64)
    top = int(starts.max()) + int(lengths.max())
    dtype = np.int32 if max(top, total) < 2**31 - 1 else _I64
    lengths = lengths.astype(dtype, copy=False)
    starts = starts.astype(dtype, copy=False)
    step = np.ones(total, dtype=dtype)
    first = np.cumsum(lengths, dtype=_I64) - lengths
    step[0] = starts[0]
    # At the first element of each segment, jump from the previous segment's last element.
    step[first[1:]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(step, dtype=dtype)


# Sparse keys of matrices up to this many columns (one or two varint bytes) are written straight into the
# output; wider ones go through a varint byte stream.
_KEYS_DIRECT_MAX_COLS = 1 << 14
# Beyond this many distinct row lengths in one call, per-length groups cost more than index arrays.
_MAX_LENGTH_GROUPS = 512


def _rows_of_width(buf: np.ndarray, width: int, writeable: bool = False) -> np.ndarray:
    """``buf`` (1-D uint8) seen as overlapping rows: row ``i`` is ``buf[i:i + width]``.

    Indexing it with ``k`` offsets moves ``k`` runs of ``width`` bytes with ``k`` indices instead of
    ``k * width`` (the fancy-index machinery copies a whole row per index).
    """
    return as_strided(buf, shape=(buf.size - width + 1, width), strides=(1, 1), writeable=writeable)


def _ragged_copy(dst: np.ndarray, dst_off: np.ndarray, src: np.ndarray, src_off: np.ndarray,
                 lengths: np.ndarray) -> None:
    """``dst[dst_off[i]:+lengths[i]] = src[src_off[i]:+lengths[i]]`` for every ``i`` (uint8 arrays).

    Rows are grouped by length (a counting sort) and each group moves with one gather and one scatter
    of whole rows (:func:`_rows_of_width`); with too many distinct lengths it falls back to byte indices.
    """
    kernels = _compiled()
    lengths = np.asarray(lengths, dtype=_I64)
    if kernels is not None and dst.ndim == 1 and src.ndim == 1:
        # One pass, no per-byte or per-row index arrays.
        kernels.ragged_copy(dst, np.asarray(dst_off, dtype=_I64), src, np.asarray(src_off, dtype=_I64),
                             lengths)
        return
    keep = lengths > 0
    if not keep.all():
        dst_off, src_off, lengths = dst_off[keep], src_off[keep], lengths[keep]
    if lengths.size == 0:
        return
    top = int(lengths.max())
    counts = np.bincount(lengths, minlength=top + 1)
    widths = np.flatnonzero(counts)
    if widths.size > _MAX_LENGTH_GROUPS:
        dst[_segment_positions(dst_off, lengths)] = src[_segment_positions(src_off, lengths)]
        return
    if widths.size == 1:
        groups = [(int(widths[0]), slice(None))]
    else:
        order = np.argsort(lengths, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        groups = [(int(w), order[bounds[w]:bounds[w + 1]]) for w in widths]
    for width, rows in groups:
        _rows_of_width(dst, width, writeable=True)[dst_off[rows]] = _rows_of_width(src, width)[src_off[rows]]


def _pad4(length: np.ndarray | int) -> np.ndarray | int:
    return (-np.asarray(length)) % 4 if isinstance(length, np.ndarray) else (-length) % 4


# --------------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense:
    """A dense tensor per record: row ``i`` of a ``(n, k)`` array (a 1-D array gives one value per record)."""

    values: np.ndarray
    dtype: str | None = None  # "float32" | "float64" | "int32"; default: from the array (SDK rules)


@dataclass(frozen=True)
class Sparse:
    """A sparse vector per record (CSR): record ``i`` has ``data[indptr[i]:indptr[i+1]]`` at ``indices``."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_cols: int
    dtype: str | None = None

    @classmethod
    def from_scipy(cls, matrix, dtype: str | None = None) -> "Sparse":
        csr = matrix.tocsr()
        return cls(csr.data, csr.indices, csr.indptr, int(csr.shape[1]), dtype)


TensorInput = Union[Dense, Sparse, np.ndarray]


def _resolve_kind(dtype: np.dtype, explicit: str | None, what: str) -> int:
    """The tensor type for an array, by the SageMaker Python SDK's rule (``_resolve_type``)."""
    if explicit is not None:
        names = {v: k for k, v in _KIND_NAME.items() if k != KIND_BYTES}
        if explicit not in names:
            raise ValueError(f"{what}: tensor dtype {explicit!r} is not supported; "
                             "allowed: float32, float64, int32")
        return names[explicit]
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return KIND_F32
    if dtype == np.float64:
        return KIND_F64
    if dtype.kind in "iu":
        return KIND_I32
    raise ValueError(
        f"{what}: arrays of dtype {dtype} cannot be written to recordIO-protobuf; "
        "allowed: float32 (Float32Tensor), float64 (Float64Tensor), int32/int64 (Int32Tensor)"
    )


def _cast_values(values: np.ndarray, kind: int, what: str) -> np.ndarray:
    values = np.asarray(values)
    if kind == KIND_I32:
        if values.dtype.kind == "f":
            if values.size and not np.array_equal(values, np.trunc(values)):
                raise ValueError(f"{what}: int32 tensor requested but the values are not integers")
        if values.size and (values.min() < -(2**31) or values.max() > 2**31 - 1):
            raise ValueError(f"{what}: values outside the int32 range [-2147483648, 2147483647]")
        return values.astype(np.int64, copy=False)
    return np.ascontiguousarray(values, dtype=_KIND_DTYPE[kind])


Lengths = Union[int, np.ndarray]


@dataclass
class _Piece:
    kind: str  # const | varint | fixed32 | blob | vblob | zeros
    lengths: Lengths
    data: bytes = b""
    present: np.ndarray | None = None
    values: np.ndarray | None = None  # varint / fixed32: per row; blob: flat elements; vblob: varint stream
    indptr: np.ndarray | None = None  # blob/keys2: row starts in elements
    aux: tuple | None = None  # keys2: (is-two-byte mask, exclusive prefix sums of key sizes)


def _const(data: bytes, present: np.ndarray | None = None) -> _Piece:
    if present is None or present.all():
        return _Piece("const", len(data), data=data)
    return _Piece("const", present.astype(_I64) * len(data), data=data, present=present)


def _varint(values: Lengths, present: np.ndarray | None = None) -> _Piece:
    if isinstance(values, (int, np.integer)):
        return _const(_varint_scalar(int(values)), present)
    values = np.asarray(values, dtype=_I64)
    if values.size and values.min() == values.max() and (present is None or present.all()):
        return _const(_varint_scalar(int(values[0])))
    sizes = _varint_sizes(values.view(np.uint64))
    if present is not None and not present.all():
        sizes = sizes * present
    return _Piece("varint", sizes, values=values, present=present)


def _sum_lengths(pieces: Sequence[_Piece]) -> Lengths:
    total: Lengths = 0
    for p in pieces:
        total = total + p.lengths
    return total


def _size_of_varint(values: Lengths) -> Lengths:
    if isinstance(values, (int, np.integer)):
        return len(_varint_scalar(int(values)))
    return _varint_sizes(np.asarray(values, dtype=_I64).view(np.uint64))


def _tensor_pieces(n: int, tensor: TensorInput, what: str) -> tuple[int, list[_Piece]]:
    """The pieces of one ``*Tensor`` message body per record, and its Value oneof field number."""
    kernels = _compiled()
    if isinstance(tensor, np.ndarray):
        tensor = Dense(tensor)
    pieces: list[_Piece] = []
    if isinstance(tensor, Dense):
        values = np.asarray(tensor.values)
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        if values.ndim != 2 or values.shape[0] != n:
            raise ValueError(f"{what}: expected {n} rows (a 1-D or 2-D array), "
                             f"got shape {np.shape(tensor.values)}")
        kind = _resolve_kind(values.dtype, tensor.dtype, what)
        k = values.shape[1]
        if k == 0:
            raise ValueError(f"{what}: a dense tensor needs at least one value per record (got 0 columns)")
        values = _cast_values(values, kind, what)
        if kind == KIND_I32:
            stream, sizes = _varint_stream(_as_varint_u64(values.reshape(-1)))
            row_bytes = sizes.reshape(n, k).sum(axis=1)
            pieces += [_const(b"\x0a"), _varint(row_bytes), _vblob(stream, row_bytes)]
        else:
            item = _KIND_DTYPE[kind].itemsize
            pieces += [_const(b"\x0a" + _varint_scalar(k * item)),
                       _Piece("blob", k * item, values=values.reshape(-1), indptr=None)]
        return kind, pieces
    if isinstance(tensor, Sparse):
        indptr = np.asarray(tensor.indptr, dtype=_I64)
        if indptr.shape != (n + 1,):
            raise ValueError(f"{what}: indptr must have {n + 1} entries, got {indptr.shape[0]}")
        if indptr[0] < 0 or np.any(np.diff(indptr) < 0):
            raise ValueError(f"{what}: indptr must be non-decreasing and start at 0 or above")
        start, stop = int(indptr[0]), int(indptr[-1])
        data = np.asarray(tensor.data)[start:stop]
        indices = np.asarray(tensor.indices)[start:stop]
        indptr = indptr - start
        if data.shape[0] != stop - start or indices.shape[0] != stop - start:
            raise ValueError(f"{what}: data and indices must hold indptr[-1] - indptr[0] = "
                             f"{stop - start} entries")
        n_cols = int(tensor.n_cols)
        if n_cols <= 0:
            raise ValueError(f"{what}: n_cols must be positive, got {n_cols}")
        if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
            raise ValueError(f"{what}: sparse indices must lie in [0, {n_cols - 1}]")
        kind = _resolve_kind(np.asarray(tensor.data).dtype, tensor.dtype, what)
        data = _cast_values(data, kind, what)
        counts = np.diff(indptr)
        present = counts > 0
        if kind == KIND_I32:
            stream, sizes = _varint_stream(_as_varint_u64(data))
            csum = np.concatenate([[0], np.cumsum(sizes)])
            row_bytes = csum[indptr[1:]] - csum[indptr[:-1]]
            pieces += [_const(b"\x0a", present), _varint(row_bytes, present), _vblob(stream, row_bytes)]
        else:
            item = _KIND_DTYPE[kind].itemsize
            pieces += [_const(b"\x0a", present), _varint(counts * item, present),
                       _Piece("blob", counts * item, values=data, indptr=indptr)]
        if n_cols <= _KEYS_DIRECT_MAX_COLS:
            # Keys below 16384 take one or two varint bytes: keep them as uint16 and write them straight
            # into the output (no intermediate byte stream).
            keys16 = indices.astype(np.uint16)
            if kernels is not None:
                key_bytes = np.empty(n, dtype=_I64)
                kernels.varint2_row_bytes(keys16, indptr, key_bytes)
                kpiece = _Piece("keys2", key_bytes, values=keys16, indptr=indptr)
                pieces += [_const(b"\x12", present), _varint(key_bytes, present), kpiece]
                shape = _varint_scalar(n_cols)
                pieces.append(_const(b"\x1a" + _varint_scalar(len(shape)) + shape))
                return kind, pieces
            two = keys16 >= 0x80
            kcsum = np.zeros(keys16.size + 1, dtype=_I64)
            np.cumsum(two, out=kcsum[1:])
            kcsum[1:] += np.arange(1, keys16.size + 1)
            key_bytes = kcsum[indptr[1:]] - kcsum[indptr[:-1]]
            kpiece = _Piece("keys2", key_bytes, values=keys16, indptr=indptr, aux=(two, kcsum))
        else:
            kstream, ksizes = _varint_stream(indices.astype(np.uint64))
            kcsum = np.concatenate([[0], np.cumsum(ksizes)])
            key_bytes = kcsum[indptr[1:]] - kcsum[indptr[:-1]]
            kpiece = _vblob(kstream, key_bytes)
        pieces += [_const(b"\x12", present), _varint(key_bytes, present), kpiece]
        shape = _varint_scalar(n_cols)
        pieces.append(_const(b"\x1a" + _varint_scalar(len(shape)) + shape))
        return kind, pieces
    raise TypeError(f"{what}: expected Dense, Sparse or a NumPy array, got {type(tensor).__name__}")


def _vblob(stream: np.ndarray, row_bytes: np.ndarray) -> _Piece:
    row_bytes = np.asarray(row_bytes, dtype=_I64)
    if row_bytes.size and row_bytes.min() == row_bytes.max():
        return _Piece("vblob", int(row_bytes[0]), values=stream)
    return _Piece("vblob", row_bytes, values=stream)


_TENSOR_TAG = {KIND_F32: b"\x12", KIND_F64: b"\x1a", KIND_I32: b"\x3a"}


def _entry_pieces(n: int, field_no: int, key: str, tensor: TensorInput, what: str) -> list[_Piece]:
    kind, body = _tensor_pieces(n, tensor, what)
    tensor_len = _sum_lengths(body)
    value_len = 1 + _size_of_varint(tensor_len) + tensor_len
    kb = key.encode("utf-8")
    key_head = b"\x0a" + _varint_scalar(len(kb)) + kb + b"\x12"
    entry_len = len(key_head) + _size_of_varint(value_len) + value_len
    return [
        _const(bytes([(field_no << 3) | 2])), _varint(entry_len),
        _const(key_head), _varint(value_len),
        _const(_TENSOR_TAG[kind]), _varint(tensor_len),
        *body,
    ]


@dataclass
class EncodedRecords:
    """An encoded stream and where each record's frame starts (``offsets[i]:offsets[i+1]`` is frame ``i``)."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def tobytes(self) -> bytes:
        return self.data.tobytes()

    @property
    def nbytes(self) -> int:
        return int(self.data.size)


def encode_frames(
    n: int,
    features: Mapping[str, TensorInput] | None = None,
    label: Mapping[str, TensorInput] | None = None,
) -> EncodedRecords:
    """Encode ``n`` records whose ``features`` / ``label`` maps hold the given tensors (keys in order)."""
    if n < 0:
        raise ValueError("the number of records cannot be negative")
    record: list[_Piece] = []
    for field_no, mapping in ((1, features or {}), (2, label or {})):
        side = "features" if field_no == 1 else "label"
        for key, tensor in mapping.items():
            record += _entry_pieces(n, field_no, key, tensor, f"{side}[{key!r}]")
    record_len = _sum_lengths(record)
    if isinstance(record_len, int):
        too_big = record_len > MAX_RECORD_BYTES
    else:
        too_big = bool(record_len.size and record_len.max() > MAX_RECORD_BYTES)
    if too_big:
        raise ValueError(f"a record would exceed the recordIO limit of {MAX_RECORD_BYTES} bytes")
    pieces = [_const(MAGIC.to_bytes(4, "little"))]
    if isinstance(record_len, int):
        pieces.append(_const(record_len.to_bytes(4, "little")))
    else:
        pieces.append(_Piece("fixed32", 4, values=record_len))
    pieces += record
    pad = _pad4(record_len)
    pieces.append(_Piece("zeros", pad))
    return _assemble(n, pieces)


# Variable-length rows (sparse, int32) are written this many at a time into the one output buffer, and
# streams are parsed this many records at a time: the index arrays and intermediates of a chunk then
# stay in cache (measured: 15-40 % less time than whole-array passes at 200k sparse rows).
ENCODE_CHUNK_ROWS = 16384
DECODE_CHUNK_RECORDS = 8192


def _assemble(n: int, pieces: list[_Piece]) -> EncodedRecords:
    frame_len = _sum_lengths(pieces)
    if all(isinstance(p.lengths, (int, np.integer)) for p in pieces):
        stride = int(frame_len)
        out = np.empty(n * stride, dtype=_U8)
        _write_uniform(out.reshape(n, stride), pieces)
        return EncodedRecords(out, np.arange(n + 1, dtype=_I64) * stride)
    frame_len = np.broadcast_to(np.asarray(frame_len, dtype=_I64), (n,))
    offsets = np.zeros(n + 1, dtype=_I64)
    np.cumsum(frame_len, out=offsets[1:])
    out = np.zeros(int(offsets[-1]), dtype=_U8)
    cumulative = [_row_cumsum(p) for p in pieces]
    for a in range(0, n, ENCODE_CHUNK_ROWS):
        b = min(a + ENCODE_CHUNK_ROWS, n)
        chunk = pieces if (a, b) == (0, n) else [_slice_piece(p, a, b, c) for p, c in zip(pieces, cumulative)]
        _write_rows(out, offsets[a:b].copy(), chunk, b - a)
    return EncodedRecords(out, offsets)


def _write_rows(out: np.ndarray, pos: np.ndarray, pieces: list[_Piece], n: int) -> None:
    """Write rows whose frames start at ``pos``, piece after piece (small pieces in runs)."""
    kernels = _compiled()
    if kernels is not None:
        for p in pieces:
            _write_compiled(out, pos, p, n)
            pos += p.lengths
        return
    run: list[_Piece] = []
    for p in pieces + [None]:
        if p is not None and _is_small(p):
            run.append(p)
            continue
        if run:
            _write_small_run(out, pos, run, n)
            for q in run:
                pos += q.lengths
            run = []
        if p is not None:
            _write_scattered(out, pos, p, n)
            pos += p.lengths


_ALL_ROWS = np.empty(0, dtype=bool)


def _write_compiled(out: np.ndarray, pos: np.ndarray, p: _Piece, n: int) -> None:
    """Write one piece for ``n`` rows with the compiled loops: one pass per piece, no row grouping."""
    kernels = _compiled()
    present = _ALL_ROWS if p.present is None or p.present.all() else p.present
    if p.kind == "zeros":
        return  # the output starts zeroed
    if p.kind == "const":
        if p.data:
            kernels.write_const(out, pos, np.frombuffer(p.data, dtype=_U8), present)
    elif p.kind == "varint":
        kernels.write_varints(out, pos, np.asarray(p.values, dtype=_I64).view(np.uint64), present)
    elif p.kind == "fixed32":
        kernels.write_fixed_rows(out, pos, np.ascontiguousarray(p.values, dtype="<u4").view(_U8), 4)
    elif p.kind == "blob" and p.indptr is None:
        width = int(p.lengths)
        if width:
            kernels.write_fixed_rows(out, pos, np.ascontiguousarray(p.values).view(_U8).reshape(-1), width)
    else:  # ragged pieces: blob with indptr, vblob, keys2
        _write_scattered(out, pos, p, n)


def _row_cumsum(p: _Piece) -> np.ndarray | None:
    """Start of each row's bytes in a varint stream piece (to slice it by rows)."""
    if p.kind != "vblob":
        return None
    lengths = np.broadcast_to(np.asarray(p.lengths, dtype=_I64), (p.lengths.size if isinstance(
        p.lengths, np.ndarray) else p.values.size // max(int(p.lengths), 1),))
    return np.concatenate([[0], np.cumsum(lengths)])


def _slice_piece(p: _Piece, a: int, b: int, cumulative: np.ndarray | None) -> _Piece:
    """The rows ``[a, b)`` of a piece (per-row arrays sliced, flat arrays cut at the rows' elements)."""
    lengths = p.lengths[a:b] if isinstance(p.lengths, np.ndarray) else p.lengths
    present = p.present[a:b] if p.present is not None else None
    if p.kind in ("const", "zeros"):
        return _Piece(p.kind, lengths, data=p.data, present=present)
    if p.kind in ("varint", "fixed32"):
        return _Piece(p.kind, lengths, values=p.values[a:b], present=present)
    if p.kind == "vblob":
        return _Piece("vblob", lengths, values=p.values[cumulative[a]:cumulative[b]])
    if p.kind == "blob":
        if p.indptr is None:
            per_row = int(p.lengths) // p.values.dtype.itemsize
            return _Piece("blob", lengths, values=p.values[a * per_row:b * per_row])
        ia, ib = int(p.indptr[a]), int(p.indptr[b])
        return _Piece("blob", lengths, values=p.values[ia:ib], indptr=p.indptr[a:b + 1] - ia)
    if p.kind == "keys2":
        ia, ib = int(p.indptr[a]), int(p.indptr[b])
        if p.aux is None:  # compiled path: the keys and row starts are all it needs
            return _Piece("keys2", lengths, values=p.values[ia:ib], indptr=p.indptr[a:b + 1] - ia)
        two, kcsum = p.aux
        return _Piece("keys2", lengths, values=p.values[ia:ib], indptr=p.indptr[a:b + 1] - ia,
                      aux=(two[ia:ib], kcsum[ia:ib + 1] - kcsum[ia]))
    raise AssertionError(f"unknown piece kind {p.kind}")


def _is_small(p: _Piece) -> bool:
    """Pieces of at most a few bytes per row, written together as one run (see :func:`_write_small_run`)."""
    if p.kind in ("const", "varint", "fixed32", "zeros"):
        return True
    fixed = isinstance(p.lengths, (int, np.integer))
    return p.kind == "blob" and fixed and p.lengths <= 16 and p.indptr is None


def _write_small_run(out: np.ndarray, pos: np.ndarray, run: list[_Piece], n: int) -> None:
    """Write consecutive small pieces: rows are grouped by the byte widths of the pieces (their "layout"),
    each group is built as a small 2-D array by column slices and scattered with one fancy assignment."""
    # Zero padding at the end of a frame needs no writing (the output starts zeroed).
    while run and run[-1].kind == "zeros":
        run = run[:-1]
    if not run or n == 0:
        return
    widths = [np.broadcast_to(np.asarray(p.lengths, dtype=_I64), (n,)) for p in run]
    code = np.zeros(n, dtype=_I64)
    radix = 1
    for j, p in enumerate(run):
        if isinstance(p.lengths, (int, np.integer)):
            continue
        lo, hi = int(widths[j].min()), int(widths[j].max())
        if hi > lo:
            code += (widths[j] - lo) * radix
            radix *= hi - lo + 1
    if radix > 1:
        # Few distinct layouts: a counting sort of the small layout codes groups the rows.
        small = code.astype(np.uint16) if radix < 1 << 16 else code
        order = np.argsort(small, kind="stable")
        if radix < 1 << 20:
            counts = np.bincount(code, minlength=radix)
        else:
            counts = np.unique(code, return_counts=True)[1]
        groups = np.split(order, np.cumsum(counts[counts > 0])[:-1])
    else:
        groups = [None]
    for rows in groups:
        m = n if rows is None else rows.size
        if m == 0:
            continue
        w = [int(wj[0] if rows is None else wj[rows[0]]) for wj in widths]
        block = np.zeros((m, sum(w)), dtype=_U8)
        col = 0
        for p, width in zip(run, w):
            if width == 0:
                continue
            dst = block[:, col:col + width]
            if p.kind == "const":
                dst[:] = np.frombuffer(p.data, dtype=_U8)
            elif p.kind == "fixed32":
                vals = p.values if rows is None else p.values[rows]
                dst[:] = np.asarray(vals, dtype="<u4").view(_U8).reshape(m, 4)
            elif p.kind == "varint":
                vals = p.values if rows is None else p.values[rows]
                dst[:] = _varint_matrix(np.asarray(vals, dtype=_I64).view(np.uint64))[0]
            elif p.kind == "blob":
                raw = np.ascontiguousarray(p.values).view(_U8).reshape(n, width)
                dst[:] = raw if rows is None else raw[rows]
            col += width
        if block.shape[1] == 0:
            continue
        at = pos if rows is None else pos[rows]
        _rows_of_width(out, block.shape[1], writeable=True)[at] = block


def _write_uniform(out2d: np.ndarray, pieces: list[_Piece]) -> None:
    """All rows share one layout: constant pieces merge into runs of a template row, the rest are columns.

    Rows are written in blocks of about 1 MiB so that the several column writes of a block hit the cache
    and the output goes to memory once.
    """
    n, stride = out2d.shape
    template = np.zeros(stride, dtype=_U8)
    dynamic = np.zeros(stride, dtype=bool)
    columns: list[tuple[int, int, np.ndarray]] = []  # (first column, width, (n, width) uint8 source)
    col = 0
    for p in pieces:
        width = int(p.lengths)
        if width == 0:
            continue
        if p.kind == "const":
            template[col:col + width] = np.frombuffer(p.data, dtype=_U8)
        elif p.kind != "zeros":
            dynamic[col:col + width] = True
            if p.kind == "fixed32":
                src = np.asarray(p.values, dtype="<u4").view(_U8).reshape(n, 4)
            elif p.kind == "varint":
                src = _varint_matrix(np.asarray(p.values, dtype=_I64).view(np.uint64))[0]
            elif p.kind == "blob":
                src = np.ascontiguousarray(p.values).view(_U8).reshape(n, width)
            elif p.kind == "vblob":
                src = p.values.reshape(n, width)
            else:  # keys2
                src = _varint_stream(p.values.astype(np.uint64))[0].reshape(n, width)
            columns.append((col, width, src))
        col += width
    # One strided copy per run of constant bytes (headers, keys, padding) instead of one per piece.
    edges = np.flatnonzero(np.diff(np.concatenate([[True], dynamic, [True]]).astype(np.int8)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    block = max(1, (1 << 20) // max(stride, 1))
    for r0 in range(0, n, block):
        r1 = min(r0 + block, n)
        rows = out2d[r0:r1]
        for a, b in runs:
            rows[:, a:b] = template[a:b]
        for c, width, src in columns:
            rows[:, c:c + width] = src[r0:r1]


def _rows(present: np.ndarray | None, lengths: Lengths, n: int) -> np.ndarray | None:
    """Row indices a piece is written for (``None`` = all rows)."""
    if isinstance(lengths, np.ndarray):
        nz = lengths > 0
        return None if nz.all() else np.flatnonzero(nz)
    return None if lengths else np.empty(0, dtype=_I64)


def _write_scattered(out: np.ndarray, pos: np.ndarray, p: _Piece, n: int) -> None:
    kernels = _compiled()
    rows = _rows(p.present, p.lengths, n)
    if rows is not None and rows.size == 0:
        return
    at = pos if rows is None else pos[rows]
    if p.kind == "zeros":
        return
    if p.kind == "const":
        data = np.frombuffer(p.data, dtype=_U8)
        if data.size == 1:
            out[at] = data[0]
        else:
            out[at[:, None] + np.arange(data.size)] = data
    elif p.kind == "fixed32":
        vals = p.values if rows is None else p.values[rows]
        out[at[:, None] + np.arange(4)] = np.asarray(vals, dtype="<u4").view(_U8).reshape(-1, 4)
    elif p.kind == "varint":
        vals = p.values if rows is None else p.values[rows]
        mat, sizes = _varint_matrix(np.asarray(vals, dtype=_I64).view(np.uint64))
        if mat.shape[1] == 1:
            out[at] = mat[:, 0]
        else:
            mask = np.arange(mat.shape[1]) < sizes[:, None]
            out[(at[:, None] + np.arange(mat.shape[1]))[mask]] = mat[mask]
    elif p.kind == "vblob":
        lengths = np.broadcast_to(np.asarray(p.lengths, dtype=_I64), (n,))
        # The stream holds the rows' bytes back to back.
        _ragged_copy(out, pos, p.values, np.cumsum(lengths) - lengths, lengths)
    elif p.kind == "blob":
        _write_blob(out, pos, p, n)
    elif p.kind == "keys2":
        if kernels is not None:
            # Rows without keys write nothing, so every row's start can be passed as it is.
            kernels.write_keys2(out, pos, p.values, p.indptr)
            return
        two, kcsum = p.aux
        idx_dtype = np.int32 if out.size < 2**31 - 1 else _I64
        row_shift = (pos - kcsum[p.indptr[:-1]]).astype(idx_dtype)
        dst = kcsum[:-1].astype(idx_dtype) + _expand_rows(row_shift, p.indptr)
        keys = p.values
        out[dst] = (keys & 0x7F).astype(_U8) | (two.view(_U8) << 7)
        out[dst[two] + 1] = (keys[two] >> 7).astype(_U8)


def _expand_rows(per_row: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``per_row[i]`` repeated for each element of row ``i`` (CSR ``indptr``): a cumulative sum of jumps."""
    total = int(indptr[-1] - indptr[0])
    out = np.zeros(total, dtype=per_row.dtype)
    if total == 0:
        return out
    counts = np.diff(indptr)
    rows = np.flatnonzero(counts > 0)
    starts = indptr[rows] - indptr[0]
    vals = per_row[rows]
    out[starts[0]] = vals[0]
    out[starts[1:]] = np.diff(vals)
    return np.cumsum(out, out=out)


def _write_blob(out: np.ndarray, pos: np.ndarray, p: _Piece, n: int) -> None:
    """Copy each row's fixed-width elements (contiguous in the source) to its place in the output."""
    flat = np.ascontiguousarray(p.values)
    if flat.size == 0:
        return
    item = flat.dtype.itemsize
    nbytes = np.broadcast_to(np.asarray(p.lengths, dtype=_I64), (n,))
    src_off = (np.concatenate([[0], np.cumsum(nbytes[:-1])]) if p.indptr is None
               else np.asarray(p.indptr[:-1], dtype=_I64) * item)
    _ragged_copy(out, pos, flat.view(_U8), src_off, nbytes)


def encode_dense(
    features: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    feature_key: str = "values",
    label_key: str = "values",
) -> bytes:
    """Dense rows (``(n, k)``: float32, float64 or int) and optional labels (``(n,)``) -> recordIO bytes.

    Tensor types follow the dtypes as in the SageMaker Python SDK's ``write_numpy_to_dense_tensor``;
    float32 rows with float32 labels give the SageMaker-Spark SDK's bytes.
    """
    return encode_dense_frames(features, labels, feature_key=feature_key, label_key=label_key).tobytes()


def encode_dense_frames(
    features: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    feature_key: str = "values",
    label_key: str = "values",
) -> EncodedRecords:
    """:func:`encode_dense`, keeping the frame offsets (for request batching) and skipping the final copy."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (rows x columns), got shape {features.shape}")
    n = features.shape[0]
    label_map = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"labels must be a 1-D array of {n} values, got shape {labels.shape}")
        label_map = {label_key: labels}
    return encode_frames(n, {feature_key: features}, label_map)


def encode_csr(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    n_cols: int,
    labels: np.ndarray | None = None,
    *,
    feature_key: str = "values",
    label_key: str = "values",
) -> bytes:
    """CSR rows (+ optional labels) -> recordIO bytes, as ``write_spmatrix_to_sparse_tensor`` writes them."""
    return encode_csr_frames(data, indices, indptr, n_cols, labels,
                             feature_key=feature_key, label_key=label_key).tobytes()


def encode_csr_frames(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    n_cols: int,
    labels: np.ndarray | None = None,
    *,
    feature_key: str = "values",
    label_key: str = "values",
) -> EncodedRecords:
    """:func:`encode_csr`, keeping the frame offsets."""
    n = len(indptr) - 1
    label_map = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"labels must be a 1-D array of {n} values, got shape {labels.shape}")
        label_map = {label_key: labels}
    return encode_frames(n, {feature_key: Sparse(data, indices, indptr, n_cols)}, label_map)


def encode_records(
    n: int,
    features: Mapping[str, TensorInput] | None = None,
    label: Mapping[str, TensorInput] | None = None,
) -> bytes:
    """Any feature and label maps.

    E.g. a K-means answer: ``encode_records(n, label={"closest_cluster": c, "distance_to_cluster": d})``.
    """
    return encode_frames(n, features, label).tobytes()


# --------------------------------------------------------------------------------------------------
# Decoding: frames
# --------------------------------------------------------------------------------------------------


def _as_buffer(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(_U8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=_U8)


def _walk_frames(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame by frame; only used when the vectorized scan cannot prove the chain (or to locate an error)."""
    size = buf.size
    raw = buf.tobytes()
    starts: list[int] = []
    lengths: list[int] = []
    pos = 0
    while pos < size:
        if size - pos < 8:
            raise RecordIOError(f"truncated frame header: 8 bytes needed, {size - pos} left", pos)
        magic = int.from_bytes(raw[pos:pos + 4], "little")
        if magic != MAGIC:
            raise RecordIOError(f"bad magic number 0x{magic:08X}, expected 0x{MAGIC:08X}", pos)
        length = int.from_bytes(raw[pos + 4:pos + 8], "little")
        if pos + 8 + length > size:
            raise RecordIOError(
                f"truncated frame: the header announces a {length}-byte record, "
                f"{size - pos - 8} bytes left", pos)
        starts.append(pos + 8)
        lengths.append(length)
        pos += 8 + length + (-length) % 4
    return np.asarray(starts, dtype=_I64), np.asarray(lengths, dtype=_I64)


def frame_offsets(data) -> tuple[np.ndarray, np.ndarray]:
    """Payload start and length of every frame in a stream."""
    buf = _as_buffer(data)
    size = buf.size
    if size == 0:
        return np.empty(0, _I64), np.empty(0, _I64)
    if size < 8:
        return _walk_frames(buf)
    aligned = size - size % 4
    words = buf[:aligned].view("<u4")
    cand = np.flatnonzero(words == MAGIC).astype(_I64) * 4
    cand = cand[cand + 8 <= aligned]
    if cand.size and cand[0] == 0:
        lengths = words[cand // 4 + 1].astype(_I64)
        nxt = cand + 8 + lengths + (-lengths) % 4
        last_end = cand[-1] + 8 + lengths[-1]
        # A proven chain: frame 0 starts at 0, each frame ends where the next candidate starts and the
        # last one ends the stream (its padding may be missing). A magic-looking word inside a payload
        # breaks the chain and sends us to the frame-by-frame walk.
        if np.array_equal(nxt[:-1], cand[1:]) and (nxt[-1] == size or last_end == size):
            return cand + 8, lengths
    return _walk_frames(buf)


# --------------------------------------------------------------------------------------------------
# Decoding: lock-step protobuf parsing
# --------------------------------------------------------------------------------------------------


def _read_varints(buf: np.ndarray, pos: np.ndarray, limit: np.ndarray, what: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The varints starting at ``pos`` (each must end before ``limit``): values (uint64) and sizes."""
    b = buf[pos]
    val = (b & 0x7F).astype(np.uint64)
    size = np.ones(pos.size, dtype=_I64)
    idx = np.flatnonzero(b >= 0x80)
    k = 1
    while idx.size:
        if k == 10:
            raise RecordIOError(f"varint longer than 10 bytes in {what}", int(pos[idx[0]]))
        p = pos[idx] + k
        over = p >= limit[idx]
        if over.any():
            raise RecordIOError(f"truncated varint in {what}", int(pos[idx[over][0]]))
        b = buf[p]
        val[idx] |= (b & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        size[idx] += 1
        idx = idx[b >= 0x80]
        k += 1
    return val, size


@dataclass
class _Fields:
    """Every field occurrence found in a set of message segments, in (segment, position) order."""

    seg: np.ndarray
    field: np.ndarray
    wire: np.ndarray
    start: np.ndarray  # value bytes (for wire type 2: the payload, without its length)
    end: np.ndarray
    tag_at: np.ndarray

    def select(self, mask: np.ndarray) -> "_Fields":
        return _Fields(self.seg[mask], self.field[mask], self.wire[mask], self.start[mask], self.end[mask],
                       self.tag_at[mask])


def _scan(buf: np.ndarray, start: np.ndarray, end: np.ndarray, what: str) -> _Fields:
    cur = start.astype(_I64).copy()
    live = np.flatnonzero(cur < end)
    chunks: list[tuple[np.ndarray, ...]] = []
    while live.size:
        at = cur[live]
        lim = end[live]
        tag, tsize = _read_varints(buf, at, lim, what)
        fno = (tag >> np.uint64(3)).astype(_I64)
        wire = (tag & np.uint64(7)).astype(_I64)
        bad = (fno == 0) | (wire == 3) | (wire == 4) | (wire > 5)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            w = int(wire[i])
            reason = "field number 0" if fno[i] == 0 else (
                f"wire type {w} (groups are not used by record.proto)" if w in (3, 4)
                else f"invalid wire type {w}")
            raise RecordIOError(f"{reason} in {what}", int(at[i]))
        vstart = at + tsize
        vend = np.empty_like(vstart)
        m0, m1, m2, m5 = wire == 0, wire == 1, wire == 2, wire == 5
        if m0.any():
            _, vs = _read_varints(buf, vstart[m0], lim[m0], what)
            vend[m0] = vstart[m0] + vs
        vend[m1] = vstart[m1] + 8
        vend[m5] = vstart[m5] + 4
        if m2.any():
            ln, ls = _read_varints(buf, vstart[m2], lim[m2], what)
            vstart[m2] += ls
            vend[m2] = vstart[m2] + ln.astype(_I64)
        over = vend > lim
        if over.any():
            i = int(np.flatnonzero(over)[0])
            raise RecordIOError(
                f"truncated field {int(fno[i])} (wire type {int(wire[i])}) in {what}: it runs "
                f"{int(vend[i] - lim[i])} bytes past the end of its message", int(at[i]))
        chunks.append((live, fno, wire, vstart, vend, at))
        cur[live] = vend
        live = live[vend < lim]
    if not chunks:
        e = np.empty(0, _I64)
        return _Fields(e, e, e, e, e, e)
    cols = [np.concatenate([c[j] for c in chunks]) for j in range(6)]
    order = np.argsort(cols[0], kind="stable")  # chunks are position-ordered within a segment
    return _Fields(*(c[order] for c in cols))


def _expect_wire(f: _Fields, mask: np.ndarray, allowed: tuple[int, ...], name: str, what: str) -> None:
    bad = mask & ~np.isin(f.wire, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        names = {0: "varint", 1: "64-bit", 2: "length-delimited", 5: "32-bit"}
        expected = " or ".join(f"{w} ({names[w]})" for w in allowed)
        raise RecordIOError(f"wrong wire type {int(f.wire[i])} for {name} in {what}; expected {expected}",
                            int(f.tag_at[i]))


def _last_per_owner(owner: np.ndarray, n_owners: int) -> np.ndarray:
    """Index of the last occurrence per owner (-1 when none); occurrences are in order."""
    last = np.full(n_owners, -1, dtype=_I64)
    last[owner] = np.arange(owner.size)  # later assignments win for repeated indices
    return last


def _gather_bytes(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenate ``buf[start[i]:start[i] + length[i]]`` for every ``i``."""
    length = np.asarray(length, dtype=_I64)
    out = np.empty(int(length.sum()), dtype=_U8)
    _ragged_copy(out, np.cumsum(length) - length, buf, np.asarray(start, dtype=_I64), length)
    return out


def _gather_fixed(buf: np.ndarray, start: np.ndarray, length: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Concatenate fixed-width little-endian values held at arbitrary byte offsets (no alignment needed:
    the bytes are copied, then viewed as ``dtype``)."""
    return _gather_bytes(buf, start, length).view(dtype)


def _decode_packed(buf: np.ndarray, start: np.ndarray, length: np.ndarray, at: np.ndarray, what: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Values of the packed varint fields ``buf[start[i]:+length[i]]`` and the count per field."""
    kernels = _compiled()
    start = np.asarray(start, dtype=_I64)
    length = np.asarray(length, dtype=_I64)
    if kernels is not None and start.size:
        out = np.empty(int(length.sum()), dtype=np.uint64)
        counts = np.empty(start.size, dtype=_I64)
        status, _, written = kernels.decode_varint_segments(buf, start, length, out, counts)
        if status == kernels.VARINT_OK:
            return out[:written], counts
        # A corrupt field: the NumPy path below finds it again and raises with its offset.
    return _decode_varint_stream(_gather_bytes(buf, start, length), length, at, what)


def _decode_varint_stream(stream: np.ndarray, seg_len: np.ndarray, seg_at: np.ndarray, what: str
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Values of packed varints (segments back to back in ``stream``) and the count per segment."""
    if stream.size == 0:
        return np.empty(0, np.uint64), np.zeros(seg_len.size, _I64)
    term = stream < 0x80
    ends = np.cumsum(seg_len) - 1
    nonempty = seg_len > 0
    broken = nonempty & ~term[np.clip(ends, 0, None)]
    if broken.any():
        i = int(np.flatnonzero(broken)[0])
        raise RecordIOError(f"truncated varint at the end of the packed field starting here, in {what}",
                            int(seg_at[i]))
    if term.all():
        counts = seg_len.astype(_I64)
        return stream.astype(np.uint64), counts
    # Varint i starts right after terminator i-1.
    term_at = np.flatnonzero(term)
    starts = np.empty(term_at.size, dtype=term_at.dtype)
    starts[0] = 0
    starts[1:] = term_at[:-1] + 1
    # varints per segment: terminators up to each segment's last byte (the last byte is one, checked above)
    counts = np.zeros(seg_len.size, dtype=_I64)
    counts[nonempty] = np.diff(np.searchsorted(term_at, ends[nonempty], side="right"), prepend=0)
    two = np.flatnonzero(term_at - starts == 1)
    if two.size + starts.size == stream.size:
        # Every varint has 1 or 2 bytes (keys below 16384): read each from its first two bytes.
        values = (stream[starts] & 0x7F).astype(np.uint64)
        values[two] |= (stream[starts[two] + 1] & 0x7F).astype(np.uint64) << np.uint64(7)
        return values, counts
    # Longer varints: walk their bytes column by column (at most 10).
    sizes = term_at - starts + 1
    values = (stream[starts] & 0x7F).astype(np.uint64)
    idx = np.flatnonzero(sizes > 1)
    k = 1
    while idx.size:
        if k == 10:
            seg = int(np.searchsorted(np.cumsum(seg_len), starts[idx[0]], side="right"))
            raise RecordIOError(f"varint longer than 10 bytes in the packed field starting here, in {what}",
                                int(seg_at[seg]))
        values[idx] |= (stream[starts[idx] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        k += 1
        idx = idx[sizes[idx] > k]
    return values, counts


@dataclass
class TensorColumn:
    """One map key (e.g. ``features["values"]``) across all records of a stream.

    Record ``i``'s tensor has ``values[value_offsets[i]:value_offsets[i+1]]`` (and the same for keys and
    shape); ``kinds[i]`` is its Value type (0 when the record lacks the key). Mixed numeric types are
    widened to float64. ``Bytes`` values are in ``byte_values`` (a list per record).
    """

    kinds: np.ndarray
    values: np.ndarray
    value_offsets: np.ndarray
    keys: np.ndarray
    key_offsets: np.ndarray
    shape: np.ndarray
    shape_offsets: np.ndarray
    byte_values: list[list[bytes]] | None = None
    content_types: list[str | None] | None = None

    @property
    def n_records(self) -> int:
        return int(self.kinds.size)

    @property
    def present(self) -> np.ndarray:
        return self.kinds != KIND_NONE

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.value_offsets)

    @property
    def sparse_rows(self) -> np.ndarray:
        """Which records are sparse vectors, decided per record from its keys and shape.

        A record with keys is sparse. A record without keys is sparse too when it has a shape whose size
        differs from its number of values: that is a sparse vector with no non-zero value (the SageMaker
        SDK writes an all-zero row as a shape and nothing else). A dense record holds exactly as many
        values as its shape says, or has no shape at all.
        """
        sparse = np.diff(self.key_offsets) > 0
        shape_counts = np.diff(self.shape_offsets)
        has_shape = (shape_counts > 0) & ~sparse
        if has_shape.any():
            rows = np.flatnonzero(has_shape)
            # reduceat over each shaped record's dimensions (they are contiguous and non-empty)
            sizes = np.multiply.reduceat(self.shape.astype(np.uint64, copy=False),
                                         self.shape_offsets[:-1][rows].astype(np.intp))
            sparse[rows] = sizes != self.counts[rows].astype(np.uint64)
        return sparse

    @property
    def is_sparse(self) -> bool:
        """Whether any record is a sparse vector (then the column reads as CSR; dense records keep keys
        ``0..k-1``)."""
        return bool(self.keys.size) or bool(self.sparse_rows.any())

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def width(self) -> int:
        """Number of columns: the largest sparse shape (last dimension) or number of dense values."""
        width = 0
        if self.shape.size:
            has = np.diff(self.shape_offsets) > 0
            width = int(self.shape[self.shape_offsets[1:][has] - 1].max())
        counts = self.counts[~self.sparse_rows]  # a dense record has as many columns as values
        return max(width, int(counts.max()) if counts.size else 0)

    def full_keys(self) -> np.ndarray:
        """The column index of every value: the keys of sparse records, ``0..k-1`` for dense records."""
        counts = self.counts
        key_counts = np.diff(self.key_offsets)
        sparse_rows = self.sparse_rows
        if sparse_rows.any() and (key_counts[sparse_rows] != counts[sparse_rows]).any():
            bad = int(np.flatnonzero(sparse_rows & (key_counts != counts))[0])
            raise ValueError(f"record {bad} has {int(key_counts[bad])} keys for {int(counts[bad])} values")
        if sparse_rows.all() and self.keys.size == self.values.size:
            return self.keys.astype(_I64)
        positional = np.arange(self.values.size, dtype=_I64) - np.repeat(self.value_offsets[:-1], counts)
        if not sparse_rows.any():
            return positional
        is_sparse_value = np.repeat(sparse_rows, counts)
        positional[is_sparse_value] = self.keys.astype(_I64)
        return positional

    def to_dense(self, n_cols: int | None = None, fill: float = 0.0) -> np.ndarray:
        """Every record as a row of a ``(n, n_cols)`` array (sparse records are scattered by key)."""
        n = self.n_records
        width = self.width() if n_cols is None else int(n_cols)
        counts = self.counts
        if not self.is_sparse and (counts.size == 0 or (counts.min() == width and counts.max() == width)):
            return self.values.reshape(n, width)
        if not self.is_sparse:
            bad = int(np.flatnonzero(counts != width)[0])
            raise ValueError(f"record {bad} has {int(counts[bad])} values; "
                             f"a dense matrix needs {width} per record")
        keys = self.full_keys()
        if keys.size and keys.max() >= width:
            raise ValueError(f"a key ({int(keys.max())}) lies outside the {width} columns")
        out = np.full((n, width), fill, dtype=self.values.dtype)
        out[np.repeat(np.arange(n), counts), keys] = self.values
        return out

    def to_csr(self, n_cols: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """``(data, indices, indptr, n_cols)``; dense records are read as rows with keys ``0..k-1``."""
        width = self.width() if n_cols is None else int(n_cols)
        return self.values, self.full_keys(), self.value_offsets, width

    def scalars(self) -> np.ndarray:
        """One value per record (records without the key are NaN); more than one value is an error."""
        counts = self.counts
        if counts.size and counts.max() > 1:
            bad = int(np.flatnonzero(counts > 1)[0])
            raise ValueError(f"record {bad} holds {int(counts[bad])} values where a scalar was expected")
        out = np.full(self.n_records, np.nan, dtype=np.float64)
        out[counts == 1] = self.values
        return out


@dataclass
class DecodedRecords:
    """A decoded stream: one :class:`TensorColumn` per feature key and per label key."""

    n_records: int
    features: dict[str, TensorColumn] = field(default_factory=dict)
    label: dict[str, TensorColumn] = field(default_factory=dict)
    uid: list[str | None] | None = None
    metadata: list[str | None] | None = None
    configuration: list[str | None] | None = None

    def __len__(self) -> int:
        return self.n_records


def _empty_column(n: int) -> TensorColumn:
    z = np.zeros(n + 1, dtype=_I64)
    return TensorColumn(np.zeros(n, np.int8), np.empty(0, np.float32), z, np.empty(0, np.uint64), z.copy(),
                        np.empty(0, np.uint64), z.copy())


def decode(data) -> DecodedRecords:
    """Parse a whole recordIO-protobuf stream (bytes, bytearray, memoryview or uint8 array)."""
    buf = _as_buffer(data)
    fast = _decode_uniform(buf)
    if fast is not None:
        return fast
    starts, lengths = frame_offsets(buf)
    try:
        fast = _decode_canonical(buf, starts, lengths)
    except RecordIOError:
        fast = None  # the general parser finds and reports the problem precisely
    if fast is not None:
        return fast
    n = starts.size
    if n <= DECODE_CHUNK_RECORDS:
        return _decode_general(buf, starts, lengths)[0]
    return _concat_decoded([_decode_general(buf, starts[a:a + DECODE_CHUNK_RECORDS],
                                            lengths[a:a + DECODE_CHUNK_RECORDS])[0]
                            for a in range(0, n, DECODE_CHUNK_RECORDS)])


def _concat_columns(cols: list[TensorColumn | None], sizes: list[int]) -> TensorColumn:
    cols = [c if c is not None else _empty_column(m) for c, m in zip(cols, sizes)]

    def offsets(name: str) -> np.ndarray:
        parts, base = [np.zeros(1, dtype=_I64)], 0
        for c in cols:
            off = getattr(c, name)
            parts.append(off[1:] + base)
            base += int(off[-1])
        return np.concatenate(parts)

    present = [c.values for c in cols if c.values.size or c.kinds.any()]
    values = np.concatenate(present) if present else np.empty(0, np.float32)
    col = TensorColumn(
        np.concatenate([c.kinds for c in cols]), values, offsets("value_offsets"),
        np.concatenate([c.keys for c in cols]).astype(np.uint64, copy=False), offsets("key_offsets"),
        np.concatenate([c.shape for c in cols]).astype(np.uint64, copy=False), offsets("shape_offsets"))
    if any(c.byte_values is not None for c in cols):
        col.byte_values = [v for c in cols for v in (c.byte_values or [[] for _ in range(c.n_records)])]
        col.content_types = [v for c in cols for v in (c.content_types or [None] * c.n_records)]
    return col


def _concat_decoded(parts: list[DecodedRecords]) -> DecodedRecords:
    sizes = [p.n_records for p in parts]
    out = DecodedRecords(sum(sizes))
    for side in ("features", "label"):
        keys: list[str] = []
        for p in parts:
            keys += [k for k in getattr(p, side) if k not in keys]
        for key in keys:
            getattr(out, side)[key] = _concat_columns([getattr(p, side).get(key) for p in parts], sizes)
    for name in ("uid", "metadata", "configuration"):
        if any(getattr(p, name) is not None for p in parts):
            setattr(out, name, [v for p in parts for v in (getattr(p, name) or [None] * p.n_records)])
    return out


@dataclass
class _EntryHead:
    """Where one map entry's tensor parts are, for every record of a chunk (canonical layout)."""

    end: np.ndarray
    key: bytes
    kind: int
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (present, start, length) of values, keys, shape


def _decode_canonical(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> DecodedRecords | None:
    """Fast path for the layout every SDK writer produces, with varying lengths (sparse rows).

    Each record: one ``features`` entry, then optionally one ``label`` entry, each with the same key in
    every record, one float tensor (same type in every record) with optional packed values, keys and
    shape in field order. Anything else returns ``None`` and goes to the general parser.

    Headers are parsed chunk by chunk (cache-sized), then values and keys are gathered chunk by chunk
    straight into arrays allocated once for the whole stream.
    """
    n = starts.size
    if n == 0:
        return None
    heads: dict[str, list[_EntryHead]] = {"features": [], "label": []}
    bounds = list(range(0, n, DECODE_CHUNK_RECORDS)) + [n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        p = starts[a:b].astype(_I64)
        end = p + lengths[a:b]
        for tag, side in ((0x0A, "features"), (0x12, "label")):
            live = p < end
            if side == "label" and not live.any():
                break
            if not live.all() or not (buf[p] == tag).all():
                return None
            head = _canonical_head(buf, p, end, side)
            if head is None:
                return None
            heads[side].append(head)
            p = head.end
        if not np.array_equal(p, end):
            return None
    result = DecodedRecords(n)
    for side, chunks in heads.items():
        if not chunks:
            continue
        first = (chunks[0].key, chunks[0].kind)
        if len(chunks) != len(bounds) - 1 or any((h.key, h.kind) != first for h in chunks):
            return None
        column = _canonical_column(buf, chunks, n, f"a {side} entry")
        if column is None:
            return None
        target = result.features if side == "features" else result.label
        target[chunks[0].key.decode("utf-8", "replace")] = column
    return result


def _canonical_head(buf: np.ndarray, p: np.ndarray, lim: np.ndarray, side: str) -> _EntryHead | None:
    kernels = _compiled()
    n, size = p.size, buf.size
    if kernels is not None:
        e_end = np.empty(n, dtype=_I64)
        has = np.empty((3, n), dtype=bool)
        f_start = np.empty((3, n), dtype=_I64)
        f_len = np.empty((3, n), dtype=_I64)
        tag = 0x0A if side == "features" else 0x12
        ok, key_at, k0, t0 = kernels.canonical_entries(
            buf, np.asarray(p, dtype=_I64), np.asarray(lim, dtype=_I64), tag, e_end, has, f_start, f_len)
        if not ok:
            return None
        return _EntryHead(e_end, buf[key_at:key_at + k0].tobytes(), KIND_F32 if t0 == 0x12 else KIND_F64,
                          [(has[f], f_start[f], f_len[f]) for f in range(3)])
    what = f"a {side} entry"
    length, sz = _read_varints(buf, p + 1, lim, what)
    q = p + 1 + sz
    e_end = q + length.astype(_I64)
    if (e_end > lim).any() or not (buf[q] == 0x0A).all():
        return None
    k0 = int(buf[q[0] + 1])
    if k0 >= 0x80:
        return None
    # "0a <len> <key> 12": one 2-D gather compares every record's key bytes with record 0's
    head = buf[q[0]:q[0] + 3 + k0]
    if (q + 3 + k0 > e_end).any() or head[-1] != 0x12:
        return None
    if not (_rows_of_width(buf, 3 + k0)[q] == head).all():
        return None
    q = q + 2 + k0
    length, sz = _read_varints(buf, q + 1, e_end, what)
    q = q + 1 + sz
    if not np.array_equal(q + length.astype(_I64), e_end):
        return None
    t0 = int(buf[q[0]])
    if t0 not in (0x12, 0x1A) or not (buf[q] == t0).all():
        return None
    length, sz = _read_varints(buf, q + 1, e_end, what)
    q = q + 1 + sz
    if not np.array_equal(q + length.astype(_I64), e_end):
        return None
    parts = []
    for ftag in (0x0A, 0x12, 0x1A):
        has = (q < e_end) & (buf[np.minimum(q, size - 1)] == ftag)
        f_start = np.zeros(n, dtype=_I64)
        f_len = np.zeros(n, dtype=_I64)
        if has.any():
            hq = q[has]
            ln, lsz = _read_varints(buf, hq + 1, e_end[has], what)
            f_start[has] = hq + 1 + lsz
            f_len[has] = ln.astype(_I64)
            q = q.copy()
            q[has] = f_start[has] + f_len[has]
            if (q > e_end).any():
                return None
        parts.append((has, f_start, f_len))
    if not np.array_equal(q, e_end):
        return None
    return _EntryHead(e_end, head[2:2 + k0].tobytes(), KIND_F32 if t0 == 0x12 else KIND_F64, parts)


def _canonical_column(buf: np.ndarray, chunks: list[_EntryHead], n: int, what: str) -> TensorColumn | None:
    kernels = _compiled()
    kind = chunks[0].kind
    dtype = _KIND_DTYPE[kind]
    item = dtype.itemsize
    vlen = np.concatenate([h.parts[0][2] for h in chunks])
    if (vlen % item).any():
        return None
    counts = vlen // item
    value_offsets = np.zeros(n + 1, dtype=_I64)
    np.cumsum(counts, out=value_offsets[1:])
    has_keys = np.concatenate([h.parts[1][0] for h in chunks])
    # Sparse records carry one key per value; records without keys are dense.
    key_counts = np.where(has_keys, counts, 0)
    key_offsets = np.zeros(n + 1, dtype=_I64)
    np.cumsum(key_counts, out=key_offsets[1:])
    values = np.empty(int(value_offsets[-1]), dtype=dtype)
    keys = np.empty(int(key_offsets[-1]), dtype=np.uint64)
    shapes, shape_counts = [], []
    row = 0
    for h in chunks:
        m = h.end.size
        (vh, vs, vl), (kh, ks, kl), (sh, ss, sl) = h.parts
        va, vb = int(value_offsets[row]), int(value_offsets[row + m])
        # Straight into the output array (no intermediate byte stream).
        vl_h = vl[vh]
        _ragged_copy(values[va:vb].view(_U8), np.cumsum(vl_h) - vl_h, buf, vs[vh], vl_h)
        if kh.any():
            ka, kb = int(key_offsets[row]), int(key_offsets[row + m])
            if kernels is not None:
                kc = np.empty(int(kh.sum()), dtype=_I64)
                status, _, written = kernels.decode_varint_segments(buf, ks[kh], kl[kh], keys[ka:kb], kc)
                if status == kernels.VARINT_CORRUPT:
                    _decode_varint_stream(_gather_bytes(buf, ks[kh], kl[kh]), kl[kh], ks[kh], what)  # raises
                if status != kernels.VARINT_OK or written != kb - ka:
                    return None  # more keys than values: not the canonical layout
            else:
                raw, kc = _decode_varint_stream(_gather_bytes(buf, ks[kh], kl[kh]), kl[kh], ks[kh], what)
                if raw.size != kb - ka:
                    return None
                keys[ka:kb] = raw
            if not np.array_equal(kc, counts[row:row + m][kh]):
                return None
        per = np.zeros(m, dtype=_I64)
        if sh.any():
            raw, sc = _decode_packed(buf, ss[sh], sl[sh], ss[sh], what)
            per[sh] = sc
            shapes.append(raw)
        shape_counts.append(per)
        row += m
    shape_offsets = np.zeros(n + 1, dtype=_I64)
    np.cumsum(np.concatenate(shape_counts), out=shape_offsets[1:])
    shape = np.concatenate(shapes) if shapes else np.empty(0, np.uint64)
    return TensorColumn(np.full(n, kind, dtype=np.int8), values, value_offsets, keys, key_offsets, shape,
                        shape_offsets)


@dataclass
class _Layout:
    """Where record 0 keeps each column's values (to slice every record of a uniform stream the same way)."""

    side: str
    key: str
    segments: list[tuple[int, int]]
    dtype: np.dtype


def _decode_uniform(buf: np.ndarray) -> DecodedRecords | None:
    """Fast path: every frame has the same length and every byte outside the values equals record 0's."""
    size = buf.size
    if size < 8 or int(buf[:4].view("<u4")[0]) != MAGIC:
        return None
    length = int(buf[4:8].view("<u4")[0])
    stride = 8 + length + (-length) % 4
    if stride > size or size % stride:
        return None
    n = size // stride
    first, layouts = _decode_general(buf[:stride], np.array([8], _I64), np.array([length], _I64))
    if layouts is None or first.uid or first.metadata or first.configuration:
        return None
    mat = buf.reshape(n, stride)
    variable = sorted((a, b) for lay in layouts for a, b in lay.segments)
    edges = [0]
    for a, b in variable:
        edges += [a, b]
    edges.append(stride)
    for a, b in zip(edges[::2], edges[1::2]):
        if b > a and not (mat[:, a:b] == mat[0, a:b]).all():
            return None
    out = DecodedRecords(n)
    for lay in layouts:
        col0 = (first.features if lay.side == "features" else first.label)[lay.key]
        parts = [mat[:, a:b] for a, b in lay.segments]
        if parts:
            raw = np.ascontiguousarray(parts[0] if len(parts) == 1 else np.hstack(parts))
            values = raw.view(lay.dtype).reshape(-1)
        else:
            values = np.empty(0, lay.dtype)
        k = int(col0.counts[0])
        nk, ns = col0.keys.size, col0.shape.size
        col = TensorColumn(
            kinds=np.full(n, col0.kinds[0], dtype=np.int8),
            values=values,
            value_offsets=np.arange(n + 1, dtype=_I64) * k,
            keys=np.tile(col0.keys, n), key_offsets=np.arange(n + 1, dtype=_I64) * nk,
            shape=np.tile(col0.shape, n), shape_offsets=np.arange(n + 1, dtype=_I64) * ns,
        )
        (out.features if lay.side == "features" else out.label)[lay.key] = col
    return out


def _strings(buf: np.ndarray, f: _Fields, mask: np.ndarray, n: int) -> list[str | None] | None:
    if not mask.any():
        return None
    sel = f.select(mask)
    last = _last_per_owner(sel.seg, n)
    out: list[str | None] = [None] * n
    for rec in np.flatnonzero(last >= 0):
        i = last[rec]
        out[rec] = buf[sel.start[i]:sel.end[i]].tobytes().decode("utf-8", errors="replace")
    return out


def _decode_general(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray
                    ) -> tuple[DecodedRecords, list[_Layout] | None]:
    n = int(starts.size)
    ends = starts + lengths
    rec = _scan(buf, starts, ends, "Record")
    is_entry = (rec.field == 1) | (rec.field == 2)
    is_str = (rec.field >= 3) & (rec.field <= 5)
    _expect_wire(rec, is_entry, (2,), "a features/label map entry", "Record")
    _expect_wire(rec, is_str, (2,), "uid/metadata/configuration", "Record")
    result = DecodedRecords(n)
    result.uid = _strings(buf, rec, rec.field == 3, n)
    result.metadata = _strings(buf, rec, rec.field == 4, n)
    result.configuration = _strings(buf, rec, rec.field == 5, n)

    ent = rec.select(is_entry)  # entries in (record, position) order
    n_ent = ent.seg.size
    ent_rec, ent_side = ent.seg, ent.field
    fe = _scan(buf, ent.start, ent.end, "a map entry")
    kmask, vmask = fe.field == 1, fe.field == 2
    _expect_wire(fe, kmask, (2,), "the map key", "a map entry")
    _expect_wire(fe, vmask, (2,), "the map value", "a map entry")
    kf = fe.select(kmask)
    klast = _last_per_owner(kf.seg, n_ent)
    key_start = np.where(klast >= 0, kf.start[np.clip(klast, 0, None)] if kf.seg.size else 0, 0)
    key_len = np.where(klast >= 0, (kf.end - kf.start)[np.clip(klast, 0, None)] if kf.seg.size else 0, 0)

    vf = fe.select(vmask)  # Value messages; several occurrences of one entry merge
    val = _scan(buf, vf.start, vf.end, "a Value")
    val_ent = vf.seg[val.seg]
    oneof = np.isin(val.field, (KIND_F32, KIND_F64, KIND_I32, KIND_BYTES))
    _expect_wire(val, oneof, (2,), "a Value tensor", "a Value")
    val = val.select(oneof)
    val_ent = val_ent[oneof]
    last = _last_per_owner(val_ent, n_ent)
    ent_kind = np.zeros(n_ent, dtype=np.int8)
    has = last >= 0
    ent_kind[has] = val.field[last[has]]
    # A later oneof member replaces an earlier one; occurrences of the winner after that merge.
    winner = ent_kind[val_ent] == val.field
    pos = np.arange(val.seg.size)
    lastloser = np.full(n_ent, -1, dtype=_I64)
    if (~winner).any():
        np.maximum.at(lastloser, val_ent[~winner], pos[~winner])
    keep = winner & (pos > lastloser[val_ent])
    val = val.select(keep)
    val_ent = val_ent[keep]

    numeric = val.field != KIND_BYTES
    tens = _scan(buf, val.start[numeric], val.end[numeric], "a tensor")
    tens_ent = val_ent[numeric][tens.seg]
    tens_kind = val.field[numeric][tens.seg]

    # Group the entries by (side, key); the last entry of a key in a record wins (map semantics).
    key_group = np.full(n_ent, -1, dtype=_I64)
    names: list[str] = []
    todo = np.arange(n_ent)
    while todo.size:
        e0 = int(todo[0])
        kb = buf[key_start[e0]:key_start[e0] + key_len[e0]]
        same = key_len[todo] == kb.size
        for j in range(kb.size):
            cand = todo[same]
            same[same] = buf[key_start[cand] + j] == kb[j]
        key_group[todo[same]] = len(names)
        names.append(kb.tobytes().decode("utf-8", errors="replace"))
        todo = todo[~same]

    layouts: list[_Layout] | None = [] if n == 1 else None
    for side_no, side in ((1, "features"), (2, "label")):
        target = result.features if side_no == 1 else result.label
        for g, name in enumerate(names):
            members = np.flatnonzero((key_group == g) & (ent_side == side_no))
            if members.size == 0:
                continue
            recs = ent_rec[members]
            final = np.append(recs[1:] != recs[:-1], True)
            members, recs = members[final], recs[final]
            col, lay = _build_column(buf, n, members, recs, ent_kind, tens, tens_ent, tens_kind, val,
                                     val_ent, f"{side}[{name!r}]")
            target[name] = col
            if layouts is not None:
                if lay is None:
                    layouts = None
                else:
                    layouts.append(_Layout(side, name, lay[0], lay[1]))
    return result, layouts


def _build_column(buf, n, members, recs, ent_kind, tens: _Fields, tens_ent, tens_kind, val: _Fields, val_ent,
                  what) -> tuple[TensorColumn, tuple[list[tuple[int, int]], np.dtype] | None]:
    kinds = np.zeros(n, dtype=np.int8)
    kinds[recs] = ent_kind[members]
    ent_to_rec = np.full(ent_kind.size, -1, dtype=_I64)
    ent_to_rec[members] = recs
    mine = ent_to_rec[tens_ent] >= 0
    t = tens.select(mine)
    t_rec = ent_to_rec[tens_ent[mine]]
    t_kind = tens_kind[mine]
    order = np.argsort(t_rec, kind="stable")  # occurrences are already in order within an entry
    t = t.select(order)
    t_rec, t_kind = t_rec[order], t_kind[order]

    present_kinds = set(np.unique(kinds[kinds != KIND_NONE]).tolist()) - {KIND_BYTES}
    if len(present_kinds) <= 1:
        out_dtype = _KIND_DTYPE[present_kinds.pop()] if present_kinds else np.dtype(np.float32)
    else:
        out_dtype = np.dtype(np.float64)
    layout_ok = n == 1

    # values: field 1. Float32: packed (2) or single (5); Float64: packed or single (1);
    # Int32: packed or varint (0).
    vm = t.field == 1
    for kind, singles in ((KIND_F32, 5), (KIND_F64, 1), (KIND_I32, 0)):
        _expect_wire(t, vm & (t_kind == kind), (2, singles), f"{_KIND_NAME[kind]} values", what)
    value_parts = []
    segments: list[tuple[int, int]] = []
    for kind in (KIND_F32, KIND_F64, KIND_I32):
        m = vm & (t_kind == kind)
        if not m.any():
            continue
        s, e, at, r = t.start[m], t.end[m], t.tag_at[m], t_rec[m]
        ln = e - s
        if kind == KIND_I32:
            layout_ok = False
            raw, seg_counts = _decode_packed(buf, s, ln, at, what)
            vals = raw.astype(np.int64).astype(np.int32)  # int32 keeps the low 32 bits of the varint
        else:
            dt = _KIND_DTYPE[kind]
            bad = ln % dt.itemsize != 0
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise RecordIOError(f"packed {_KIND_NAME[kind]} values of {int(ln[i])} bytes in {what} "
                                    "are not a "
                                    f"multiple of {dt.itemsize}", int(at[i]))
            vals = _gather_fixed(buf, s, ln, dt)
            seg_counts = ln // dt.itemsize
            if layout_ok:
                segments += [(int(a), int(b)) for a, b in zip(s, e)]
        value_parts.append((r, vals, seg_counts))
    values, value_offsets = _merge_parts(value_parts, n, out_dtype)

    packed = []
    for fno, name in ((2, "keys"), (3, "shape")):
        m = t.field == fno
        _expect_wire(t, m, (0, 2), f"tensor {name}", what)
        if not m.any():
            packed.append((np.empty(0, np.uint64), np.zeros(n + 1, _I64)))
            continue
        s, e, at, r = t.start[m], t.end[m], t.tag_at[m], t_rec[m]
        raw, seg_counts = _decode_packed(buf, s, e - s, at, what)
        packed.append(_merge_parts([(r, raw, seg_counts)], n, np.dtype(np.uint64)))
    col = TensorColumn(kinds, values, value_offsets, packed[0][0], packed[0][1], packed[1][0], packed[1][1])

    if (kinds == KIND_BYTES).any():
        layout_ok = False
        _fill_bytes(buf, col, members, recs, val, val_ent, what)
    layout = (segments, out_dtype) if layout_ok and kinds[0] != KIND_NONE else None
    return col, layout


def _merge_parts(parts, n: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-segment value runs (each part: record per segment, values, count per segment)."""
    offsets = np.zeros(n + 1, dtype=_I64)
    if not parts:
        return np.empty(0, dtype), offsets
    if len(parts) == 1:
        r, vals, seg_counts = parts[0]
        offsets[1:] = np.bincount(r, weights=seg_counts, minlength=n).astype(_I64)
        np.cumsum(offsets, out=offsets)
        return vals.astype(dtype, copy=False), offsets
    # Mixed tensor types in one column: order the segments by record, then concatenate.
    recs = np.concatenate([p[0] for p in parts])
    seg_counts = np.concatenate([p[2] for p in parts])
    vals = np.concatenate([p[1].astype(dtype) for p in parts])
    seg_start = np.cumsum(seg_counts) - seg_counts
    order = np.argsort(recs, kind="stable")
    vals = vals[_segment_positions(seg_start[order], seg_counts[order])]
    offsets[1:] = np.bincount(recs, weights=seg_counts, minlength=n).astype(_I64)
    np.cumsum(offsets, out=offsets)
    return vals, offsets


def _fill_bytes(buf, col: TensorColumn, members, recs, val: _Fields, val_ent, what) -> None:
    """``Bytes`` values are rare (no built-in algorithm reads them): parse them per record."""
    col.byte_values = [[] for _ in range(col.n_records)]
    col.content_types = [None] * col.n_records
    ent_to_rec = dict(zip(members.tolist(), recs.tolist()))
    for i in np.flatnonzero(val.field == KIND_BYTES):
        r = ent_to_rec.get(int(val_ent[i]))
        if r is None:
            continue
        f = _scan(buf, val.start[i:i + 1], val.end[i:i + 1], f"Bytes in {what}")
        for fno, w, s, e, at in zip(f.field, f.wire, f.start, f.end, f.tag_at):
            if fno in (1, 2) and w != 2:
                raise RecordIOError(f"wrong wire type {int(w)} for Bytes field {int(fno)} in {what}", int(at))
            if fno == 1:
                col.byte_values[r].append(buf[s:e].tobytes())
            elif fno == 2:
                col.content_types[r] = buf[s:e].tobytes().decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------------
# Convenience readers
# --------------------------------------------------------------------------------------------------


def read_dense(data, feature_key: str = "values", label_key: str = "values",
               n_cols: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A stream -> ``(features (n, k), labels (n,) or None)``; sparse records are densified."""
    dec = decode(data)
    if feature_key not in dec.features:
        raise KeyError(f"no feature {feature_key!r} in the stream; keys: {sorted(dec.features)}")
    x = dec.features[feature_key].to_dense(n_cols)
    y = dec.label[label_key].scalars() if label_key in dec.label else None
    return x, y


def read_csr(data, feature_key: str = "values", label_key: str = "values", n_cols: int | None = None):
    """A stream -> ``((data, indices, indptr, n_cols), labels or None)``."""
    dec = decode(data)
    if feature_key not in dec.features:
        raise KeyError(f"no feature {feature_key!r} in the stream; keys: {sorted(dec.features)}")
    csr = dec.features[feature_key].to_csr(n_cols)
    y = dec.label[label_key].scalars() if label_key in dec.label else None
    return csr, y


# --------------------------------------------------------------------------------------------------
# The official protobuf runtime's view of record.proto (tests and the benchmark baseline)
# --------------------------------------------------------------------------------------------------


def protobuf_record_class():
    """The ``aialgs.data.Record`` message class of the official ``protobuf`` runtime.

    Built from a ``FileDescriptorProto`` that spells out ``record.proto`` field by field (no ``protoc``
    needed). Only tests and ``benchmarks/recordio.py`` use it: the codec itself never imports protobuf.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="smspark_record.proto", package="aialgs.data",
                                             syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def add(msg, name, number, label, ftype, type_name=None, packed=False, oneof=None):
        f = msg.field.add(name=name, number=number, label=label, type=ftype)
        if type_name:
            f.type_name = type_name
        if packed:
            f.options.packed = True
        if oneof is not None:
            f.oneof_index = oneof

    for name, vtype in (("Float32Tensor", F.TYPE_FLOAT), ("Float64Tensor", F.TYPE_DOUBLE),
                        ("Int32Tensor", F.TYPE_INT32)):
        m = fdp.message_type.add(name=name)
        add(m, "values", 1, rep, vtype, packed=True)
        add(m, "keys", 2, rep, F.TYPE_UINT64, packed=True)
        add(m, "shape", 3, rep, F.TYPE_UINT64, packed=True)
    m = fdp.message_type.add(name="Bytes")
    add(m, "value", 1, rep, F.TYPE_BYTES)
    add(m, "content_type", 2, opt, F.TYPE_STRING)
    m = fdp.message_type.add(name="Value")
    m.oneof_decl.add(name="value")
    add(m, "float32_tensor", 2, opt, F.TYPE_MESSAGE, ".aialgs.data.Float32Tensor", oneof=0)
    add(m, "float64_tensor", 3, opt, F.TYPE_MESSAGE, ".aialgs.data.Float64Tensor", oneof=0)
    add(m, "int32_tensor", 7, opt, F.TYPE_MESSAGE, ".aialgs.data.Int32Tensor", oneof=0)
    add(m, "bytes", 9, opt, F.TYPE_MESSAGE, ".aialgs.data.Bytes", oneof=0)
    m = fdp.message_type.add(name="Record")
    for entry_name in ("FeaturesEntry", "LabelEntry"):
        e = m.nested_type.add(name=entry_name)
        e.options.map_entry = True
        add(e, "key", 1, opt, F.TYPE_STRING)
        add(e, "value", 2, opt, F.TYPE_MESSAGE, ".aialgs.data.Value")
    add(m, "features", 1, rep, F.TYPE_MESSAGE, ".aialgs.data.Record.FeaturesEntry")
    add(m, "label", 2, rep, F.TYPE_MESSAGE, ".aialgs.data.Record.LabelEntry")
    add(m, "uid", 3, opt, F.TYPE_STRING)
    add(m, "metadata", 4, opt, F.TYPE_STRING)
    add(m, "configuration", 5, opt, F.TYPE_STRING)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aialgs.data.Record"))


def sdk_style_encode(record_cls, features, labels=None, sparse: bool = False) -> bytes:
    """Record-by-record encoding with the official runtime, the way the SageMaker Python SDK writes.

    ``features``: a 2-D array, or for ``sparse`` a ``(data, indices, indptr, n_cols)`` tuple. This is the
    reference the tests compare bytes with and the benchmark's baseline; it is deliberately per row.
    """
    out = bytearray()
    record = record_cls()

    def tensor(entry, arr):
        dt = np.asarray(arr).dtype
        if dt == np.float32:
            return entry.float32_tensor
        if dt == np.float64:
            return entry.float64_tensor
        return entry.int32_tensor

    def frame(payload: bytes) -> None:
        out.extend(MAGIC.to_bytes(4, "little"))
        out.extend(len(payload).to_bytes(4, "little"))
        out.extend(payload)
        out.extend(b"\x00" * ((-len(payload)) % 4))

    if sparse:
        data, indices, indptr, n_cols = features
        for i in range(len(indptr) - 1):
            record.Clear()
            row = data[indptr[i]:indptr[i + 1]]
            t = tensor(record.features["values"], data)
            t.values.extend(row.tolist())
            t.keys.extend(indices[indptr[i]:indptr[i + 1]].astype(np.uint64).tolist())
            if labels is not None:
                tensor(record.label["values"], labels).values.extend([labels[i].item()])
            t.shape.extend([n_cols])
            frame(record.SerializeToString())
    else:
        for i, row in enumerate(features):
            record.Clear()
            tensor(record.features["values"], features).values.extend(row.tolist())
            if labels is not None:
                tensor(record.label["values"], labels).values.extend([labels[i].item()])
            frame(record.SerializeToString())
    return bytes(out)
