"""The scoring job's endpoint client without Spark, on the shared layer: CSV requests, packing, answers, HTTP."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest

from smspark_assets.sagemaker.batching import RecordTooLarge
from smspark_assets.sagemaker.deserializers import ResponseMismatch
from smspark_assets.sagemaker.serializers import CSVSerializer, SerializedRecords
from smspark_assets.spark_jobs import endpoint_client as ec
from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer, parse_csv_matrix


def _table(n: int = 50, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "x": rng.normal(size=n) * 1e4,
            "flag": rng.integers(0, 2, n).astype(np.int32),
            "y": pa.array(np.where(rng.random(n) < 0.1, np.nan, rng.random(n)), from_pandas=True),
        }
    )


def _csv(table: pa.Table, columns: list[str]) -> bytes:
    return CSVSerializer().serialize_table(table, columns).body()


def _records(sizes: list[int]) -> SerializedRecords:
    """Records of the given byte sizes (their content does not matter to the planner)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return SerializedRecords(np.zeros(int(offsets[-1]), np.uint8), offsets, "text/csv")


def test_scorer_sends_the_shared_serializers_csv() -> None:
    table = _table()
    client = _RecordingClient()
    result = ec.EndpointScorer("ep", ["x", "flag", "y"], client=client).score(table)
    assert client.calls == [(_csv(table, ["x", "flag", "y"]), "text/csv", "text/csv")]
    assert result.requests == 1 and result.payload_bytes == len(client.calls[0][0])
    parsed = parse_csv_matrix(client.calls[0][0])
    np.testing.assert_array_equal(parsed[:, 0], table.column("x").to_numpy().astype(np.float32))
    np.testing.assert_array_equal(parsed[:, 1], table.column("flag").to_numpy().astype(np.float32))
    y = table.column("y").to_numpy(zero_copy_only=False).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(parsed[:, 2]), np.isnan(y))  # missing stays missing (empty cell)
    np.testing.assert_allclose(result.predictions, np.nansum(parsed, axis=1), rtol=1e-6)


def test_scorer_refuses_non_numeric_columns() -> None:
    scorer = ec.EndpointScorer("ep", ["s"], client=_RecordingClient())
    with pytest.raises(ValueError, match="feature column 's' has type string"):
        scorer.score(pa.table({"s": ["a", "b"]}))


def test_plan_requests_packs_greedily_under_the_limit() -> None:
    assert ec.plan_requests(_records([10, 10, 10, 25, 5, 10]), 30).tolist() == [0, 3, 5, 6]
    assert ec.plan_requests(_records([10, 10, 10, 25, 5, 10]), 1000).tolist() == [0, 6]
    bounds = ec.plan_requests(_records([7] * 1000), 100)
    assert bounds[1] == 14 and bounds[-1] == 1000
    assert (np.diff(bounds) * 7 <= 100).all()


def test_a_row_larger_than_a_request_names_the_row() -> None:
    with pytest.raises(ec.PayloadTooLargeError,
                       match=r"row 'id-2' serializes to 40 bytes, more than max_payload_bytes=30 \(as text/csv") as info:
        ec.plan_requests(_records([10, 40, 10]), 30, ids=pa.array(["id-1", "id-2", "id-3"]))
    assert isinstance(info.value, RecordTooLarge)  # the shared planner's error, with the row id added
    with pytest.raises(ec.PayloadTooLargeError, match=r"row '#1' serializes"):
        ec.plan_requests(_records([10, 40, 10]), 30)


def test_scorer_refuses_an_oversized_row_before_sending_anything() -> None:
    table = pa.table({"x": [1.0, 123456.789, 2.0], "id": ["a", "b", "c"]})
    client = _RecordingClient()
    scorer = ec.EndpointScorer("ep", ["x"], client=client, max_payload_bytes=8)
    with pytest.raises(ec.PayloadTooLargeError, match=r"row 'b' serializes to 10 bytes"):  # "123456.79\n"
        scorer.score(table, table.column("id"))
    assert client.calls == []


@pytest.mark.parametrize("value", [0, -5, ec.MAX_PAYLOAD_BYTES + 1, "5MB", 1.5, True])
def test_max_payload_bytes_is_bounded(value: object) -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        ec.check_max_payload_bytes(value)
    assert ec.check_max_payload_bytes(ec.MAX_PAYLOAD_BYTES) == 5 * 1024 * 1024


