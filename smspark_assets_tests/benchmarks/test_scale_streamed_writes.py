"""The DynamoDB IO manager writes a streamed table a frame at a time, with the checks of a whole one.

moto stands in for DynamoDB (the code path is the AWS one); expected items come from pandas
(``drop_duplicates(keep="last")``) or are written out by hand.
"""

from __future__ import annotations

from typing import Any, Callable

import boto3
import dagster as dg
import pandas as pd
import pytest
from moto import mock_aws

from smspark_assets.resources.aws import DynamoDBResource
from smspark_assets.resources.dynamodb_writes import FrameStream
from smspark_assets.resources.io_managers import DynamoDBTableIOManager

DAY = "2026-11-03"


def _io() -> dict[str, DynamoDBTableIOManager]:
    return {"dynamodb_io": DynamoDBTableIOManager(dynamodb=DynamoDBResource(region_name="us-east-1"))}


def _asset(make: Callable[[], Any]) -> dg.AssetsDefinition:
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition([DAY]), io_manager_key="dynamodb_io",
              metadata={"dynamodb/table": "latest", "dynamodb/key": "application_id",
                        "dynamodb/partition_attribute": "dt"})
    def latest() -> Any:  # a FrameStream or a DataFrame: the IO manager takes either
        return make()

    return latest


def _stored() -> dict[str, float]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName="latest")
    return {i["application_id"]["S"]: float(i["prediction"]["N"]) for p in pages for i in p["Items"]}


def _frames() -> list[pd.DataFrame]:
    # Three frames; "b" and "c" appear again in later frames with new scores.
    return [pd.DataFrame({"application_id": ids, "prediction": scores, "dt": DAY})
            for ids, scores in ((["a", "b", "c"], [0.1, 0.2, 0.3]), (["d", "b"], [0.4, 0.5]), (["c", "e"], [0.6, 0.7]))]


@mock_aws
def test_a_stream_where_later_rows_win_writes_the_last_row_of_each_key() -> None:
    result = dg.materialize([_asset(lambda: FrameStream(_frames, later_rows_win=True))], partition_key=DAY,
                            resources=_io())
    expected = pd.concat(_frames(), ignore_index=True).drop_duplicates("application_id", keep="last")
    assert _stored() == dict(zip(expected["application_id"], expected["prediction"]))
    assert result.asset_materializations_for_node("latest")[0].metadata["items_written"].value == 5


@mock_aws
def test_a_repeated_key_refuses_a_stream_without_later_rows_win() -> None:
    result = dg.materialize([_asset(lambda: FrameStream(_frames))], partition_key=DAY, resources=_io(),
                            raise_on_error=False)
    assert not result.success and "2 rows share a 'application_id'" in str(result.all_events)
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


@mock_aws
def test_a_bad_row_in_the_last_frame_refuses_the_stream_before_any_write() -> None:
    def frames() -> list[pd.DataFrame]:
        last = pd.DataFrame({"application_id": ["f", "x" * 3000], "prediction": [0.8, 0.9], "dt": DAY})
        return [*_frames()[:2], last]

    result = dg.materialize([_asset(lambda: FrameStream(frames, later_rows_win=True))], partition_key=DAY,
                            resources=_io(), raise_on_error=False)
    assert not result.success
    assert "1 of 7 rows would be refused" in str(result.all_events) and "row 6 " in str(result.all_events)
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []


@mock_aws
def test_a_large_frame_is_written_in_bounded_frames_and_a_rerun_reconciles_the_day() -> None:
    """10,001 rows (two frames of 10,000 at most); the re-run drops 1 row, which is deleted."""
    ids = [f"CA-{i:06d}" for i in range(10_001)]
    frame = pd.DataFrame({"application_id": ids, "prediction": [i / 10_001 for i in range(10_001)], "dt": DAY})
    days = {"rows": frame}
    asset = _asset(lambda: days["rows"])
    first = dg.materialize([asset], partition_key=DAY, resources=_io())
    assert first.asset_materializations_for_node("latest")[0].metadata["items_written"].value == 10_001
    days["rows"] = frame.iloc[1:]
    second = dg.materialize([asset], partition_key=DAY, resources=_io())
    metadata = second.asset_materializations_for_node("latest")[0].metadata
    assert metadata["stale_items_deleted"].value == 1
    assert set(_stored()) == set(ids[1:])


def test_frame_stream_of_cuts_views_and_refuses_a_bad_size() -> None:
    frame = pd.DataFrame({"k": range(7)})
    assert [len(f) for f in FrameStream.of(frame, rows=3)] == [3, 3, 1]
    assert [len(f) for f in FrameStream.of(frame.iloc[:0], rows=3)] == [0]
    with pytest.raises(ValueError, match="rows per frame must be >= 1"):
        FrameStream.of(frame, rows=0)
