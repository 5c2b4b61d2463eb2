"""CloudWatch Logs of the local stack, in process: tokens, time windows, paging, limits, persistence."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.cloudwatch_logs import LogsApi
from smspark_assets.local.layout import LocalLayout

pytestmark = pytest.mark.timeout(30)


def _api(root: Path) -> LogsApi:
    return LogsApi(SimpleNamespace(layout=LocalLayout(root)))


def test_forward_tokens_never_miss_or_repeat_later_events(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.append("/g", "s/stdout", ["a", "b"])
    first = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s/stdout", "startFromHead": True})
    assert [e["message"] for e in first["events"]] == ["a", "b"]
    empty = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s/stdout",
                                          "nextToken": first["nextForwardToken"]})
    assert empty["events"] == [] and empty["nextForwardToken"] == first["nextForwardToken"]
    api.append("/g", "s/stdout", ["c"])
    later = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s/stdout",
                                          "nextToken": first["nextForwardToken"]})
    assert [e["message"] for e in later["events"]] == ["c"]


def test_default_read_returns_the_latest_events_and_backward_pages(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.append("/g", "s", [f"line {i}" for i in range(10)])
    tail = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "limit": 3})
    assert [e["message"] for e in tail["events"]] == ["line 7", "line 8", "line 9"]
    back = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "limit": 3,
                                         "nextToken": tail["nextBackwardToken"]})
    assert [e["message"] for e in back["events"]] == ["line 4", "line 5", "line 6"]


def test_time_window_filters_by_event_timestamp(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.append("/g", "s", ["old"], timestamp_ms=1_000)
    api.append("/g", "s", ["new"], timestamp_ms=2_000)
    got = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "startTime": 1_500})
    assert [e["message"] for e in got["events"]] == ["new"]
    got = api.dispatch("GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "startFromHead": True,
                                        "endTime": 2_000})
    assert [e["message"] for e in got["events"]] == ["old"]


def test_streams_appear_with_their_first_event_and_describe_by_prefix(tmp_path: Path) -> None:
    api = _api(tmp_path)
    with pytest.raises(ApiError) as err:
        api.dispatch("DescribeLogStreams", {"logGroupName": "/aws/emr-serverless"})
    assert err.value.code == "ResourceNotFoundException"
    api.append("/aws/emr-serverless", "/applications/a/jobs/r/SPARK_DRIVER/stdout", [""])  # nothing to write
    with pytest.raises(ApiError):
        api.dispatch("DescribeLogStreams", {"logGroupName": "/aws/emr-serverless"})
    before = int(time.time() * 1000)
    api.append("/aws/emr-serverless", "/applications/a/jobs/r/SPARK_DRIVER/stdout", ["x"])
    got = api.dispatch("DescribeLogStreams", {"logGroupName": "/aws/emr-serverless",
                                              "logStreamNamePrefix": "/applications/a/jobs/r/SPARK_DRIVER/stdout"})
    (stream,) = got["logStreams"]
    assert stream["logStreamName"].endswith("/stdout") and stream["lastEventTimestamp"] >= before
    assert api.dispatch("DescribeLogStreams", {"logGroupName": "/aws/emr-serverless",
                                               "logStreamNamePrefix": "/other"})["logStreams"] == []


def test_put_log_events_rejects_too_old_events_by_index(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.dispatch("CreateLogGroup", {"logGroupName": "g"})
    api.dispatch("CreateLogStream", {"logGroupName": "g", "logStreamName": "s"})
    now = int(time.time() * 1000)
    old = now - 15 * 24 * 3600 * 1000
    out = api.dispatch("PutLogEvents", {"logGroupName": "g", "logStreamName": "s", "logEvents": [
        {"timestamp": old, "message": "ancient"}, {"timestamp": old + 1, "message": "ancient too"}]})
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    out = api.dispatch("PutLogEvents", {"logGroupName": "g", "logStreamName": "s", "logEvents": [
        {"timestamp": now, "message": "fresh"}, {"timestamp": now + 3 * 3600 * 1000, "message": "future"}]})
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = api.dispatch("GetLogEvents", {"logGroupName": "g", "logStreamName": "s", "startFromHead": True})
    assert [e["message"] for e in got["events"]] == ["fresh"]
    with pytest.raises(ApiError) as err:
        api.dispatch("CreateLogStream", {"logGroupName": "g", "logStreamName": "s"})
    assert err.value.code == "ResourceAlreadyExistsException"
    with pytest.raises(ApiError) as err:
        api.dispatch("CreateLogStream", {"logGroupName": "g", "logStreamName": "bad:name"})
    assert err.value.code == "InvalidParameterException"


def test_filter_log_events_pages_across_streams(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.append("g", "a", ["ERROR one", "ok"], timestamp_ms=10)
    api.append("g", "b", ["ERROR two"], timestamp_ms=20)
    first = api.dispatch("FilterLogEvents", {"logGroupName": "g", "filterPattern": "ERROR", "limit": 1})
    assert [e["message"] for e in first["events"]] == ["ERROR one"]
    second = api.dispatch("FilterLogEvents", {"logGroupName": "g", "filterPattern": "ERROR", "limit": 1,
                                              "nextToken": first["nextToken"]})
    assert [(e["logStreamName"], e["message"]) for e in second["events"]] == [("b", "ERROR two")]
    assert "nextToken" not in second


def test_events_survive_a_restart(tmp_path: Path) -> None:
    api = _api(tmp_path)
    api.append("g", "s", ["kept"])
    api.shutdown()
    again = _api(tmp_path)
    got = again.dispatch("GetLogEvents", {"logGroupName": "g", "logStreamName": "s", "startFromHead": True})
    assert [e["message"] for e in got["events"]] == ["kept"]
