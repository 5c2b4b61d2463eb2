"""The table catalog and its SQL engine: Glue + Athena on AWS, a catalog file + DuckDB locally.

Queries are written in Athena's dialect (Trino) everywhere. Locally they are translated with sqlglot
and run by DuckDB over the very Parquet files the Glue table would point at, registered under the same
database and table names.
"""


import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import dagster as dg
import pandas as pd
import pyarrow as pa

from smspark_assets.environment import local_path, s3_uri, split_s3_uri


@dataclass(frozen=True)
class TableDef:
    database: str
    name: str
    location: str
    columns: list[tuple[str, str]]
    partition_keys: list[tuple[str, str]]
    partitions: list[str]


def athena_type(dtype: pa.DataType) -> str:
    """The Athena/Hive type of a Parquet column."""
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_int8(dtype) or pa.types.is_int16(dtype) or pa.types.is_int32(dtype):
        return "int"
    if pa.types.is_integer(dtype):
        return "bigint"
    if pa.types.is_float32(dtype):
        return "float"
    if pa.types.is_floating(dtype):
        return "double"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"array<{athena_type(dtype.value_type)}>"
    return "string"


def columns_of(schema: pa.Schema, exclude: Sequence[str] = ()) -> list[tuple[str, str]]:
    return [(f.name, athena_type(f.type)) for f in schema if f.name not in exclude]


class CatalogResource(dg.ConfigurableResource, ABC):
    """Registers Parquet tables with partitions and answers Athena-dialect SQL."""

    database: str = "smspark"

    @abstractmethod
    def register_table(self, name: str, location: str, columns: list[tuple[str, str]],
                       partition_keys: list[tuple[str, str]], partitions: Sequence[str]) -> None:
        """Create or update table ``name`` at ``location`` and add ``partitions`` (values of the one key)."""

    @abstractmethod
    def query(self, sql: str) -> pd.DataFrame:
        """Run Athena-dialect ``sql`` and return the result."""


class LocalCatalogResource(CatalogResource):
    """A JSON catalog under the local stack's root; DuckDB runs the queries."""

    root: str

    @property
    def _catalog_path(self) -> Path:
        return Path(self.root) / "catalog" / "tables.json"

    def _load(self) -> dict[str, dict]:
        path = self._catalog_path
        return json.loads(path.read_text()) if path.exists() else {}

    def tables(self) -> list[TableDef]:
        return [TableDef(**t) for t in self._load().values()]

    def register_table(self, name: str, location: str, columns: list[tuple[str, str]],
                       partition_keys: list[tuple[str, str]], partitions: Sequence[str]) -> None:
        catalog = self._load()
        key = f"{self.database}.{name}"
        known = set(catalog.get(key, {}).get("partitions", []))
        catalog[key] = {
            "database": self.database, "name": name, "location": location.rstrip("/"),
            "columns": [list(c) for c in columns], "partition_keys": [list(p) for p in partition_keys],
            "partitions": sorted(known | set(partitions)),
        }
        self._catalog_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._catalog_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(catalog, indent=2))
        tmp.replace(self._catalog_path)

    def translate(self, sql: str) -> str:
        import sqlglot

        return ";\n".join(sqlglot.transpile(sql, read="athena", write="duckdb"))

    def query(self, sql: str) -> pd.DataFrame:
        import duckdb

        con = duckdb.connect()
        s3_root = Path(self.root) / "s3"
        for table in self.tables():
            files = []
            for value in table.partitions:
                part_dir = local_path(f"{table.location}/{table.partition_keys[0][0]}={value}", root=s3_root)
                if part_dir.is_dir():
                    files.extend(str(p) for p in sorted(part_dir.glob("*.parquet")))
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.database}"')
            if not files:
                cols = ", ".join(f'CAST(NULL AS {_duck_type(t)}) AS "{c}"'
                                 for c, t in [*table.columns, *table.partition_keys])
                con.execute(f'CREATE VIEW "{table.database}"."{table.name}" AS SELECT {cols} WHERE false')
                continue
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # Hive partitioning gives back the partition column (dt) from the folder names, as Athena does.
            con.execute(f'CREATE VIEW "{table.database}"."{table.name}" AS SELECT * FROM '
                        f"read_parquet([{listing}], hive_partitioning=true, hive_types_autocast=false)")
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.database}"')
        # Unqualified names resolve in the catalog's database first, as Athena's default database does.
        con.execute(f"SET search_path = '{self.database},main'")
        try:
            cursor = con.execute(self.translate(sql))
            frame = cursor.fetch_df()
            # DuckDB sums and counts into HUGEINT (pandas makes it float); Athena answers bigint.
            for (name, type_code, *_rest) in cursor.description or []:
                if str(type_code).upper() == "HUGEINT" and frame[name].notna().all():
                    frame[name] = frame[name].astype("int64")
            return frame
        finally:
            con.close()


