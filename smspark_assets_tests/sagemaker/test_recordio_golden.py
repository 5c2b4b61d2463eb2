"""Golden bytes: the codec against the official protobuf runtime reading the public ``record.proto``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smspark_assets.sagemaker import recordio

# The two vectors of reference/sagemaker_contracts.md §2.3, worked out by hand there; confirmed here.
DENSE_WITH_LABEL = bytes.fromhex(
    "0a23d7ce2c0000000a160a0676616c756573120c120a0a080000803f0000004012120a0676616c75657312081206"
    "0a040000803f")
SPARSE_NO_LABEL = bytes.fromhex(
    "0a23d7ce1f0000000a1d0a0676616c7565731213121 10a080000803f00000040120201031a010400".replace(" ", ""))


@pytest.fixture(scope="module")
def Record():
    return recordio.protobuf_record_class()


def test_schema_file_matches_the_runtime_descriptor(Record) -> None:
    """record.proto (shipped for users and tests) declares what the runtime class is built from."""
    text = (Path(recordio.__file__).parent / "record.proto").read_text()
    assert 'package aialgs.data;' in text and 'syntax = "proto2";' in text
    desc = Record.DESCRIPTOR
    assert desc.full_name == "aialgs.data.Record"
    for name, number in (("features", 1), ("label", 2), ("uid", 3), ("metadata", 4), ("configuration", 5)):
        assert desc.fields_by_name[name].number == number
        assert f"{name} = {number};" in text
    value = desc.fields_by_name["features"].message_type.fields_by_name["value"].message_type
    assert {f.name: f.number for f in value.fields} == {
        "float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7, "bytes": 9}


def test_documented_dense_vector(Record) -> None:
    out = recordio.encode_dense(np.array([[1.0, 2.0]], np.float32), np.array([1.0], np.float32))
    assert out == DENSE_WITH_LABEL
    rec = Record()
    rec.ParseFromString(out[8:8 + 44])
    assert list(rec.features["values"].float32_tensor.values) == [1.0, 2.0]
    assert list(rec.label["values"].float32_tensor.values) == [1.0]


def test_documented_sparse_vector(Record) -> None:
    out = recordio.encode_csr(np.array([1.0, 2.0], np.float32), np.array([1, 3]), np.array([0, 2]), 4)
    assert out == SPARSE_NO_LABEL
    assert len(out) == 8 + 31 + 1  # one byte of padding
    rec = Record()
    rec.ParseFromString(out[8:8 + 31])
    t = rec.features["values"].float32_tensor
    assert (list(t.values), list(t.keys), list(t.shape)) == ([1.0, 2.0], [1, 3], [4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("label_dtype", [None, np.float32, np.float64, np.int64])
def test_dense_bytes_equal_python_sdk_writer(Record, dtype, label_dtype) -> None:
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(40, 9)) * 1000).astype(dtype)
    x[0, :3] = [-1, 0, 2**31 - 1] if dtype == np.int64 else [-1, 0, 1e30]
    y = None if label_dtype is None else (rng.normal(size=40) * 100).astype(label_dtype)
    assert recordio.encode_dense(x, y) == recordio.sdk_style_encode(Record, x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("with_label", [False, True])
def test_sparse_bytes_equal_python_sdk_writer(Record, dtype, with_label) -> None:
    rng = np.random.default_rng(3)
    n, cols = 60, 300_000  # keys of 1, 2 and 3 varint bytes
    counts = rng.integers(0, 12, n)
    counts[5] = 0
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([np.sort(rng.choice(cols, c, replace=False)) for c in counts])
    data = (rng.normal(size=indptr[-1]) * 50).astype(dtype)
    y = rng.integers(0, 3, n).astype(np.float32) if with_label else None
    ours = recordio.encode_csr(data, indices, indptr, cols, y)
    assert ours == recordio.sdk_style_encode(Record, (data, indices, indptr, cols), y, sparse=True)


def test_float32_rows_equal_spark_sdk_layout(Record) -> None:
    """The Spark SDK writes float32 features, float32 label, no shape for dense, keys+shape for sparse:
    build those records field by field with the runtime and compare."""
    x = np.array([[0.5, -2.0, 3.25]], np.float32)
    rec = Record()
    rec.features["values"].float32_tensor.values.extend([0.5, -2.0, 3.25])
    rec.label["values"].float32_tensor.values.extend([1.0])
    payload = rec.SerializeToString()
    framed = recordio.MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload + \
        b"\0" * ((-len(payload)) % 4)
    assert recordio.encode_dense(x, np.array([1.0], np.float32)) == framed


def test_runtime_parses_every_record_of_a_long_stream(Record) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(500, 17)).astype(np.float32)
    y = rng.normal(size=500).astype(np.float64)
    out = recordio.encode_dense(x, y)
    starts, lengths = recordio.frame_offsets(out)
    assert starts.size == 500
    for i in (0, 1, 250, 499):
        rec = Record()
        rec.ParseFromString(out[starts[i]:starts[i] + lengths[i]])
        got = np.array(rec.features["values"].float32_tensor.values, np.float32)
        np.testing.assert_array_equal(got, x[i])
        assert rec.label["values"].float64_tensor.values[0] == y[i]


def test_label_maps_of_answers_parse_with_the_runtime(Record) -> None:
    closest = np.array([0, 3, 1], np.float32)
    dist = np.array([0.5, 1.25, 7.0], np.float32)
    out = recordio.encode_records(3, label={"closest_cluster": closest, "distance_to_cluster": dist})
    starts, lengths = recordio.frame_offsets(out)
    for i in range(3):
        rec = Record()
        rec.ParseFromString(out[starts[i]:starts[i] + lengths[i]])
        assert rec.label["closest_cluster"].float32_tensor.values[0] == closest[i]
        assert rec.label["distance_to_cluster"].float32_tensor.values[0] == dist[i]
        assert len(rec.features) == 0


def test_unsupported_dtype_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: float32"):
        recordio.encode_dense(np.zeros((2, 2), np.float16))
    with pytest.raises(ValueError, match="int32 range"):
        recordio.encode_dense(np.array([[2**40]], np.int64))
    with pytest.raises(ValueError, match="2-D"):
        recordio.encode_dense(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="at least one value"):
        recordio.encode_dense(np.zeros((3, 0), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        recordio.encode_csr(np.ones(1, np.float32), np.array([4]), np.array([0, 1]), 4)
