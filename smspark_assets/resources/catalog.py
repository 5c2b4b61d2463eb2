"""The table catalog and its SQL engine: the Glue Data Catalog and Athena (on AWS, or the embedded stack).

Queries are written in Athena's dialect (Trino). The embedded stack answers the same Glue and Athena
calls (running the SQL on DuckDB over the same Parquet files), so this is the one implementation.
"""


import time
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa

from smspark_assets.environment import s3_uri, split_s3_uri
from smspark_assets.interruption import stopped_if_abandoned
from smspark_assets.resources.aws import AwsServiceResource

QUERY_ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueryFailed(RuntimeError):
    """An Athena query failed, was cancelled, or was stopped because its wait ended early."""


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


class GlueAthenaCatalogResource(AwsServiceResource):
    """Glue Data Catalog tables (Parquet, partitioned) queried with Athena."""

    database: str = "smspark"
    workgroup: str = "primary"
    output_location: str = ""
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def register_table(self, name: str, location: str, columns: list[tuple[str, str]],
                       partition_keys: list[tuple[str, str]], partitions: Sequence[str],
                       description: str = "") -> None:
        """Create or update table ``name`` at ``location`` and add ``partitions`` (values of the one key).

        With no ``partition_keys`` the table is the Parquet files directly under ``location``.
        """
        from botocore.exceptions import ClientError

        if len(partition_keys) > 1:
            raise ValueError(f"{self.database}.{name}: at most one partition key is supported, got {partition_keys}")
        if partitions and not partition_keys:
            raise ValueError(f"{self.database}.{name}: partitions {list(partitions)[:3]} given without a partition key")

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
        if description:
            table_input["Description"] = description
        try:
            glue.create_table(DatabaseName=self.database, TableInput=table_input)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise
            glue.update_table(DatabaseName=self.database, TableInput=table_input)
        if not partition_keys:
            return
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

    def _stop_query(self, athena: Any, qid: str, confirm_seconds: float = 10.0) -> str:
        """Stop query ``qid`` unless it ended; wait briefly to see it CANCELLED. Returns what happened."""
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        if state in QUERY_ENDED:
            return f"it had already ended {state}"
        athena.stop_query_execution(QueryExecutionId=qid)
        deadline = time.monotonic() + confirm_seconds
        while True:
            state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
            if state in QUERY_ENDED or time.monotonic() >= deadline:
                return f"stopped it (now {state})"
            time.sleep(min(self.poll_seconds, 1.0))

    def query(self, sql: str) -> pd.DataFrame:
        """Run Athena-dialect ``sql``; numbers come back as numbers. Fails with Athena's reason."""
        athena = self._client("athena")
        kwargs = {"QueryString": sql, "WorkGroup": self.workgroup,
                  "QueryExecutionContext": {"Database": self.database}}
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        # A cancelled run, a poll that fails or the timeout stop the query: it would go on scanning.
        with stopped_if_abandoned(f"Athena query {qid}", lambda: self._stop_query(athena, qid), AthenaQueryFailed):
            while True:
                status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
                if status["State"] in QUERY_ENDED:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"it ran longer than timeout_seconds={self.timeout_seconds}")
                time.sleep(self.poll_seconds)
        if status["State"] != "SUCCEEDED":
            raise AthenaQueryFailed(f"Athena query {qid} {status['State']}: {status.get('StateChangeReason', '')}")
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


def publish_parquet_table(catalog: GlueAthenaCatalogResource, store: Any, name: str, location: str,
                          table: pa.Table, day: str | None = None, file_name: str = "part-0.parquet",
                          description: str = "") -> str:
    """Write ``table`` as one Parquet object under ``location`` (``dt=<day>/`` when a day is given: that
    day's object is replaced whole) and register it as catalog table ``name``; returns the object's URI.

    For outputs computed in the Dagster process (small tables: figures, rejected rows), so they can be
    joined in SQL with the Spark-written tables.
    """
    import io

    import pyarrow.parquet as pq

    folder = location.rstrip("/") + (f"/dt={day}" if day else "")
    uri = f"{folder}/{file_name}"
    sink = io.BytesIO()
    pq.write_table(table, sink)
    store.write_bytes(uri, sink.getvalue())
    columns = columns_of(table.schema, exclude=("dt",) if day else ())
    catalog.register_table(name, location, columns, [("dt", "string")] if day else [], [day] if day else [],
                           description=description)
    return uri


def table_location(bucket: str, *parts: str) -> str:
    return s3_uri(bucket, *parts)


# The one catalog of the platform; the name the assets use for it.
CatalogResource = GlueAthenaCatalogResource

__all__ = ["CatalogResource", "GlueAthenaCatalogResource", "athena_type", "columns_of", "publish_parquet_table",
           "split_s3_uri", "table_location"]
