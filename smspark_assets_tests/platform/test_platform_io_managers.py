"""IO managers round-trip what assets hand them, in S3 and in DynamoDB (moto)."""

import boto3
import dagster as dg
import pandas as pd
from moto import mock_aws

from smspark_assets.resources.aws import DynamoDBResource
from smspark_assets.resources.io_managers import DynamoDBTableIOManager, JsonObjectIOManager, ParquetObjectIOManager
from smspark_assets.resources.storage import S3ObjectStoreResource


@mock_aws
def test_json_and_parquet_handles_round_trip() -> None:
    store = S3ObjectStoreResource(region_name="us-east-1")
    store.client("s3").create_bucket(Bucket="demo")

    @dg.asset(io_manager_key="json_io")
    def handle() -> dict:
        return {"endpoint_name": "credit-default", "metrics": {"validation:auc": 0.81}}

    @dg.asset(io_manager_key="parquet_io")
    def table(handle: dict) -> pd.DataFrame:
        return pd.DataFrame({"endpoint": [handle["endpoint_name"]], "auc": [handle["metrics"]["validation:auc"]]})

    @dg.asset
    def reader(table: pd.DataFrame) -> None:
        assert table.to_dict("records") == [{"endpoint": "credit-default", "auc": 0.81}]

    result = dg.materialize([handle, table, reader], resources={
        "json_io": JsonObjectIOManager(store=store, prefix="s3://demo/dagster"),
        "parquet_io": ParquetObjectIOManager(store=store, prefix="s3://demo/dagster"),
    })
    assert result.success
    assert store.exists("s3://demo/dagster/handle.json")
    assert store.exists("s3://demo/dagster/table.parquet")


@mock_aws
def test_dynamodb_io_manager_upserts_one_item_per_key() -> None:
    partitions = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02"])

    @dg.asset(partitions_def=partitions, io_manager_key="dynamodb_io",
              metadata={"dynamodb/table": "latest", "dynamodb/key": "application_id",
                        "dynamodb/partition_attribute": "dt"})
    def latest(context: dg.AssetExecutionContext) -> pd.DataFrame:
        day = context.partition_key
        return pd.DataFrame({"application_id": ["a", f"b-{day}"], "prediction": [0.5, 0.25], "dt": [day, day]})

    resources = {"dynamodb_io": DynamoDBTableIOManager(dynamodb=DynamoDBResource(region_name="us-east-1"))}
    first = dg.materialize([latest], partition_key="2026-11-01", resources=resources)
    dg.materialize([latest], partition_key="2026-11-02", resources=resources)
    client = boto3.client("dynamodb")
    assert client.scan(TableName="latest", Select="COUNT")["Count"] == 3  # "a" was overwritten, not duplicated
    assert client.get_item(TableName="latest", Key={"application_id": {"S": "a"}})["Item"]["dt"] == {"S": "2026-11-02"}
    metadata = first.asset_materializations_for_node("latest")[0].metadata
    assert metadata["items_written"].value == 2 and metadata["table_created"].value is True


@mock_aws
def test_dynamodb_io_manager_refuses_duplicate_keys_before_writing() -> None:
    @dg.asset(io_manager_key="dynamodb_io", metadata={"dynamodb/table": "dups", "dynamodb/key": "id"})
    def dups() -> pd.DataFrame:
        return pd.DataFrame({"id": ["x", "x"], "v": [1, 2]})

    result = dg.materialize([dups], raise_on_error=False, resources={
        "dynamodb_io": DynamoDBTableIOManager(dynamodb=DynamoDBResource(region_name="us-east-1"))})
    assert not result.success
    assert "share a 'id'" in str(result.all_events)
