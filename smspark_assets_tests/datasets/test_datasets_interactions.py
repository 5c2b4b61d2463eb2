"""The generated interactions for Factorization Machines: determinism, the low-rank truth, the baselines."""

import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from smspark_assets.datasets.interactions import (
    InteractionsSpec, generate_interactions, to_parquet_bytes,
)


@pytest.fixture(scope="module")
def data():
    return generate_interactions(InteractionsSpec(users=200, items=150, interactions=20_000, seed=3))


def test_same_spec_gives_the_same_table_and_another_seed_does_not(data) -> None:
    again = generate_interactions(InteractionsSpec(users=200, items=150, interactions=20_000, seed=3))
    assert again.table.equals(data.table)
    other = generate_interactions(InteractionsSpec(users=200, items=150, interactions=20_000, seed=4))
    assert not other.table.equals(data.table)


def test_columns_ids_and_split(data) -> None:
    t = data.table
    assert t.column_names == ["interaction_id", "user", "item", "rating", "clicked", "truth", "split"]
    assert t.num_rows == 20_000
    users, items = data.column("user"), data.column("item")
    assert users.min() >= 0 and users.max() < 200 and items.min() >= 0 and items.max() < 150
    assert data.spec.feature_dim == 350
    test_share = data.split_mask("test").mean()
    assert abs(test_share - 0.2) < 0.02
    assert set(np.unique(data.column("clicked"))) == {0, 1}


def test_ratings_follow_the_documented_low_rank_truth(data) -> None:
    u, i = data.column("user"), data.column("item")
    expected = (data.spec.mu + data.user_bias[u] + data.item_bias[i]
                + np.einsum("ij,ij->i", data.user_factors[u], data.item_factors[i]))
    np.testing.assert_allclose(data.column("truth"), expected)
    noise = data.column("rating") - data.column("truth")
    assert abs(noise.std() - data.spec.noise_std) < 0.02
    assert abs(noise.mean()) < 0.02


def test_the_interaction_carries_variance_a_bias_only_model_cannot_explain(data) -> None:
    floor, bias_only = data.noise_floor_rmse(), data.bias_only_rmse()
    assert floor == pytest.approx(data.spec.noise_std, rel=0.05)
    # <p, q> has unit variance by construction, so biases alone leave about sqrt(1 + noise^2).
    assert bias_only == pytest.approx(np.sqrt(1.0 + data.spec.noise_std ** 2), rel=0.1)
    assert bias_only > 2 * floor


def test_parquet_round_trip(data) -> None:
    table = pq.read_table(io.BytesIO(to_parquet_bytes(data.table)))
    assert table.equals(data.table)


@pytest.mark.parametrize("kwargs, message", [
    ({"users": 0}, "users must be a positive integer"),
    ({"rank": 2.5}, "rank must be a positive integer"),
    ({"noise_std": -1.0}, "noise_std must be a finite number >= 0"),
    ({"test_fraction": 1.0}, "test_fraction must be in (0, 1)"),
    ({"seed": -3}, "seed must be a non-negative integer"),
])
def test_bad_specs_are_refused_with_what_is_allowed(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        InteractionsSpec(**kwargs)


def test_an_unknown_split_is_refused(data) -> None:
    with pytest.raises(ValueError, match="allowed: train, test"):
        data.split_mask("validation")
