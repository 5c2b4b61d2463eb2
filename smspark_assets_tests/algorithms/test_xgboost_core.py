"""The local XGBoost algorithm: train through a job folder, serve, and match the xgboost library exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import (
    BadRequest,
    ChannelError,
    HyperparameterError,
    TrainingEnvironment,
    UnsupportedContentType,
)
from smspark_assets.sagemaker.algorithms.xgboost import validate_xgboost_hyperparameters

ALGORITHM = get_algorithm("xgboost")


@pytest.fixture(autouse=True)
def _temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path / "root"))


def binary_data(n: int = 1500, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.7 * x[:, 1] ** 2 - 0.5 * x[:, 2] + rng.normal(scale=0.7, size=n) > 0.4).astype(
        np.float32
    )
    return x, y


def csv_text(*columns: np.ndarray) -> str:
    matrix = np.column_stack(columns)
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in matrix)


def libsvm_text(x: np.ndarray, y: np.ndarray | None) -> str:
    lines = []
    for i, row in enumerate(x):
        label = repr(float(y[i])) if y is not None else "0.0"
        lines.append(label + " " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row) if v != 0))
    return "\n".join(lines) + "\n"


# Tests pass nthread=1 (to both sides when comparing): multi-threaded OpenMP crawls on oversubscribed cores.
def make_job(
    root: Path, hyperparameters: dict[str, str], channels: dict[str, tuple[str, dict[str, str]]]
) -> TrainingEnvironment:
    """A job folder in the container layout: channels map name -> (content type, {file name: text})."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({n: {"ContentType": ct} for n, (ct, _) in channels.items()})
    )
    for name, (_, files) in channels.items():
        folder = root / "input" / "data" / name
        folder.mkdir(parents=True)
        for file_name, text in files.items():
            (folder / file_name).write_text(text)
    return TrainingEnvironment.from_job_dir(root)


def metrics_of(env: TrainingEnvironment) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}


def parse_csv_response(body: bytes) -> np.ndarray:
    lines = body.decode().strip("\n").split("\n")
    return np.array([[float(v) for v in line.split(",")] for line in lines], dtype=np.float64)


# ------------------------------------------------------------------------------------------ hyperparameters


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("max_depth", "-1", "[0, inf)"),
        ("eta", "2", "[0, 1]"),
        ("subsample", "0", "(0, 1]"),
        ("num_round", "0", "[1, inf)"),
        ("tweedie_variance_power", "2", "(1, 2)"),
        ("objective", "reg:nonsense", "binary:logistic"),
        ("booster", "forest", "gbtree"),
        ("csv_weights", "2", "[0, 1]"),
    ],
)
def test_out_of_range_hyperparameters_are_refused_with_the_allowed_range(
    name: str, value: str, allowed: str
) -> None:
    raw = {"num_round": "10", name: value}
    with pytest.raises(HyperparameterError) as info:
        ALGORITHM.validate_hyperparameters(raw)
    assert name in str(info.value) and allowed in str(info.value)


def test_cross_field_rules_and_required_names() -> None:
    with pytest.raises(HyperparameterError, match="num_round"):
        validate_xgboost_hyperparameters({"objective": "binary:logistic"})
    with pytest.raises(HyperparameterError, match="num_class"):
        validate_xgboost_hyperparameters({"num_round": "5", "objective": "multi:softprob"})
    with pytest.raises(HyperparameterError, match="num_class"):
        validate_xgboost_hyperparameters({"num_round": "5", "objective": "binary:logistic", "num_class": "3"})
    with pytest.raises(HyperparameterError, match="auc"):
        validate_xgboost_hyperparameters(
            {"num_round": "5", "objective": "reg:squarederror", "eval_metric": "auc"}
        )
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        validate_xgboost_hyperparameters({"num_round": "5", "max_dpeth": "3"})
    with pytest.raises(HyperparameterError, match="not supported"):
        validate_xgboost_hyperparameters({"num_round": "5", "eval_metric": "accuracy_top5"})
    with pytest.raises(HyperparameterError, match="one tree-grow updater"):
        validate_xgboost_hyperparameters({"num_round": "5", "updater": "grow_colmaker,grow_histmaker"})
    with pytest.raises(HyperparameterError, match="alias"):
        validate_xgboost_hyperparameters({"num_round": "5", "eta": "0.1", "learning_rate": "0.2"})


