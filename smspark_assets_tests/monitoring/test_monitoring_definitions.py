"""The drift assets in the code location: jobs, per-partition checks, results without a baseline."""

from __future__ import annotations

import dagster as dg
import pytest

from smspark_assets.assets.drift import (
    DRIFT_CHECKS,
    FEATURE_DRIFT,
    RETRAIN_GATE,
    SCORE_DRIFT,
    drift_check_results,
    retrain_on_drift_condition,
)
from smspark_assets.partitions import daily_partitions


def test_the_drift_assets_are_in_the_jobs_and_their_checks_are_partitioned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_RETRAIN_ON_DRIFT", "on")
    from smspark_assets.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    daily = defs.resolve_job_def("daily_scoring_job").asset_layer.selected_asset_keys
    training = defs.resolve_job_def("training_job").asset_layer.selected_asset_keys
    assert dg.AssetKey("credit_drift_report") in daily and dg.AssetKey("credit_feature_baseline") in training
    assert all(spec.partitions_def == daily_partitions for spec in DRIFT_CHECKS)
    graph = defs.resolve_asset_graph()
    assert dg.AssetCheckKey(dg.AssetKey("credit_default_endpoint"), "captured_traffic_drift") in graph.asset_check_keys
    condition = graph.get(dg.AssetKey("credit_training_channels")).automation_condition
    assert "retrain on drift" in str(condition)


def test_without_a_baseline_every_check_warns_and_says_what_to_do() -> None:
    results = drift_check_results(None, "2026-11-03", "no baseline at s3://b/x: materialize credit_feature_baseline")
    assert set(results) == {FEATURE_DRIFT, SCORE_DRIFT, RETRAIN_GATE}
    for result in results.values():
        assert result["passed"] is False and result["severity"] == dg.AssetCheckSeverity.WARN
        assert "materialize credit_feature_baseline" in result["description"]


def test_the_setting_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSPARK_RETRAIN_ON_DRIFT", raising=False)
    assert retrain_on_drift_condition() is None
    monkeypatch.setenv("SMSPARK_RETRAIN_ON_DRIFT", "sometimes")
    with pytest.raises(ValueError, match="SMSPARK_RETRAIN_ON_DRIFT='sometimes' is not allowed: on or off"):
        retrain_on_drift_condition()


def test_a_day_without_scores_fails_its_score_check_only_when_the_baseline_has_scores() -> None:
    import numpy as np
    import pyarrow as pa

    from smspark_assets.monitoring import build_baseline, check_day

    table = pa.table({"x": np.arange(1000.0)})
    report = check_day(build_baseline(table, scores=np.linspace(0, 1, 1000)), table, scores=None)
    expected = drift_check_results(report, "2026-11-03", "the day has no scores", scores_expected=True)
    assert expected[SCORE_DRIFT]["passed"] is False and expected[FEATURE_DRIFT]["passed"] is True
    assert expected[RETRAIN_GATE]["passed"] is True
    optional = drift_check_results(report, "2026-11-03", "the baseline has no score distribution")
    assert optional[SCORE_DRIFT]["passed"] is True and "no score distribution" in optional[SCORE_DRIFT]["description"]
