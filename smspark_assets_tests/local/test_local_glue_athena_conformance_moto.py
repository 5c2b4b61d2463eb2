"""Conformance: the same boto3 Glue and Athena calls against moto and against the local stack give the same
response keys and value types. Differences are listed with a one-line reason."""

from __future__ import annotations

import time
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STORAGE = {
    "Columns": [{"Name": "id", "Type": "string"}],
    "Location": "s3://lake/t/",
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}

# Key paths (of a database, table or partition, whichever call answers it) present on one side only, and why.
ONLY_LOCAL: dict[str, str] = {
    "Table.UpdateTime": "Glue sets UpdateTime at creation; moto only after an update",
    "Table.Retention": "Glue answers Retention 0; moto echoes the input only",
    "Table.CreatedBy": "Glue answers the creator's ARN; moto leaves it out",
    "Table.IsRegisteredWithLakeFormation": "Glue answers it; moto leaves it out",
    "Partition.CatalogId": "Glue answers the catalog id of a partition; moto leaves it out",
    "Database.CreateTableDefaultPermissions": "Glue answers the default IAM_ALLOWED_PRINCIPALS grant; moto "
    "answers null (dropped by botocore)",
    "Database.CreateTableDefaultPermissions[]": "(same)",
    "Database.CreateTableDefaultPermissions[].Principal": "(same)",
    "Database.CreateTableDefaultPermissions[].Principal.DataLakePrincipalIdentifier": "(same)",
    "Database.CreateTableDefaultPermissions[].Permissions": "(same)",
    "Database.CreateTableDefaultPermissions[].Permissions[]": "(same)",
    "UnprocessedKeys": "BatchGetPartition: Glue answers an empty UnprocessedKeys list; moto leaves it out",
}
ONLY_MOTO: dict[str, str] = {}
_ENTITY_LISTS = {"TableList[]": "Table", "DatabaseList[]": "Database", "Partitions[]": "Partition"}


def entity_path(path: str) -> str:
    """``TableList[].X`` -> ``Table.X``: a list answer's items are compared like the single answer."""
    head, dot, rest = path.partition(".")
    return _ENTITY_LISTS.get(head, head) + dot + rest


