"""MXNet NDArray list files (``mx.nd.save`` / ``mx.nd.load``, ``*.params``) in pure NumPy.

SageMaker's first-party algorithms (K-means, PCA, LDA, and inside a zip Linear Learner and FM) store
their models in this format, so reading and writing it is what lets a model move between SageMaker
and the embedded stack. No MXNet dependency: the format is small and fully specified by
``NDArray::Save``/``Load`` in MXNet's ``src/ndarray/ndarray.cc`` and dmlc-core's serializers.

File layout (little-endian; no padding anywhere)::

    uint64 0x112 (list magic) | uint64 reserved | uint64 N | N x record | uint64 M | M x (uint64 len, bytes)

M is 0 (``mx.nd.load`` returns a list) or N (it returns a dict, names paired with arrays by index).
A dense V2 record (what MXNet 0.11-1.9 writes) is::

    uint32 0xF993FAC9 | int32 stype=0 | int32 ndim | int64[ndim] shape | int32 dev_type | int32 dev_id
    | int32 type_flag | raw C-order data

The reader also accepts V1 (``0xF993FAC8``: no stype), legacy V0 records (no magic; uint32 ndim and
uint32 dims), V3 (``0xF993FACA``: NumPy-shape semantics, 0-d scalars) and sparse V2 records
(row_sparse and csr, which it densifies: model files are small and every consumer here wants dense
arrays). The writer writes what MXNet 1.x loads by default: dense V2 records, CPU context.

Every array is decoded with one ``np.frombuffer`` (no per-element Python), and a corrupt or
truncated file raises :class:`NDArrayFormatError` naming the byte offset where parsing stopped.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO, Mapping, Sequence

import numpy as np

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
# The first 8 bytes of every NDArray list file: how a reader tells it from a zip (``PK\x03\x04``).
FILE_SIGNATURE = struct.pack("<Q", LIST_MAGIC)

_STYPE_DEFAULT, _STYPE_ROW_SPARSE, _STYPE_CSR = 0, 1, 2
_AUX_COUNT = {_STYPE_DEFAULT: 0, _STYPE_ROW_SPARSE: 1, _STYPE_CSR: 2}
_CPU = 1
# More dimensions than any real tensor has: a larger ndim means the bytes are not a record, and
# refusing early keeps a corrupt count from driving a huge allocation.
_MAX_NDIM = 32

# mshadow TypeFlag -> little-endian NumPy dtype. 12 (bfloat16) has no NumPy dtype and is refused.
_TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<f2"), 3: np.dtype("u1"), 4: np.dtype("<i4"),
    5: np.dtype("i1"), 6: np.dtype("<i8"), 7: np.dtype("?"), 8: np.dtype("<i2"), 9: np.dtype("<u2"),
    10: np.dtype("<u4"), 11: np.dtype("<u8"),
}
_FLAG_OF_KIND = {(dt.kind, dt.itemsize): flag for flag, dt in _TYPE_FLAGS.items()}


class NDArrayFormatError(ValueError):
    """The bytes are not a valid MXNet NDArray list file; ``offset`` is where parsing stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"MXNet NDArray file: {message} (at byte offset {offset})")
        self.offset = offset


def is_ndarray_file(prefix: bytes) -> bool:
    """Whether ``prefix`` (at least the first 8 bytes of a file) starts an NDArray list file."""
    return bytes(prefix[:8]) == FILE_SIGNATURE


