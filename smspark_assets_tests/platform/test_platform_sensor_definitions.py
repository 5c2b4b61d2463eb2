"""The raw-data sensor and the Definitions in both environments."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from smspark_assets.datasets.credit import write_day
from smspark_assets.resources.storage import LocalObjectStoreResource


def _tick(store: LocalObjectStoreResource, instance: dg.DagsterInstance, cursor: str | None):
    from smspark_assets.sensors import raw_applications_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": store})
    return raw_applications_sensor(context)


def test_sensor_requests_each_complete_day_once(smspark_root: Path) -> None:
    store = LocalObjectStoreResource(root=str(smspark_root / "s3"))
    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        write_day("s3://smspark-demo", day, rows=50)
    # A day still landing: a part file, no _SUCCESS marker yet.
    store.write_bytes("s3://smspark-demo/raw/credit_applications/dt=2026-11-03/part-00000.csv", b"a\n")
    instance = dg.DagsterInstance.ephemeral()

    first = _tick(store, instance, None)
    assert [r.partition_key for r in first.run_requests] == ["2026-11-01", "2026-11-02"]
    assert {r.run_key for r in first.run_requests} == {"raw-2026-11-01", "raw-2026-11-02"}
    assert [e.partition for e in first.asset_events] == ["2026-11-01", "2026-11-02"]
    assert json.loads(first.cursor) == {"last_dt": "2026-11-02"}

    second = _tick(store, instance, first.cursor)
    assert not second.run_requests and second.skip_reason

    write_day("s3://smspark-demo", dt.date(2026, 11, 3), rows=50)
    third = _tick(store, instance, first.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2026-11-03"]


def test_sensor_skips_days_already_recorded_on_the_raw_asset(smspark_root: Path) -> None:
    from smspark_assets.assets.raw import RAW_APPLICATIONS

    store = LocalObjectStoreResource(root=str(smspark_root / "s3"))
    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        write_day("s3://smspark-demo", day, rows=20)
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition="2026-11-01"))
    result = _tick(store, instance, None)
    assert [r.partition_key for r in result.run_requests] == ["2026-11-02"]
    assert json.loads(result.cursor) == {"last_dt": "2026-11-02"}


@pytest.mark.parametrize("environment", ["local", "aws"])
def test_definitions_validate_in_both_environments(environment: str, monkeypatch: pytest.MonkeyPatch,
                                                   smspark_root: Path) -> None:
    import importlib

    monkeypatch.setenv("SMSPARK_ENV", environment)
    import smspark_assets.definitions as definitions

    defs = importlib.reload(definitions).defs
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("daily_scoring_job") is not None
    assert defs.resolve_job_def("training_job") is not None
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"raw_credit_applications", "credit_features", "credit_default_model", "credit_default_endpoint",
            "credit_scores", "credit_scores_dynamodb", "credit_model_performance"} <= keys
    resources = defs.resources
    assert type(resources["sagemaker"]).__name__ == "SageMakerResource"
    expected_spark = "LocalSparkJobRunner" if environment == "local" else "EmrServerlessSparkJobRunner"
    assert type(resources["spark"]).__name__ == expected_spark


def test_quality_gate_is_blocking() -> None:
    from smspark_assets.definitions import defs

    model = defs.resolve_assets_def("credit_default_model")
    (spec,) = model.check_specs
    assert spec.name == "validation_auc_gate" and spec.blocking
