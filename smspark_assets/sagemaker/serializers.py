"""Request serializers: a batch of feature rows -> the bytes of one or more ``InvokeEndpoint`` bodies.

A serializer works on a whole batch (a dense ``(n, k)`` array or CSR rows, e.g. the features column of
an Arrow record batch handed over by Spark's ``mapInArrow``) and returns :class:`SerializedRecords`:
every record's bytes back to back plus the record boundaries, so that :mod:`.batching` can cut request
bodies of at most 5 MiB at record boundaries without serializing anything twice.

Content types (the SageMaker-Spark SDK's, ``reference/sagemaker_contracts.md`` §1.8 and §3.1):

* ``application/x-recordio-protobuf``: one Record per row, ``features["values"]`` only (float32 by default,
  as the Spark SDK writes);
* ``text/x-libsvm``: ``"<label> <index>:<value> ..."`` per row. **Indices are 1-based** (``index_base=1``), as
  the SageMaker-Spark SDK writes them for training and for inference; the channel writer in
  :mod:`.spark_channels` uses the same default so both sides agree. Unlabeled rows get label ``0``;
* ``text/csv``: the dense feature values, comma-separated, no label column
  (:meth:`CSVSerializer.serialize_table` writes Arrow columns of mixed numeric types with missing values,
  as the scoring job sends them to XGBoost);
* ``application/json``: ``{"instances": [{"features": [...]}, ...]}`` (sparse rows:
  ``{"data": {"features": {"keys": [...], "shape": [n], "values": [...]}}}``);
* ``application/jsonlines``: one such instance per line.

Numbers are formatted by Arrow's shortest round-trip formatting (``0.1`` stays ``0.1`` for float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smspark_assets.sagemaker import recordio
from smspark_assets.sagemaker.recordio import Sparse

__all__ = [
    "Features", "SerializedRecords", "RequestSerializer", "RecordIOProtobufSerializer", "LibSVMSerializer",
    "CSVSerializer", "JSONSerializer", "JSONLinesSerializer", "features_from_arrow", "labels_from_arrow",
    "serializer_for", "CONTENT_TYPES", "densify",
]

Features = Union[np.ndarray, Sparse]

RECORDIO = recordio.CONTENT_TYPE
LIBSVM = "text/x-libsvm"
CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CONTENT_TYPES = (RECORDIO, LIBSVM, CSV, JSON, JSONLINES)


@dataclass
class SerializedRecords:
    """Serialized records back to back: record ``i`` is ``data[offsets[i]:offsets[i+1]]``.

    A request body for records ``[start, stop)`` is ``prefix + data[...] + suffix``; for JSON each record
    carries a trailing ``separator`` (a comma) that the last record of a body drops.
    """

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1
    content_type: str
    prefix: bytes = b""
    suffix: bytes = b""
    separator: bytes = b""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def record_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def body_size(self, start: int, stop: int) -> int:
        return len(self.prefix) + len(self.suffix) + int(self.offsets[stop] - self.offsets[start]) - (
            len(self.separator) if stop > start else 0)

    def body(self, start: int = 0, stop: int | None = None) -> bytes:
        stop = len(self) if stop is None else stop
        end = int(self.offsets[stop]) - (len(self.separator) if stop > start else 0)
        return self.prefix + self.data[int(self.offsets[start]):end].tobytes() + self.suffix


def _dense_or_sparse(features: Features) -> Features:
    if isinstance(features, Sparse):
        return features
    if hasattr(features, "tocsr"):
        return Sparse.from_scipy(features)
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-D array (rows x columns) or sparse rows, "
                         f"got shape {arr.shape}")
    return arr


def _check_finite(values: np.ndarray, content_type: str) -> None:
    if values.dtype.kind == "f" and values.size and not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
        raise ValueError(f"{content_type} cannot carry NaN or infinite values "
                         f"(found one at flat position {bad})")


def _numbers(values: np.ndarray) -> pa.Array:
    """Numbers as Arrow strings (shortest round-trip form)."""
    values = np.ascontiguousarray(values)
    if values.dtype.kind not in "fiu":
        raise ValueError(f"features must be numeric, got dtype {values.dtype}")
    return pa.array(values).cast(pa.string())


def _joined(tokens: pa.Array, offsets: np.ndarray, sep: str) -> pa.Array:
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), tokens)
    return pc.binary_join(lists, sep)


def _wrap(strings: pa.Array, before: str, after: str) -> pa.Array:
    if before:
        strings = pc.binary_join_element_wise(before, strings, "")
    if after:
        strings = pc.binary_join_element_wise(strings, after, "")
    return strings


def _from_strings(strings: pa.Array, content_type: str, **framing) -> SerializedRecords:
    """Arrow strings (one per record) -> bytes + offsets, straight from Arrow's buffers."""
    strings = strings.cast(pa.large_string()) if not pa.types.is_large_string(strings.type) else strings
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    n = len(strings)
    _, off_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64, count=n + 1, offset=strings.offset * 8).copy()
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    data = data[offsets[0]:offsets[-1]]
    return SerializedRecords(data, offsets - offsets[0], content_type, **framing)