def _duck_type(athena: str) -> str:
    return {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "float": "REAL",
            "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}.get(athena, "VARCHAR")


class GlueAthenaCatalogResource(CatalogResource):
    """AWS Glue Data Catalog tables queried with Amazon Athena."""

    region_name: str = "us-east-1"
    workgroup: str = "primary"
    output_location: str = ""
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0

    def _client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region_name)

    def register_table(self, name: str, location: str, columns: list[tuple[str, str]],
                       partition_keys: list[tuple[str, str]], partitions: Sequence[str]) -> None:
        from botocore.exceptions import ClientError

        glue = self._client("glue")
        try:
            glue.create_database(DatabaseInput={"Name": self.database})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise
        storage = {
            "Columns": [{"Name": c, "Type": t} for c, t in columns],
            "Location": location.rstrip("/") + "/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        }
        table_input = {"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": storage,
                       "PartitionKeys": [{"Name": c, "Type": t} for c, t in partition_keys],
                       "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"}}
        try:
            glue.create_table(DatabaseName=self.database, TableInput=table_input)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise
            glue.update_table(DatabaseName=self.database, TableInput=table_input)
        key = partition_keys[0][0]
        inputs = [{"Values": [v], "StorageDescriptor": {**storage, "Location": f"{location.rstrip('/')}/{key}={v}/"}}
                  for v in partitions]
        for start in range(0, len(inputs), 100):  # BatchCreatePartition takes at most 100
            resp = glue.batch_create_partition(DatabaseName=self.database, TableName=name,
                                               PartitionInputList=inputs[start:start + 100])
            errors = [e for e in resp.get("Errors", [])
                      if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
            if errors:
                raise RuntimeError(f"Glue refused partitions of {self.database}.{name}: {errors}")

    def query(self, sql: str) -> pd.DataFrame:
        athena = self._client("athena")
        kwargs = {"QueryString": sql, "WorkGroup": self.workgroup,
                  "QueryExecutionContext": {"Database": self.database}}
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            if time.monotonic() > deadline:
                athena.stop_query_execution(QueryExecutionId=qid)
                raise TimeoutError(f"Athena query {qid} ran longer than {self.timeout_seconds}s")
            time.sleep(self.poll_seconds)
        if status["State"] != "SUCCEEDED":
            raise RuntimeError(f"Athena query {qid} {status['State']}: {status.get('StateChangeReason', '')}")
        rows: list[list[str | None]] = []
        columns: list[str] = []
        for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            if not columns:
                columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
            rows.extend([d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"])
        if rows and rows[0] == columns:  # the first row of the first page repeats the header
            rows = rows[1:]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.apply(_numeric) if len(frame) else frame


def _numeric(column: pd.Series) -> pd.Series:
    """Athena answers strings; give numbers back as numbers, leave the rest alone."""
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def table_location(bucket: str, *parts: str) -> str:
    return s3_uri(bucket, *parts)


__all__ = ["CatalogResource", "LocalCatalogResource", "GlueAthenaCatalogResource", "athena_type", "columns_of",
           "split_s3_uri", "table_location"]
