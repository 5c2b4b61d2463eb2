"""Every XGBoost hyperparameter refusal (derived from the spec) and every metric name it reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import HyperparameterError, TrainingEnvironment
from smspark_assets.sagemaker.algorithms.xgboost import (
    CONTAINER_METRICS,
    NATIVE_METRICS,
    XGBOOST_HYPERPARAMETERS,
    validate_xgboost_hyperparameters,
)

ALGORITHM = get_algorithm("xgboost")


def _out_of_range_values() -> list[tuple[str, str]]:
    """For every bounded numeric hyperparameter, values just outside each bound; else an invalid choice."""
    cases: list[tuple[str, str]] = []
    for param in XGBOOST_HYPERPARAMETERS.parameters:
        interval = param.interval
        if param.kind in ("int", "float") and interval is not None:
            step = 1 if param.kind == "int" else 0.5
            if interval.low is not None:
                cases.append(
                    (param.name, repr(interval.low if not interval.low_inclusive else interval.low - step))
                )
            if interval.high is not None:
                cases.append(
                    (param.name, repr(interval.high if not interval.high_inclusive else interval.high + step))
                )
        if param.kind == "int":
            cases.append((param.name, "1.5"))
        if param.kind in ("int", "float"):
            cases.append((param.name, "abc"))
        if param.kind == "str" and param.choices:
            cases.append((param.name, "no-such-choice"))
        if param.kind == "bool":
            cases.append((param.name, "maybe"))
    return cases


@pytest.mark.parametrize("name, value", _out_of_range_values())
def test_every_hyperparameter_refuses_what_is_outside_its_range(name: str, value: str) -> None:
    raw = {"num_round": "5", name: value}
    if name == "num_round":
        raw = {"num_round": value}
    with pytest.raises(HyperparameterError) as info:
        validate_xgboost_hyperparameters(raw)
    message = str(info.value)
    assert name in message and "allowed" in message


def test_every_hyperparameter_accepts_its_default() -> None:
    raw = {
        p.name: str(p.default)
        for p in XGBOOST_HYPERPARAMETERS.parameters
        if p.default is not None and not isinstance(p.default, bool)
    }
    raw["num_round"] = "5"
    parsed = validate_xgboost_hyperparameters(raw)
    assert parsed["eta"] == 0.3 and parsed["max_depth"] == 6 and parsed["objective"] == "reg:squarederror"


def _job(
    root: Path, hp: dict[str, str], train: str, validation: str, content_type: str = "text/csv"
) -> TrainingEnvironment:
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hp))
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": content_type}, "validation": {"ContentType": content_type}})
    )
    for name, text in (("train", train), ("validation", validation)):
        (root / "input" / "data" / name).mkdir(parents=True)
        (root / "input" / "data" / name / "part-0").write_text(text)
    return TrainingEnvironment.from_job_dir(root)


def _csv(y: np.ndarray, x: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.column_stack([y, x]))


def _libsvm(y: np.ndarray, x: np.ndarray, group: int) -> str:
    return "".join(
        f"{float(y[i])!r} qid:{i // group} "
        + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(r))
        + "\n"
        for i, r in enumerate(x)
    )


_GROUPS = [
    (
        "binary:logistic",
        "auc,aucpr,error,error@0.3,logloss,accuracy,balanced_accuracy,f1,f1_binary,f1_macro,"
        "precision,precision_macro,precision_micro,recall,recall_macro,recall_micro",
    ),
    ("multi:softprob", "merror,mlogloss,accuracy,f1_macro,precision_micro,recall_macro"),
    ("reg:squarederror", "rmse,mae,mape,rmsle,mphe,mse,r2"),
    ("count:poisson", "poisson-nloglik"),
    ("reg:gamma", "gamma-deviance,gamma-nloglik"),
    ("reg:tweedie", "tweedie-nloglik,tweedie-nloglik@1.2"),
    ("reg:quantileerror", "quantile"),
    ("survival:cox", "cox-nloglik"),
    ("survival:aft", "aft-nloglik,interval-regression-accuracy"),
    ("rank:pairwise", "ndcg,map,ndcg@3,map@2,ndcg-,map@2-"),
]


@pytest.mark.integration
@pytest.mark.parametrize("objective, metrics", _GROUPS)
def test_every_metric_name_is_reported_for_train_and_validation(
    tmp_path: Path, objective: str, metrics: str
) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(240, 3)).astype(np.float32)
    signal = x[:, 0] + 0.3 * x[:, 1]
    y = {
        "binary:logistic": (signal > 0).astype(float),
        "multi:softprob": np.digitize(signal, [-0.4, 0.4]),
        "count:poisson": np.digitize(signal, [-0.5, 0.5, 1.0]),
        "rank:pairwise": (signal > 0).astype(float),
        "survival:cox": np.where(x[:, 2] > 0, 1.0, -1.0) * np.exp(signal),
    }.get(objective, np.exp(signal) if objective in ("reg:gamma", "reg:tweedie", "survival:aft") else signal)
    hp = {"objective": objective, "num_round": "3", "eval_metric": metrics, "nthread": "1"}
    if objective == "multi:softprob":
        hp["num_class"] = "3"
    if objective == "reg:quantileerror":
        hp["quantile_alpha"] = "0.5"
    if objective == "rank:pairwise":
        env = _job(tmp_path, hp, _libsvm(y[:160], x[:160], 20), _libsvm(y[160:], x[160:], 20), "text/libsvm")
    else:
        env = _job(tmp_path, hp, _csv(y[:160], x[:160]), _csv(y[160:], x[160:]))
    ALGORITHM.train(env)
    reported = {m["MetricName"] for m in json.loads((env.output_dir / "metrics.json").read_text())}
    expected = {f"{channel}:{metric}" for channel in ("train", "validation") for metric in metrics.split(",")}
    assert expected <= reported, sorted(expected - reported)


def test_metric_groups_cover_every_supported_name() -> None:
    covered = {m.split("@")[0].rstrip("-") for _, metrics in _GROUPS for m in metrics.split(",")}
    assert set(NATIVE_METRICS) | set(CONTAINER_METRICS) <= covered
