"""Spark channel writers: a DataFrame with sparse and dense vectors -> files -> the same numbers back."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from smspark_assets.environment import local_path
from smspark_assets.sagemaker import recordio, spark_channels

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("test_spark_channels")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64").getOrCreate())
    yield session
    session.stop()


def _frame(spark, n: int = 500, size: int = 40):
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    rng = np.random.default_rng(5)
    dense = rng.normal(size=(n, size)).astype(np.float32)
    rows, expected = [], np.zeros((n, size), np.float32)
    for i in range(n):
        if i % 3 == 0:  # sparse rows, some of them empty
            idx = np.sort(rng.choice(size, i % 5, replace=False))
            vals = dense[i, idx]
            rows.append((i, float(i % 2), Vectors.sparse(size, idx.tolist(), vals.astype(float).tolist())))
            expected[i, idx] = vals
        else:
            rows.append((i, float(i % 2), Vectors.dense(dense[i].astype(float).tolist())))
            expected[i] = dense[i]
    # parallelize keeps the list order across its 3 partitions: part files in name order = id order.
    schema = StructType([StructField("id", LongType()), StructField("label", DoubleType()),
                         StructField("features", VectorUDT())])  # explicit: no schema-inference job
    df = spark.createDataFrame(spark.sparkContext.parallelize(rows, 3), schema)
    return df, expected


def test_recordio_channel_round_trip_with_sparse_and_dense_vectors(spark, smspark_root) -> None:
    df, expected = _frame(spark)
    ids = list(range(500))
    result = spark_channels.write_recordio_channel(df, "s3://bucket/channels/train", label_col="label",
                                                   target_file_bytes=20_000, manifest=True)
    assert result.records == 500 and len(result.files) > 3
    for uri in result.files:
        assert local_path(uri).stat().st_size <= 20_000 + 300  # cut at record boundaries near the target
    dec = spark_channels.read_recordio_channel(result)
    feats = dec.features["values"]
    np.testing.assert_array_equal(feats.to_dense(40), expected[ids])
    np.testing.assert_array_equal(dec.label["values"].scalars(), np.asarray(ids) % 2)
    # Dense rows stay dense tensors, sparse rows keep keys and shape (the Spark SDK's layout).
    key_counts = np.diff(feats.key_offsets)
    sparse_rows = np.asarray(ids) % 3 == 0
    assert (key_counts[~sparse_rows] == 0).all()
    assert (np.diff(feats.shape_offsets)[sparse_rows] == 1).all()
    manifest = json.loads(local_path(result.manifest_uri).read_text())
    assert manifest[0] == {"prefix": "s3://bucket/channels/train/"}
    assert ["s3://bucket/channels/train/" + f for f in manifest[1:]] == result.files
    assert result.s3_data_type == "ManifestFile"


def test_recordio_bytes_equal_the_codec_for_an_array_column(spark, smspark_root) -> None:
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    df = spark.createDataFrame([(i, x[i].astype(float).tolist()) for i in range(20)], ["id", "features"])
    result = spark_channels.write_recordio_channel(df.coalesce(1), "s3://bucket/channels/arrays")
    data = b"".join(local_path(u).read_bytes() for u in result.files)
    assert data == recordio.encode_dense(x)


def test_libsvm_and_csv_channels(spark, smspark_root) -> None:
    df, expected = _frame(spark, n=60, size=6)
    ids = list(range(60))
    svm = spark_channels.write_libsvm_channel(df, "s3://bucket/channels/svm")
    lines = "".join(local_path(u).read_text() for u in svm.files).splitlines()
    assert len(lines) == 60
    got = np.zeros((60, 6), np.float32)
    for i, line in enumerate(lines):
        label, *tokens = line.split()
        assert float(label) == ids[i] % 2
        for tok in tokens:
            j, v = tok.split(":")
            got[i, int(j) - 1] = float(v)  # 1-based indices
    np.testing.assert_array_equal(got, expected[ids])
    csv = spark_channels.write_csv_channel(df, "s3://bucket/channels/csv")
    table = np.loadtxt("".join(local_path(u).read_text() for u in csv.files).splitlines(), delimiter=",")
    np.testing.assert_array_equal(table[:, 0], np.asarray(ids) % 2)
    np.testing.assert_array_equal(table[:, 1:].astype(np.float32), expected[ids])


def test_bad_arguments(spark, smspark_root) -> None:
    df, _ = _frame(spark, n=3, size=2)
    with pytest.raises(ValueError, match="not an S3 URI"):
        spark_channels.write_recordio_channel(df, "channels/train")
    with pytest.raises(ValueError, match="needs a prefix below the bucket"):
        spark_channels.write_recordio_channel(df, "s3://bucket/")
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the DataFrame"):
        spark_channels.write_recordio_channel(df, "s3://bucket/x", label_col="nope")
