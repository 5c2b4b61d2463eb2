"""The catalog: DuckDB answers Athena SQL locally; Glue registration is checked against moto."""

from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from smspark_assets.resources.catalog import GlueAthenaCatalogResource, LocalCatalogResource, athena_type, columns_of


def _write_day(root: Path, day: str, predictions: list[float]) -> None:
    folder = root / "s3" / "demo" / "scores" / f"dt={day}"
    folder.mkdir(parents=True)
    table = pa.table({"application_id": [f"{day}-{i}" for i in range(len(predictions))],
                      "prediction": pa.array(predictions, pa.float64()),
                      "defaulted_12m": pa.array([1, 0, 1][: len(predictions)], pa.int32())})
    pq.write_table(table, folder / "part-0.parquet")


def test_local_catalog_answers_athena_sql(tmp_path: Path) -> None:
    _write_day(tmp_path, "2026-11-01", [0.9, 0.1, 0.7])
    _write_day(tmp_path, "2026-11-02", [0.2, 0.3])
    catalog = LocalCatalogResource(root=str(tmp_path))
    schema = pq.read_schema(tmp_path / "s3/demo/scores/dt=2026-11-01/part-0.parquet")
    catalog.register_table("credit_scores", "s3://demo/scores", columns_of(schema), [("dt", "string")],
                           ["2026-11-01"])
    catalog.register_table("credit_scores", "s3://demo/scores", columns_of(schema), [("dt", "string")],
                           ["2026-11-02"])  # partitions accumulate
    result = catalog.query(
        "SELECT dt, COUNT(*) AS n, approx_percentile(prediction, 0.5) AS median_score "
        "FROM smspark.credit_scores GROUP BY dt ORDER BY dt")
    assert result["dt"].tolist() == ["2026-11-01", "2026-11-02"]
    assert result["n"].tolist() == [3, 2]
    unqualified = catalog.query("SELECT COUNT(*) AS n, COUNT_IF(prediction > 0.5) AS high, "
                                "SUM(defaulted_12m) AS defaults FROM credit_scores WHERE prediction > 0.5")
    assert unqualified[["n", "high", "defaults"]].iloc[0].tolist() == [2, 2, 2]
    assert unqualified["high"].dtype.kind == "i"  # counts stay integers, as Athena's bigint


def test_a_registered_table_without_data_answers_empty(tmp_path: Path) -> None:
    catalog = LocalCatalogResource(root=str(tmp_path))
    catalog.register_table("empty", "s3://demo/none", [("x", "double")], [("dt", "string")], ["2026-11-01"])
    assert len(catalog.query("SELECT * FROM empty")) == 0


def test_athena_types() -> None:
    assert athena_type(pa.int64()) == "bigint" and athena_type(pa.int32()) == "int"
    assert athena_type(pa.float64()) == "double" and athena_type(pa.string()) == "string"
    assert athena_type(pa.list_(pa.float32())) == "array<float>"


@mock_aws
def test_glue_registration_creates_the_table_and_partitions_once() -> None:
    catalog = GlueAthenaCatalogResource(region_name="us-east-1")
    columns = [("application_id", "string"), ("prediction", "double")]
    catalog.register_table("credit_scores", "s3://demo/scores", columns, [("dt", "string")], ["2026-11-01"])
    catalog.register_table("credit_scores", "s3://demo/scores", columns, [("dt", "string")],
                           ["2026-11-01", "2026-11-02"])
    glue = boto3.client("glue")
    table = glue.get_table(DatabaseName="smspark", Name="credit_scores")["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://demo/scores/"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    partitions = glue.get_partitions(DatabaseName="smspark", TableName="credit_scores")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["2026-11-01", "2026-11-02"]
    assert partitions[0]["StorageDescriptor"]["Location"].startswith("s3://demo/scores/dt=")
