"""A day against the baseline: an undrifted day passes, days drifted on purpose warn or err, and the plot
of the drifting features renders."""

from __future__ import annotations

import base64
import datetime as dt
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from smspark_assets.monitoring import Baseline, DriftThresholds, build_baseline, check_day, infer_columns
from smspark_assets.monitoring.checks import Band
from smspark_assets.monitoring.plot import drift_markdown
from smspark_assets.monitoring.psi import psi
from smspark_assets_tests.monitoring.credit_feature_frames import as_table, feature_day

DAYS = [dt.date(2026, 11, d) for d in (1, 2, 3)]


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    frame = pd.concat([feature_day(d, 10_000) for d in DAYS], ignore_index=True)
    table = as_table(frame)
    scores = np.random.default_rng(0).beta(2, 12, table.num_rows)
    return build_baseline(table, infer_columns(table.schema, exclude=("application_id",)), scores=scores)


@pytest.fixture(scope="module")
def next_day() -> pd.DataFrame:
    return feature_day(dt.date(2026, 11, 9), 20_000)


def test_an_undrifted_day_passes(baseline: Baseline, next_day: pd.DataFrame) -> None:
    report = check_day(baseline, as_table(next_day), scores=np.random.default_rng(5).beta(2, 12, len(next_day)))
    assert report.severity == "ok", [f.row() for f in report.drifting()]
    assert max(f.psi for f in report.features) < 0.02
    assert report.score is not None and report.score.psi < 0.01
    assert "No feature drifts" in drift_markdown(report)


def test_a_shifted_feature_errs_and_its_psi_is_the_hand_formula(baseline: Baseline, next_day: pd.DataFrame) -> None:
    drifted = next_day.copy()
    drifted["credit_score"] = np.clip(drifted["credit_score"] - 80, 300, 850)  # a worse population
    drifted["interest_rate"] = drifted["interest_rate"] * 1.08  # moderate: a warning
    report = check_day(baseline, as_table(drifted))
    by_name = {f.name: f for f in report.features}
    score = by_name["credit_score"]
    assert score.severity == "error" and score.psi > 0.25
    # Independent PSI: pandas bins on the baseline's deciles, the formula written out.
    stats = baseline.feature("credit_score")["numerical_statistics"]
    edges = np.r_[-np.inf, stats["distribution"]["bins"]["edges"], np.inf]
    observed = drifted.loc[drifted["credit_score_missing"] == 0, "credit_score"]  # imputed rows are missing
    actual = pd.Series(pd.cut(observed, edges)).value_counts(sort=False, normalize=True).to_numpy()
    expected = np.maximum(np.asarray(stats["distribution"]["bins"]["proportions"]), 1e-4)
    actual = np.maximum(actual, 1e-4)
    assert score.psi == pytest.approx(float(np.sum((actual - expected) * np.log(actual / expected))), rel=1e-9)
    assert by_name["interest_rate"].severity == "warn", by_name["interest_rate"].row()
    assert by_name["age"].severity == "ok"
    assert report.feature_severity == "error" and report.score is None
    assert [f.name for f in report.drifting()][:2] == ["credit_score", "interest_rate"]

    markdown = drift_markdown(report, "2026-11-09")
    assert markdown.startswith("Drifting: credit_score (error")
    png = base64.b64decode(markdown.split("data:image/png;base64,", 1)[1].rstrip(")"))
    import matplotlib.image as mpimg

    image = mpimg.imread(io.BytesIO(png), format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and image.shape[0] > 100 and image.shape[1] > 300


def test_category_mix_missing_rates_range_and_scores(baseline: Baseline, next_day: pd.DataFrame) -> None:
    drifted = next_day.copy()
    # Half the applications become small-business loans (one-hot group "purpose").
    purpose = [c for c in drifted if c.startswith("purpose__")]
    chosen = np.random.default_rng(2).random(len(drifted)) < 0.5
    drifted.loc[chosen, purpose] = 0
    drifted.loc[chosen, "purpose__small_business"] = 1
    # Income missing for 15 % of rows (imputed upstream: the indicator says so).
    drifted.loc[: int(0.15 * len(drifted)), "annual_income_missing"] = 1
    # 3 % of loans larger than any the baseline saw.
    big = np.arange(len(drifted)) % 33 == 0
    drifted.loc[big, "loan_amount"] = 2_000_000.0
    scores = np.random.default_rng(6).beta(4, 6, len(drifted))  # the model now says "risky" far more often
    report = check_day(baseline, as_table(drifted), scores=scores)
    by_name = {f.name: f for f in report.features}
    assert by_name["purpose"].severity == "error" and by_name["purpose"].psi > 0.25
    assert by_name["annual_income"].severity == "error"
    assert by_name["annual_income"].missing_rate == pytest.approx(drifted["annual_income_missing"].mean())
    loan = by_name["loan_amount"]
    assert loan.out_of_range_share == pytest.approx(big.mean()) and loan.severity in ("warn", "error")
    assert any("out of the baseline's range" in r for r in loan.reasons)
    assert report.score is not None and report.score_severity == "error"


def test_new_categories_and_a_missing_column() -> None:
    base = build_baseline(pa.table({"channel": ["web"] * 90 + ["branch"] * 10, "x": np.arange(100.0)}))
    day = pa.table({"channel": ["web"] * 80 + ["branch"] * 10 + ["phone"] * 10, "x": np.arange(100.0)})
    report = check_day(base, day)
    channel = next(f for f in report.features if f.name == "channel")
    assert channel.new_categories == ["phone"] and channel.new_category_share == pytest.approx(0.1)
    assert channel.severity == "error"
    expected = psi(np.array([0.9, 0.1, 0.0]), np.array([0.8, 0.1, 0.1]))
    assert channel.psi == pytest.approx(expected)
    lenient = DriftThresholds(new_category_share=Band(0.2, 0.5), psi=Band(5, 10))
    assert check_day(base, day, thresholds=lenient).severity == "ok"
    gone = check_day(base, day.drop_columns(["x"]))
    x = next(f for f in gone.features if f.name == "x")
    assert x.severity == "error" and "missing from the day" in x.reasons[0]
    with pytest.raises(ValueError, match="warn <= error"):
        Band(0.3, 0.1)


def test_thresholds_round_trip_through_the_constraints(baseline: Baseline) -> None:
    thresholds = DriftThresholds(psi=Band(0.05, 0.2))
    assert DriftThresholds.from_json(thresholds.to_json()) == thresholds
    assert DriftThresholds.from_json(baseline.constraints["monitoring_config"]) == DriftThresholds()
