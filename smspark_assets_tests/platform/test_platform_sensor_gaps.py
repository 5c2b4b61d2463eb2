"""The raw-data sensor picks up late days, skips incomplete ones by name and warns when one is stuck."""

import datetime as dt
import json
import time
from pathlib import Path

import boto3
import dagster as dg
import pytest
from moto import mock_aws

from smspark_assets.datasets.credit import write_day
from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)

RAW = "s3://smspark-demo/raw/credit_applications"


@pytest.fixture
def store(smspark_root: Path):
    """The store on moto's S3 with the demo bucket."""
    with mock_aws():
        resource = S3ObjectStoreResource(region_name="us-east-1")
        resource.client("s3").create_bucket(Bucket="smspark-demo")
        yield resource


def _tick(store: S3ObjectStoreResource, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    """One evaluation, then what the sensor daemon does with its events: persist them on the instance."""
    from smspark_assets.sensors import raw_applications_sensor

    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"store": store})
    result = raw_applications_sensor(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _land_part_only(store: S3ObjectStoreResource, day: str) -> None:
    """A day whose export stopped after its first part: no _SUCCESS marker."""
    store.write_bytes(f"{RAW}/dt={day}/part-00000.csv", b"application_id\nx\n")


def _requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests]


def test_a_day_landing_after_later_days_is_picked_up(store: S3ObjectStoreResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for day in ("2026-11-01", "2026-11-03"):
        write_day(store, "s3://smspark-demo", _day(day), rows=20)
    first = _tick(store, instance, None)
    assert _requested(first) == ["2026-11-01", "2026-11-03"]

    write_day(store, "s3://smspark-demo", _day("2026-11-02"), rows=20)  # late: after 11-03 was seen
    second = _tick(store, instance, first.cursor)
    assert _requested(second) == ["2026-11-02"]
    assert [e.partition for e in second.asset_events] == ["2026-11-02"]

    third = _tick(store, instance, second.cursor)
    assert not third.run_requests and "no new complete day" in third.skip_reason.skip_message


def test_an_incomplete_day_is_skipped_by_name_and_does_not_block_later_days(store: S3ObjectStoreResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    write_day(store, "s3://smspark-demo", _day("2026-11-01"), rows=20)
    _land_part_only(store, "2026-11-02")
    write_day(store, "s3://smspark-demo", _day("2026-11-03"), rows=20)

    first = _tick(store, instance, None)
    assert _requested(first) == ["2026-11-01", "2026-11-03"]
    second = _tick(store, instance, first.cursor)
    assert not second.run_requests
    assert "dt=2026-11-02" in second.skip_reason.skip_message
    assert "WARNING" not in second.skip_reason.skip_message  # fresh: still landing, not stuck

    # The export finishes: the day is requested on the next tick.
    store.write_bytes(f"{RAW}/dt=2026-11-02/_SUCCESS", b"")
    assert _requested(_tick(store, instance, second.cursor)) == ["2026-11-02"]


def test_a_day_incomplete_past_the_configured_age_is_warned_once_on_its_partition(
        store: S3ObjectStoreResource, monkeypatch: pytest.MonkeyPatch) -> None:
    import smspark_assets.sensors as sensors
    from smspark_assets.assets.raw import RAW_APPLICATIONS

    instance = dg.DagsterInstance.ephemeral()
    _land_part_only(store, "2026-11-02")
    landed_at = time.time()
    monkeypatch.setenv("SMSPARK_RAW_INCOMPLETE_WARN_HOURS", "6")

    monkeypatch.setattr(sensors, "_now", lambda: landed_at + 5 * 3600)
    young = _tick(store, instance, None)
    assert not young.asset_events and "WARNING" not in young.skip_reason.skip_message

    monkeypatch.setattr(sensors, "_now", lambda: landed_at + 7 * 3600)
    stuck = _tick(store, instance, young.cursor)
    assert "WARNING: 1 day(s) incomplete for more than 6 h" in stuck.skip_reason.skip_message
    assert "dt=2026-11-02" in stuck.skip_reason.skip_message
    (observation,) = stuck.asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.asset_key == RAW_APPLICATIONS and observation.partition == "2026-11-02"
    assert observation.metadata["status"].value == "incomplete"
    assert observation.metadata["objects"].value == 1
    assert 6.9 < observation.metadata["age_hours"].value < 7.1
    # Visible in the asset catalog: the observation is stored on the day's partition of the raw asset.
    stored = instance.fetch_observations(RAW_APPLICATIONS, limit=5).records
    assert [r.partition_key for r in stored] == ["2026-11-02"]

    # Later ticks keep naming it in the skip reason but do not pile up observations.
    again = _tick(store, instance, stuck.cursor)
    assert "WARNING" in again.skip_reason.skip_message and not again.asset_events

    # A longer threshold: the same day is not stuck yet.
    monkeypatch.setenv("SMSPARK_RAW_INCOMPLETE_WARN_HOURS", "12")
    assert "WARNING" not in _tick(store, instance, None).skip_reason.skip_message


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_an_invalid_warning_age_is_refused_with_the_valid_range(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from smspark_assets.sensors import incomplete_warn_hours

    monkeypatch.setenv("SMSPARK_RAW_INCOMPLETE_WARN_HOURS", value)
    with pytest.raises(ValueError, match="hours > 0"):
        incomplete_warn_hours()


def test_recorded_days_cost_no_request_beyond_the_delimited_listing(store: S3ObjectStoreResource) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for offset in range(5):
        write_day(store, "s3://smspark-demo", dt.date(2026, 11, 1) + dt.timedelta(days=offset), rows=10)
    first = _tick(store, instance, None)
    assert len(first.run_requests) == 5

    # The tick builds its own copy of the resource (and its clients) from the default boto3 session.
    calls: list[str] = []
    events = boto3._get_default_session().events
    try:
        events.register("before-call.s3", lambda model, **_: calls.append(model.name), unique_id="count-s3-calls")
        second = _tick(store, instance, first.cursor)
        assert not second.run_requests
        assert calls == ["ListObjectsV2"]  # one delimited listing of the dt= folders, no HEAD per recorded day

        write_day(store, "s3://smspark-demo", dt.date(2026, 11, 6), rows=10)
        calls.clear()
        assert _requested(_tick(store, instance, second.cursor)) == ["2026-11-06"]
        assert calls == ["ListObjectsV2", "HeadObject", "ListObjectsV2"]  # the new day only
    finally:
        events.unregister("before-call.s3", unique_id="count-s3-calls")


def test_cursor_of_the_previous_sensor_version_is_accepted(store: S3ObjectStoreResource) -> None:
    """A cursor written before the upgrade (`last_dt` past a day that landed late) no longer hides that day."""
    instance = dg.DagsterInstance.ephemeral()
    write_day(store, "s3://smspark-demo", _day("2026-11-01"), rows=10)
    result = _tick(store, instance, json.dumps({"last_dt": "2026-11-05"}))
    assert _requested(result) == ["2026-11-01"]