class _Reader:
    """A bounds-checked cursor over the file's bytes; every read names its offset on failure."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.view = memoryview(data).cast("B")
        self.pos = 0

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.pos + size > len(self.view):
            raise NDArrayFormatError(
                f"truncated: {what} needs {size} bytes, {len(self.view) - self.pos} left", self.pos)
        chunk = self.view[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def scalar(self, fmt: str, what: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def shape(self, ndim_fmt: str, dim_fmt: str, what: str, allow_scalar: bool = False) -> tuple[int, ...]:
        start = self.pos
        ndim = self.scalar(ndim_fmt, f"{what} ndim")
        if ndim < 0 or ndim > _MAX_NDIM:
            raise NDArrayFormatError(f"{what} has an invalid ndim {ndim}", start)
        dims = np.frombuffer(self.take(ndim * np.dtype(dim_fmt).itemsize, f"{what} dims"), dtype=dim_fmt)
        if (dims < 0).any():
            raise NDArrayFormatError(f"{what} has a negative (unknown) dimension {dims.tolist()}", start)
        return tuple(int(d) for d in dims)

    def array(self, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
        count = 1
        for d in shape:
            count *= d
        raw = self.take(count * dtype.itemsize, f"{what} data ({shape}, {dtype.name})")
        # One vectorized decode; .copy() so callers own writable arrays independent of the file buffer.
        return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _type_flag(reader: _Reader, what: str) -> np.dtype:
    start = reader.pos
    flag = reader.scalar("<i", f"{what} type flag")
    if flag not in _TYPE_FLAGS:
        name = "bfloat16 (no NumPy dtype)" if flag == 12 else "unknown"
        raise NDArrayFormatError(f"{what} has type flag {flag}: {name}", start)
    return _TYPE_FLAGS[flag]


def _read_record(reader: _Reader, index: int) -> np.ndarray:
    what = f"array {index}"
    start = reader.pos
    magic = reader.scalar("<I", f"{what} magic")
    if magic in (V2_MAGIC, V3_MAGIC):
        stype_at = reader.pos
        stype = reader.scalar("<i", f"{what} storage type")
        if stype not in _AUX_COUNT:
            raise NDArrayFormatError(f"{what} has an unknown storage type {stype}", stype_at)
        if magic == V3_MAGIC and stype != _STYPE_DEFAULT:
            raise NDArrayFormatError(f"{what} is a V3 record with sparse storage, which MXNet never writes",
                                     stype_at)
        storage_shape = reader.shape("<i", "<i8", f"{what} storage shape") if stype else ()
        shape_at = reader.pos
        ndim = reader.scalar("<i", f"{what} ndim")
        if magic == V2_MAGIC and ndim == 0:
            # V2 writes ndim 0 for an empty ("none") handle, which holds no array at all.
            raise NDArrayFormatError(f"{what} is an empty (none) NDArray", shape_at)
        reader.pos = shape_at
        shape = reader.shape("<i", "<i8", f"{what} shape")
        reader.take(8, f"{what} context")  # dev_type, dev_id: where it lived; a NumPy array has no device
        dtype = _type_flag(reader, what)
        if stype == _STYPE_DEFAULT:
            return reader.array(dtype, shape, what)
        return _read_sparse(reader, what, stype, storage_shape, shape, dtype)
    if magic == V1_MAGIC:
        shape = reader.shape("<I", "<i8", f"{what} shape")
    elif magic <= _MAX_NDIM:
        # Legacy (pre-2017) record: no magic, the first uint32 *is* ndim, dims are uint32.
        reader.pos = start
        shape = reader.shape("<I", "<I", f"{what} shape")
    else:
        raise NDArrayFormatError(f"{what} starts with an unknown record magic 0x{magic:08X}", start)
    if not shape:
        raise NDArrayFormatError(f"{what} is an empty (none) NDArray", start)
    reader.take(8, f"{what} context")
    return reader.array(_type_flag(reader, what), shape, what)


def _read_sparse(reader: _Reader, what: str, stype: int, storage_shape: tuple[int, ...],
                 shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Densify a row_sparse or csr record (aux types and shapes, data, then aux data)."""
    aux: list[tuple[np.dtype, tuple[int, ...]]] = []
    for i in range(_AUX_COUNT[stype]):
        aux.append((_type_flag(reader, f"{what} aux {i}"), reader.shape("<i", "<i8", f"{what} aux {i} shape")))
    # MXNet writes a zero-size storage shape for arrays made with .tostype(); it recomputes the real one
    # from the aux shapes on load, and so must we (row_sparse: rows = len(idx); csr: nnz = len(indices)).
    if int(np.prod(storage_shape)) == 0:
        storage_shape = ((aux[0][1][0],) + tuple(shape[1:])) if stype == _STYPE_ROW_SPARSE else aux[1][1]
    data_at = reader.pos
    values = reader.array(dtype, tuple(storage_shape), f"{what} data")
    aux_data = [reader.array(t, s, f"{what} aux {i} data") for i, (t, s) in enumerate(aux)]
    dense = np.zeros(shape, dtype=values.dtype)
    try:
        if any(a.size and a.min() < 0 for a in aux_data):
            raise ValueError("negative index")  # NumPy would wrap it around silently
        if stype == _STYPE_ROW_SPARSE:
            dense[aux_data[0].astype(np.int64)] = values
        else:
            if len(shape) != 2:
                raise ValueError(f"a csr array must be 2-D, got shape {shape}")
            indptr, indices = aux_data[0].astype(np.int64), aux_data[1].astype(np.int64)
            if indptr.size != shape[0] + 1 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.size:
                raise ValueError("its indptr does not describe its indices")
            rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
            dense[rows, indices] = values
    except (IndexError, ValueError) as exc:
        raise NDArrayFormatError(f"{what} has inconsistent sparse indices: {exc}", data_at) from None
    return dense


