"""DynamoDB days: invalid items are quarantined before writing, a failed write names what was not written,
and re-written days are reconciled (stale items deleted, never an item a later day wrote)."""

import io
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from smspark_assets.resources.aws import DynamoDBResource
from smspark_assets.resources.dynamodb_writes import (PartialWriteError, delete_stale_items, ensure_table,
                                                      invalid_item_reasons, to_attribute_values, write_items)
from smspark_assets.resources.io_managers import DynamoDBTableIOManager
from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)

DAYS = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02"])
TABLE_META = {"dynamodb/table": "latest", "dynamodb/key": "application_id", "dynamodb/partition_attribute": "dt"}


def _scan(table: str = "latest") -> dict[str, dict]:
    client = boto3.client("dynamodb")
    items = [i for page in client.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return {i["application_id"]["S"]: i for i in items}


def _day_asset(days: dict[str, pd.DataFrame]) -> dg.AssetsDefinition:
    """A partitioned asset handing the IO manager the frame given for its day (with the day as `dt`)."""

    @dg.asset(partitions_def=DAYS, io_manager_key="dynamodb_io", metadata=TABLE_META, name="latest")
    def latest(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return days[context.partition_key].assign(dt=context.partition_key)

    return latest


def _ids(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"application_id": [f"{prefix}{i:03d}" for i in range(n)],
                         "prediction": [i / 200 for i in range(n)]})


def _io() -> dict:
    return {"dynamodb_io": DynamoDBTableIOManager(dynamodb=DynamoDBResource(region_name="us-east-1"))}


# ---------------------------------------------------------------- invalid items (issue 9, item 11)

CANDIDATES = pd.DataFrame({
    "application_id": ["ok", "k" * 2048, "k" * 2049, "é" * 1025, "", None, "big", "inf", "huge", "tiny", "bad\ud800",
                       "emptyday"],
    "prediction": [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, float("inf"), 1e200, 1e-200, 0.1, 0.1],
    "note": ["", "", "", "", "", "", "n" * 410_000, "", "", "", "", ""],
    "dt": ["2026-11-01"] * 11 + [""],
})


@mock_aws
def test_invalid_item_reasons_agree_with_what_dynamodb_refuses() -> None:
    """moto enforces DynamoDB's limits: each row is put alone, and refused exactly when a reason is given."""
    client = boto3.client("dynamodb")
    ensure_table(client, "oracle", "application_id", poll_seconds=0, day_attribute="dt")
    reasons = invalid_item_reasons(CANDIDATES, "application_id", ["dt"])
    for position, (item, reason) in enumerate(zip(to_attribute_values(CANDIDATES), reasons)):
        try:
            client.put_item(TableName="oracle", Item=item)
            accepted = True
        except Exception:  # noqa: BLE001 - a ValidationException, or botocore refusing to encode the text
            accepted = False
        assert accepted == (reason is None), (position, reason)
    assert "2049 bytes" in reasons[2] and "2050 bytes" in reasons[3]
    assert "empty" in reasons[4] and "missing" in reasons[5] and "400 KB" in reasons[6]


@mock_aws
def test_a_day_with_an_overlong_id_is_refused_before_any_write() -> None:
    frame = _ids("a", 102)
    frame.loc[87, "application_id"] = "x" * 3000
    result = dg.materialize([_day_asset({"2026-11-01": frame})], partition_key="2026-11-01",
                            resources=_io(), raise_on_error=False)
    assert not result.success
    assert "1 of 102 rows would be refused" in str(result.all_events) and "row 87" in str(result.all_events)
    assert boto3.client("dynamodb").list_tables()["TableNames"] == []  # refused before any call: nothing half-written


@mock_aws
def test_a_failed_write_names_exactly_the_rows_not_written() -> None:
    """Written without the checks, a bad item fails its batch: the error names the rows that did not land
    (read back: AWS refuses the whole batch, moto applies the items before the bad one)."""
    client = boto3.client("dynamodb")
    ensure_table(client, "latest", "application_id", poll_seconds=0)
    frame = _ids("a", 102)
    frame.loc[87, "application_id"] = "x" * 3000
    with pytest.raises(PartialWriteError, match=r"of 102 items to latest; NOT written") as failure:
        write_items(lambda: boto3.client("dynamodb"), "latest", to_attribute_values(frame), threads=2,
                    key="application_id")
    stored = set(_scan())
    missing = set(frame["application_id"]) - stored
    assert "x" * 3000 in missing and len(stored) >= 77  # every batch but the bad one landed whole
    assert set(failure.value.unwritten_keys) == missing
    assert [frame["application_id"].iloc[row] for row in failure.value.unwritten_rows] == sorted(
        missing, key=lambda k: frame.index[frame["application_id"] == k][0])
    assert f"wrote {len(stored)} of 102" in str(failure.value)


# ---------------------------------------------------------------- stale items (issue 9, item 12)

@mock_aws
def test_a_day_relanded_with_fewer_rows_leaves_as_many_items() -> None:
    days = {"2026-11-01": _ids("a", 102)}
    dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    assert len(_scan()) == 102
    days["2026-11-01"] = _ids("a", 102).drop(index=range(40, 50)).reset_index(drop=True)
    result = dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    assert set(_scan()) == set(days["2026-11-01"]["application_id"])  # 92, as in the day
    metadata = result.asset_materializations_for_node("latest")[0].metadata
    assert metadata["stale_items_deleted"].value == 10


@mock_aws
def test_an_item_a_later_day_wrote_is_neither_deleted_nor_overwritten() -> None:
    days = {"2026-11-01": pd.DataFrame({"application_id": ["only-1", "shared"], "prediction": [0.1, 0.1]}),
            "2026-11-02": pd.DataFrame({"application_id": ["only-2", "shared"], "prediction": [0.2, 0.9]})}
    dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    dg.materialize([_day_asset(days)], partition_key="2026-11-02", resources=_io())
    # Day 1 re-scored: "shared" now has an older score, and "only-1" left the day.
    days["2026-11-01"] = pd.DataFrame({"application_id": ["shared"], "prediction": [0.3]})
    result = dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    items = _scan()
    assert set(items) == {"shared", "only-2"}
    assert items["shared"]["dt"] == {"S": "2026-11-02"} and items["shared"]["prediction"] == {"N": "0.9"}
    assert result.asset_materializations_for_node("latest")[0].metadata["items_kept_for_a_later_day"].value == 1


class _LaggingIndex:
    """A DynamoDB client whose day index still lists items as they were before a later day overwrote
    them (global secondary indexes are eventually consistent); everything else is moto."""

    def __init__(self, client, lagging: dict[str, list[str]]) -> None:
        self._client, self._lagging = client, lagging

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def get_paginator(self, operation: str):
        if operation != "query":
            return self._client.get_paginator(operation)
        lagging = self._lagging

        class Pages:
            def paginate(self, **kwargs):
                day = kwargs["ExpressionAttributeValues"][":d"]["S"]
                return [{"Items": [{"application_id": {"S": k}, "dt": {"S": day}} for k in lagging[day]]}]

        return Pages()


@mock_aws
def test_a_stale_index_entry_never_deletes_the_later_days_item() -> None:
    client = boto3.client("dynamodb")
    ensure_table(client, "latest", "application_id", poll_seconds=0, day_attribute="dt")
    client.put_item(TableName="latest", Item={"application_id": {"S": "gone"}, "dt": {"S": "2026-11-01"}})
    client.put_item(TableName="latest", Item={"application_id": {"S": "moved"}, "dt": {"S": "2026-11-02"}})
    lagging = {"2026-11-01": ["gone", "moved"]}  # the index has not yet seen "moved" move to 11-02
    outcome = delete_stale_items(lambda: _LaggingIndex(boto3.client("dynamodb"), lagging), "latest",
                                 "application_id", "dt", "2026-11-01", keep=set(), threads=2)
    assert outcome == {"deleted": 1, "kept": 1}
    assert set(_scan()) == {"moved"}


@mock_aws
def test_a_table_made_before_the_day_index_gets_it_and_is_reconciled() -> None:
    client = boto3.client("dynamodb")
    ensure_table(client, "latest", "application_id", poll_seconds=0)  # as the earlier version created it
    days = {"2026-11-01": _ids("a", 30)}
    dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    indexes = client.describe_table(TableName="latest")["Table"].get("GlobalSecondaryIndexes", [])
    assert [i["IndexName"] for i in indexes] == ["dt-index"]
    days["2026-11-01"] = _ids("a", 25)
    dg.materialize([_day_asset(days)], partition_key="2026-11-01", resources=_io())
    assert set(_scan()) == {f"a{i:03d}" for i in range(25)}


# ---------------------------------------------------------------- the asset: quarantine in the store

@pytest.fixture
def moto_server(smspark_root: Path):
    """moto over HTTP: the asset reads its day with pyarrow's S3 filesystem, which mock_aws cannot patch."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_asset_quarantines_an_overlong_id_and_writes_the_rest_of_the_day(moto_server: str) -> None:
    from smspark_assets.assets.outputs import QUARANTINE_FILE, credit_scores_dynamodb, dynamodb_quarantine_prefix
    from smspark_assets.layout import layout

    store = S3ObjectStoreResource(region_name="us-east-1", endpoint_url=moto_server)
    dynamodb = DynamoDBResource(region_name="us-east-1", endpoint_url=moto_server)
    store.client("s3").create_bucket(Bucket=layout().bucket)
    day = "2026-11-03"
    ids = [f"app-{i:04d}" for i in range(102)]
    ids[87] = "x" * 3000
    scores = pd.DataFrame({"application_id": ids, "prediction": [i / 102 for i in range(102)],
                           "model_name": "m", "model_version": "1", "scored_at": pd.Timestamp("2026-11-03T12:00:00")})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(scores, preserve_index=False), sink)
    store.write_bytes(f"{layout().scores}/dt={day}/part-00000.parquet", sink.getvalue())

    from smspark_assets.resources.catalog import CatalogResource

    result = dg.materialize([credit_scores_dynamodb], partition_key=day, resources={
        "store": store, "dynamodb_io_manager": DynamoDBTableIOManager(dynamodb=dynamodb),
        "catalog": CatalogResource(region_name="us-east-1", endpoint_url=moto_server)})
    assert result.success
    client = dynamodb.client("dynamodb")
    assert client.scan(TableName="credit_scores_latest", Select="COUNT")["Count"] == 101
    metadata = result.asset_materializations_for_node("credit_scores_dynamodb")[0].metadata
    assert metadata["items_quarantined"].value == 1 and metadata["items_written"].value == 101
    rejected = pq.read_table(io.BytesIO(store.read_bytes(
        f"{dynamodb_quarantine_prefix()}/dt={day}/{QUARANTINE_FILE}"))).to_pandas()
    assert rejected["application_id"].tolist() == ["x" * 3000]
    assert "3000 bytes" in rejected["quarantine_reason"].iloc[0]
