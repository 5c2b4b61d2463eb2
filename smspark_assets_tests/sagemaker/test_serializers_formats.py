"""Request serializers: exact bodies per content type, Arrow inputs, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from smspark_assets.sagemaker import recordio, serializers as S
from smspark_assets.sagemaker.recordio import Sparse

X = np.array([[1.0, 0.0, 2.5], [0.1, 0.0, 0.0]], np.float32)
SP = Sparse(np.array([1.0, 2.5, 0.1], np.float32), np.array([0, 2, 0]), np.array([0, 2, 3]), 3)


def test_recordio_request_has_features_only_and_decodes_back() -> None:
    for feats in (X, SP):
        recs = S.RecordIOProtobufSerializer().serialize(feats)
        assert recs.content_type == "application/x-recordio-protobuf"
        dec = recordio.decode(recs.body())
        assert dec.label == {}
        np.testing.assert_array_equal(dec.features["values"].to_dense(), X)
        # record boundaries are frame boundaries: any slice is a valid stream
        assert recordio.decode(recs.body(1, 2)).n_records == 1
    assert S.RecordIOProtobufSerializer().serialize(X).body() == recordio.encode_dense(X)


def test_libsvm_is_one_based_by_default_and_lists_active_entries() -> None:
    body = S.LibSVMSerializer().serialize(X).body()
    assert body == b"0 1:1 3:2.5\n0 1:0.1\n"
    assert S.LibSVMSerializer().serialize(SP).body() == body
    labelled = S.LibSVMSerializer(index_base=0).serialize(X, np.array([1.0, 0.0])).body()
    assert labelled == b"1 0:1 2:2.5\n0 0:0.1\n"


def test_libsvm_row_without_entries_has_only_its_label() -> None:
    empty = Sparse(np.array([], np.float32), np.array([], np.int64), np.array([0, 0]), 4)
    assert S.LibSVMSerializer().serialize(empty, np.array([3.0])).body() == b"3\n"


def test_csv_has_no_label_and_densifies_sparse_rows() -> None:
    assert S.CSVSerializer().serialize(X).body() == b"1,0,2.5\n0.1,0,0\n"
    assert S.CSVSerializer().serialize(SP).body() == b"1,0,2.5\n0.1,0,0\n"


def test_float_text_round_trips_exactly() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32) * np.float32(1e-3)
    lines = S.CSVSerializer().serialize(x).body().decode().splitlines()
    back = np.loadtxt(lines, delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(back, x)


def test_json_instances_dense_and_sparse() -> None:
    recs = S.JSONSerializer().serialize(X)
    assert json.loads(recs.body()) == {"instances": [{"features": [1, 0, 2.5]}, {"features": [0.1, 0, 0]}]}
    assert json.loads(recs.body(1, 2)) == {"instances": [{"features": [0.1, 0, 0]}]}
    assert recs.body_size(0, 2) == len(recs.body())
    sparse = json.loads(S.JSONSerializer().serialize(SP).body())
    expected = {"data": {"features": {"keys": [0, 2], "shape": [3], "values": [1, 2.5]}}}
    assert sparse["instances"][0] == expected


def test_json_lines_one_instance_per_line() -> None:
    lines = S.JSONLinesSerializer().serialize(X).body().decode().splitlines()
    assert [json.loads(ln) for ln in lines] == [{"features": [1, 0, 2.5]}, {"features": [0.1, 0, 0]}]


def test_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        S.JSONSerializer().serialize(np.array([[np.nan]]))


def test_serializer_for_content_types() -> None:
    assert isinstance(S.serializer_for("text/csv; label_size=0"), S.CSVSerializer)
    assert isinstance(S.serializer_for("text/libsvm"), S.LibSVMSerializer)
    with pytest.raises(ValueError, match="allowed: application/x-recordio-protobuf"):
        S.serializer_for("image/png")
    with pytest.raises(ValueError, match="index_base must be 0 or 1"):
        S.LibSVMSerializer(index_base=2)


def test_features_from_arrow_list_and_vector_struct() -> None:
    dense = S.features_from_arrow(pa.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(dense, [[1, 2], [3, 4]])
    fixed = S.features_from_arrow(pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0, 3.0, 4.0]), 2))
    np.testing.assert_array_equal(fixed, [[1, 2], [3, 4]])
    vectors = pa.StructArray.from_arrays(
        [pa.array([1, 0], pa.int8()), pa.array([None, 3], pa.int32()),
         pa.array([None, [2]], pa.list_(pa.int32())),
         pa.array([[1.0, 2.0, 3.0], [9.0]], pa.list_(pa.float64()))],
        names=["type", "size", "indices", "values"])
    sp = S.features_from_arrow(vectors)
    assert isinstance(sp, Sparse)
    np.testing.assert_array_equal(S.densify(sp), [[1, 2, 3], [0, 0, 9]])
    with pytest.raises(ValueError, match="same length"):
        S.features_from_arrow(pa.array([[1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="null at row 1"):
        S.features_from_arrow(pa.array([[1.0], None]))
    with pytest.raises(ValueError, match="unsupported features column type"):
        S.features_from_arrow(pa.array(["a"]))
