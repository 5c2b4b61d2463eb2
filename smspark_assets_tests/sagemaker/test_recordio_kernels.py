"""The compiled sparse loops (``recordio_kernels``) against the NumPy path: same bytes, columns, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from smspark_assets.sagemaker import recordio
from smspark_assets.sagemaker.recordio import RecordIOError

kernels = pytest.importorskip("smspark_assets.sagemaker.recordio_kernels")


@pytest.fixture
def numpy_path(monkeypatch):
    """Run the codec without the compiled loops (what happens when numba is not installed)."""

    def use_numpy() -> None:
        monkeypatch.setattr(recordio, "_kernels", None)

    return use_numpy


def _csr(rng: np.random.Generator, n: int, n_cols: int, density: float, dtype) -> tuple:
    counts = rng.binomial(n_cols, density, n)
    counts[rng.random(n) < 0.1] = 0  # some empty rows (no values, no keys fields)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate([np.sort(rng.choice(n_cols, c, replace=False)) for c in counts]).astype(np.int32)
    if np.dtype(dtype).kind == "i":
        data = rng.integers(-(2**31), 2**31 - 1, indptr[-1]).astype(dtype)
    else:
        data = rng.standard_normal(indptr[-1]).astype(dtype)
    return data, indices, indptr


def _both(fn, numpy_path):
    compiled = fn()
    numpy_path()
    return compiled, fn()


def _assert_columns_equal(a: recordio.DecodedRecords, b: recordio.DecodedRecords) -> None:
    assert a.n_records == b.n_records
    for side in ("features", "label"):
        ca, cb = getattr(a, side), getattr(b, side)
        assert list(ca) == list(cb)
        for key in ca:
            for name in ("kinds", "values", "value_offsets", "keys", "key_offsets", "shape", "shape_offsets"):
                x, y = getattr(ca[key], name), getattr(cb[key], name)
                assert x.dtype == y.dtype, (side, key, name)
                np.testing.assert_array_equal(x, y, err_msg=f"{side}[{key}].{name}")


@pytest.mark.skipif(os.environ.get("SMSPARK_RECORDIO_NUMBA") == "0", reason="compiled loops switched off")
def test_kernels_are_used_when_numba_is_present() -> None:
    assert recordio._compiled() is kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("n_cols", [100, 10_000, 16_384, 16_385, 3_000_000_000])
@pytest.mark.parametrize("labels", [False, True])
def test_sparse_encode_and_decode_match_the_numpy_path(numpy_path, dtype, n_cols: int, labels: bool) -> None:
    rng = np.random.default_rng(n_cols)
    n = 300
    data, indices, indptr = _csr(rng, n, min(n_cols, 50_000), 0.02 if n_cols > 1000 else 0.2, dtype)
    if n_cols > 50_000:  # keys of 3 to 5 varint bytes
        indices = indices.astype(np.int64) * (n_cols // 50_000)
    y = rng.integers(0, 3, n).astype(np.float32) if labels else None

    def run():
        enc = recordio.encode_csr(data, indices, indptr, n_cols, y)
        return enc, recordio.decode(enc)

    (enc_c, dec_c), (enc_n, dec_n) = _both(run, numpy_path)
    assert enc_c == enc_n
    _assert_columns_equal(dec_c, dec_n)
    d, i, p, width = dec_c.features["values"].to_csr(n_cols)
    np.testing.assert_array_equal(d, data)
    np.testing.assert_array_equal(i, indices)
    np.testing.assert_array_equal(p, indptr)


def test_float32_sparse_bytes_equal_the_protobuf_runtime() -> None:
    rng = np.random.default_rng(7)
    data, indices, indptr = _csr(rng, 200, 20_000, 0.01, np.float32)
    y = rng.standard_normal(200).astype(np.float32)
    ours = recordio.encode_csr(data, indices, indptr, 20_000, y)
    record = recordio.protobuf_record_class()
    assert ours == recordio.sdk_style_encode(record, (data, indices, indptr, 20_000), y, sparse=True)


def test_mixed_maps_and_int32_dense_rows_match_the_numpy_path(numpy_path) -> None:
    """Variable-length records built from several pieces (int32 varints, sparse, scalars, two keys)."""
    rng = np.random.default_rng(3)
    n = 257
    data, indices, indptr = _csr(rng, n, 500, 0.05, np.float64)
    ints = rng.integers(-5_000_000, 5_000_000, (n, 3)).astype(np.int32)

    def run():
        enc = recordio.encode_records(
            n,
            features={"ints": ints, "sparse": recordio.Sparse(data, indices, indptr, 500)},
            label={"closest_cluster": rng_copy.integers(0, 9, n).astype(np.float32),
                   "distance": np.linspace(0, 1, n)},
        )
        return enc, recordio.decode(enc)

    rng_copy = np.random.default_rng(11)
    enc_c, dec_c = run()
    numpy_path()
    rng_copy = np.random.default_rng(11)
    enc_n, dec_n = run()
    assert enc_c == enc_n
    _assert_columns_equal(dec_c, dec_n)
    np.testing.assert_array_equal(dec_c.features["ints"].to_dense(), ints)


def test_chunked_encode_and_decode_match_the_numpy_path(numpy_path, monkeypatch) -> None:
    """Several encode and decode chunks (the kernels get sliced pieces and per-chunk offsets)."""
    monkeypatch.setattr(recordio, "ENCODE_CHUNK_ROWS", 64)
    monkeypatch.setattr(recordio, "DECODE_CHUNK_RECORDS", 50)
    rng = np.random.default_rng(5)
    data, indices, indptr = _csr(rng, 1000, 1000, 0.01, np.float32)
    y = rng.standard_normal(1000)

    def run():
        enc = recordio.encode_csr(data, indices, indptr, 1000, y)
        return enc, recordio.decode(enc)

    (enc_c, dec_c), (enc_n, dec_n) = _both(run, numpy_path)
    assert enc_c == enc_n
    _assert_columns_equal(dec_c, dec_n)


def test_truncated_packed_keys_raise_the_same_error_on_both_paths(numpy_path) -> None:
    good = recordio.encode_csr(np.ones(3, np.float32), np.array([1, 200, 300]), np.array([0, 1, 3]), 1000)
    buf = bytearray(good)
    # Record 1's keys field: "12 04 c8 01 ac 02" -> claim 3 bytes so the last varint is cut off.
    at = buf.index(bytes([0x12, 0x04, 0xC8, 0x01, 0xAC, 0x02]))
    buf[at + 5] = 0x82  # 0xac 0x82 now continues into the shape field's tag: the varint runs past the field
    errors = []
    for switch in (lambda: None, numpy_path):
        switch()
        with pytest.raises(RecordIOError) as info:
            recordio.decode(bytes(buf))
        errors.append((str(info.value), info.value.offset))
    assert errors[0] == errors[1]


def test_decode_varint_segments_reads_every_width_and_reports_corruption() -> None:
    values = np.array([0, 1, 127, 128, 16_383, 16_384, 2**35 + 3, 2**63, 2**64 - 1], dtype=np.uint64)
    raw = b"".join(recordio._varint_scalar(int(v)) for v in values)
    buf = np.frombuffer(b"\xff" + raw + b"\xff", dtype=np.uint8)
    out = np.empty(len(raw), dtype=np.uint64)
    counts = np.empty(2, dtype=np.int64)
    first = len(recordio._varint_scalar(0)) + len(recordio._varint_scalar(1))
    status, _, written = kernels.decode_varint_segments(
        buf, np.array([1, 1 + first]), np.array([first, len(raw) - first]), out, counts)
    assert (status, written) == (kernels.VARINT_OK, values.size)
    np.testing.assert_array_equal(out[:written], values)
    assert counts.tolist() == [2, values.size - 2]
    # Cut inside the last varint, an 11-byte varint, and too little room in the output.
    assert kernels.decode_varint_segments(buf, np.array([1]), np.array([len(raw) - 1]), out, counts)[:2] == (
        kernels.VARINT_CORRUPT, 0)
    eleven = np.frombuffer(b"\x80" * 10 + b"\x01", dtype=np.uint8)
    assert kernels.decode_varint_segments(eleven, np.array([0]), np.array([11]), out, counts)[0] == (
        kernels.VARINT_CORRUPT)
    assert kernels.decode_varint_segments(buf, np.array([1]), np.array([len(raw)]), out[:3], counts)[0] == (
        kernels.VARINT_OVERFLOW)


def test_write_varints_matches_the_scalar_encoder() -> None:
    values = np.array([0, 5, 127, 128, 300, 2**21, 2**49 + 7, 2**64 - 1], dtype=np.uint64)
    sizes = recordio._varint_sizes(values)
    pos = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    kernels.write_varints(out, pos, values, np.empty(0, dtype=bool))
    assert out.tobytes() == b"".join(recordio._varint_scalar(int(v)) for v in values)


@pytest.mark.parametrize("second", ["other_key", "float64", "no_label", "dense_rows"])
def test_streams_off_the_canonical_layout_decode_the_same_on_both_paths(numpy_path, second: str) -> None:
    """Concatenated streams that differ record to record leave the compiled fast path half way through."""
    rng = np.random.default_rng(9)
    data, indices, indptr = _csr(rng, 120, 3000, 0.01, np.float32)
    y = rng.standard_normal(120).astype(np.float32)
    first = recordio.encode_csr(data, indices, indptr, 3000, y)
    if second == "other_key":
        tail = recordio.encode_csr(data, indices, indptr, 3000, y, feature_key="other")
    elif second == "float64":
        tail = recordio.encode_csr(data.astype(np.float64), indices, indptr, 3000, y)
    elif second == "no_label":
        tail = recordio.encode_csr(data, indices, indptr, 3000)
    else:
        tail = recordio.encode_dense(rng.standard_normal((120, 5)).astype(np.float32), y)
    stream = first + tail
    dec_c, dec_n = _both(lambda: recordio.decode(stream), numpy_path)
    _assert_columns_equal(dec_c, dec_n)
    assert dec_c.n_records == 240
