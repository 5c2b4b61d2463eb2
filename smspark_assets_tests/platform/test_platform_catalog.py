"""The catalog resource: Athena SQL answered by the embedded stack; Glue registration checked against moto."""

import io

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from smspark_assets.resources.catalog import GlueAthenaCatalogResource, athena_type, columns_of
from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)


def _write_day(store: S3ObjectStoreResource, base: str, day: str, predictions: list[float]) -> None:
    table = pa.table({"application_id": [f"{day}-{i}" for i in range(len(predictions))],
                      "prediction": pa.array(predictions, pa.float64()),
                      "defaulted_12m": pa.array([1, 0, 1][: len(predictions)], pa.int32())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    store.write_bytes(f"{base}/scores/dt={day}/part-0.parquet", sink.getvalue())


@pytest.fixture
def stack_catalog(local_stack, request: pytest.FixtureRequest):
    """A catalog (own Glue database) and store on the embedded stack, with a bucket of the test's own."""
    root, _url = local_stack
    bucket = "catalog-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    store = S3ObjectStoreResource(local_stack_root=str(root))
    store.client("s3").create_bucket(Bucket=bucket)
    catalog = GlueAthenaCatalogResource(local_stack_root=str(root), database=bucket.replace("-", "_"),
                                        output_location=f"s3://{bucket}/athena/", poll_seconds=0.05)
    return catalog, store, f"s3://{bucket}"


@pytest.mark.integration
def test_catalog_on_the_stack_answers_athena_sql(stack_catalog) -> None:
    catalog, store, base = stack_catalog
    _write_day(store, base, "2026-11-01", [0.9, 0.1, 0.7])
    _write_day(store, base, "2026-11-02", [0.2, 0.3])
    schema = store.parquet_dataset(f"{base}/scores/dt=2026-11-01").schema
    catalog.register_table("credit_scores", f"{base}/scores", columns_of(schema), [("dt", "string")],
                           ["2026-11-01"])
    catalog.register_table("credit_scores", f"{base}/scores", columns_of(schema), [("dt", "string")],
                           ["2026-11-02"])  # partitions accumulate
    result = catalog.query(
        "SELECT dt, COUNT(*) AS n, approx_percentile(prediction, 0.5) AS median_score "
        f"FROM {catalog.database}.credit_scores GROUP BY dt ORDER BY dt")
    assert result["dt"].astype(str).tolist() == ["2026-11-01", "2026-11-02"]
    assert result["n"].tolist() == [3, 2]
    unqualified = catalog.query("SELECT COUNT(*) AS n, COUNT_IF(prediction > 0.5) AS high, "
                                "SUM(defaulted_12m) AS defaults FROM credit_scores WHERE prediction > 0.5")
    assert unqualified[["n", "high", "defaults"]].iloc[0].tolist() == [2, 2, 2]
    assert unqualified["high"].dtype.kind == "i"  # counts stay integers, as Athena's bigint


@pytest.mark.integration
def test_a_registered_table_without_data_answers_empty(stack_catalog) -> None:
    catalog, _store, base = stack_catalog
    catalog.register_table("empty", f"{base}/none", [("x", "double")], [("dt", "string")], ["2026-11-01"])
    assert len(catalog.query("SELECT * FROM empty")) == 0


@pytest.mark.integration
def test_a_failed_query_says_why(stack_catalog) -> None:
    catalog, _store, _base = stack_catalog
    with pytest.raises(RuntimeError, match="(?i)not.exist|not found"):
        catalog.query("SELECT * FROM no_such_table")


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
