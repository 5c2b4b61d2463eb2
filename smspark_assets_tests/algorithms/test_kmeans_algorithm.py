"""K-means: hyperparameters, training on CSV and recordIO channels, metrics, model file and serving."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import (BadRequest, ChannelError, HyperparameterError, UnsupportedContentType)
from algorithm_job_folders import make_job
from smspark_assets.sagemaker import mxnet_ndarray
from smspark_assets.sagemaker.artifacts import MODEL_FILE
from smspark_assets.local.algorithms.common_recordio import encode_records
from smspark_assets.local.algorithms.kmeans import assign
from smspark_assets.sagemaker import recordio

KM = get_algorithm("kmeans")


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    x, _ = make_blobs(3000, 6, centers=4, random_state=3, cluster_std=1.0)
    return x.astype(np.float32)


def _metrics(env) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}


# ------------------------------------------------------------------------------------------ hyperparameters

@pytest.mark.parametrize("raw, fragment", [
    ({"feature_dim": "6"}, "missing required hyperparameter(s) k"),
    ({"k": "4"}, "missing required hyperparameter(s) feature_dim"),
    ({"k": "1", "feature_dim": "6"}, "[2, inf)"),
    ({"k": "2.5", "feature_dim": "6"}, "an integer"),
    ({"k": "4", "feature_dim": "0"}, "[1, inf)"),
    ({"k": "4", "feature_dim": "6", "init_method": "forgy"}, "random, kmeans++"),
    ({"k": "4", "feature_dim": "6", "local_lloyd_init_method": "x"}, "random, kmeans++"),
    ({"k": "4", "feature_dim": "6", "local_lloyd_tol": "1.5"}, "[0, 1]"),
    ({"k": "4", "feature_dim": "6", "local_lloyd_max_iter": "0"}, "[1, inf)"),
    ({"k": "4", "feature_dim": "6", "local_lloyd_num_trials": "0"}, "'auto'"),
    ({"k": "4", "feature_dim": "6", "extra_center_factor": "none"}, "'auto'"),
    ({"k": "4", "feature_dim": "6", "half_life_time_size": "-1"}, "[0, inf)"),
    ({"k": "4", "feature_dim": "6", "epochs": "0"}, "[1, inf)"),
    ({"k": "4", "feature_dim": "6", "mini_batch_size": "0"}, "[1, inf)"),
    ({"k": "4", "feature_dim": "6", "eval_metrics": "[msd,rmse]"}, "msd, ssd"),
    ({"k": "4", "feature_dim": "6", "colour": "red"}, "unknown hyperparameter(s) colour"),
])
def test_kmeans_refuses_invalid_hyperparameters(raw, fragment):
    with pytest.raises(HyperparameterError) as info:
        KM.validate_hyperparameters(raw)
    assert fragment in str(info.value)


def test_kmeans_parses_both_sdk_forms():
    spark = KM.validate_hyperparameters({"k": "1.0E1", "feature_dim": "6", "eval_metrics": "[msd,ssd]",
                                         "local_lloyd_tol": "1.0E-5", "extra_center_factor": "auto"})
    python = KM.validate_hyperparameters({"k": "10", "feature_dim": "6", "eval_metrics": '["msd", "ssd"]',
                                          "local_lloyd_tol": "1e-05", "force_dense": "True"})
    for hp in (spark, python):
        assert hp["k"] == 10 and hp["eval_metrics"] == ["msd", "ssd"] and hp["local_lloyd_tol"] == 1e-5
    assert spark["mini_batch_size"] == 5000 and spark["init_method"] == "random" and spark["epochs"] == 1


# ------------------------------------------------------------------------------------------ training

@pytest.mark.parametrize("content_type", ["text/csv", "application/x-recordio-protobuf"])
def test_kmeans_trains_close_to_scikit_learn(tmp_path, blobs, content_type):
    env = make_job(tmp_path, {"k": 4, "feature_dim": 6, "mini_batch_size": 500, "eval_metrics": "[msd,ssd]"},
                   {"train": (blobs, None), "test": (blobs, None)}, content_type=content_type)
    KM.train(env)
    assert (env.model_dir / MODEL_FILE).exists()
    # SageMaker's layout: an unnamed NDArray list of one float32 (k, feature_dim) array.
    (centroids,) = mxnet_ndarray.loads((env.model_dir / MODEL_FILE).read_bytes())
    assert centroids.shape == (4, 6) and centroids.dtype == np.float32
    ours = float(assign(blobs.astype(np.float64), centroids.astype(np.float64))[1].sum())
    reference = SkKMeans(4, n_init=1, random_state=0).fit(blobs).inertia_
    assert ours <= reference * 1.02
    metrics = _metrics(env)
    assert set(metrics) == {"test:msd", "test:ssd"}
    assert metrics["test:ssd"] == pytest.approx(ours, rel=1e-4)
    assert metrics["test:msd"] == pytest.approx(ours / len(blobs), rel=1e-4)


def test_kmeans_logs_quality_metric_lines(tmp_path, blobs, capsys):
    env = make_job(tmp_path, {"k": 4, "feature_dim": 6}, {"train": (blobs, None), "test": (blobs[:100], None)})
    KM.train(env)
    err = capsys.readouterr().err
    assert "#quality_metric: host=algo-1, test msd <loss>=" in err
    assert set(_metrics(env)) == {"test:msd"}


def test_kmeans_options_change_training(tmp_path, blobs):
    env = make_job(tmp_path, {"k": 4, "feature_dim": 6, "mini_batch_size": 100, "init_method": "kmeans++",
                              "epochs": 2, "half_life_time_size": 500, "extra_center_factor": 3,
                              "local_lloyd_num_trials": 2, "local_lloyd_init_method": "kmeans++"},
                   {"train": (blobs, None)})
    KM.train(env)
    (centroids,) = mxnet_ndarray.loads((env.model_dir / MODEL_FILE).read_bytes())
    reference = SkKMeans(4, n_init=1, random_state=0).fit(blobs).inertia_
    assert float(assign(blobs.astype(np.float64), centroids.astype(np.float64))[1].sum()) <= reference * 1.05


def test_kmeans_refuses_wrong_feature_dim_and_missing_channel(tmp_path, blobs):
    env = make_job(tmp_path / "a", {"k": 4, "feature_dim": 5}, {"train": (blobs, None)})
    with pytest.raises(ChannelError, match="6 feature.*feature_dim=5"):
        KM.train(env)
    env = make_job(tmp_path / "b", {"k": 4, "feature_dim": 6}, {"test": (blobs, None)})
    with pytest.raises(ChannelError, match="'train' channel"):
        KM.train(env)


def test_kmeans_refuses_k_larger_than_data(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    env = make_job(tmp_path, {"k": 5, "feature_dim": 4}, {"train": (x, None)})
    with pytest.raises(Exception, match="k=5"):
        KM.train(env)


# ------------------------------------------------------------------------------------------ serving

@pytest.fixture(scope="module")
def predictor(tmp_path_factory, blobs):
    env = make_job(tmp_path_factory.mktemp("km"), {"k": 4, "feature_dim": 6}, {"train": (blobs, None)})
    KM.train(env)
    return KM.load(env.model_dir)


def _expected(predictor, x):
    idx, d2 = assign(x.astype(np.float64), predictor.centroids)
    return idx.astype(float), np.sqrt(d2)


def test_kmeans_serves_every_request_type(predictor, blobs):
    x = blobs[:5]
    closest, distance = _expected(predictor, x)
    bodies = {
        "text/csv": "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode(),
        "text/csv; label_size=0": "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode(),
        "application/json": json.dumps({"instances": [{"features": row.tolist()} for row in x]}).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": row.tolist()}) for row in x).encode(),
        "application/x-recordio-protobuf": encode_records(x),
    }
    for content_type, body in bodies.items():
        out, ct = predictor.invoke(body, content_type, "application/json")
        assert ct == "application/json"
        answers = json.loads(out)["predictions"]
        assert len(answers) == 5, content_type
        assert [a["closest_cluster"] for a in answers] == closest.tolist()
        np.testing.assert_allclose([a["distance_to_cluster"] for a in answers], distance, rtol=1e-5)


def test_kmeans_serves_sparse_json(predictor):
    body = json.dumps({"instances": [{"data": {"features": {"keys": [0, 3], "shape": [6], "values": [1.0, 2.0]}}}]})
    out, _ = predictor.invoke(body.encode(), "application/json", None)
    dense = np.zeros((1, 6), dtype=np.float32)
    dense[0, [0, 3]] = [1.0, 2.0]
    closest, _ = _expected(predictor, dense)
    assert json.loads(out)["predictions"][0]["closest_cluster"] == closest[0]


def test_kmeans_every_response_type(predictor, blobs):
    x = blobs[:3]
    closest, distance = _expected(predictor, x)
    body = encode_records(x)
    ct_body = "application/x-recordio-protobuf"
    lines, ct = predictor.invoke(body, ct_body, "application/jsonlines")
    assert ct == "application/jsonlines"
    rows = [json.loads(line) for line in lines.decode().splitlines()]
    assert [r["closest_cluster"] for r in rows] == closest.tolist()
    csv, ct = predictor.invoke(body, ct_body, "text/csv")
    assert ct == "text/csv"
    parsed = np.loadtxt(csv.decode().splitlines(), delimiter=",", ndmin=2)
    np.testing.assert_allclose(parsed[:, 0], closest)
    np.testing.assert_allclose(parsed[:, 1], distance, rtol=1e-6)
    rio, ct = predictor.invoke(body, ct_body, "application/x-recordio-protobuf")
    assert ct == "application/x-recordio-protobuf"
    decoded = recordio.decode(rio)
    assert len(decoded) == 3
    np.testing.assert_allclose(decoded.label["closest_cluster"].scalars(), closest)
    np.testing.assert_allclose(decoded.label["distance_to_cluster"].scalars(), distance, rtol=1e-6)
    # */* and no Accept give JSON.
    assert predictor.invoke(body, ct_body, "*/*")[1] == "application/json"
    assert predictor.invoke(body, ct_body, None)[1] == "application/json"


def test_kmeans_refuses_bad_requests(predictor):
    with pytest.raises(UnsupportedContentType) as info:
        predictor.invoke(b"1,2", "image/png", None)
    assert info.value.status == 415
    with pytest.raises(UnsupportedContentType) as info:
        predictor.invoke(b"1,2,3,4,5,6", "text/csv", "application/xml")
    assert info.value.status == 406
    with pytest.raises(BadRequest, match="expects 6"):
        predictor.invoke(b"1,2,3", "text/csv", None)
    with pytest.raises(BadRequest, match="not valid JSON"):
        predictor.invoke(b"{nope", "application/json", None)
    with pytest.raises(BadRequest, match="empty"):
        predictor.invoke(b"", "text/csv", None)
    with pytest.raises(BadRequest):
        predictor.invoke(b"1,2,x,4,5,6", "text/csv", None)
    with pytest.raises(BadRequest, match="recordIO|magic|truncated|frame"):
        predictor.invoke(b"\x00" * 16, "application/x-recordio-protobuf", None)
