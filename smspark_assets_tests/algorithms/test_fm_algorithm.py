"""Factorization Machines: hyperparameters, recordIO-only training on sparse interactions, metrics, serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import ChannelError, HyperparameterError, UnsupportedContentType
from algorithm_job_folders import make_job
from smspark_assets.local.algorithms.common_metrics import roc_auc
from smspark_assets.sagemaker.artifacts import MODEL_FILE
from smspark_assets.local.algorithms.common_recordio import encode_records
from algorithm_synthetic_data import interactions
from smspark_assets.sagemaker import recordio

FM = get_algorithm("factorization-machines")
RIO = "application/x-recordio-protobuf"
BASE = {"feature_dim": "100", "num_factors": "4", "predictor_type": "regressor"}
FAST = {"epochs": 15, "mini_batch_size": 200, "bias_lr": 0.02, "linear_lr": 0.02, "factors_lr": 0.02,
        "bias_wd": 0, "linear_wd": 1e-5, "factors_wd": 1e-5}


@pytest.mark.parametrize("raw, fragment", [
    ({"num_factors": "4", "predictor_type": "regressor"}, "missing required hyperparameter(s) feature_dim"),
    ({"feature_dim": "10", "predictor_type": "regressor"}, "missing required hyperparameter(s) num_factors"),
    ({"feature_dim": "10", "num_factors": "4"}, "missing required hyperparameter(s) predictor_type"),
    ({**BASE, "predictor_type": "multiclass_classifier"}, "binary_classifier, regressor"),
    ({**BASE, "num_factors": "0"}, "[1, inf)"),
    ({**BASE, "epochs": "0"}, "[1, inf)"),
    ({**BASE, "mini_batch_size": "0"}, "[1, inf)"),
    ({**BASE, "bias_lr": "-1"}, "[0, inf)"),
    ({**BASE, "linear_lr": "-1"}, "[0, inf)"),
    ({**BASE, "factors_lr": "-1"}, "[0, inf)"),
    ({**BASE, "bias_wd": "-1"}, "[0, inf)"),
    ({**BASE, "linear_wd": "-1"}, "[0, inf)"),
    ({**BASE, "factors_wd": "-1"}, "[0, inf)"),
    ({**BASE, "factors_init_method": "xavier"}, "normal, uniform, constant"),
    ({**BASE, "bias_init_method": "uniform"}, "needs bias_init_scale"),
    ({**BASE, "linear_init_method": "constant"}, "needs linear_init_value"),
    ({**BASE, "factors_init_sigma": "-0.1"}, "[0, inf)"),
    ({**BASE, "linear_init_scale": "-0.1"}, "[0, inf)"),
    ({**BASE, "clip_gradient": "0"}, "> 0"),
    ({**BASE, "eps": "0"}, "(0, inf)"),
    ({**BASE, "rescale_grad": "big"}, "a number"),
    ({**BASE, "factor": "3"}, "unknown hyperparameter(s) factor"),
])
def test_fm_refuses_invalid_hyperparameters(raw, fragment):
    with pytest.raises(HyperparameterError) as info:
        FM.validate_hyperparameters(raw)
    assert fragment in str(info.value)


def test_fm_defaults():
    hp = FM.validate_hyperparameters(BASE)
    assert (hp["epochs"], hp["mini_batch_size"], hp["bias_lr"], hp["linear_lr"], hp["factors_lr"]) == (1, 1000, 0.1, 0.001, 0.0001)
    assert (hp["bias_wd"], hp["linear_wd"], hp["factors_wd"]) == (0.01, 0.001, 0.00001)
    assert (hp["bias_init_sigma"], hp["linear_init_sigma"], hp["factors_init_sigma"]) == (0.01, 0.01, 0.001)


def _metrics(env) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}


def test_fm_regressor_learns_interactions(tmp_path):
    data = interactions(12000, users=50, items=50, rank=3, noise=0.3, seed=2)
    tr, te = slice(0, 10000), slice(10000, None)
    env = make_job(tmp_path, {**BASE, **FAST},
                   {"train": (data.features[tr], data.labels[tr]), "test": (data.features[te], data.labels[te])},
                   content_type=RIO)
    FM.train(env)
    assert (env.model_dir / MODEL_FILE).exists()
    metrics = _metrics(env)
    assert set(metrics) == {"test:rmse"}
    linear_only = np.sqrt(np.mean((data.labels[te] - data.truth[te].mean()) ** 2))
    assert metrics["test:rmse"] < 0.6 * linear_only
    predictor = FM.load(env.model_dir)
    out = json.loads(predictor.invoke(encode_records(data.features[te][:3]), RIO, "application/json")[0])
    assert [list(p) for p in out["predictions"]] == [["score"]] * 3


def test_fm_binary_classifier(tmp_path):
    data = interactions(12000, users=50, items=50, rank=3, binary=True, seed=3)
    tr, te = slice(0, 10000), slice(10000, None)
    env = make_job(tmp_path, {**BASE, **FAST, "predictor_type": "binary_classifier", "factors_init_method": "uniform",
                              "factors_init_scale": 0.01, "clip_gradient": 10, "rescale_grad": 1.0, "eps": 1e-7},
                   {"train": (data.features[tr], data.labels[tr]), "test": (data.features[te], data.labels[te])},
                   content_type=RIO)
    FM.train(env)
    metrics = _metrics(env)
    assert set(metrics) == {"test:binary_classification_accuracy", "test:binary_classification_cross_entropy",
                            "test:binary_f_beta"}
    predictor = FM.load(env.model_dir)
    x = data.features[te]
    rio = recordio.decode(predictor.invoke(encode_records(x), RIO, RIO)[0])
    scores = rio.label["score"].scalars()
    assert roc_auc(data.labels[te], scores) > 0.9 * roc_auc(data.labels[te], data.truth[te])
    np.testing.assert_array_equal(rio.label["predicted_label"].scalars(), (scores >= 0.5).astype(float))
    accuracy = np.mean((scores >= 0.5) == (data.labels[te] > 0.5))
    assert accuracy == pytest.approx(metrics["test:binary_classification_accuracy"], abs=1e-6)
    # Sparse JSON and JSON lines requests.
    row = x[0]
    instance = {"data": {"features": {"keys": row.indices.tolist(), "shape": [100], "values": row.data.tolist()}}}
    out = json.loads(predictor.invoke(json.dumps({"instances": [instance]}).encode(), "application/json", None)[0])
    assert out["predictions"][0]["score"] == pytest.approx(scores[0], rel=1e-5)
    lines = predictor.invoke(json.dumps(instance).encode(), "application/jsonlines", "application/jsonlines")[0]
    assert json.loads(lines.decode().splitlines()[0])["predicted_label"] in (0, 1)


def test_fm_refuses_csv(tmp_path):
    data = interactions(100, users=50, items=50, seed=1)
    env = make_job(tmp_path, BASE, {"train": (data.features, data.labels)})
    with pytest.raises(ChannelError, match="application/x-recordio-protobuf"):
        FM.train(env)
    env = make_job(tmp_path / "r", BASE, {"train": (data.features, data.labels)}, content_type=RIO)
    FM.train(env)
    predictor = FM.load(env.model_dir)
    with pytest.raises(UnsupportedContentType):
        predictor.invoke(b"1,0,0", "text/csv", None)
    with pytest.raises(UnsupportedContentType):
        predictor.invoke(encode_records(data.features[:1]), RIO, "text/csv")
