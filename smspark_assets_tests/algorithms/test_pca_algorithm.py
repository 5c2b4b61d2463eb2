"""PCA: exact streaming (regular/stable), randomized sketch, model layout and the ``projections`` response."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import BadRequest, HyperparameterError
from algorithm_job_folders import make_job
from smspark_assets.sagemaker import mxnet_ndarray
from smspark_assets.sagemaker.artifacts import MODEL_FILE
from smspark_assets.local.algorithms.common_recordio import encode_records
from smspark_assets.sagemaker import recordio

PCA = get_algorithm("pca")
BASE = {"feature_dim": "64", "num_components": "5", "mini_batch_size": "100"}


@pytest.fixture(scope="module")
def digits():
    return load_digits().data.astype(np.float32)


@pytest.mark.parametrize("raw, fragment", [
    ({"num_components": "5", "mini_batch_size": "10"}, "missing required hyperparameter(s) feature_dim"),
    ({"feature_dim": "64", "mini_batch_size": "10"}, "missing required hyperparameter(s) num_components"),
    ({"feature_dim": "64", "num_components": "5"}, "missing required hyperparameter(s) mini_batch_size"),
    ({**BASE, "num_components": "0"}, "[1, inf)"),
    ({**BASE, "num_components": "65"}, "[1, 64]"),
    ({**BASE, "algorithm_mode": "fast"}, "regular, stable, randomized"),
    ({**BASE, "subtract_mean": "perhaps"}, "True or False"),
    ({**BASE, "extra_components": "0"}, "-1 (automatic)"),
    ({**BASE, "extra_components": "-2"}, "[-1, inf)"),
    ({**BASE, "mini_batch_size": "0"}, "[1, inf)"),
    ({**BASE, "whiten": "True"}, "unknown hyperparameter(s) whiten"),
])
def test_pca_refuses_invalid_hyperparameters(raw, fragment):
    with pytest.raises(HyperparameterError) as info:
        PCA.validate_hyperparameters(raw)
    assert fragment in str(info.value)


def _model_file(env) -> dict[str, np.ndarray]:
    model = mxnet_ndarray.loads((env.model_dir / MODEL_FILE).read_bytes())
    assert isinstance(model, dict)
    return model


def _reference(x: np.ndarray, k: int):
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    return s[:k], vt[:k].T, xc


@pytest.mark.parametrize("mode", ["regular", "stable"])
@pytest.mark.parametrize("content_type", ["text/csv", "application/x-recordio-protobuf"])
def test_pca_exact_modes_equal_svd(tmp_path, digits, mode, content_type):
    env = make_job(tmp_path, {**BASE, "algorithm_mode": mode}, {"train": (digits, None)}, content_type=content_type)
    PCA.train(env)
    model = _model_file(env)
    v, s, mean = model["v"], model["s"], model["mean"]
    s_ref, v_ref, _ = _reference(digits, 5)
    # SageMaker's layout: an MXNet NDArray dict of float32, largest component last.
    assert set(model) == {"mean", "v", "s"} and v.dtype == np.float32
    assert v.shape == (digits.shape[1], 5) and s.shape == (5,) and mean.shape == (1, digits.shape[1])
    np.testing.assert_allclose(s[::-1], s_ref, rtol=1e-4)
    np.testing.assert_allclose(np.abs(v[:, ::-1]), np.abs(v_ref), atol=1e-4)
    np.testing.assert_allclose(mean[0], digits.mean(axis=0), atol=1e-4)


def test_pca_randomized_captures_variance(tmp_path, digits):
    env = make_job(tmp_path, {**BASE, "num_components": 10, "algorithm_mode": "randomized"}, {"train": (digits, None)})
    PCA.train(env)
    v = _model_file(env)["v"].astype(np.float64)
    _, v_ref, xc = _reference(digits, 10)
    assert ((xc @ v) ** 2).sum() / ((xc @ v_ref) ** 2).sum() >= 0.99


def test_pca_without_mean_and_sparse_input(tmp_path):
    x = sp.random(400, 20, density=0.2, format="csr", dtype=np.float32, random_state=0)
    env = make_job(tmp_path, {"feature_dim": 20, "num_components": 3, "mini_batch_size": 64, "subtract_mean": "False"},
                   {"train": (x, None)}, content_type="application/x-recordio-protobuf")
    PCA.train(env)
    model = _model_file(env)
    assert "mean" not in model
    v = model["v"]
    _, _, vt = np.linalg.svd(x.toarray().astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(v[:, ::-1]), np.abs(vt[:3].T), atol=1e-4)


def test_pca_serves_projections(tmp_path, digits):
    env = make_job(tmp_path, BASE, {"train": (digits, None)})
    PCA.train(env)
    predictor = PCA.load(env.model_dir)
    model = _model_file(env)
    expected = (digits[:4].astype(np.float64) - model["mean"].astype(np.float64)) @ model["v"].astype(np.float64)
    bodies = {
        "text/csv": "\n".join(",".join(str(float(v)) for v in r) for r in digits[:4]).encode(),
        "application/json": json.dumps({"instances": [{"features": r.tolist()} for r in digits[:4]]}).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": r.tolist()}) for r in digits[:4]).encode(),
        "application/x-recordio-protobuf": encode_records(digits[:4]),
    }
    for ct, body in bodies.items():
        out, rct = predictor.invoke(body, ct, "application/json")
        doc = json.loads(out)
        assert list(doc) == ["projections"] and rct == "application/json"
        np.testing.assert_allclose([p["projection"] for p in doc["projections"]], expected, rtol=1e-5, atol=1e-6)
    rio = recordio.decode(predictor.invoke(bodies["text/csv"], "text/csv", "application/x-recordio-protobuf")[0])
    np.testing.assert_allclose(rio.label["projection"].to_dense(), expected, rtol=1e-5, atol=1e-4)
    csv = predictor.invoke(bodies["text/csv"], "text/csv", "text/csv")[0].decode().splitlines()
    assert len(csv) == 4 and len(csv[0].split(",")) == 5
    lines = predictor.invoke(bodies["text/csv"], "text/csv", "application/jsonlines")[0].decode().splitlines()
    assert [len(json.loads(line)["projection"]) for line in lines] == [5] * 4
    with pytest.raises(BadRequest, match="expects 64"):
        predictor.invoke(b"1,2", "text/csv", None)
