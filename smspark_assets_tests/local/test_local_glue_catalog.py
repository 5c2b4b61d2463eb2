"""The stack's Glue Data Catalog through boto3: databases, tables, partitions, Expression filters,
paging, AWS's errors, and no lost partition under concurrent writers (issue 9, item 9)."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from smspark_assets.local.layout import LocalLayout

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DB = "catalog_test"
STORAGE = {
    "Columns": [{"Name": "id", "Type": "string"}, {"Name": "score", "Type": "double"}],
    "Location": "s3://lake/scores/",
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def table_input(name: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": STORAGE,
        "PartitionKeys": [{"Name": k, "Type": t} for k, t in keys],
        "Parameters": {"classification": "parquet"},
    }


def partition_input(values: list[str]) -> dict[str, Any]:
    suffix = "/".join(f"k{i}={v}" for i, v in enumerate(values))
    return {"Values": values, "StorageDescriptor": {**STORAGE, "Location": f"s3://lake/scores/{suffix}/"}}


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def glue(service: Any) -> Any:
    client = service.client("glue")
    client.create_database(DatabaseInput={"Name": DB, "Description": "tests"})
    return client


def test_databases_create_get_list_delete(glue: Any) -> None:
    glue.create_database(DatabaseInput={"Name": "Mixed_Case"})
    db = glue.get_database(Name="mixed_case")["Database"]
    assert db["Name"] == "mixed_case"  # Glue stores names lower-case
    assert db["CreateTime"].year >= 2024
    with pytest.raises(ClientError) as exists:
        glue.create_database(DatabaseInput={"Name": "mixed_case"})
    assert error_code(exists) == "AlreadyExistsException"
    names = [
        d["Name"]
        for page in glue.get_paginator("get_databases").paginate(PaginationConfig={"PageSize": 1})
        for d in page["DatabaseList"]
    ]
    assert {DB, "mixed_case"} <= set(names) and len(names) == len(set(names))
    glue.delete_database(Name="mixed_case")
    with pytest.raises(ClientError) as missing:
        glue.get_database(Name="mixed_case")
    assert error_code(missing) == "EntityNotFoundException"


def test_tables_create_get_update_list_delete(glue: Any) -> None:
    glue.create_table(DatabaseName=DB, TableInput=table_input("t_one", [("dt", "string")]))
    glue.create_table(DatabaseName=DB, TableInput=table_input("t_two", []))
    table = glue.get_table(DatabaseName=DB, Name="t_one")["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://lake/scores/"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert table["DatabaseName"] == DB
    with pytest.raises(ClientError) as exists:
        glue.create_table(DatabaseName=DB, TableInput=table_input("t_one", []))
    assert error_code(exists) == "AlreadyExistsException"

    updated = table_input("t_one", [("dt", "string")])
    updated["StorageDescriptor"] = {**STORAGE, "Location": "s3://lake/moved/"}
    glue.update_table(DatabaseName=DB, TableInput=updated)
    after = glue.get_table(DatabaseName=DB, Name="t_one")["Table"]
    assert after["StorageDescriptor"]["Location"] == "s3://lake/moved/"
    assert after["CreateTime"] == table["CreateTime"] and after["VersionId"] != table["VersionId"]

    names = [
        t["Name"]
        for page in glue.get_paginator("get_tables").paginate(
            DatabaseName=DB, PaginationConfig={"PageSize": 1}
        )
        for t in page["TableList"]
    ]
    assert {"t_one", "t_two"} <= set(names)
    assert [t["Name"] for t in glue.get_tables(DatabaseName=DB, Expression="t_t*")["TableList"]] == ["t_two"]

    glue.delete_table(DatabaseName=DB, Name="t_two")
    with pytest.raises(ClientError) as missing:
        glue.get_table(DatabaseName=DB, Name="t_two")
    assert error_code(missing) == "EntityNotFoundException"
    with pytest.raises(ClientError) as no_db:
        glue.create_table(DatabaseName="no_such_db", TableInput=table_input("x", []))
    assert error_code(no_db) == "EntityNotFoundException"


def test_partitions_and_expression_filters(glue: Any) -> None:
    glue.create_table(DatabaseName=DB, TableInput=table_input("parts", [("dt", "string"), ("hour", "int")]))
    all_values = [[f"2024-02-{d:02d}", str(h)] for d, h in itertools.product(range(1, 16), (0, 6, 12, 18))]
    for start in range(0, len(all_values), 25):
        response = glue.batch_create_partition(
            DatabaseName=DB,
            TableName="parts",
            PartitionInputList=[partition_input(v) for v in all_values[start : start + 25]],
        )
        assert not response.get("Errors")
    again = glue.batch_create_partition(
        DatabaseName=DB,
        TableName="parts",
        PartitionInputList=[partition_input(all_values[0]), partition_input(["2024-03-01", "0"])],
    )
    assert [(e["PartitionValues"], e["ErrorDetail"]["ErrorCode"]) for e in again["Errors"]] == [
        (all_values[0], "AlreadyExistsException")
    ]
    all_values.append(["2024-03-01", "0"])

    def listed(**kwargs: Any) -> list[list[str]]:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DB, TableName="parts", **kwargs)
        return sorted(p["Values"] for page in pages for p in page["Partitions"])

    assert listed(PaginationConfig={"PageSize": 7}) == sorted(all_values)
    cases = {
        "dt >= '2024-02-14' AND hour > 6": lambda dt, h: dt >= "2024-02-14" and h > 6,
        "hour IN (0, 18) AND NOT dt <= '2024-02-13'": lambda dt, h: h in (0, 18) and not dt <= "2024-02-13",
        "dt BETWEEN '2024-02-02' AND '2024-02-03' OR dt LIKE '2024-03%'": lambda dt, h: "2024-02-02"
        <= dt
        <= "2024-02-03"
        or dt.startswith("2024-03"),
        "(hour = 12)": lambda dt, h: h == 12,
    }
    for expression, predicate in cases.items():
        want = sorted(v for v in all_values if predicate(v[0], int(v[1])))
        assert listed(Expression=expression) == want, expression

    with pytest.raises(ClientError) as bad:
        glue.get_partitions(DatabaseName=DB, TableName="parts", Expression="dt = = 'x'")
    assert error_code(bad) == "InvalidInputException"
    with pytest.raises(ClientError) as unknown:
        glue.get_partitions(DatabaseName=DB, TableName="parts", Expression="region = 'eu'")
    assert error_code(unknown) == "InvalidInputException"

    one = glue.get_partition(DatabaseName=DB, TableName="parts", PartitionValues=["2024-02-01", "6"])[
        "Partition"
    ]
    assert one["StorageDescriptor"]["Location"] == "s3://lake/scores/k0=2024-02-01/k1=6/"
    got = glue.batch_get_partition(
        DatabaseName=DB,
        TableName="parts",
        PartitionsToGet=[{"Values": ["2024-02-01", "6"]}, {"Values": ["1999-01-01", "0"]}],
    )
    assert [p["Values"] for p in got["Partitions"]] == [["2024-02-01", "6"]]

    moved = partition_input(["2024-02-01", "7"])
    glue.update_partition(
        DatabaseName=DB, TableName="parts", PartitionValueList=["2024-02-01", "6"], PartitionInput=moved
    )
    assert glue.get_partition(DatabaseName=DB, TableName="parts", PartitionValues=["2024-02-01", "7"])[
        "Partition"
    ]["Values"] == ["2024-02-01", "7"]
    glue.delete_partition(DatabaseName=DB, TableName="parts", PartitionValues=["2024-02-01", "7"])
    with pytest.raises(ClientError) as gone:
        glue.get_partition(DatabaseName=DB, TableName="parts", PartitionValues=["2024-02-01", "7"])
    assert error_code(gone) == "EntityNotFoundException"
    deleted = glue.batch_delete_partition(
        DatabaseName=DB,
        TableName="parts",
        PartitionsToDelete=[{"Values": ["2024-02-02", "0"]}, {"Values": ["2024-02-01", "7"]}],
    )
    assert [e["PartitionValues"] for e in deleted["Errors"]] == [["2024-02-01", "7"]]
    with pytest.raises(ClientError) as wrong_count:
        glue.get_partition(DatabaseName=DB, TableName="parts", PartitionValues=["2024-02-03"])
    assert error_code(wrong_count) == "InvalidInputException"
    with pytest.raises(ClientError) as too_many:
        glue.batch_create_partition(
            DatabaseName=DB,
            TableName="parts",
            PartitionInputList=[partition_input(["x", str(i)]) for i in range(101)],
        )
    assert error_code(too_many) in ("InvalidInputException", "ValidationException")


def test_concurrent_writers_lose_no_partition(service: Any, glue: Any) -> None:
    """4 writers x 30 trials: each writes its own partition and races for one shared partition."""
    glue.create_table(DatabaseName=DB, TableInput=table_input("raced", [("dt", "string")]))
    writers, trials = 4, 30
    clients = [service.client("glue") for _ in range(writers)]
    barrier = threading.Barrier(writers)
    already: list[int] = [0] * writers
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for trial in range(trials):
                barrier.wait(timeout=20)
                response = clients[index].batch_create_partition(
                    DatabaseName=DB,
                    TableName="raced",
                    PartitionInputList=[
                        partition_input([f"w{index}-t{trial}"]),
                        partition_input([f"shared-{trial}"]),
                    ],
                )
                already[index] += len(response.get("Errors", []))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert not failures
    stored = {
        p["Values"][0]
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=DB, TableName="raced")
        for p in page["Partitions"]
    }
    expected = {f"w{i}-t{t}" for i in range(writers) for t in range(trials)} | {
        f"shared-{t}" for t in range(trials)
    }
    assert stored == expected  # 150 partitions, none lost
    assert sum(already) == trials * (writers - 1)  # each shared partition created exactly once


def _process_writer(root: str, index: int, trials: int) -> None:
    """Another process writing the same catalog file directly (what a second stack process would do)."""
    from smspark_assets.local.glue_api import GlueApi

    api = GlueApi(SimpleNamespace(layout=LocalLayout.for_root(root)))
    for trial in range(trials):
        api.dispatch(
            "BatchCreatePartition",
            {
                "DatabaseName": "procs",
                "TableName": "t",
                "PartitionInputList": [{"Values": [f"p{index}-{trial}"]}, {"Values": [f"shared-{trial}"]}],
            },
        )
    api.shutdown()


@pytest.mark.timeout(60)
def test_concurrent_processes_lose_no_partition(tmp_path: Path) -> None:
    from smspark_assets.local.glue_api import GlueApi

    api = GlueApi(SimpleNamespace(layout=LocalLayout.for_root(tmp_path)))
    api.dispatch("CreateDatabase", {"DatabaseInput": {"Name": "procs"}})
    api.dispatch("CreateTable", {"DatabaseName": "procs", "TableInput": table_input("t", [("dt", "string")])})
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_writer, args=(str(tmp_path), i, 30)) for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=50)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    values = {
        p["Values"][0]
        for p in api.dispatch("GetPartitions", {"DatabaseName": "procs", "TableName": "t"})["Partitions"]
    }
    api.shutdown()
    assert values == {f"p{i}-{t}" for i in range(4) for t in range(30)} | {f"shared-{t}" for t in range(30)}
