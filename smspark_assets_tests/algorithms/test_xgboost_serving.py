"""Serving details of the local XGBoost model: Accept negotiation, the container's selectable inference
content (SAGEMAKER_INFERENCE_OUTPUT), default Accept from the model's Environment, response bodies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from smspark_assets.local.algorithms.base import UnsupportedContentType
from smspark_assets.local.algorithms.xgboost_serving import XGBoostPredictor, load_booster


def _booster(objective: str, tmp: Path, **extra) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (
        np.digitize(x[:, 0], [-0.4, 0.4]).astype(np.float32)
        if objective.startswith("multi:")
        else (x[:, 0] > 0).astype(np.float32)
    )
    booster = xgb.train(
        {"objective": objective, "max_depth": 2, "nthread": 1, **extra}, xgb.DMatrix(x, label=y), 5
    )
    # Saved and loaded exactly as a model server would find it in model.tar.gz.
    (tmp / "xgboost-model").write_bytes(bytes(booster.save_raw(raw_format="ubj")))
    return load_booster(tmp), x


def _csv(x: np.ndarray) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in x).encode()


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[xgb.Booster, np.ndarray]:
    return _booster("binary:logistic", tmp_path_factory.mktemp("binary"))


@pytest.fixture(scope="module")
def softprob(tmp_path_factory: pytest.TempPathFactory) -> tuple[xgb.Booster, np.ndarray]:
    return _booster("multi:softprob", tmp_path_factory.mktemp("softprob"), num_class=3)


def test_accept_negotiation_and_default_accept(binary) -> None:
    booster, x = binary
    predictor = XGBoostPredictor(booster, environment={})
    assert predictor.invoke(_csv(x[:2]), "text/csv", None)[1] == "text/csv"
    assert predictor.invoke(_csv(x[:2]), "text/csv", "*/*")[1] == "text/csv"
    assert (
        predictor.invoke(_csv(x[:2]), "text/csv", "image/png, application/json;q=0.9")[1]
        == "application/json"
    )
    with pytest.raises(UnsupportedContentType) as info:
        predictor.invoke(_csv(x[:2]), "text/csv", "image/png, text/html")
    assert info.value.status == 406
    json_default = XGBoostPredictor(
        booster, environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}
    )
    body, content_type = json_default.invoke(_csv(x[:2]), "text/csv", None)
    assert content_type == "application/json" and len(json.loads(body)["predictions"]) == 2
    with pytest.raises(ValueError, match="SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"):
        XGBoostPredictor(booster, environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "image/png"})


def test_selectable_content_for_a_binary_classifier(binary) -> None:
    booster, x = binary
    p = booster.inplace_predict(x[:4])
    predictor = XGBoostPredictor(
        booster, environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, probabilities,labels"}
    )
    records = json.loads(predictor.invoke(_csv(x[:4]), "text/csv", "application/json")[0])["predictions"]
    assert [r["predicted_label"] for r in records] == (p > 0.5).astype(int).tolist()
    assert [r["labels"] for r in records] == [[0, 1]] * 4
    np.testing.assert_allclose([r["probabilities"] for r in records], np.column_stack([1 - p, p]), rtol=1e-6)
    lines = predictor.invoke(_csv(x[:4]), "text/csv", "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line) for line in lines] == records
    import csv
    import io

    text = predictor.invoke(_csv(x[:4]), "text/csv", "text/csv")[0].decode()
    rows = list(csv.reader(io.StringIO(text)))  # list values are quoted, as Python's csv writer quotes them
    assert len(rows) == 4 and all(len(row) == 3 for row in rows)
    assert [int(row[0]) for row in rows] == [r["predicted_label"] for r in records]
    np.testing.assert_allclose([json.loads(row[1]) for row in rows], [r["probabilities"] for r in records])
    assert [json.loads(row[2]) for row in rows] == [[0, 1]] * 4


def test_selectable_content_multiclass_and_recordio(softprob) -> None:
    from smspark_assets.sagemaker import recordio

    booster, x = softprob
    p = booster.inplace_predict(x[:5])
    predictor = XGBoostPredictor(
        booster, environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}
    )
    records = json.loads(predictor.invoke(_csv(x[:5]), "text/csv", "application/json")[0])["predictions"]
    assert [r["predicted_label"] for r in records] == p.argmax(axis=1).tolist()
    assert [r["probability"] for r in records] == pytest.approx(p.max(axis=1).tolist(), rel=1e-6)
    body, content_type = predictor.invoke(_csv(x[:5]), "text/csv", "application/x-recordio-protobuf")
    decoded = recordio.decode(body)
    assert content_type == "application/x-recordio-protobuf" and decoded.n_records == 5
    np.testing.assert_array_equal(decoded.label["predicted_label"].scalars(), p.argmax(axis=1))
    np.testing.assert_array_equal(decoded.label["probability"].scalars().astype(np.float32), p.max(axis=1))


def test_selectable_keys_that_do_not_apply_are_nan_and_unknown_keys_are_refused(binary) -> None:
    booster, x = binary
    predictor = XGBoostPredictor(
        booster, environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}
    )
    assert predictor.selected_keys == ["predicted_label", "probability"]
    with pytest.raises(ValueError, match="allowed: predicted_label"):
        XGBoostPredictor(booster, environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_labels"})
    # A regression model asked for class probabilities answers NaN for them, as the container does.
    rng = np.random.default_rng(1)
    xr = rng.normal(size=(50, 3)).astype(np.float32)
    regressor = xgb.train({"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(xr, label=xr[:, 0]), 3)
    answer = XGBoostPredictor(
        regressor, environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_score,probability"}
    )
    record = json.loads(answer.invoke(_csv(xr[:1]), "text/csv", "application/jsonlines")[0])
    assert record["predicted_score"] == pytest.approx(float(regressor.inplace_predict(xr[:1])[0]), rel=1e-6)
    assert np.isnan(record["probability"])


def test_multi_softprob_default_bodies(softprob) -> None:
    booster, x = softprob
    predictor = XGBoostPredictor(booster, environment={})
    p = booster.inplace_predict(x[:3])
    rows = predictor.invoke(_csv(x[:3]), "text/csv", "text/csv")[0].decode().splitlines()
    np.testing.assert_array_equal(
        np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32), p
    )
    lines = predictor.invoke(_csv(x[:3]), "text/csv", "application/jsonlines")[0].decode().splitlines()
    np.testing.assert_array_equal(
        np.array([json.loads(line)["score"] for line in lines], dtype=np.float32), p
    )