def test_both_sdks_string_forms_parse() -> None:
    # Spark SDK renders doubles as 1.0E-5 and lists as [a,b]; the Python SDK sends 1e-05 and JSON lists.
    spark = validate_xgboost_hyperparameters(
        {
            "num_round": "10.0",
            "eta": "1.0E-1",
            "eval_metric": "[auc,error@0.3]",
            "objective": "binary:logistic",
        }
    )
    python = validate_xgboost_hyperparameters(
        {
            "num_round": "10",
            "learning_rate": "0.1",
            "eval_metric": '["auc", "error@0.3"]',
            "objective": "binary:logistic",
        }
    )
    for parsed in (spark, python):
        assert parsed["num_round"] == 10 and parsed["eta"] == pytest.approx(0.1)
        assert parsed["eval_metric"] == ["auc", "error@0.3"]
    assert python["_given"] == ["eta", "eval_metric", "num_round", "objective"]


# ------------------------------------------------------------------------------------------ train + serve


@pytest.mark.integration
def test_csv_training_with_early_stopping_matches_the_xgboost_library(tmp_path: Path) -> None:
    x, y = binary_data()
    xt, yt, xv, yv = x[:1200], y[:1200], x[1200:], y[1200:]
    hp = {
        "objective": "binary:logistic",
        "num_round": "60",
        "early_stopping_rounds": "5",
        "max_depth": "3",
        "eta": "0.3",
        "seed": "7",
        "nthread": "1",
    }
    env = make_job(
        tmp_path / "job",
        hp,
        {
            # The train channel comes in two parts, as Spark writes it; the reader takes all, in name order.
            "train": (
                "text/csv",
                {
                    "part-00000.csv": csv_text(yt[:700], xt[:700]),
                    "part-00001.csv": csv_text(yt[700:], xt[700:]),
                    "_SUCCESS": "",
                },
            ),
            "validation": ("text/csv", {"part-00000.csv": csv_text(yv, xv)}),
        },
    )
    ALGORITHM.train(env)

    metrics = metrics_of(env)
    for name in ("validation:auc", "validation:logloss", "validation:error", "train:auc", "train:logloss"):
        assert name in metrics
    assert 0.75 < metrics["validation:auc"] <= 1.0
    model_file = env.model_dir / "xgboost-model"
    assert model_file.read_bytes()[:1] == b"{"  # UBJSON object marker, as save_model writes without extension

    # The same training, done directly with the library.
    reference = xgb.train(
        {
            "objective": "binary:logistic",
            "max_depth": 3,
            "eta": 0.3,
            "seed": 7,
            "nthread": 1,
            "eval_metric": ["auc", "error", "logloss"],
        },
        xgb.DMatrix(xt, label=yt),
        num_boost_round=60,
        evals=[(xgb.DMatrix(xt, label=yt), "train"), (xgb.DMatrix(xv, label=yv), "validation")],
        early_stopping_rounds=5,
        verbose_eval=False,
    )
    expected = reference.predict(xgb.DMatrix(xv), iteration_range=(0, reference.best_iteration + 1))
    assert reference.best_iteration < 59  # early stopping really fired, so best-iteration serving matters

    predictor = ALGORITHM.load(env.model_dir)
    body, content_type = predictor.invoke(csv_text(xv).encode(), "text/csv", "text/csv")
    assert content_type == "text/csv"
    got = parse_csv_response(body)
    assert got.shape == (len(xv), 1)  # exactly one answer per record, one per line
    np.testing.assert_array_equal(got[:, 0].astype(np.float32), expected)

    libsvm_body, _ = predictor.invoke(libsvm_text(xv, None).encode(), "text/x-libsvm", "text/csv")
    np.testing.assert_array_equal(parse_csv_response(libsvm_body)[:, 0].astype(np.float32), expected)

    as_json, json_type = predictor.invoke(
        csv_text(xv[:3]).encode(), "text/csv; charset=utf-8", "application/json"
    )
    assert json_type == "application/json"
    assert [p["score"] for p in json.loads(as_json)["predictions"]] == pytest.approx(
        expected[:3].tolist(), rel=1e-6
    )
    lines, lines_type = predictor.invoke(csv_text(xv[:3]).encode(), "text/csv", "application/jsonlines")
    assert lines_type == "application/jsonlines"
    assert [json.loads(line)["score"] for line in lines.decode().splitlines()] == pytest.approx(
        expected[:3].tolist(), rel=1e-6
    )


