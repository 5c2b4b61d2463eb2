"""The raw-data sensor and the Definitions in both environments."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from moto import mock_aws

from smspark_assets.datasets.credit import write_day
from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def store(smspark_root: Path):
    """The store on moto's S3 with the demo bucket (the sensor only lists and reads)."""
    with mock_aws():
        resource = S3ObjectStoreResource(region_name="us-east-1")
        resource.client("s3").create_bucket(Bucket="smspark-demo")
        yield resource


def _tick(store: S3ObjectStoreResource, instance: dg.DagsterInstance, cursor: str | None):
    from smspark_assets.sensors import raw_applications_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": store})
    result = raw_applications_sensor(context)
    # As the sensor daemon does at the end of a tick: the days the tick records land on the raw asset.
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def test_sensor_requests_each_complete_day_once(store: S3ObjectStoreResource) -> None:
    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        write_day(store, "s3://smspark-demo", day, rows=50)
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

    write_day(store, "s3://smspark-demo", dt.date(2026, 11, 3), rows=50)
    third = _tick(store, instance, first.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2026-11-03"]


def test_sensor_skips_days_already_recorded_on_the_raw_asset(store: S3ObjectStoreResource) -> None:
    from smspark_assets.assets.raw import RAW_APPLICATIONS

    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        write_day(store, "s3://smspark-demo", day, rows=20)
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
    # One set of resources: the environment changes their settings, never their classes.
    assert type(resources["spark"]).__name__ == "EmrServerlessSparkJobRunner"
    assert type(resources["store"]).__name__ == "S3ObjectStoreResource"
    assert type(resources["catalog"]).__name__ == "GlueAthenaCatalogResource"
    assert (resources["store"].local_stack_root is not None) == (environment == "local")


def test_aws_definitions_import_nothing_of_the_embedded_stack(tmp_path: Path) -> None:
    """With SMSPARK_ENV=aws, loading the code location imports no ``smspark_assets.local`` module."""
    import os
    import subprocess
    import sys

    code = ("import sys, dagster as dg; import smspark_assets.definitions as d; "
            "dg.Definitions.validate_loadable(d.defs); "
            "print(sorted(m for m in sys.modules if m.startswith('smspark_assets.local')))")
    env = {**os.environ, "SMSPARK_ENV": "aws", "SMSPARK_ROOT": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_quality_gate_is_blocking() -> None:
    from smspark_assets.definitions import defs

    model = defs.resolve_assets_def("credit_default_model")
    (spec,) = model.check_specs
    assert spec.name == "validation_auc_gate" and spec.blocking
