"""Request batching: bodies of at most 5 MiB, positional matching, and the errors around them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smspark_assets.sagemaker import batching, recordio
from smspark_assets.sagemaker.deserializers import ResponseMismatch, deserializer_for
from smspark_assets.sagemaker.serializers import CSVSerializer, JSONSerializer, RecordIOProtobufSerializer


def _kmeans_endpoint(calls: list):
    """A fake K-means endpoint: closest_cluster = the row's first feature, distance = row sum."""

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        assert content_type == recordio.CONTENT_TYPE and accept == recordio.CONTENT_TYPE
        assert len(body) <= batching.MAX_REQUEST_BYTES
        calls.append(len(body))
        x, _ = recordio.read_dense(body)
        return recordio.encode_records(x.shape[0], label={
            "closest_cluster": x[:, 0].astype(np.float32),
            "distance_to_cluster": x.sum(axis=1).astype(np.float32)})

    return invoke


def test_results_come_back_in_input_order_across_many_bodies() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 50)).astype(np.float32)
    x[:, 0] = np.arange(x.shape[0])
    recs = RecordIOProtobufSerializer().serialize(x)
    calls: list[int] = []
    stats = batching.BatchStats()
    cols = batching.transform(recs, _kmeans_endpoint(calls), deserializer_for("kmeans"), max_bytes=300_000,
                              stats=stats)
    assert len(calls) > 10 and max(calls) <= 300_000
    np.testing.assert_array_equal(cols["closest_cluster"], np.arange(x.shape[0]))
    np.testing.assert_allclose(cols["distance_to_cluster"], x.sum(axis=1), rtol=1e-5)
    assert stats.requests == len(calls) and stats.records == x.shape[0] and stats.bytes_sent == recs.data.size


def test_default_limit_is_5_mib_and_bodies_are_filled() -> None:
    x = np.zeros((30_000, 100), np.float32)  # 428 bytes per record, 12.8 MB in all
    recs = RecordIOProtobufSerializer().serialize(x)
    bounds = batching.plan_batches(recs)
    sizes = [recs.body_size(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    assert max(sizes) <= 5 * 1024 * 1024
    assert sizes[0] > 5 * 1024 * 1024 - 428  # greedy: the next record would not have fit
    assert bounds[-1] == 30_000


def test_limit_can_be_lowered_never_raised() -> None:
    recs = CSVSerializer().serialize(np.ones((3, 2)))
    with pytest.raises(ValueError, match="1..5242880"):
        batching.plan_batches(recs, max_bytes=6 * 1024 * 1024)
    assert batching.plan_batches(recs, max_bytes=4).tolist() == [0, 1, 2, 3]  # "1,1\n" is 4 bytes


def test_record_cap_is_exact() -> None:
    recs = CSVSerializer().serialize(np.ones((10, 2)))
    assert batching.plan_batches(recs, max_records=3).tolist() == [0, 3, 6, 9, 10]


def test_a_record_larger_than_the_limit_fails_before_sending() -> None:
    x = np.zeros((5, 300), np.float32)
    x[3] = 1.5
    recs = CSVSerializer().serialize(x)
    with pytest.raises(batching.RecordTooLarge,
                       match=r"record 3 serializes to \d+ bytes as text/csv, more than"):
        batching.plan_batches(recs, max_bytes=700)


def test_json_bodies_count_their_framing() -> None:
    recs = JSONSerializer().serialize(np.ones((50, 3)))
    for a, b in zip(*(lambda bd: (bd[:-1], bd[1:]))(batching.plan_batches(recs, max_bytes=120))):
        body = recs.body(int(a), int(b))
        assert len(body) <= 120
        assert len(json.loads(body)["instances"]) == b - a


def test_wrong_number_of_answers_names_the_records() -> None:
    recs = RecordIOProtobufSerializer().serialize(np.ones((10, 2), np.float32))

    def short_answer(body: bytes, content_type: str, accept: str) -> bytes:
        n = recordio.decode(body).n_records
        return recordio.encode_records(n - 1, label={"closest_cluster": np.zeros(n - 1, np.float32),
                                                     "distance_to_cluster": np.zeros(n - 1, np.float32)})

    with pytest.raises(ResponseMismatch, match=r"records 0\.\.9: the endpoint answered 9 records"):
        batching.transform(recs, short_answer, deserializer_for("kmeans"))


def test_empty_input_sends_nothing() -> None:
    recs = CSVSerializer().serialize(np.ones((0, 2)))

    def never(body, content_type, accept):  # pragma: no cover - must not be called
        raise AssertionError("no request for an empty batch")

    cols = batching.transform(recs, never, deserializer_for("xgboost"))
    assert cols["prediction"].size == 0