@pytest.mark.integration
def test_libsvm_training_uses_one_based_indices_for_training_and_inference(tmp_path: Path) -> None:
    x, y = binary_data(n=800, d=5, seed=3)
    x[np.abs(x) < 0.5] = 0.0  # sparse rows: absent entries are missing values
    hp = {"objective": "binary:logistic", "num_round": "15", "max_depth": "3", "nthread": "1"}
    env = make_job(tmp_path / "job", hp, {"train": ("text/libsvm", {"part-0": libsvm_text(x, y)})})
    ALGORITHM.train(env)

    import scipy.sparse as sp

    reference = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(sp.csr_matrix(x), label=y),
        num_boost_round=15,
    )
    predictor = ALGORITHM.load(env.model_dir)
    assert predictor.num_features == 5  # index k is column k-1: no empty column 0
    body, _ = predictor.invoke(libsvm_text(x[:50], None).encode(), "text/libsvm", None)
    expected = reference.predict(xgb.DMatrix(sp.csr_matrix(x[:50])))
    np.testing.assert_array_equal(parse_csv_response(body)[:, 0].astype(np.float32), expected)
    # A libsvm request without label tokens is accepted too (every index:value token is a feature).
    unlabeled = "\n".join(" ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(r) if v != 0) for r in x[:5])
    body, _ = predictor.invoke(unlabeled.encode(), "text/libsvm", "text/csv")
    np.testing.assert_array_equal(parse_csv_response(body)[:, 0].astype(np.float32), expected[:5])


@pytest.mark.integration
def test_csv_weights_are_the_second_column(tmp_path: Path) -> None:
    x, y = binary_data(n=600, d=4, seed=5)
    w = np.random.default_rng(1).uniform(0.1, 5.0, size=len(y)).astype(np.float32)
    hp = {
        "objective": "binary:logistic",
        "num_round": "12",
        "csv_weights": "1",
        "max_depth": "2",
        "nthread": "1",
    }
    env = make_job(tmp_path / "job", hp, {"train": ("text/csv", {"part-0": csv_text(y, w, x)})})
    ALGORITHM.train(env)
    weighted = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=y, weight=w), 12
    )
    unweighted = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=y), 12
    )
    got = parse_csv_response(
        ALGORITHM.load(env.model_dir).invoke(csv_text(x).encode(), "text/csv", "text/csv")[0]
    )
    np.testing.assert_array_equal(got[:, 0].astype(np.float32), weighted.predict(xgb.DMatrix(x)))
    assert not np.array_equal(got[:, 0].astype(np.float32), unweighted.predict(xgb.DMatrix(x)))


