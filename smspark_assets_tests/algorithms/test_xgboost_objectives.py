"""Every objective the XGBoost container allows, Parquet input, and the container's computed metrics:
the local engine's predictions equal the xgboost library's for the same parameters and data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import xgboost as xgb

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import TrainingEnvironment
from smspark_assets.sagemaker.algorithms.xgboost import OBJECTIVES

ALGORITHM = get_algorithm("xgboost")
RANKING = ("rank:pairwise", "rank:ndcg", "rank:map")


@pytest.fixture(autouse=True)
def _temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path / "root"))


def features(n: int = 400, d: int = 5, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def labels_for(objective: str, x: np.ndarray) -> np.ndarray:
    signal = x[:, 0] + 0.5 * x[:, 1]
    if objective.startswith("binary:") or objective in ("reg:logistic", "rank:map"):
        return (signal > 0).astype(np.float32)
    if objective.startswith("multi:"):
        return np.digitize(signal, [-0.5, 0.5]).astype(np.float32)
    if objective in ("count:poisson", "rank:pairwise", "rank:ndcg"):
        return np.digitize(signal, [-0.5, 0.5, 1.0]).astype(np.float32)
    if objective in ("reg:gamma", "reg:tweedie", "reg:squaredlogerror", "survival:aft"):
        return np.exp(signal).astype(np.float32)
    if objective == "survival:cox":  # negative = right-censored
        return (np.where(x[:, 2] > 0, 1.0, -1.0) * np.exp(signal)).astype(np.float32)
    return (2 * signal + 0.1 * x[:, 2]).astype(np.float32)


def extra_params(objective: str) -> dict[str, str]:
    if objective.startswith("multi:"):
        return {"num_class": "3"}
    if objective == "reg:quantileerror":
        return {"quantile_alpha": "0.3"}
    return {}


def csv_text(*columns: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.column_stack(columns))


def libsvm_text(x: np.ndarray, y: np.ndarray, qid: np.ndarray) -> str:
    return "".join(
        f"{float(y[i])!r} qid:{int(qid[i])} "
        + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row))
        + "\n"
        for i, row in enumerate(x)
    )


def make_job(
    root: Path, hyperparameters: dict[str, str], channels: dict[str, tuple[str, dict[str, bytes]]]
) -> TrainingEnvironment:
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({name: {"ContentType": ct} for name, (ct, _) in channels.items()})
    )
    for name, (_, files) in channels.items():
        (root / "input" / "data" / name).mkdir(parents=True)
        for file_name, data in files.items():
            (root / "input" / "data" / name / file_name).write_bytes(data)
    return TrainingEnvironment.from_job_dir(root)


def direct_dmatrix(objective: str, x, y: np.ndarray, qid: np.ndarray | None = None) -> xgb.DMatrix:
    matrix = xgb.DMatrix(x, label=y, qid=qid)
    if objective == "survival:aft":
        matrix.set_float_info("label_lower_bound", y)
        matrix.set_float_info("label_upper_bound", y)
    return matrix


def csv_predictions(body: bytes) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in body.decode().splitlines()])


@pytest.mark.integration
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_predicts_exactly_as_the_library(tmp_path: Path, objective: str) -> None:
    x = features()
    y = labels_for(objective, x)
    # nthread=1 on both sides: multi-threaded OpenMP crawls when the test machine's cores are oversubscribed.
    hp = {
        "objective": objective,
        "num_round": "8",
        "max_depth": "3",
        "eta": "0.4",
        "seed": "3",
        "nthread": "1",
        **extra_params(objective),
    }
    direct_params = {
        "objective": objective,
        "max_depth": 3,
        "eta": 0.4,
        "seed": 3,
        "nthread": 1,
        **{k: float(v) if "." in v else int(v) for k, v in extra_params(objective).items()},
    }
    if objective in RANKING:
        qid = np.repeat(np.arange(len(x) // 20), 20)
        env = make_job(
            tmp_path / "job", hp, {"train": ("text/libsvm", {"part-0": libsvm_text(x, y, qid).encode()})}
        )
        reference = xgb.train(direct_params, direct_dmatrix(objective, sp.csr_matrix(x), y, qid), 8)
    else:
        env = make_job(
            tmp_path / "job",
            hp,
            {
                "train": ("text/csv", {"part-0": csv_text(y[:300], x[:300]).encode()}),
                "validation": ("text/csv", {"part-0": csv_text(y[300:], x[300:]).encode()}),
            },
        )
        reference = xgb.train(direct_params, direct_dmatrix(objective, x[:300], y[:300]), 8)
    ALGORITHM.train(env)
    metrics = json.loads((env.output_dir / "metrics.json").read_text())
    assert metrics and all(m["MetricName"].startswith(("train:", "validation:")) for m in metrics)

    expected = reference.predict(xgb.DMatrix(x))
    predictor = ALGORITHM.load(env.model_dir)
    got = csv_predictions(predictor.invoke(csv_text(x).encode(), "text/csv", "text/csv")[0])
    assert got.shape == (len(x), 3 if objective == "multi:softprob" else 1)
    np.testing.assert_array_equal(got.reshape(expected.shape).astype(np.float32), expected)
    scores = json.loads(predictor.invoke(csv_text(x[:4]).encode(), "text/csv", "application/json")[0])[
        "predictions"
    ]
    assert len(scores) == 4
    np.testing.assert_allclose(np.array([s["score"] for s in scores], dtype=np.float32), expected[:4])


@pytest.mark.integration
def test_parquet_channels_scalar_columns_and_vector_column(tmp_path: Path) -> None:
    x = features(n=300, d=4, seed=5)
    y = labels_for("binary:logistic", x)
    scalar = pa.table({"label": y, **{f"f{i}": x[:, i] for i in range(4)}})
    vector = pa.table({"label": y.astype(np.float64), "features": pa.array(list(x.astype(np.float64)))})
    hp = {"objective": "binary:logistic", "num_round": "6", "max_depth": "3", "nthread": "1"}
    reference = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 6
    )
    expected = reference.predict(xgb.DMatrix(x))
    for name, table in (("scalar", scalar), ("vector", vector)):
        folder = tmp_path / name
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(0, 150), sink)
        first = sink.getvalue().to_pybytes()
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(150), sink)
        env = make_job(
            folder,
            hp,
            {
                "train": (
                    "application/x-parquet",
                    {
                        "part-00000.parquet": first,
                        "part-00001.parquet": sink.getvalue().to_pybytes(),
                        "_SUCCESS": b"",
                    },
                )
            },
        )
        ALGORITHM.train(env)
        got = csv_predictions(
            ALGORITHM.load(env.model_dir).invoke(csv_text(x).encode(), "text/csv", "text/csv")[0]
        )
        np.testing.assert_array_equal(got[:, 0].astype(np.float32), expected)


@pytest.mark.integration
def test_container_computed_metrics_match_scikit_learn(tmp_path: Path) -> None:
    from sklearn import metrics as skm

    x = features(n=500, seed=8)
    y = labels_for("binary:logistic", x)
    y[::7] = 1 - y[::7]  # label noise, so the figures are not all 1.0
    hp = {
        "objective": "binary:logistic",
        "num_round": "5",
        "max_depth": "2",
        "nthread": "1",
        "eval_metric": "accuracy,f1,precision,recall,balanced_accuracy,auc",
    }
    env = make_job(
        tmp_path / "job",
        hp,
        {
            "train": ("text/csv", {"a": csv_text(y[:400], x[:400]).encode()}),
            "validation": ("text/csv", {"a": csv_text(y[400:], x[400:]).encode()}),
        },
    )
    ALGORITHM.train(env)
    got = {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}
    reference = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(x[:400], label=y[:400]), 5
    )
    probability = reference.predict(xgb.DMatrix(x[400:]))
    predicted = (probability > 0.5).astype(int)
    truth = y[400:].astype(int)
    assert got["validation:accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert got["validation:f1"] == pytest.approx(skm.f1_score(truth, predicted))
    assert got["validation:precision"] == pytest.approx(skm.precision_score(truth, predicted))
    assert got["validation:recall"] == pytest.approx(skm.recall_score(truth, predicted))
    assert got["validation:balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(truth, predicted))
    assert got["validation:auc"] == pytest.approx(skm.roc_auc_score(truth, probability), abs=1e-6)


@pytest.mark.integration
def test_recordio_protobuf_channels_requests_and_responses(tmp_path: Path) -> None:
    from smspark_assets.sagemaker import recordio

    x = features(n=300, d=4, seed=9)
    y = labels_for("binary:logistic", x)
    sparse_x = x.copy()
    sparse_x[np.abs(sparse_x) < 0.6] = 0.0
    csr = sp.csr_matrix(sparse_x)
    hp = {"objective": "binary:logistic", "num_round": "6", "max_depth": "3", "nthread": "1"}
    for name, stream, direct in (
        ("dense", recordio.encode_dense(x, y), x),
        ("sparse", recordio.encode_csr(csr.data, csr.indices, csr.indptr, 4, y), csr),
    ):
        env = make_job(
            tmp_path / name, hp, {"train": ("application/x-recordio-protobuf", {"part-0": stream})}
        )
        ALGORITHM.train(env)
        reference = xgb.train(
            {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, xgb.DMatrix(direct, label=y), 6
        )
        expected = reference.predict(xgb.DMatrix(direct))
        predictor = ALGORITHM.load(env.model_dir)
        request = (
            recordio.encode_dense(x)
            if name == "dense"
            else recordio.encode_csr(csr.data, csr.indices, csr.indptr, 4)
        )
        body, content_type = predictor.invoke(
            request, "application/x-recordio-protobuf", "application/x-recordio-protobuf"
        )
        assert content_type == "application/x-recordio-protobuf"
        decoded = recordio.decode(body)
        assert decoded.n_records == len(x)
        np.testing.assert_array_equal(decoded.label["score"].scalars().astype(np.float32), expected)
        as_csv = csv_predictions(predictor.invoke(request, "application/x-recordio-protobuf", "text/csv")[0])
        np.testing.assert_array_equal(as_csv[:, 0].astype(np.float32), expected)


@pytest.mark.integration
def test_recordio_multi_output_scores_are_vectors(tmp_path: Path) -> None:
    from smspark_assets.sagemaker import recordio

    x = features(n=200, d=3, seed=4)
    y = labels_for("multi:softprob", x)
    hp = {"objective": "multi:softprob", "num_class": "3", "num_round": "4", "nthread": "1"}
    env = make_job(tmp_path / "job", hp, {"train": ("text/csv", {"a": csv_text(y, x).encode()})})
    ALGORITHM.train(env)
    body, _ = ALGORITHM.load(env.model_dir).invoke(
        recordio.encode_dense(x[:5]), "application/x-recordio-protobuf", "application/x-recordio-protobuf"
    )
    scores = recordio.decode(body).label["score"]
    assert scores.n_records == 5 and scores.to_dense().shape == (5, 3)
    np.testing.assert_allclose(scores.to_dense().sum(axis=1), 1.0, rtol=1e-5)