def _shape(value: Any, path: str, out: dict[str, type]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _shape(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        out[path] = list
        for item in value:
            _shape(item, f"{path}[]", out)
    else:
        out[path] = type(value)


def shape(response: dict[str, Any]) -> dict[str, type]:
    out: dict[str, type] = {}
    _shape({k: v for k, v in response.items() if k != "ResponseMetadata"}, "", out)
    return out


def glue_scenario(glue: Any) -> dict[str, dict]:
    r: dict[str, dict] = {}
    r["CreateDatabase"] = glue.create_database(DatabaseInput={"Name": "conf", "Description": "d"})
    r["GetDatabase"] = glue.get_database(Name="conf")
    r["GetDatabases"] = glue.get_databases()
    table = {
        "Name": "t",
        "StorageDescriptor": STORAGE,
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
    }
    r["CreateTable"] = glue.create_table(DatabaseName="conf", TableInput=table)
    r["GetTable"] = glue.get_table(DatabaseName="conf", Name="t")
    r["GetTables"] = glue.get_tables(DatabaseName="conf")
    r["UpdateTable"] = glue.update_table(DatabaseName="conf", TableInput={**table, "Description": "x"})

    def part(value: str) -> dict[str, Any]:
        return {"Values": [value], "StorageDescriptor": {**STORAGE, "Location": f"s3://lake/t/dt={value}/"}}

    r["CreatePartition"] = glue.create_partition(DatabaseName="conf", TableName="t", PartitionInput=part("a"))
    r["BatchCreatePartition"] = glue.batch_create_partition(
        DatabaseName="conf", TableName="t", PartitionInputList=[part("a"), part("b"), part("c")]
    )
    r["GetPartition"] = glue.get_partition(DatabaseName="conf", TableName="t", PartitionValues=["a"])
    r["GetPartitions"] = glue.get_partitions(DatabaseName="conf", TableName="t", Expression="dt > 'a'")
    r["BatchGetPartition"] = glue.batch_get_partition(
        DatabaseName="conf", TableName="t", PartitionsToGet=[{"Values": ["a"]}, {"Values": ["zz"]}]
    )
    r["UpdatePartition"] = glue.update_partition(
        DatabaseName="conf", TableName="t", PartitionValueList=["c"], PartitionInput=part("d")
    )
    r["DeletePartition"] = glue.delete_partition(DatabaseName="conf", TableName="t", PartitionValues=["d"])
    r["BatchDeletePartition"] = glue.batch_delete_partition(
        DatabaseName="conf", TableName="t", PartitionsToDelete=[{"Values": ["b"]}, {"Values": ["zz"]}]
    )
    r["DeleteTable"] = glue.delete_table(DatabaseName="conf", Name="t")
    r["DeleteDatabase"] = glue.delete_database(Name="conf")
    return r


def athena_scenario(athena: Any) -> dict[str, dict]:
    r: dict[str, dict] = {}
    config = {"OutputLocation": "s3://results/athena/"}
    r["StartQueryExecution"] = athena.start_query_execution(
        QueryString="SELECT 1 AS one",
        QueryExecutionContext={"Database": "default"},
        ResultConfiguration=config,
    )
    qid = r["StartQueryExecution"]["QueryExecutionId"]
    deadline = time.monotonic() + 20
    while True:
        r["GetQueryExecution"] = athena.get_query_execution(QueryExecutionId=qid)
        if (
            r["GetQueryExecution"]["QueryExecution"]["Status"]["State"] in ("SUCCEEDED", "FAILED")
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    r["ListQueryExecutions"] = athena.list_query_executions()
    r["StopQueryExecution"] = athena.stop_query_execution(QueryExecutionId=qid)
    r["GetWorkGroup"] = athena.get_work_group(WorkGroup="primary")
    r["ListWorkGroups"] = athena.list_work_groups()
    return r


# Athena keys AWS answers that moto leaves out (the local stack answers as AWS does).
ATHENA_ONLY_LOCAL_PREFIXES = {
    # moto answers a few Statistics fields only; Athena answers all of them, and the WorkGroup.
    "GetQueryExecution": (
        "QueryExecution.Statistics",
        "QueryExecution.WorkGroup",
        "QueryExecution.EngineVersion",
        "QueryExecution.ResultReuseConfiguration",
        "QueryExecution.SubstatementType",
        "QueryExecution.QueryExecutionContext.Catalog",
        "QueryExecution.Status.CompletionDateTime",
    ),
    "GetWorkGroup": (
        "WorkGroup.Configuration.PublishCloudWatchMetricsEnabled",
        "WorkGroup.Configuration.RequesterPaysEnabled",
        "WorkGroup.Configuration.EngineVersion",
        "WorkGroup.Configuration.ResultConfiguration",
        "WorkGroup.Configuration.EnforceWorkGroupConfiguration",
        "WorkGroup.CreationTime",
    ),
    "ListWorkGroups": ("WorkGroups[].EngineVersion",),
}


def _compare(
    local: dict[str, dict], moto: dict[str, dict], allowed: Callable[[str, str, str], bool]
) -> list[str]:
    problems = []
    assert local.keys() == moto.keys()
    for operation in local:
        mine, theirs = shape(local[operation]), shape(moto[operation])
        for path in mine.keys() | theirs.keys():
            if path in mine and path in theirs:
                if mine[path] is not theirs[path]:
                    problems.append(
                        f"{operation} {path}: local {mine[path].__name__}, moto {theirs[path].__name__}"
                    )
            elif not allowed(operation, path, "local" if path in mine else "moto"):
                problems.append(f"{operation} {path}: only in {'local' if path in mine else 'moto'}")
    return problems


def test_glue_matches_moto(service: Any) -> None:
    local = glue_scenario(service.client("glue"))
    with mock_aws():
        moto = glue_scenario(boto3.client("glue", region_name="us-east-1"))

    def allowed(operation: str, path: str, side: str) -> bool:
        return entity_path(path) in (ONLY_LOCAL if side == "local" else ONLY_MOTO)

    problems = _compare(local, moto, allowed)
    assert problems == [], "\n".join(problems)


def test_athena_matches_moto(service: Any) -> None:
    local = athena_scenario(service.client("athena"))
    assert local["GetQueryExecution"]["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    with mock_aws():
        moto = athena_scenario(boto3.client("athena", region_name="us-east-1"))

    def allowed(operation: str, path: str, side: str) -> bool:
        return side == "local" and path.startswith(ATHENA_ONLY_LOCAL_PREFIXES.get(operation, ("\0",)))

    problems = _compare(local, moto, allowed)
    assert problems == [], "\n".join(problems)
