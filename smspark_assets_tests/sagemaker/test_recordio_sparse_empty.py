"""Sparse records with no non-zero value (a shape and nothing else) are sparse, not malformed dense rows.

The bytes come from the official protobuf runtime reading ``record.proto``, written the way the SageMaker
Python SDK's ``write_spmatrix_to_sparse_tensor`` writes an all-zero row: values and keys empty, the shape
set. Expected matrices come from scipy, not from the codec.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_recordio, xgboost_recordio
from smspark_assets.sagemaker import recordio

pytestmark = pytest.mark.timeout(60)

N_COLS = 7


@pytest.fixture(scope="module")
def Record():
    return recordio.protobuf_record_class()


def sdk_sparse(Record, matrix: sp.csr_matrix, labels: np.ndarray | None) -> bytes:
    """The SDK's writer, record by record with the protobuf runtime."""
    m = matrix.tocsr()
    return recordio.sdk_style_encode(
        Record, (m.data.astype(np.float32), m.indices, m.indptr, m.shape[1]), labels, sparse=True)


def test_runtime_writes_a_shape_only_record(Record) -> None:
    """The premise: an all-zero sparse row is a tensor with a shape, no values and no keys."""
    data = sdk_sparse(Record, sp.csr_matrix((1, N_COLS), dtype=np.float32), None)
    rec = Record()
    length = int.from_bytes(data[4:8], "little")
    rec.ParseFromString(data[8:8 + length])
    t = rec.features["values"].float32_tensor
    assert (list(t.values), list(t.keys), list(t.shape)) == ([], [], [N_COLS])


@pytest.mark.parametrize("rows", [1, 3, 257])
def test_all_empty_sparse_stream_decodes_as_zero_rows(Record, rows: int) -> None:
    labels = (np.arange(rows) % 2).astype(np.float32)
    data = sdk_sparse(Record, sp.csr_matrix((rows, N_COLS), dtype=np.float32), labels)
    column = recordio.decode(data).features["values"]
    assert column.is_sparse
    assert column.width() == N_COLS
    np.testing.assert_array_equal(column.to_dense(), np.zeros((rows, N_COLS), np.float32))
    values, indices, indptr, width = column.to_csr()
    assert (values.size, indices.size, width) == (0, 0, N_COLS)
    np.testing.assert_array_equal(indptr, np.zeros(rows + 1))


def test_mixed_empty_and_non_empty_sparse_rows(Record) -> None:
    rng = np.random.default_rng(5)
    dense = np.where(rng.random((40, N_COLS)) < 0.2, rng.normal(size=(40, N_COLS)), 0).astype(np.float32)
    dense[::3] = 0.0  # every third row has no non-zero value
    data = sdk_sparse(Record, sp.csr_matrix(dense), None)
    np.testing.assert_array_equal(recordio.decode(data).features["values"].to_dense(), dense)


def test_dense_records_with_a_matching_shape_stay_dense(Record) -> None:
    """A dense tensor may carry its shape: as many values as the shape says is dense, not sparse."""
    rec = Record()
    out = bytearray()
    for row in ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]):
        rec.Clear()
        t = rec.features["values"].float32_tensor
        t.values.extend(row)
        t.shape.extend([3])
        payload = rec.SerializeToString()
        out += recordio.MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload
        out += b"\0" * (-len(payload) % 4)
    column = recordio.decode(bytes(out)).features["values"]
    assert not column.is_sparse
    np.testing.assert_array_equal(column.to_dense(), [[1, 2, 3], [4, 5, 6]])


def test_training_channel_and_endpoint_readers_accept_it(Record) -> None:
    """Every reader the local algorithms use: training channels, built-in endpoints, XGBoost endpoints."""
    data = sdk_sparse(Record, sp.csr_matrix((4, N_COLS), dtype=np.float32), np.ones(4, np.float32))
    batch = common_recordio.records_to_batch(data, N_COLS, what="train")
    assert sp.issparse(batch.features) and batch.features.shape == (4, N_COLS) and batch.features.nnz == 0
    np.testing.assert_array_equal(batch.labels, np.ones(4))
    request = common_recordio.decode_request(data, N_COLS)
    assert request.shape == (4, N_COLS) and request.nnz == 0
    matrix = xgboost_recordio.read_recordio_features(data, N_COLS)
    assert sp.issparse(matrix) and matrix.shape == (4, N_COLS) and matrix.nnz == 0