@pytest.mark.parametrize("answer", [b"0.1,0.2,0.3", b"0.1\n0.2\n0.3\n", b"0.1\r\n0.2\r\n0.3"])
def test_both_container_answer_layouts_are_read(answer: bytes) -> None:
    scorer = ec.EndpointScorer("ep", ["x"], client=_RecordingClient(answer))
    result = scorer.score(pa.table({"x": [1.0, 2.0, 3.0]}))
    np.testing.assert_array_equal(result.predictions, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("answer,message", [
    (b"0.1\n0.2\n", "answered 2 records in CSV lines for 3 records sent"),
    (b"0.1,0.2", "holds 2 values, which cannot be split evenly across 3 records"),
    (b"0.1,0.9\n0.2,0.8\n0.3,0.7\n", "expected 1 values per record, the response has 2"),
    (b"oops\n1\n2\n", "not a number"),
    (b"", "answered 0 records"),
])
def test_answers_that_cannot_be_matched_to_rows_are_errors(answer: bytes, message: str) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "id": [11, 12, 13]})
    scorer = ec.EndpointScorer("ep", ["x"], client=_RecordingClient(answer))
    with pytest.raises(ec.PredictionCountError,
                       match=r"endpoint 'ep', request of 3 rows starting at row id 11: .*" + message) as info:
        scorer.score(table, table.column("id"))
    assert isinstance(info.value, ResponseMismatch)


class _RecordingClient:
    """A ``sagemaker-runtime`` client stand-in: records what is sent, answers a fixed body or row sums."""

    def __init__(self, answer: bytes | None = None) -> None:
        self.answer = answer
        self.calls: list[tuple[bytes, str, str]] = []

    def invoke_endpoint(self, EndpointName: str, Body: bytes, ContentType: str, Accept: str) -> dict:  # noqa: N803
        self.calls.append((Body, ContentType, Accept))
        if self.answer is None:
            sums = np.nansum(parse_csv_matrix(Body), axis=1)
            body = ("\n".join(f"{v:.9g}" for v in sums) + "\n").encode()
        else:
            body = self.answer
        return {"Body": io.BytesIO(body)}


class _ShortBooster:
    """Answers one prediction fewer than asked: the client must refuse to align."""

    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros(max(matrix.shape[0] - 1, 0))


class _SumBooster:
    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.nansum(matrix, axis=1)


def test_scorer_over_http_splits_requests_and_keeps_order() -> None:
    table = _table(500, seed=3)
    with BoosterEndpointServer(_SumBooster(), "sum-ep") as server:
        scorer = ec.EndpointScorer("sum-ep", ["x", "flag", "y"], endpoint_url=server.url, region="us-east-1",
                                   max_payload_bytes=2000)
        result = scorer.score(table, table.column("x"))
        assert server.requests == result.requests > 1
    m = parse_csv_matrix(_csv(table, ["x", "flag", "y"]))
    np.testing.assert_allclose(result.predictions, np.nansum(m, axis=1), rtol=1e-6)


def test_scorer_stream_keeps_order_with_requests_in_flight() -> None:
    tables = [_table(100, seed=s) for s in range(6)]
    with BoosterEndpointServer(_SumBooster(), "sum-ep") as server:
        scorer = ec.EndpointScorer("sum-ep", ["x", "flag", "y"], endpoint_url=server.url, max_concurrency=3)
        out = list(scorer.score_stream((t, None) for t in tables))
    assert [t for t, _ in out] == tables
    for t, r in out:
        m = parse_csv_matrix(_csv(t, ["x", "flag", "y"]))
        np.testing.assert_allclose(r.predictions, np.nansum(m, axis=1), rtol=1e-6)


def test_prediction_count_mismatch_is_an_error() -> None:
    table = _table(20)
    with BoosterEndpointServer(_ShortBooster(), "short-ep") as server:
        scorer = ec.EndpointScorer("short-ep", ["x", "flag", "y"], endpoint_url=server.url)
        with pytest.raises(ec.PredictionCountError,
                           match=r"endpoint 'short-ep', request of 20 rows starting at row id '#0': the CSV "
                                 r"response holds 19 values, which cannot be split evenly across 20 records"):
            scorer.score(table)


def test_endpoint_errors_surface_as_client_errors() -> None:
    from botocore.exceptions import ClientError

    with BoosterEndpointServer(_SumBooster(), "sum-ep") as server:
        scorer = ec.EndpointScorer("other-ep", ["x"], endpoint_url=server.url)
        with pytest.raises(ClientError, match="other-ep not found"):
            scorer.score(_table(3))