class RequestSerializer:
    """Base: ``serialize(features, labels=None) -> SerializedRecords``."""

    content_type: str = ""

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        raise NotImplementedError


class RecordIOProtobufSerializer(RequestSerializer):
    """One Record per row, ``features["values"]`` only, as ``ProtobufRequestRowSerializer`` sends."""

    content_type = RECORDIO

    def __init__(self, dtype: str = "float32", feature_key: str = "values") -> None:
        if dtype not in ("float32", "float64", "int32"):
            raise ValueError(f"dtype {dtype!r} is not supported; allowed: float32, float64, int32")
        self.dtype = dtype
        self.feature_key = feature_key

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        features = _dense_or_sparse(features)
        if isinstance(features, Sparse):
            tensor = Sparse(features.data, features.indices, features.indptr, features.n_cols, self.dtype)
            n = len(features.indptr) - 1
        else:
            tensor = recordio.Dense(features, self.dtype)
            n = features.shape[0]
        enc = recordio.encode_frames(n, {self.feature_key: tensor})
        return SerializedRecords(enc.data, enc.offsets, self.content_type)


def _csr_parts(features: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    if isinstance(features, Sparse):
        indptr = np.asarray(features.indptr, dtype=np.int64)
        start, stop = int(indptr[0]), int(indptr[-1])
        return (np.asarray(features.data)[start:stop], np.asarray(features.indices)[start:stop],
                indptr - start, int(features.n_cols))
    n, k = features.shape
    # Dense rows become sparse rows of their non-zero entries (libsvm only lists active entries).
    rows, cols = np.nonzero(features)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return features[rows, cols], cols, indptr, k


class LibSVMSerializer(RequestSerializer):
    """``<label> <index>:<value> ...`` rows with ``index_base`` (1 by default, like the Spark SDK)."""

    content_type = LIBSVM

    def __init__(self, index_base: int = 1) -> None:
        if index_base not in (0, 1):
            raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
        self.index_base = index_base

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        data, indices, indptr, _ = _csr_parts(_dense_or_sparse(features))
        n = len(indptr) - 1
        tokens = pc.binary_join_element_wise(
            _numbers(np.asarray(indices, dtype=np.int64) + self.index_base), _numbers(data), ":")
        body = _joined(tokens, indptr, " ")
        if labels is None:
            label_str = pa.array(np.zeros(n, dtype=np.int8)).cast(pa.string())
        else:
            labels = np.asarray(labels)
            if labels.shape != (n,):
                raise ValueError(f"labels must be a 1-D array of {n} values, got shape {labels.shape}")
            label_str = _numbers(labels)
        lines = pc.utf8_rtrim(pc.binary_join_element_wise(label_str, body, " "), characters=" ")
        return _from_strings(_wrap(lines, "", "\n"), self.content_type)


class CSVSerializer(RequestSerializer):
    """Dense feature values, comma-separated, one row per line, no label (the Spark SDK's
    ``UnlabeledCSVRequestRowSerializer``)."""

    content_type = CSV

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        features = _dense_or_sparse(features)
        if isinstance(features, Sparse):
            features = densify(features)
        n, k = features.shape
        lines = _joined(_numbers(features.reshape(-1)), np.arange(n + 1, dtype=np.int64) * k, ",")
        return _from_strings(_wrap(lines, "", "\n"), self.content_type)

    def serialize_table(self, table: pa.Table | pa.RecordBatch, columns: Sequence[str]) -> SerializedRecords:
        """The rows of ``table[columns]`` as ``text/csv`` records, written by one vectorized Arrow CSV writer.

        What the scoring path needs beyond :meth:`serialize`: Arrow columns of mixed types, straight from
        a Spark ``mapInArrow`` batch, with missing values.

        * floating-point columns are sent as **float32** in their shortest round-trip form: XGBoost (like
          every built-in algorithm) computes in float32, and a float32's shortest decimal parses back to
          the same float32, so predictions equal those of the double values while the body is about half
          as long;
        * booleans are sent as ``0``/``1``, integers as they are;
        * nulls (and NaN) become empty cells, which the XGBoost container reads as missing values.

        Record boundaries are the positions of the newlines (numbers never contain one), so the result
        can be cut into request bodies by :func:`~smspark_assets.sagemaker.batching.plan_batches`.
        """
        columns = list(columns)
        if not columns:
            raise ValueError("serialize_table needs at least one feature column")
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ValueError(f"feature column(s) {missing} not in the table; available: {table.column_names}")
        wire = pa.table({c: _csv_wire_column(c, table.column(c)) for c in columns})
        sink = pa.BufferOutputStream()
        pacsv.write_csv(wire, sink, pacsv.WriteOptions(include_header=False, quoting_style="none",
                                                      batch_size=65536))
        data = np.frombuffer(sink.getvalue(), dtype=np.uint8)
        ends = np.flatnonzero(data == _NEWLINE) + 1
        if ends.size != table.num_rows:
            raise RuntimeError(f"CSV serialization produced {ends.size} lines for {table.num_rows} rows")
        offsets = np.zeros(ends.size + 1, dtype=np.int64)
        offsets[1:] = ends
        return SerializedRecords(data, offsets, self.content_type)


_NEWLINE = ord("\n")


def _csv_wire_column(name: str, col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A feature column as it goes on the wire: floats as float32, booleans as 0/1, integers unchanged."""
    t = col.type
    if pa.types.is_floating(t):
        # safe=False: narrowing to float32 is the point (see serialize_table), not a loss to refuse.
        return pc.cast(col, pa.float32(), safe=False)
    if pa.types.is_boolean(t):
        return pc.cast(col, pa.int8())
    if pa.types.is_integer(t):
        return col
    raise ValueError(f"feature column {name!r} has type {t}; text/csv carries numeric columns only "
                     "(integers, floating point, booleans)")


def densify(sp: Sparse) -> np.ndarray:
    """CSR rows -> a dense ``(n, n_cols)`` array."""
    indptr = np.asarray(sp.indptr, dtype=np.int64)
    n = len(indptr) - 1
    start = int(indptr[0])
    counts = np.diff(indptr)
    out = np.zeros((n, int(sp.n_cols)), dtype=np.asarray(sp.data).dtype)
    stop = int(indptr[-1])
    out[np.repeat(np.arange(n), counts), np.asarray(sp.indices)[start:stop]] = np.asarray(sp.data)[start:stop]
    return out


def _json_instances(features: Features) -> pa.Array:
    features = _dense_or_sparse(features)
    if isinstance(features, Sparse):
        data, indices, indptr, n_cols = _csr_parts(features)
        _check_finite(np.asarray(data), JSON)
        keys = _joined(_numbers(np.asarray(indices, dtype=np.int64)), indptr, ",")
        vals = _joined(_numbers(np.asarray(data)), indptr, ",")
        head = pc.binary_join_element_wise('{"data":{"features":{"keys":[', keys, "")
        mid = pc.binary_join_element_wise(head, f'],"shape":[{n_cols}],"values":[', "")
        return pc.binary_join_element_wise(pc.binary_join_element_wise(mid, vals, ""), "]}}}", "")
    _check_finite(features, JSON)
    n, k = features.shape
    vals = _joined(_numbers(features.reshape(-1)), np.arange(n + 1, dtype=np.int64) * k, ",")
    return _wrap(vals, '{"features":[', "]}")


class JSONSerializer(RequestSerializer):
    """``{"instances": [...]}`` bodies (records are joined by commas inside one JSON document)."""

    content_type = JSON

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        return _from_strings(_wrap(_json_instances(features), "", ","), self.content_type,
                             prefix=b'{"instances":[', suffix=b"]}", separator=b",")


class JSONLinesSerializer(RequestSerializer):
    """One JSON instance per line."""

    content_type = JSONLINES

    def serialize(self, features: Features, labels: np.ndarray | None = None) -> SerializedRecords:
        return _from_strings(_wrap(_json_instances(features), "", "\n"), self.content_type)


def serializer_for(content_type: str, **options) -> RequestSerializer:
    """The serializer for a request content type (``text/libsvm`` is accepted for ``text/x-libsvm``)."""
    base = content_type.split(";")[0].strip().lower()
    table = {RECORDIO: RecordIOProtobufSerializer, LIBSVM: LibSVMSerializer, "text/libsvm": LibSVMSerializer,
             CSV: CSVSerializer, JSON: JSONSerializer, JSONLINES: JSONLinesSerializer,
             "application/jsonl": JSONLinesSerializer}
    if base not in table:
        raise ValueError(f"no serializer for content type {content_type!r}; "
                         f"allowed: {', '.join(CONTENT_TYPES)}")
    return table[base](**options)


# --------------------------------------------------------------------------------------------------
# Arrow columns (what Spark's mapInArrow hands over) -> features
# --------------------------------------------------------------------------------------------------


def features_from_arrow(column: pa.Array | pa.ChunkedArray, dtype: str | None = None) -> Features:
    """A features column -> a dense ``(n, k)`` array or CSR rows, without touching rows one by one.

    Accepted Arrow types:

    * ``list`` / ``large_list`` / ``fixed_size_list`` of numbers (a Spark ``array<double|float>`` column):
      dense, every row the same length;
    * the struct a Spark ML ``Vector`` travels as (``type: int8`` 0 = sparse / 1 = dense, ``size``,
      ``indices``, ``values``): dense when every row is dense, CSR otherwise.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        bad = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"the features column has a null at row {bad}; every row needs a feature vector")
    t = column.type
    if pa.types.is_struct(t):
        return _vectors_from_struct(column, dtype)
    if pa.types.is_fixed_size_list(t):
        n, k = len(column), t.list_size
        flat = column.flatten().to_numpy(zero_copy_only=False)
        out = flat.reshape(n, k)
        return out.astype(dtype) if dtype else out
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offsets = column.offsets.to_numpy()
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        n = len(column)
        k = int(lengths[0]) if n else 0
        if n and (lengths != k).any():
            bad = int(np.flatnonzero(lengths != k)[0])
            raise ValueError(f"array features must all have the same length: row 0 has {k}, row {bad} has "
                             f"{int(lengths[bad])}")
        flat = column.flatten().to_numpy(zero_copy_only=False)
        out = flat.reshape(n, k)
        return out.astype(dtype) if dtype else out
    raise ValueError(f"unsupported features column type {t}; allowed: array<double|float> (list), a Spark ML "
                     "Vector (struct<type,size,indices,values>)")


def _vectors_from_struct(column: pa.StructArray, dtype: str | None) -> Features:
    names = {column.type.field(i).name for i in range(column.type.num_fields)}
    if not {"type", "size", "indices", "values"} <= names:
        raise ValueError(f"a struct features column must be a Spark ML Vector (type, size, indices, values); "
                         f"got fields {sorted(names)}")
    kinds = column.field("type").to_numpy(zero_copy_only=False)
    values = column.field("values")
    v_off = values.offsets.to_numpy()
    v_flat = values.flatten().to_numpy(zero_copy_only=False)
    v_off = v_off - v_off[0]
    n = len(column)
    if n and (kinds == 1).all():
        lengths = np.diff(v_off)
        k = int(lengths[0])
        if (lengths != k).any():
            bad = int(np.flatnonzero(lengths != k)[0])
            raise ValueError(f"dense vectors must all have the same size: row 0 has {k}, "
                             f"row {bad} has {int(lengths[bad])}")
        out = v_flat.reshape(n, k)
        return out.astype(dtype) if dtype else out
    sizes = column.field("size").to_numpy(zero_copy_only=False)
    indices = column.field("indices")
    i_flat = indices.flatten().to_numpy(zero_copy_only=False)
    i_off = indices.offsets.to_numpy()
    i_off = i_off - i_off[0]
    dense_rows = kinds == 1
    # Dense rows inside a sparse batch: their size is the number of values and their indices are 0..k-1.
    sizes = np.where(dense_rows, np.diff(v_off), sizes).astype(np.int64)
    if n and sizes.min() != sizes.max():
        raise ValueError(f"all vectors of a batch must have the same size, "
                         f"got sizes from {sizes.min()} to {sizes.max()}")
    counts = np.diff(v_off)
    if dense_rows.any():
        idx_counts = np.where(dense_rows, counts, np.diff(i_off))
        full_idx = np.empty(int(counts.sum()), dtype=np.int64)
        pos = np.arange(full_idx.size, dtype=np.int64) - np.repeat(v_off[:-1], counts)
        sparse_src = recordio._segment_positions(i_off[:-1][~dense_rows], idx_counts[~dense_rows])
        mask = np.repeat(dense_rows, counts)
        full_idx[mask] = pos[mask]
        full_idx[~mask] = i_flat[sparse_src]
        i_flat = full_idx
    elif (np.diff(i_off) != counts).any():
        raise ValueError("a sparse vector has a different number of indices and values")
    data = v_flat.astype(dtype) if dtype else v_flat
    return Sparse(data, i_flat.astype(np.int64), v_off.astype(np.int64), int(sizes[0]) if n else 0)


def labels_from_arrow(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric label column -> float64 values; nulls are refused (a missing label cannot be trained on)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        bad = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"the label column has a null at row {bad}")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise ValueError(f"the label column must be numeric, got {column.type}")
    return column.to_numpy(zero_copy_only=False).astype(np.float64)
