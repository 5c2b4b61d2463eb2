"""The shared channel reader (CSV, recordIO in bounded chunks, re-batching, cache) used by every first-party algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_recordio
from smspark_assets.local.algorithms.base import ChannelError
from smspark_assets.local.algorithms.common_io import Batch, Channel, parse_content_type, rebatch
from algorithm_job_folders import write_csv, write_recordio


def test_parse_content_type():
    assert parse_content_type("text/csv; label_size=1") == ("text/csv", {"label_size": "1"})
    assert parse_content_type("application/x-recordio") == ("application/x-recordio-protobuf", {})
    assert parse_content_type(None) == ("", {})


def test_rebatch_cuts_exact_batches():
    blocks = [Batch(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.float32)) for n in (3, 7, 1, 5)]
    out = list(rebatch(blocks, 4))
    assert [b.size for b in out] == [4, 4, 4, 4]
    np.testing.assert_array_equal(np.concatenate([b.labels for b in out]), np.concatenate([b.labels for b in blocks]))


def test_csv_channel_with_labels_and_cache(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    y = np.arange(1000, dtype=np.float32)
    write_csv(tmp_path / "a.csv", x[:600], y[:600])
    write_csv(tmp_path / "b.csv", x[600:], y[600:])
    (tmp_path / "_SUCCESS").write_text("")
    ch = Channel(tmp_path, "text/csv;label_size=1", batch_size=128, need_labels=True, feature_dim=3, cache_bytes=1 << 20)
    first = list(ch.batches())
    assert ch.cached and ch.rows_seen == 1000
    np.testing.assert_allclose(np.concatenate([b.features for b in first]), x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in first]), y)
    second = list(ch.batches(np.random.default_rng(1)))
    assert sorted(np.concatenate([b.labels for b in second]).tolist()) == y.tolist()


def test_channel_without_cache_budget_rereads(tmp_path):
    write_csv(tmp_path / "a.csv", np.ones((50, 2), dtype=np.float32))
    ch = Channel(tmp_path, "text/csv", batch_size=10, cache_bytes=100)
    assert sum(b.size for b in ch.batches()) == 50
    assert not ch.cached
    assert sum(b.size for b in ch.batches()) == 50


def test_recordio_channel_is_read_in_bounded_chunks(tmp_path, monkeypatch):
    x = np.random.default_rng(1).normal(size=(3000, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    write_recordio(tmp_path / "part.pbr", x, y)
    monkeypatch.setattr(common_recordio, "CHUNK_BYTES", 1000)  # frames straddle many chunk edges
    blocks = list(common_recordio.read_blocks(tmp_path / "part.pbr", 4))
    assert len(blocks) > 50
    np.testing.assert_array_equal(np.concatenate([b.features for b in blocks]), x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in blocks]), y)


def test_recordio_sparse_channel(tmp_path):
    x = sp.random(200, 30, density=0.1, format="csr", dtype=np.float32, random_state=2)
    write_recordio(tmp_path / "p.pbr", x, np.ones(200, dtype=np.float32))
    batches = list(Channel(tmp_path, "application/x-recordio-protobuf", batch_size=64, feature_dim=30).batches())
    assert all(b.is_sparse for b in batches)
    assert abs(sp.vstack([b.features for b in batches]) - x).max() == 0


def test_channel_errors(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.csv").write_text("1,2\n3,\n")
    with pytest.raises(ChannelError, match="empty value"):
        list(Channel(tmp_path / "bad", "text/csv", batch_size=10).batches())
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.csv").write_text("1,a\n")
    with pytest.raises(ChannelError, match="numeric CSV"):
        list(Channel(tmp_path / "txt", "text/csv", batch_size=10).batches())
    with pytest.raises(ChannelError, match="accepts"):
        list(Channel(tmp_path / "txt", "text/libsvm", batch_size=10).batches())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChannelError, match="no data files"):
        list(Channel(tmp_path / "empty", "text/csv", batch_size=10).batches())
    (tmp_path / "trunc").mkdir()
    data = common_recordio.encode_records(np.ones((3, 2), dtype=np.float32))
    (tmp_path / "trunc" / "p.pbr").write_bytes(data[:-6])
    with pytest.raises(ChannelError, match="truncated"):
        list(Channel(tmp_path / "trunc", "application/x-recordio-protobuf", batch_size=10).batches())
    (tmp_path / "f64").mkdir()
    from smspark_assets.sagemaker import recordio

    (tmp_path / "f64" / "p.pbr").write_bytes(recordio.encode_dense(np.ones((3, 2)), np.ones(3)))
    with pytest.raises(ChannelError, match="Float32"):
        list(Channel(tmp_path / "f64", "application/x-recordio-protobuf", batch_size=10, float32_only=True).batches())
    (tmp_path / "nolabel").mkdir()
    write_csv(tmp_path / "nolabel" / "a.csv", np.ones((4, 2), dtype=np.float32))
    with pytest.raises(ChannelError, match="no labels"):
        list(Channel(tmp_path / "nolabel", "text/csv;label_size=0", batch_size=10, need_labels=True).batches())
    with pytest.raises(ChannelError, match="feature_dim=3"):
        list(Channel(tmp_path / "nolabel", "text/csv", batch_size=10, feature_dim=3).batches())
