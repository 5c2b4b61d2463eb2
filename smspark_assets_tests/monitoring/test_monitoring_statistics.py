"""Baseline statistics and PSI against independent computations (NumPy percentiles, pandas, by hand)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from smspark_assets.monitoring import build_baseline, infer_columns, psi
from smspark_assets.monitoring.psi import bin_counts, decile_edges
from smspark_assets_tests.monitoring.credit_feature_frames import as_table, feature_day


def test_psi_matches_a_hand_computation() -> None:
    expected = [0.5, 0.3, 0.2]
    actual = [0.3, 0.3, 0.4]
    by_hand = (0.3 - 0.5) * np.log(0.3 / 0.5) + 0.0 + (0.4 - 0.2) * np.log(0.4 / 0.2)
    assert psi(np.array(expected), np.array(actual)) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.2407946, abs=1e-7)  # 0.2 ln(5/3) + 0.2 ln 2
    assert psi(np.array(expected), np.array(expected)) == 0.0
    # An empty bin is floored at 1e-4, not an infinity: (0.0001 - 0.5) ln(0.0001 / 0.5) + ...
    floored = (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (0.5 - 0.3) * np.log(0.5 / 0.3) + (0.5 - 0.2) * np.log(0.5 / 0.2)
    assert psi(np.array(expected), np.array([0.0, 0.5, 0.5])) == pytest.approx(floored, rel=1e-9)
    with pytest.raises(ValueError, match="same bins"):
        psi(np.array([0.5, 0.5]), np.array([1.0]))


def test_decile_bins_agree_with_numpy_and_pandas() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(10, 0.6, 50_000)
    edges = decile_edges(values)
    np.testing.assert_allclose(edges, np.percentile(values, np.arange(10, 100, 10)))
    counts = bin_counts(values, edges)
    by_pandas = pd.Series(pd.cut(values, np.r_[-np.inf, edges, np.inf], right=True)).value_counts(sort=False).to_numpy()
    np.testing.assert_array_equal(counts, by_pandas)
    assert counts.sum() == values.size and np.all(np.abs(counts / values.size - 0.1) < 0.002)
    # A discrete column keeps one bin per distinct decile.
    terms = rng.choice([12, 24, 36, 48, 60], 10_000, p=[0.1, 0.1, 0.5, 0.1, 0.2])
    assert decile_edges(terms).tolist() == sorted(set(np.percentile(terms, np.arange(10, 100, 10))))


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return feature_day(dt.date(2026, 11, 1), 20_000)


def test_baseline_statistics_of_the_credit_features(features: pd.DataFrame) -> None:
    table = as_table(features)
    columns = infer_columns(table.schema, exclude=("application_id",))
    assert set(columns.groups) == {"home_ownership", "purpose", "state"}
    assert columns.missing_indicators["annual_income"] == "annual_income_missing"
    assert "annual_income_missing" not in columns.numeric and "loan_to_income" in columns.numeric
    scores = np.random.default_rng(1).beta(2, 12, features.shape[0])
    base = build_baseline(table, columns, scores=scores)
    assert base.item_count == 20_000

    income = base.feature("annual_income")
    stats = income["numerical_statistics"]
    observed = features.loc[features["annual_income_missing"] == 0, "annual_income"]  # imputed rows are missing
    assert stats["mean"] == pytest.approx(observed.mean(), rel=1e-12)
    assert stats["std_dev"] == pytest.approx(observed.std(ddof=0), rel=1e-12)
    assert (stats["min"], stats["max"]) == (observed.min(), observed.max())
    assert stats["common"]["num_missing"] == int(features["annual_income_missing"].sum()) > 0
    np.testing.assert_allclose(stats["distribution"]["bins"]["edges"],
                               np.unique(np.percentile(observed, np.arange(10, 100, 10))))
    assert income["inferred_type"] == "Integral"  # rounded to 100 by the generator
    assert base.feature("interest_rate")["inferred_type"] == "Fractional"

    purpose = base.feature("purpose")
    one_hot = features[[c for c in features if c.startswith("purpose__")]]
    by_pandas = one_hot.idxmax(axis=1).str.removeprefix("purpose__").value_counts(normalize=True)
    buckets = purpose["string_statistics"]["distribution"]["categorical"]["buckets"]
    shares = {b["value"]: b["proportion"] for b in buckets}
    assert shares == pytest.approx(by_pandas.to_dict(), abs=1e-12)

    score_bins = base.scores["numerical_statistics"]["distribution"]["bins"]
    assert sum(score_bins["proportions"]) == pytest.approx(1.0)
    np.testing.assert_allclose(score_bins["edges"], np.percentile(scores, np.arange(10, 100, 10)))

    constraints = {c["name"]: c for c in base.constraints["features"]}
    assert constraints["annual_income"]["completeness"] == pytest.approx(1 - features["annual_income_missing"].mean())
    assert constraints["purpose"]["string_constraints"]["domains"][0] == by_pandas.index[0]
    assert base.constraints["monitoring_config"]["distribution_constraints"]["warn_threshold"] == 0.1


def test_string_columns_are_categorical_with_nulls_as_missing() -> None:
    table = pa.table({"channel": pa.array(["web", "web", "branch", None, "web"]), "amount": [1.0, 2.0, None, 4.0, 5.0]})
    base = build_baseline(table)
    channel = base.feature("channel")["string_statistics"]
    assert channel["common"] == {"num_present": 4, "num_missing": 1}
    buckets = channel["distribution"]["categorical"]["buckets"]
    assert [(b["value"], b["count"]) for b in buckets] == [("web", 3), ("branch", 1)]
    assert base.feature("amount")["numerical_statistics"]["common"] == {"num_present": 4, "num_missing": 1}
    with pytest.raises(ValueError, match="cannot be monitored"):
        build_baseline(pa.table({"when": pa.array([dt.date(2026, 1, 1)])}))
    with pytest.raises(ValueError, match="empty"):
        build_baseline(table.slice(0, 0))
