"""Athena in the stack through boto3: queries over Glue tables of Parquet files written with pyarrow,
answers compared with pandas on the same data, Athena's result shapes and files, failures, and the
DuckDB lock-down (nothing outside the store is read or written)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DB = "smspark"
OUT = "s3://results/athena/"
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
COLUMNS = [
    ("id", "string"),
    ("income", "double"),
    ("n", "int"),
    ("flag", "boolean"),
    ("ts", "timestamp"),
    ("day", "date"),
    ("tags", "array<string>"),
    ("amount", "decimal(10,2)"),
]
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def day_frame(day: str, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 10_000, rows)
    income[::7] = np.nan  # NULLs (written as Parquet nulls below)
    return pd.DataFrame(
        {
            "id": [f"{day}-{i:04d}" for i in range(rows)],
            "income": income,
            "n": rng.integers(0, 1000, rows).astype("int32"),
            "flag": rng.random(rows) > 0.5,
            "ts": pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400_000, rows), unit="ms"),
            "day": [dt.date.fromisoformat(day)] * rows,
            "tags": [["a", "b"] if i % 2 else [] for i in range(rows)],
            "amount": [Decimal(f"{i}.25") for i in range(rows)],
        }
    )


def write_day(root: Path, table: str, day: str, frame: pd.DataFrame) -> None:
    folder = root / "s3" / "lake" / table / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("income", pa.float64()),
            ("n", pa.int32()),
            ("flag", pa.bool_()),
            ("ts", pa.timestamp("ms")),
            ("day", pa.date32()),
            ("tags", pa.list_(pa.string())),
            ("amount", pa.decimal128(10, 2)),
        ]
    )
    pq.write_table(
        pa.Table.from_pandas(frame, schema=schema, preserve_index=False), folder / "part-00000.parquet"
    )
    (folder / "_SUCCESS").write_text("")  # Hive and Athena skip files starting with "_"


def storage(location: str) -> dict[str, Any]:
    return {**PARQUET, "Columns": [{"Name": c, "Type": t} for c, t in COLUMNS], "Location": location}


@pytest.fixture(scope="module")
def data(service: Any) -> dict[str, pd.DataFrame]:
    """Three registered days of ``credit`` (+ one on disk, not registered) and 2,500 unpartitioned rows."""
    glue = service.client("glue")
    glue.create_database(DatabaseInput={"Name": DB})
    glue.create_table(
        DatabaseName=DB,
        TableInput={
            "Name": "credit",
            "StorageDescriptor": storage("s3://lake/credit/"),
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
            "Parameters": {"classification": "parquet"},
        },
    )
    frames = {}
    for seed, day in enumerate(DAYS + ["2024-01-04"]):
        frames[day] = day_frame(day, 50 + 10 * seed, seed)
        write_day(service.root, "credit", day, frames[day])
    glue.batch_create_partition(
        DatabaseName=DB,
        TableName="credit",
        PartitionInputList=[
            {"Values": [day], "StorageDescriptor": storage(f"s3://lake/credit/dt={day}/")} for day in DAYS
        ],
    )
    credit = pd.concat([frames[d].assign(dt=d) for d in DAYS], ignore_index=True)

    big = pd.DataFrame({"k": np.arange(2500, dtype="int64"), "label": [f"row-{i}" for i in range(2500)]})
    folder = service.root / "s3" / "lake" / "big"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(big.iloc[:1200], preserve_index=False), folder / "a.parquet")
    pq.write_table(pa.Table.from_pandas(big.iloc[1200:], preserve_index=False), folder / "b.parquet")
    glue.create_table(
        DatabaseName=DB,
        TableInput={
            "Name": "big",
            "StorageDescriptor": {
                **PARQUET,
                "Columns": [{"Name": "k", "Type": "bigint"}, {"Name": "label", "Type": "string"}],
                "Location": "s3://lake/big/",
            },
        },
    )
    glue.create_table(
        DatabaseName=DB,
        TableInput={
            "Name": "empty",
            "StorageDescriptor": storage("s3://lake/empty/"),
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        },
    )
    return {"credit": credit, "big": big}


def run(service: Any, sql: str, database: str = DB, **extra: Any) -> dict[str, Any]:
    athena = service.client("athena")
    qid = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": OUT},
        **extra,
    )["QueryExecutionId"]
    deadline = time.monotonic() + 30
    while True:
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if (
            execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED")
            or time.monotonic() > deadline
        ):
            return execution
        time.sleep(0.05)


def results(service: Any, qid: str, page_size: int = 1000) -> tuple[list[list[str | None]], list[dict], int]:
    """All rows (header first, NULL as None), the column info, and the number of pages."""
    rows: list[list[str | None]] = []
    pages = 0
    for page in (
        service.client("athena")
        .get_paginator("get_query_results")
        .paginate(QueryExecutionId=qid, PaginationConfig={"PageSize": page_size})
    ):
        pages += 1
        info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    return rows, info, pages


def test_aggregate_matches_pandas_with_athena_types(service: Any, data: dict[str, pd.DataFrame]) -> None:
    execution = run(
        service,
        "SELECT dt, count(*) AS c, sum(n) AS total, avg(income) AS mean, max(amount) "
        "FROM credit GROUP BY dt ORDER BY dt",
    )
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    rows, info, _ = results(service, execution["QueryExecutionId"])
    assert rows[0] == ["dt", "c", "total", "mean", "_col4"]  # the header row comes first, as Athena sends it
    assert [(c["Name"], c["Type"]) for c in info] == [
        ("dt", "varchar"),
        ("c", "bigint"),
        ("total", "bigint"),
        ("mean", "double"),
        ("_col4", "decimal"),
    ]
    assert (info[4]["Precision"], info[4]["Scale"]) == (10, 2)
    assert info[0]["CaseSensitive"] is True and info[1]["CaseSensitive"] is False
    assert all(c["CatalogName"] == "hive" and c["SchemaName"] == "" and c["TableName"] == "" for c in info)
    expected = (
        data["credit"]
        .groupby("dt")
        .agg(c=("id", "size"), total=("n", "sum"), mean=("income", "mean"), mx=("amount", "max"))
        .reset_index()
    )
    assert [r[0] for r in rows[1:]] == DAYS  # only the registered partitions, not 2024-01-04
    assert [int(r[1]) for r in rows[1:]] == expected["c"].tolist()
    assert [int(r[2]) for r in rows[1:]] == expected[
        "total"
    ].tolist()  # HUGEINT sums come back as bigint text
    assert np.allclose([float(r[3]) for r in rows[1:]], expected["mean"])
    assert [Decimal(r[4]) for r in rows[1:]] == expected["mx"].tolist()
    assert execution["Statistics"]["DataScannedInBytes"] > 0
    assert execution["ResultConfiguration"]["OutputLocation"] == f"{OUT}{execution['QueryExecutionId']}.csv"


def test_values_render_as_athena_prints_them(service: Any, data: dict[str, pd.DataFrame]) -> None:
    execution = run(
        service,
        "SELECT id, income, n, flag, ts, day, tags, amount, dt FROM smspark.credit "
        "WHERE dt = '2024-01-02' ORDER BY id LIMIT 8",
    )
    rows, info, _ = results(service, execution["QueryExecutionId"])
    assert [c["Type"] for c in info] == [
        "varchar",
        "double",
        "integer",
        "boolean",
        "timestamp",
        "date",
        "array",
        "decimal",
        "varchar",
    ]
    frame = data["credit"][data["credit"]["dt"] == "2024-01-02"].sort_values("id").head(8)
    for row, (_, want) in zip(rows[1:], frame.iterrows()):
        assert row[0] == want["id"]
        assert row[1] is None if np.isnan(want["income"]) else float(row[1]) == pytest.approx(want["income"])
        assert row[2] == str(want["n"]) and row[3] == str(bool(want["flag"])).lower()
        assert row[4] == want["ts"].strftime("%Y-%m-%d %H:%M:%S.") + f"{want['ts'].microsecond // 1000:03d}"
        assert row[5] == "2024-01-02" and row[6] == ("[a, b]" if want["tags"] else "[]")
        assert Decimal(row[7]) == want["amount"] and row[8] == "2024-01-02"


def test_pagination_of_2500_rows_and_the_result_files(service: Any, data: dict[str, pd.DataFrame]) -> None:
    execution = run(
        service, "SELECT k, label, CAST(NULL AS varchar) AS nothing, '' AS blank FROM big ORDER BY k"
    )
    qid = execution["QueryExecutionId"]
    rows, _, pages = results(service, qid)
    assert pages == 3 and len(rows) == 2501  # 1000 (header + 999), 1000, 501
    assert rows[0] == ["k", "label", "nothing", "blank"]
    assert [int(r[0]) for r in rows[1:]] == data["big"]["k"].tolist()
    assert [r[1] for r in rows[1:]] == data["big"]["label"].tolist()
    assert all(r[2] is None and r[3] == "" for r in rows[1:])  # NULL is {}, the empty string is ""
    first = service.client("athena").get_query_results(QueryExecutionId=qid, MaxResults=10)
    assert len(first["ResultSet"]["Rows"]) == 10 and first["ResultSet"]["Rows"][1]["Data"][2] == {}

    csv_file = service.root / "s3" / "results" / "athena" / f"{qid}.csv"
    text = csv_file.read_text()
    assert text.splitlines()[:2] == ['"k","label","nothing","blank"', '"0","row-0",,""']
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == 2501 and parsed[-1] == ["2499", "row-2499", "", ""]
    metadata = json.loads((csv_file.parent / f"{qid}.csv.metadata").read_text())
    assert [c["Name"] for c in metadata["ColumnInfo"]] == ["k", "label", "nothing", "blank"]
    assert not [p for p in csv_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_empty_table_is_an_empty_typed_result(service: Any, data: dict[str, pd.DataFrame]) -> None:
    execution = run(service, "SELECT * FROM empty")
    rows, info, _ = results(service, execution["QueryExecutionId"])
    assert rows == [[c for c, _ in COLUMNS] + ["dt"]]
    assert [c["Type"] for c in info][:3] == ["varchar", "double", "integer"]


def test_failures_carry_athena_reasons(service: Any, data: dict[str, pd.DataFrame]) -> None:
    missing = run(service, "SELECT * FROM nope")
    assert missing["Status"]["State"] == "FAILED"
    assert missing["Status"]["StateChangeReason"] == (
        "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.smspark.nope' does not exist"
    )
    schema = run(service, "SELECT 1 FROM other.t")
    assert schema["Status"]["StateChangeReason"].startswith("SCHEMA_NOT_FOUND: line 1:15: Schema 'other'")
    syntax = run(service, "SELECT FROM WHERE")
    assert syntax["Status"]["State"] == "FAILED"
    assert syntax["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR: line 1:")
    column = run(service, "SELECT nope FROM credit")
    assert column["Status"]["StateChangeReason"].startswith("COLUMN_NOT_FOUND")
    glue = service.client("glue")
    for name, location in (("escape", "s3://../local/"), ("dotted", "s3://lake/../../local/")):
        glue.create_table(DatabaseName=DB, TableInput={"Name": name, "StorageDescriptor": storage(location)})
        escaped = run(service, f"SELECT * FROM {name}")
        assert escaped["Status"]["State"] == "FAILED"
        assert escaped["Status"]["StateChangeReason"].startswith("HIVE_INVALID_METADATA"), escaped["Status"]
    with pytest.raises(ClientError) as not_done:
        service.client("athena").get_query_results(QueryExecutionId=missing["QueryExecutionId"])
    assert not_done.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as unknown:
        service.client("athena").get_query_execution(QueryExecutionId="not-a-query")
    assert unknown.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as no_output:
        service.client("athena").start_query_execution(QueryString="SELECT 1")
    assert no_output.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as bad_bucket:
        service.client("athena").start_query_execution(
            QueryString="SELECT 1", ResultConfiguration={"OutputLocation": "s3://../local/"}
        )
    assert bad_bucket.value.response["Error"]["Code"] == "InvalidRequestException"


def test_queries_cannot_touch_files_outside_the_store(
    service: Any, data: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    target = tmp_path / "written.csv"
    for sql in (
        f"SELECT * FROM read_csv('{outside}')",
        f"SELECT * FROM read_parquet('{service.root / 's3' / 'lake' / 'credit' / '*' / '*.parquet'}')",
        f"COPY (SELECT 1) TO '{target}'",
    ):
        execution = run(service, sql)
        assert execution["Status"]["State"] == "FAILED", sql
    assert not target.exists()

    # The engine's own lock-down, below the statement check: raw DuckDB SQL on a locked connection.
    import duckdb

    from smspark_assets.local.athena_engine import locked_connection

    con = locked_connection([])
    for sql in (
        f"SELECT * FROM read_csv('{outside}')",
        f"COPY (SELECT 42) TO '{target}'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ):
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    con.close()
    assert not target.exists()


def test_idempotency_listing_and_stop(service: Any, data: dict[str, pd.DataFrame]) -> None:
    athena = service.client("athena")
    token = "t" * 40
    kwargs = {
        "QueryString": "SELECT count(*) FROM big",
        "ClientRequestToken": token,
        "QueryExecutionContext": {"Database": DB},
        "ResultConfiguration": {"OutputLocation": OUT},
    }
    first = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    assert athena.start_query_execution(**kwargs)["QueryExecutionId"] == first
    ids = [
        i
        for page in athena.get_paginator("list_query_executions").paginate()
        for i in page["QueryExecutionIds"]
    ]
    assert first in ids and len(ids) == len(set(ids))
    batch = athena.batch_get_query_execution(QueryExecutionIds=[first, "missing"])
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == [first]
    assert [u["QueryExecutionId"] for u in batch["UnprocessedQueryExecutionIds"]] == ["missing"]

    slow = athena.start_query_execution(
        QueryString="SELECT count(*) FROM big a CROSS JOIN big b CROSS JOIN big c WHERE a.k + b.k + c.k = -1",
        QueryExecutionContext={"Database": DB},
        ResultConfiguration={"OutputLocation": OUT},
    )["QueryExecutionId"]
    athena.stop_query_execution(QueryExecutionId=slow)
    deadline = time.monotonic() + 20
    while (
        athena.get_query_execution(QueryExecutionId=slow)["QueryExecution"]["Status"]["State"] != "CANCELLED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["State"] == "ENABLED"
    with pytest.raises(ClientError) as no_group:
        athena.get_work_group(WorkGroup="other")
    assert no_group.value.response["Error"]["Code"] == "InvalidRequestException"


def test_show_partitions_lists_the_glue_partitions(service: Any, data: dict[str, pd.DataFrame]) -> None:
    """Athena's ``SHOW PARTITIONS``: one ``partition`` column, ``key=value`` per registered partition (the
    day on disk but not registered is not listed), under any of Athena's spellings of the table name."""
    for sql in ("SHOW PARTITIONS credit", "show partitions smspark.credit;",
                "SHOW PARTITIONS AwsDataCatalog.smspark.credit", "SHOW PARTITIONS `smspark`.`credit`"):
        execution = run(service, sql)
        assert execution["Status"]["State"] == "SUCCEEDED", (sql, execution["Status"])
        rows, info, _ = results(service, execution["QueryExecutionId"])
        assert rows == [["partition"], *[[f"dt={day}"] for day in DAYS]], sql
        assert [c["Name"] for c in info] == ["partition"]
    assert run(service, "SHOW PARTITIONS empty")["Status"]["State"] == "SUCCEEDED"
    flat = run(service, "SHOW PARTITIONS big")["Status"]
    assert flat["StateChangeReason"] == "NOT_SUPPORTED: line 1:17: Table 'awsdatacatalog.smspark.big' is not partitioned"
    missing = run(service, "SHOW PARTITIONS nope")["Status"]
    assert missing["StateChangeReason"] == "TABLE_NOT_FOUND: line 1:17: Table 'awsdatacatalog.smspark.nope' does not exist"


def test_awsdatacatalog_qualified_names_read_the_same_table(service: Any, data: dict[str, pd.DataFrame]) -> None:
    for name in ("AwsDataCatalog.smspark.credit", '"awsdatacatalog"."smspark"."credit"', "smspark.credit"):
        execution = run(service, f"SELECT COUNT(*) FROM {name}")
        assert execution["Status"]["State"] == "SUCCEEDED", (name, execution["Status"])
        rows, _, _ = results(service, execution["QueryExecutionId"])
        assert rows[1] == [str(len(data["credit"]))]
    other = run(service, "SELECT 1 FROM othercatalog.smspark.credit")["Status"]
    assert other["StateChangeReason"].startswith("CATALOG_NOT_FOUND: line 1:15: Catalog 'othercatalog'")