def loads(data: bytes | bytearray | memoryview) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Parse an NDArray list file: a list when it has no names, else a dict (as ``mx.nd.load``)."""
    reader = _Reader(data)
    magic = reader.scalar("<Q", "list magic")
    if magic != LIST_MAGIC:
        head = bytes(reader.view[:4])
        hint = " (this is a zip archive)" if head == b"PK\x03\x04" else ""
        raise NDArrayFormatError(f"not an NDArray list file: magic 0x{magic:X}, expected 0x112{hint}", 0)
    reader.take(8, "reserved field")  # MXNet reads it and ignores the value
    count_at = reader.pos
    count = reader.scalar("<Q", "array count")
    # Each record is at least 16 bytes; a larger count cannot fit and would only allocate.
    if count * 16 > len(reader.view) - reader.pos:
        raise NDArrayFormatError(f"array count {count} cannot fit in the file", count_at)
    arrays = [_read_record(reader, i) for i in range(count)]
    names_at = reader.pos
    n_names = reader.scalar("<Q", "name count")
    if n_names not in (0, count):
        raise NDArrayFormatError(f"{n_names} names for {count} arrays (must be 0 or equal)", names_at)
    names = []
    for i in range(n_names):
        length = reader.scalar("<Q", f"name {i} length")
        at = reader.pos
        try:
            names.append(bytes(reader.take(length, f"name {i}")).decode("utf-8"))
        except UnicodeDecodeError:
            raise NDArrayFormatError(f"name {i} is not UTF-8", at) from None
    if reader.pos != len(reader.view):
        raise NDArrayFormatError(f"{len(reader.view) - reader.pos} unexpected bytes after the names", reader.pos)
    if not n_names:
        return arrays
    if len(set(names)) != len(names):
        raise NDArrayFormatError("duplicate array names", names_at)
    return dict(zip(names, arrays))


def _record_header(array: np.ndarray) -> bytes:
    flag = _FLAG_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if flag is None:
        raise TypeError(f"MXNet NDArray files cannot hold dtype {array.dtype}")
    return (struct.pack("<Iii", V2_MAGIC, _STYPE_DEFAULT, array.ndim)
            + np.asarray(array.shape, dtype="<i8").tobytes()
            + struct.pack("<iii", _CPU, 0, flag))


def _as_record(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"MXNet NDArray files cannot hold dtype {a.dtype}")
    if a.ndim == 0:
        a = a.reshape(1)  # V2 reads ndim 0 as an empty handle: scalars are stored as shape (1,)
    if a.ndim > _MAX_NDIM:
        raise ValueError(f"an array of {a.ndim} dimensions is more than an NDArray file holds here")
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def dump(arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray], fh: BinaryIO) -> None:
    """Write ``arrays`` to ``fh`` as ``mx.nd.save`` does: a list unnamed, a mapping named in its order."""
    if isinstance(arrays, Mapping):
        names: list[str] = [str(k) for k in arrays]
        values = [_as_record(v) for v in arrays.values()]
    else:
        names, values = [], [_as_record(v) for v in arrays]
    fh.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(values)))
    for value in values:
        fh.write(_record_header(value))
        if value.size:  # (a zero-size array has no data bytes, and memoryview refuses to cast it)
            fh.write(memoryview(value).cast("B"))  # the array's own buffer, no per-element work
    fh.write(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        fh.write(struct.pack("<Q", len(encoded)) + encoded)


def dumps(arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> bytes:
    """The bytes :func:`dump` writes."""
    out = io.BytesIO()
    dump(arrays, out)
    return out.getvalue()
