"""The drift assets on the embedded stack, for real: features by the Spark job, a model trained and served,
the baseline scored through the endpoint, two days scored in one run: the undrifted day passes its checks,
the day drifted on purpose (credit scores 80 points lower) fails them with ERROR, each on its own
partition; the captured traffic shows the drift too; and with ``SMSPARK_RETRAIN_ON_DRIFT=on`` the
automation condition requests the retraining."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Iterator

import dagster as dg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROWS = 1500
BASELINE_DAYS = ["2026-11-01", "2026-11-02"]
UNDRIFTED, DRIFTED = "2026-11-03", "2026-11-04"
FAST_MODEL = {"objective": "binary:logistic", "eval_metric": "auc", "num_round": "20", "max_depth": "3",
              "eta": "0.3", "seed": "7"}


def _write_drifted_day(store: Any, bucket: str, day: str) -> None:
    """A raw day from the demo generator with every credit score 80 points lower (a worse population)."""
    from smspark_assets.datasets import credit

    date = dt.date.fromisoformat(day)
    frame = credit.generate_day(date, ROWS, 7)
    frame["credit_score"] = (frame["credit_score"] - 80).clip(lower=300)
    lines, _ = credit.render_csv(frame, date, 7)
    folder = credit.partition_uri(f"s3://{bucket}", date)
    store.write_bytes(f"{folder}/part-00000.csv", ("\n".join(lines) + "\n").encode())
    store.write_bytes(f"{folder}/_SUCCESS", b"")


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("drift") / "smspark"
    with pytest.MonkeyPatch.context() as mp:
        from smspark_assets_tests.stack_access import use_local_stack

        use_local_stack(mp, root)
        mp.delenv("SMSPARK_MODEL_APPROVAL", raising=False)
        mp.delenv("SMSPARK_RETRAIN_ON_DRIFT", raising=False)
        # Capture files rotate every second here (a minute by default), so the check sees them at once.
        (root / "local").mkdir(parents=True, exist_ok=True)
        (root / "local" / "config.json").write_text(json.dumps({"capture_rotate_seconds": 1}))
        from smspark_assets.assets.features import credit_features
        from smspark_assets.assets.raw import RAW_APPLICATIONS
        from smspark_assets.datasets.credit import write_day
        from smspark_assets.demo import RANGE_END, RANGE_START, land_demo_data
        from smspark_assets.environment import default_bucket
        from smspark_assets.local import process
        from smspark_assets.resources.by_environment import resources_for

        try:
            with dg.instance_for_test() as instance:
                bucket = default_bucket()
                land_demo_data(dt.date.fromisoformat(BASELINE_DAYS[0]), 2, ROWS, 7, bucket)
                resources = resources_for()
                store = resources["store"]
                write_day(store, f"s3://{bucket}", dt.date.fromisoformat(UNDRIFTED), ROWS, 7)
                _write_drifted_day(store, bucket, DRIFTED)
                for day in [*BASELINE_DAYS, UNDRIFTED, DRIFTED]:
                    instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition=day))
                state = {"instance": instance, "resources": resources, "bucket": bucket, "root": root,
                         "url": process.ensure_running(root), "range": (RANGE_START, RANGE_END)}
                # The baseline days only: the channels are written from every materialized day.
                result = _materialize(state, [credit_features], tags=_days(state, *BASELINE_DAYS))
                assert result.success
                yield state
        finally:
            process.stop(root)


def _days(state: dict[str, Any], first: str, last: str) -> dict[str, str]:
    start, end = state["range"]
    return {start: first, end: last}


def _materialize(state: dict[str, Any], selection: Any, run_config: dict[str, Any] | None = None,
                 tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    from smspark_assets.assets.drift import MONITORING_CHECKS
    from smspark_assets.definitions import ASSETS

    return dg.materialize([*ASSETS, *MONITORING_CHECKS], selection=selection, instance=state["instance"],
                          resources=state["resources"], run_config=run_config or {}, tags=tags or {},
                          raise_on_error=False)


def _failures(result: dg.ExecuteInProcessResult) -> str:
    return " | ".join(e.message or "" for e in result.all_events if e.event_type_value == "STEP_FAILURE")


def test_drifted_day_fails_its_checks_and_the_undrifted_day_passes(flow: dict[str, Any]) -> None:
    from smspark_assets.assets.drift import baseline_uris, credit_drift_report, credit_feature_baseline, report_uri
    from smspark_assets.assets.features import credit_features
    from smspark_assets.assets.scoring import credit_scores
    from smspark_assets.assets.serving import credit_default_endpoint
    from smspark_assets.assets.training import credit_default_model, credit_training_channels

    capture = f"s3://{flow['bucket']}/capture"
    endpoint = {"rollout": "ALL_AT_ONCE", "rollout_wait_seconds": 0, "alarm_error_rate": None,
                "alarm_latency_ms": None, "data_capture_uri": capture}
    trained = _materialize(flow, [credit_training_channels, credit_default_model, credit_default_endpoint,
                                  credit_feature_baseline],
                           {"ops": {"credit_default_model": {"config": {"hyperparameters": FAST_MODEL}},
                                    "credit_default_endpoint": {"config": endpoint},
                                    "credit_feature_baseline": {"config": {"score_sample_rows": 2000}}}})
    assert trained.success, _failures(trained)
    store = flow["resources"]["store"]
    statistics = json.loads(store.read_bytes(baseline_uris()[0]))
    assert statistics["source"]["days"] == BASELINE_DAYS and statistics["source"]["score_rows"] == 2000
    # Only the train split (70 % by id hash) of the baseline days' rows, without the quarantined ones.
    assert 0.6 * 2 * ROWS < statistics["dataset"]["item_count"] < 0.8 * 2 * ROWS

    prepared = _materialize(flow, [credit_features], tags=_days(flow, UNDRIFTED, DRIFTED))
    assert prepared.success, _failures(prepared)
    scored = _materialize(flow, [credit_scores, credit_drift_report], tags=_days(flow, UNDRIFTED, DRIFTED))
    assert scored.success, _failures(scored)

    evaluations = {(e.check_name, e.partition): e for e in scored.get_asset_check_evaluations()
                   if e.asset_key == credit_drift_report.key}
    for check in ("feature_drift", "score_drift", "drift_below_error_band"):
        assert evaluations[(check, UNDRIFTED)].passed, evaluations[(check, UNDRIFTED)].description
    drifted = evaluations[("feature_drift", DRIFTED)]
    assert not drifted.passed and drifted.severity == dg.AssetCheckSeverity.ERROR
    assert "credit_score" in drifted.description
    assert "data:image/png;base64," in drifted.metadata["plot"].value
    gate = evaluations[("drift_below_error_band", DRIFTED)]
    assert not gate.passed and "credit_score" in gate.description
    # Lower credit scores mean riskier applicants: the served model's scores move as well.
    assert not evaluations[("score_drift", DRIFTED)].passed

    report = json.loads(store.read_bytes(report_uri(DRIFTED)))
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["credit_score"]["psi"] > 0.25 and by_name["age"]["severity"] == "ok"
    # Each day's checks are recorded on its own partition.
    partitions = flow["instance"].event_log_storage.get_asset_check_partition_info(
        [dg.AssetCheckKey(credit_drift_report.key, "drift_below_error_band")])
    status = {p.partition_key: p.latest_execution_status.value for p in partitions}
    assert status == {UNDRIFTED: "SUCCEEDED", DRIFTED: "FAILED"}

    # Captured traffic: the baseline's score sample and both scored days went through the endpoint.
    from smspark_assets.assets.drift import captured_traffic_drift

    deadline = time.monotonic() + 30
    while not [o for o in store.list_objects(f"{capture}/") if o.uri.endswith(".jsonl")]:
        assert time.monotonic() < deadline, "no capture file appeared"
        time.sleep(0.5)
    time.sleep(2)  # the last rotation
    checked = _materialize(flow, dg.AssetSelection.checks(captured_traffic_drift))
    assert checked.success, _failures(checked)
    (traffic,) = checked.get_asset_check_evaluations()
    assert traffic.metadata["rows"].value == 2000 + report["rows_checked"] + _rows_of(store, UNDRIFTED)
    assert not traffic.passed and "credit_score" in traffic.description


def _rows_of(store: Any, day: str) -> int:
    from smspark_assets.layout import layout

    return store.parquet_dataset(f"{layout().features}/dt={day}").count_rows()


def test_a_day_in_error_requests_retraining_when_enabled(flow: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from smspark_assets.assets.drift import MONITORING_CHECKS, retrain_on_drift_condition, with_retraining_on_drift
    from smspark_assets.definitions import ASSETS

    channels = dg.AssetKey("credit_training_channels")

    def condition_of(assets: list[Any]) -> Any:
        return next(a for a in assets if isinstance(a, dg.AssetsDefinition) and channels in a.keys
                    ).automation_conditions_by_key.get(channels)

    monkeypatch.setenv("SMSPARK_RETRAIN_ON_DRIFT", "off")
    assert retrain_on_drift_condition() is None and condition_of(with_retraining_on_drift(ASSETS)) is None
    monkeypatch.setenv("SMSPARK_RETRAIN_ON_DRIFT", "on")
    # The drift condition alone (the code location ORs it with the channels' weekly / new-code condition).
    defs = dg.Definitions(assets=with_retraining_on_drift(ASSETS), asset_checks=MONITORING_CHECKS,
                          resources=flow["resources"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=flow["instance"])
    assert {r.key for r in first.results if r.true_subset.size} == {channels}
    again = dg.evaluate_automation_conditions(defs=defs, instance=flow["instance"], cursor=first.cursor)
    assert not [r.key for r in again.results if r.true_subset.size]  # one request per newly failing day
    monkeypatch.setenv("SMSPARK_RETRAIN_ON_DRIFT", "maybe")
    with pytest.raises(ValueError, match="on or off"):
        retrain_on_drift_condition()