@pytest.mark.integration
def test_multi_softprob_answers_one_row_of_class_probabilities_per_record(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = (np.digitize(x[:, 0] + 0.3 * x[:, 1], [-0.5, 0.5])).astype(np.float32)
    hp = {
        "objective": "multi:softprob",
        "num_class": "3",
        "num_round": "10",
        "eval_metric": "mlogloss,accuracy",
        "nthread": "1",
    }
    env = make_job(
        tmp_path / "job",
        hp,
        {
            "train": ("text/csv", {"a.csv": csv_text(y[:500], x[:500])}),
            "validation": ("text/csv", {"a.csv": csv_text(y[500:], x[500:])}),
        },
    )
    ALGORITHM.train(env)
    metrics = metrics_of(env)
    assert {"validation:mlogloss", "validation:accuracy", "train:accuracy"} <= set(metrics)
    assert metrics["validation:accuracy"] > 0.7
    predictor = ALGORITHM.load(env.model_dir)
    body, _ = predictor.invoke(csv_text(x[:7]).encode(), "text/csv", "text/csv")
    rows = parse_csv_response(body)
    assert rows.shape == (7, 3)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
    scores = json.loads(predictor.invoke(csv_text(x[:2]).encode(), "text/csv", "application/json")[0])
    assert [len(p["score"]) for p in scores["predictions"]] == [3, 3]


# ------------------------------------------------------------------------------------------ refusals


def _tiny_model(tmp_path: Path):
    x, y = binary_data(n=100, d=3)
    env = make_job(
        tmp_path / "job",
        {"objective": "binary:logistic", "num_round": "3", "nthread": "1"},
        {"train": ("text/csv", {"a": csv_text(y, x)})},
    )
    ALGORITHM.train(env)
    return ALGORITHM.load(env.model_dir)


@pytest.mark.integration
def test_bad_requests_are_refused_clearly(tmp_path: Path) -> None:
    predictor = _tiny_model(tmp_path)
    with pytest.raises(UnsupportedContentType) as info:
        predictor.invoke(b"1,2,3\n", "application/octet-stream", "text/csv")
    assert info.value.status == 415 and "text/csv" in str(info.value)
    with pytest.raises(UnsupportedContentType) as info:
        predictor.invoke(b"1,2,3\n", "text/csv", "image/png")
    assert info.value.status == 406
    with pytest.raises(BadRequest, match="3 feature columns"):
        predictor.invoke(b"0,1,2,3\n", "text/csv", "text/csv")  # a label column is not expected
    with pytest.raises(BadRequest, match="not numeric CSV"):
        predictor.invoke(b"1,2,3\n1,x,3\n", "text/csv", "text/csv")
    with pytest.raises(BadRequest, match="beyond the model"):
        predictor.invoke(b"0 1:1 7:2\n", "text/libsvm", "text/csv")
    with pytest.raises(BadRequest, match="empty"):
        predictor.invoke(b"", "text/csv", "text/csv")


@pytest.mark.parametrize(
    "channels, message",
    [
        ({"validation": ("text/csv", {"a": "1,2\n"})}, "'train' is required"),
        ({"train": ("text/csv", {"a": "1,2,3\n0,abc,4\n"})}, "not numeric CSV"),
        ({"train": ("text/csv", {"a": "1,2,3\n0,1\n"})}, "Expected 3 columns"),
        ({"train": ("image/jpeg", {"a": "1,2\n"})}, "image/jpeg"),
        ({"train": ("text/libsvm", {"a": "1 0:2.5\n"})}, "1-based"),
        ({"train": ("text/libsvm", {"a": "1 1:2 x\n"})}, "not libsvm"),
        ({"train": ("text/csv", {"_SUCCESS": ""})}, "no data files"),
        ({"train": ("text/csv", {"a": "1\n0\n"})}, "at least one feature"),
        ({"train": ("text/csv", {"a": "2,1,2\n0,3,4\n"})}, "label must be in"),  # not a binary label
        ({"train": ("text/csv", {"a": "1,2\n"}), "test": ("text/csv", {"a": "1,2\n"})}, "unknown channel"),
    ],
)
def test_bad_channels_raise_channel_error(tmp_path: Path, channels: dict, message: str) -> None:
    env = make_job(tmp_path / "job", {"num_round": "2", "objective": "binary:logistic"}, channels)
    with pytest.raises(ChannelError, match=message):
        ALGORITHM.train(env)
