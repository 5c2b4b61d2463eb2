"""The scoring job's endpoint client without Spark: CSV serialization, request packing, response parsing, HTTP."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

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


def test_serialize_csv_row_offsets_and_float32_round_trip() -> None:
    table = _table()
    body, ends = ec.serialize_csv(table, ["x", "flag", "y"])
    lines = body.decode().splitlines()
    assert len(lines) == table.num_rows == ends.size
    assert ends[-1] == len(body)
    assert all(len(line.split(",")) == 3 for line in lines)
    parsed = parse_csv_matrix(body)
    np.testing.assert_array_equal(parsed[:, 0], table.column("x").to_numpy().astype(np.float32))
    np.testing.assert_array_equal(parsed[:, 1], table.column("flag").to_numpy().astype(np.float32))
    y = table.column("y").to_numpy(zero_copy_only=False).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(parsed[:, 2]), np.isnan(y))  # missing stays missing (empty cell)


def test_serialize_refuses_non_numeric_columns() -> None:
    with pytest.raises(TypeError, match="must be numeric"):
        ec.serialize_csv(pa.table({"s": ["a", "b"]}), ["s"])


def test_plan_requests_packs_greedily_under_the_limit() -> None:
    row_ends = np.cumsum([10, 10, 10, 25, 5, 10])
    assert ec.plan_requests(row_ends, 30) == [(0, 3), (3, 5), (5, 6)]
    assert ec.plan_requests(row_ends, 1000) == [(0, 6)]
    ranges = ec.plan_requests(np.cumsum(np.full(1000, 7)), 100)
    assert ranges[0] == (0, 14) and ranges[-1][1] == 1000
    assert all((b - a) * 7 <= 100 for a, b in ranges)


def test_a_row_larger_than_a_request_names_the_row() -> None:
    row_ends = np.cumsum([10, 40, 10])
    with pytest.raises(ec.PayloadTooLargeError, match=r"row 'id-2' serializes to 40 bytes.*max_payload_bytes=30"):
        ec.plan_requests(row_ends, 30, ids=pa.array(["id-1", "id-2", "id-3"]))


@pytest.mark.parametrize("value", [0, -5, ec.MAX_PAYLOAD_BYTES + 1, "5MB", 1.5, True])
def test_max_payload_bytes_is_bounded(value: object) -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        ec.check_max_payload_bytes(value)
    assert ec.check_max_payload_bytes(ec.MAX_PAYLOAD_BYTES) == 5 * 1024 * 1024


def test_parse_predictions_all_container_shapes() -> None:
    np.testing.assert_array_equal(ec.parse_csv_predictions(b"0.1,0.2,0.3"), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(ec.parse_csv_predictions(b"0.1\n0.2\n0.3\n"), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(ec.parse_csv_predictions(b'{"predictions":[{"score":0.5},{"score":0.25}]}'), [0.5, 0.25])
    assert ec.parse_csv_predictions(b"").size == 0
    with pytest.raises(ValueError, match="not a list of numbers"):
        ec.parse_csv_predictions(b"oops,1")


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
    m = parse_csv_matrix(ec.serialize_csv(table, ["x", "flag", "y"])[0])
    np.testing.assert_allclose(result.predictions, np.nansum(m, axis=1), rtol=1e-6)


def test_scorer_stream_keeps_order_with_requests_in_flight() -> None:
    tables = [_table(100, seed=s) for s in range(6)]
    with BoosterEndpointServer(_SumBooster(), "sum-ep") as server:
        scorer = ec.EndpointScorer("sum-ep", ["x", "flag", "y"], endpoint_url=server.url, max_concurrency=3)
        out = list(scorer.score_stream((t, None) for t in tables))
    assert [t for t, _ in out] == tables
    for t, r in out:
        m = parse_csv_matrix(ec.serialize_csv(t, ["x", "flag", "y"])[0])
        np.testing.assert_allclose(r.predictions, np.nansum(m, axis=1), rtol=1e-6)


def test_prediction_count_mismatch_is_an_error() -> None:
    table = _table(20)
    with BoosterEndpointServer(_ShortBooster(), "short-ep") as server:
        scorer = ec.EndpointScorer("short-ep", ["x", "flag", "y"], endpoint_url=server.url)
        with pytest.raises(ec.PredictionCountError, match="returned 19 predictions for 20 rows"):
            scorer.score(table)


def test_endpoint_errors_surface_as_client_errors() -> None:
    from botocore.exceptions import ClientError

    with BoosterEndpointServer(_SumBooster(), "sum-ep") as server:
        scorer = ec.EndpointScorer("other-ep", ["x"], endpoint_url=server.url)
        with pytest.raises(ClientError, match="other-ep not found"):
            scorer.score(_table(3))
