"""Round trips (hypothesis): shapes, dtypes, sparsity, labels; and decoding of any valid stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smspark_assets.sagemaker import recordio

RECORD = recordio.protobuf_record_class()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_dtypes = st.sampled_from([np.float32, np.float64, np.int64])


def _elements(dtype):
    if dtype == np.int64:
        return st.integers(-(2**31), 2**31 - 1)
    return st.floats(width=32 if dtype == np.float32 else 64, allow_nan=True, allow_infinity=True)


@st.composite
def dense_batches(draw):
    dtype = draw(_dtypes)
    n = draw(st.integers(0, 30))
    k = draw(st.integers(1, 40))
    x = draw(hnp.arrays(dtype, (n, k), elements=_elements(dtype)))
    label_dtype = draw(st.sampled_from([None, np.float32, np.float64, np.int64]))
    y = None if label_dtype is None else draw(hnp.arrays(label_dtype, (n,), elements=_elements(label_dtype)))
    return x, y


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


@SETTINGS
@given(dense_batches())
def test_dense_round_trip_and_sdk_bytes(batch) -> None:
    x, y = batch
    data = recordio.encode_dense(x, y)
    assert data == recordio.sdk_style_encode(RECORD, x, y)
    dec = recordio.decode(data)
    assert dec.n_records == x.shape[0]
    if x.shape[0] == 0:
        return
    col = dec.features["values"]
    expected = x.astype(np.int32) if x.dtype == np.int64 else x
    assert col.values.dtype == expected.dtype
    np.testing.assert_array_equal(_bits(col.to_dense()), _bits(expected))
    if y is None:
        assert dec.label == {}
    else:
        lab = dec.label["values"]
        exp_y = y.astype(np.int32) if y.dtype == np.int64 else y
        np.testing.assert_array_equal(_bits(lab.values), _bits(exp_y))


@st.composite
def csr_batches(draw):
    dtype = draw(_dtypes)
    n = draw(st.integers(1, 25))
    n_cols = draw(st.sampled_from([1, 7, 128, 200, 16384, 20000, 2**21 + 5]))
    counts = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, min(n_cols, 12))))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    indices = np.concatenate([np.sort(rng.choice(n_cols, c, replace=False)) for c in counts]) if n else []
    indices = np.asarray(indices, dtype=np.int64)
    data = draw(hnp.arrays(dtype, (int(indptr[-1]),), elements=_elements(dtype)))
    y = draw(st.none() | hnp.arrays(np.float32, (n,), elements=_elements(np.float32)))
    return data, indices, indptr, n_cols, y


@SETTINGS
@given(csr_batches())
def test_sparse_round_trip_and_sdk_bytes(batch) -> None:
    data, indices, indptr, n_cols, y = batch
    out = recordio.encode_csr(data, indices, indptr, n_cols, y)
    assert out == recordio.sdk_style_encode(RECORD, (data, indices, indptr, n_cols), y, sparse=True)
    (d2, i2, p2, c2), y2 = recordio.read_csr(out)
    np.testing.assert_array_equal(p2, indptr)
    np.testing.assert_array_equal(i2, indices)
    np.testing.assert_array_equal(_bits(d2), _bits(data.astype(np.int32) if data.dtype == np.int64 else data))
    assert c2 == n_cols
    if y is not None:
        np.testing.assert_array_equal(y2, y.astype(np.float64))


# ---- any valid stream: records built by the official runtime with arbitrary maps -------------------

_TENSORS = ("float32_tensor", "float64_tensor", "int32_tensor", "bytes")


@st.composite
def runtime_records(draw):
    n = draw(st.integers(1, 12))
    keys = draw(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=3, unique=True))
    records = []
    for _ in range(n):
        rec = RECORD()
        for side in ("features", "label"):
            for key in keys:
                if not draw(st.booleans()):
                    continue
                kind = draw(st.sampled_from(_TENSORS))
                value = getattr(rec, side)[key]
                if kind == "bytes":
                    value.bytes.value.extend(draw(st.lists(st.binary(max_size=5), max_size=3)))
                    if draw(st.booleans()):
                        value.bytes.content_type = "image/png"
                    continue
                t = getattr(value, kind)
                m = draw(st.integers(0, 5))
                if kind == "int32_tensor":
                    vals = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=m, max_size=m))
                else:
                    vals = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=m, max_size=m))
                t.values.extend(vals)
                if draw(st.booleans()):
                    t.keys.extend(draw(st.lists(st.integers(0, 2**64 - 1), min_size=m, max_size=m)))
                    t.shape.extend(draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=2)))
                if m == 0 and not t.keys and not t.shape:
                    t.SetInParent()
        if draw(st.booleans()):
            rec.uid = draw(st.text(max_size=8))
        if draw(st.booleans()):
            rec.metadata = draw(st.text(max_size=8))
        records.append(rec)
    return records


def _stream(records) -> bytes:
    out = bytearray()
    for rec in records:
        payload = rec.SerializeToString()
        out += recordio.MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload
        out += b"\0" * ((-len(payload)) % 4)
    return bytes(out)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runtime_records(), st.sampled_from([None, 1, 2, 5]))
def test_decode_matches_the_runtime_for_any_maps(records, chunk) -> None:
    default = recordio.DECODE_CHUNK_RECORDS
    recordio.DECODE_CHUNK_RECORDS = chunk or default  # small chunks exercise the merge of partial results
    try:
        dec = recordio.decode(_stream(records))
    finally:
        recordio.DECODE_CHUNK_RECORDS = default
    assert dec.n_records == len(records)
    for side in ("features", "label"):
        ours = getattr(dec, side)
        seen = {k for rec in records for k in getattr(rec, side)}
        assert set(ours) == seen
        for key, col in ours.items():
            for i, rec in enumerate(records):
                mapping = getattr(rec, side)
                if key not in mapping:
                    assert col.kinds[i] == recordio.KIND_NONE
                    continue
                value = mapping[key]
                which = value.WhichOneof("value")
                if which == "bytes":
                    assert col.kinds[i] == recordio.KIND_BYTES
                    assert col.byte_values[i] == list(value.bytes.value)
                    assert col.content_types[i] == (value.bytes.content_type if value.bytes.HasField(
                        "content_type") else None)
                    continue
                t = getattr(value, which)
                a, b = col.value_offsets[i], col.value_offsets[i + 1]
                np.testing.assert_array_equal(col.values[a:b].astype(np.float64),
                                              np.asarray(list(t.values), dtype=np.float64))
                ka, kb = col.key_offsets[i], col.key_offsets[i + 1]
                assert col.keys[ka:kb].tolist() == list(t.keys)
                sa, sb = col.shape_offsets[i], col.shape_offsets[i + 1]
                assert col.shape[sa:sb].tolist() == list(t.shape)
    assert (dec.uid or [None] * len(records)) == [r.uid if r.HasField("uid") else None for r in records]
    assert (dec.metadata or [None] * len(records)) == [
        r.metadata if r.HasField("metadata") else None for r in records]


# ---- hand-built encodings the runtime accepts but never writes ---------------------------------------


def _ld(field: int, payload: bytes) -> bytes:
    return bytes([(field << 3) | 2]) + recordio._varint_scalar(len(payload)) + payload


def test_unpacked_values_merged_values_and_map_semantics() -> None:
    f32 = lambda v: np.float32(v).tobytes()  # noqa: E731
    # Float32Tensor with values unpacked (wire type 5), then a packed run: both count, in order.
    tensor_a = b"\x0d" + f32(1.5) + b"\x0d" + f32(2.5) + _ld(1, f32(3.5))
    # A second occurrence of the same Value (float32_tensor again) merges: its values append.
    value_1 = _ld(2, tensor_a)
    value_2 = _ld(2, _ld(1, f32(4.5)))
    entry = _ld(1, b"values") + _ld(2, value_1) + _ld(2, value_2)
    # Label "x": first an int32 tensor with unpacked varint values, then a float64 tensor: the later
    # oneof member replaces the earlier one.
    label_value = _ld(7, b"\x08\x05\x08\x7f") + _ld(3, _ld(1, np.float64(9.25).tobytes()))
    label_entry = _ld(1, b"x") + _ld(2, label_value)
    # A duplicate key "values" later in the record replaces the first entry: not here (only for "dup").
    dup1 = _ld(1, b"dup") + _ld(2, _ld(2, _ld(1, f32(1.0))))
    dup2 = _ld(1, b"dup") + _ld(2, _ld(2, _ld(1, f32(2.0))))
    payload = (_ld(1, entry) + _ld(2, label_entry) + _ld(1, dup1) + _ld(1, dup2) + _ld(3, b"id-7")
               + b"\x30\x01")  # and an unknown varint field 6, which is skipped
    data = recordio.MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload
    data += b"\0" * ((-len(payload)) % 4)

    rec = RECORD()
    rec.ParseFromString(payload)  # the runtime agrees that this is a valid Record
    dec = recordio.decode(data)
    runtime_values = list(rec.features["values"].float32_tensor.values)
    np.testing.assert_array_equal(dec.features["values"].values, runtime_values)
    assert dec.features["values"].values.tolist() == [1.5, 2.5, 3.5, 4.5]
    assert dec.label["x"].kinds[0] == recordio.KIND_F64
    assert dec.label["x"].values.tolist() == [9.25] == list(rec.label["x"].float64_tensor.values)
    assert dec.features["dup"].values.tolist() == [2.0] == list(rec.features["dup"].float32_tensor.values)
    assert dec.uid == ["id-7"]


def test_negative_int32_values_round_trip() -> None:
    x = np.array([[-1, -(2**31), 2**31 - 1, 0]], np.int64)
    data = recordio.encode_dense(x)
    assert data == recordio.sdk_style_encode(RECORD, x)
    np.testing.assert_array_equal(recordio.read_dense(data)[0], x.astype(np.int32))


def test_mixed_dense_and_sparse_rows_in_one_stream() -> None:
    dense = recordio.encode_dense(np.array([[1.0, 2.0, 3.0]], np.float32))
    sparse = recordio.encode_csr(np.array([5.0], np.float32), np.array([2]), np.array([0, 1]), 3)
    x, _ = recordio.read_dense(dense + sparse + dense)
    np.testing.assert_array_equal(x, [[1, 2, 3], [0, 0, 5], [1, 2, 3]])


@pytest.mark.parametrize("n", [1, 1000])
def test_large_uniform_and_variable_streams(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 33)).astype(np.float32)
    y = rng.integers(0, 5, n).astype(np.float32)
    x2, y2 = recordio.read_dense(recordio.encode_dense(x, y))
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


def test_chunked_encoding_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    n = 1000
    counts = rng.integers(0, 6, n)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, 500, indptr[-1])
    data = rng.normal(size=indptr[-1]).astype(np.float32)
    ints = rng.integers(-300, 300, (n, 3))
    whole = recordio.encode_records(n, {"values": recordio.Sparse(data, indices, indptr, 500), "i": ints},
                                    {"values": rng.normal(size=n).astype(np.float32)})
    monkeypatch.setattr(recordio, "ENCODE_CHUNK_ROWS", 97)
    chunked = recordio.encode_frames(n, {"values": recordio.Sparse(data, indices, indptr, 500), "i": ints},
                                     {"values": np.asarray(recordio.decode(whole).label["values"].values)})
    assert chunked.tobytes() == whole
    assert chunked.offsets[-1] == len(whole) and chunked.offsets.size == n + 1
    # decoding in chunks as well
    monkeypatch.setattr(recordio, "DECODE_CHUNK_RECORDS", 64)
    dec = recordio.decode(whole)
    np.testing.assert_array_equal(dec.features["i"].to_dense(), ints)
    d, i, p, _ = dec.features["values"].to_csr(500)
    np.testing.assert_array_equal(p, indptr)
    np.testing.assert_array_equal(i, indices)
    np.testing.assert_array_equal(d, data)
