"""Linear Learner: hyperparameters, the three predictor types, losses, optimizers, metrics and serving."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import BadRequest, ChannelError, HyperparameterError, UnsupportedContentType
from algorithm_job_folders import make_job
from smspark_assets.local.algorithms.common_metrics import roc_auc
from smspark_assets.sagemaker.artifacts import MODEL_FILE
from smspark_assets.local.algorithms.common_recordio import encode_records
from smspark_assets.local.algorithms.linear_learner import choose_threshold
from smspark_assets.sagemaker import recordio

LL = get_algorithm("linear-learner")
BIN = {"predictor_type": "binary_classifier"}


def _metrics(env) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.float32)


# ------------------------------------------------------------------------------------------ hyperparameters

@pytest.mark.parametrize("raw, fragment", [
    ({}, "missing required hyperparameter(s) predictor_type"),
    ({"predictor_type": "ranker"}, "binary_classifier, multiclass_classifier, regressor"),
    ({"predictor_type": "multiclass_classifier"}, "num_classes is required"),
    ({"predictor_type": "multiclass_classifier", "num_classes": "2"}, "[3, 1000000]"),
    ({**BIN, "num_classes": "3"}, "applies only to multiclass"),
    ({**BIN, "loss": "squared_loss"}, "does not fit predictor_type"),
    ({"predictor_type": "regressor", "loss": "logistic"}, "does not fit predictor_type"),
    ({**BIN, "loss": "zero_one"}, "softmax_loss"),
    ({**BIN, "epochs": "0"}, "[1, inf)"),
    ({**BIN, "mini_batch_size": "-5"}, "[1, inf)"),
    ({**BIN, "binary_classifier_model_selection_criteria": "auc"}, "precision_at_target_recall"),
    ({**BIN, "target_recall": "1"}, "(0, 1)"),
    ({**BIN, "target_precision": "0"}, "(0, 1)"),
    ({**BIN, "positive_example_weight_mult": "0"}, "'balanced'"),
    ({**BIN, "accuracy_top_k": "0"}, "[1, inf)"),
    ({**BIN, "balance_multiclass_weights": "maybe"}, "True or False"),
    ({**BIN, "use_bias": "yes please"}, "True or False"),
    ({**BIN, "num_models": "0"}, "'auto'"),
    ({**BIN, "num_calibration_samples": "0"}, "'auto'"),
    ({**BIN, "init_method": "xavier"}, "uniform, normal"),
    ({**BIN, "init_scale": "0"}, "(0, inf)"),
    ({**BIN, "init_sigma": "-1"}, "(0, inf)"),
    ({**BIN, "optimizer": "lbfgs"}, "sgd, adam, rmsprop, auto"),
    ({**BIN, "wd": "-0.1"}, "[0, inf)"),
    ({**BIN, "l1": "-0.1"}, "[0, inf)"),
    ({**BIN, "momentum": "1"}, "[0, 1)"),
    ({**BIN, "learning_rate": "0"}, "(0, inf)"),
    ({**BIN, "beta_1": "1.0"}, "[0, 1)"),
    ({**BIN, "beta_2": "-0.1"}, "[0, 1)"),
    ({**BIN, "bias_lr_mult": "0"}, "(0, inf)"),
    ({**BIN, "bias_wd_mult": "-1"}, "[0, inf)"),
    ({**BIN, "lr_scheduler_step": "0"}, "[1, inf)"),
    ({**BIN, "lr_scheduler_factor": "1"}, "(0, 1)"),
    ({**BIN, "lr_scheduler_minimum_lr": "0"}, "(0, inf)"),
    ({**BIN, "normalize_data": "sometimes"}, "True or False"),
    ({**BIN, "normalize_label": "x"}, "'auto'"),
    ({**BIN, "num_point_for_scaler": "0"}, "[1, inf)"),
    ({**BIN, "early_stopping_patience": "0"}, "[1, inf)"),
    ({**BIN, "early_stopping_tolerance": "0"}, "(0, inf)"),
    ({**BIN, "margin": "0"}, "(0, inf)"),
    ({**BIN, "quantile": "1"}, "(0, 1)"),
    ({**BIN, "loss_insensitivity": "0"}, "(0, inf)"),
    ({**BIN, "huber_delta": "-1"}, "(0, inf)"),
    ({**BIN, "f_beta": "0"}, "(0, inf)"),
    ({**BIN, "feature_dim": "0"}, "'auto'"),
    ({**BIN, "speed": "fast"}, "unknown hyperparameter(s) speed"),
])
def test_linear_learner_refuses_invalid_hyperparameters(raw, fragment):
    with pytest.raises(HyperparameterError) as info:
        LL.validate_hyperparameters(raw)
    assert fragment in str(info.value)


def test_linear_learner_defaults_and_sdk_forms():
    hp = LL.validate_hyperparameters({**BIN, "use_bias": "False", "wd": "1.0E-4", "learning_rate": "1e-05"})
    assert hp["use_bias"] is False and hp["wd"] == 1e-4 and hp["learning_rate"] == 1e-5
    assert hp["epochs"] == 15 and hp["mini_batch_size"] == 1000 and hp["optimizer"] == "auto"
    assert hp["early_stopping_patience"] == 3 and hp["early_stopping_tolerance"] == 0.001
    assert hp["positive_example_weight_mult"] == 1.0
    assert LL.validate_hyperparameters({**BIN, "positive_example_weight_mult": "balanced"})[
        "positive_example_weight_mult"] == "balanced"


# ------------------------------------------------------------------------------------------ training

@pytest.mark.parametrize("content_type", ["text/csv", "application/x-recordio-protobuf"])
def test_linear_learner_binary_with_validation_and_test(tmp_path, cancer, content_type, capsys):
    x, y = cancer
    env = make_job(tmp_path, {**BIN, "mini_batch_size": 32, "epochs": 20},
                   {"train": (x[:350], y[:350]), "validation": (x[350:450], y[350:450]), "test": (x[450:], y[450:])},
                   content_type=content_type)
    LL.train(env)
    assert (env.model_dir / MODEL_FILE).exists()
    metrics = _metrics(env)
    names = {"objective_loss", "binary_classification_accuracy", "binary_f_beta", "precision", "recall", "roc_auc_score"}
    assert set(metrics) == {f"{c}:{n}" for c in ("validation", "test") for n in names}
    assert metrics["test:roc_auc_score"] > 0.97
    log = capsys.readouterr().err
    assert "#quality_metric: host=algo-1, test roc_auc_score <score>=" in log
    assert "#quality_metric: host=algo-1, validation objective_loss <loss>=" in log
    assert metrics["test:binary_classification_accuracy"] > 0.9
    # The served model reproduces the test metric.
    predictor = LL.load(env.model_dir)
    out = json.loads(predictor.invoke(encode_records(x[450:]), "application/x-recordio-protobuf", None)[0])
    scores = np.array([p["score"] for p in out["predictions"]])
    assert roc_auc(y[450:], scores) == pytest.approx(metrics["test:roc_auc_score"], abs=1e-6)
    labels = np.array([p["predicted_label"] for p in out["predictions"]])
    assert set(labels.tolist()) <= {0, 1}
    assert np.mean(labels == y[450:]) == pytest.approx(metrics["test:binary_classification_accuracy"])


def test_linear_learner_regressor_metrics(tmp_path):
    x, y = load_diabetes(return_X_y=True)
    env = make_job(tmp_path, {"predictor_type": "regressor", "mini_batch_size": 32, "epochs": 30},
                   {"train": (x[:300], y[:300]), "validation": (x[300:370], y[300:370]), "test": (x[370:], y[370:])})
    LL.train(env)
    metrics = _metrics(env)
    assert set(metrics) == {"validation:objective_loss", "validation:mse", "validation:rmse", "validation:absolute_loss",
                            "test:objective_loss", "test:mse", "test:absolute_loss"}
    assert metrics["validation:rmse"] == pytest.approx(np.sqrt(metrics["validation:mse"]))
    r2 = 1 - metrics["test:mse"] / np.var(y[370:])
    assert r2 > 0.35


def test_linear_learner_multiclass(tmp_path):
    x, y = load_iris(return_X_y=True)
    order = np.random.default_rng(1).permutation(len(y))
    x, y = x[order], y[order]
    env = make_job(tmp_path, {"predictor_type": "multiclass_classifier", "num_classes": 3, "mini_batch_size": 16,
                              "epochs": 40, "accuracy_top_k": 2},
                   {"train": (x[:120], y[:120]), "test": (x[120:], y[120:])})
    LL.train(env)
    metrics = _metrics(env)
    assert set(metrics) == {f"test:{n}" for n in ("objective_loss", "multiclass_accuracy", "multiclass_top_k_accuracy",
                                                  "dcg", "macro_f_beta", "macro_precision", "macro_recall")}
    assert metrics["test:multiclass_accuracy"] >= 0.9
    assert metrics["test:multiclass_top_k_accuracy"] >= metrics["test:multiclass_accuracy"]
    predictor = LL.load(env.model_dir)
    out = json.loads(predictor.invoke(b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3", "text/csv", "application/json")[0])
    assert [len(p["score"]) for p in out["predictions"]] == [3, 3]
    assert [p["predicted_label"] for p in out["predictions"]] == [0, 2]
    assert all(abs(sum(p["score"]) - 1) < 1e-6 for p in out["predictions"])


@pytest.mark.parametrize("extra", [
    {"optimizer": "sgd"}, {"optimizer": "rmsprop"}, {"loss": "hinge_loss"}, {"l1": "0.001"},
    {"positive_example_weight_mult": "balanced"}, {"positive_example_weight_mult": "auto"},
    {"binary_classifier_model_selection_criteria": "f_beta", "f_beta": "2"},
    {"binary_classifier_model_selection_criteria": "precision_at_target_recall"},
    {"binary_classifier_model_selection_criteria": "recall_at_target_precision", "target_precision": "0.95"},
    {"binary_classifier_model_selection_criteria": "cross_entropy_loss"},
    {"init_method": "normal", "use_bias": "False", "normalize_data": "False", "use_lr_scheduler": "False"},
    {"num_models": "3", "learning_rate": "0.05", "wd": "0.001"},
])
def test_linear_learner_binary_options_all_learn(tmp_path, cancer, extra):
    x, y = cancer
    env = make_job(tmp_path, {**BIN, "mini_batch_size": 50, "epochs": 10, **extra},
                   {"train": (x[:400], y[:400]), "test": (x[400:], y[400:])})
    LL.train(env)
    assert _metrics(env)["test:roc_auc_score"] > 0.9


@pytest.mark.parametrize("loss", ["absolute_loss", "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                                  "quantile_loss", "huber_loss"])
def test_linear_learner_regression_losses(tmp_path, loss):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 10 + rng.normal(0, 0.1, size=800)
    env = make_job(tmp_path, {"predictor_type": "regressor", "loss": loss, "mini_batch_size": 32, "epochs": 20},
                   {"train": (x[:600], y[:600]), "test": (x[600:], y[600:])})
    LL.train(env)
    assert _metrics(env)["test:mse"] < 0.5


def test_choose_threshold_meets_target_recall():
    labels = np.array([0, 0, 1, 0, 1, 1, 1, 0, 1, 1], dtype=float)
    scores = np.linspace(0, 1, 10)
    hp = {"binary_classifier_model_selection_criteria": "precision_at_target_recall", "target_recall": 0.8,
          "f_beta": 1.0}
    threshold, _ = choose_threshold(labels, scores, hp, True)
    predicted = scores >= threshold
    assert (predicted & (labels == 1)).sum() / labels.sum() >= 0.8


def test_linear_learner_refuses_bad_labels(tmp_path):
    x = np.ones((10, 2), dtype=np.float32)
    env = make_job(tmp_path, {**BIN, "mini_batch_size": 5}, {"train": (x, np.arange(10, dtype=np.float32))})
    with pytest.raises(ChannelError, match="0 or 1"):
        LL.train(env)
    env = make_job(tmp_path / "m", {"predictor_type": "multiclass_classifier", "num_classes": 3},
                   {"train": (x, np.full(10, 5, dtype=np.float32))})
    with pytest.raises(ChannelError, match=r"\[0, 2\]"):
        LL.train(env)


# ------------------------------------------------------------------------------------------ serving

@pytest.fixture(scope="module")
def served(tmp_path_factory, cancer):
    x, y = cancer
    env = make_job(tmp_path_factory.mktemp("ll"), {**BIN, "mini_batch_size": 50, "epochs": 5},
                   {"train": (x[:400], y[:400])})
    LL.train(env)
    return LL.load(env.model_dir), x[400:405]


def test_linear_learner_every_request_and_response_type(served):
    predictor, x = served
    reference = json.loads(predictor.invoke(encode_records(x), "application/x-recordio-protobuf", "application/json")[0])
    assert len(reference["predictions"]) == 5
    assert set(reference["predictions"][0]) == {"score", "predicted_label"}
    bodies = {
        "text/csv": "\n".join(",".join(repr(float(v)) for v in r) for r in x).encode(),
        "application/json": json.dumps({"instances": [{"data": {"features": {"values": r.tolist()}}} for r in x]}).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": r.tolist()}) for r in x).encode(),
    }
    for ct, body in bodies.items():
        out = json.loads(predictor.invoke(body, ct, "application/json")[0])
        np.testing.assert_allclose([p["score"] for p in out["predictions"]],
                                   [p["score"] for p in reference["predictions"]], rtol=1e-5)
    csv = predictor.invoke(encode_records(x), "application/x-recordio-protobuf", "text/csv")[0].decode().splitlines()
    assert len(csv) == 5 and all(len(line.split(",")) == 2 for line in csv)
    rio = recordio.decode(predictor.invoke(encode_records(x), "application/x-recordio-protobuf",
                                           "application/x-recordio-protobuf")[0])
    np.testing.assert_allclose(rio.label["score"].scalars(), [p["score"] for p in reference["predictions"]], rtol=1e-5)
    np.testing.assert_array_equal(rio.label["predicted_label"].scalars(),
                                  [p["predicted_label"] for p in reference["predictions"]])
    lines = predictor.invoke(encode_records(x), "application/x-recordio-protobuf", "application/jsonlines")[0]
    assert len(lines.decode().splitlines()) == 5


def test_linear_learner_serving_errors(served):
    predictor, _ = served
    with pytest.raises(BadRequest, match="expects 30"):
        predictor.invoke(b"1,2,3", "text/csv", None)
    with pytest.raises(UnsupportedContentType):
        predictor.invoke(b"1", "text/plain", None)
