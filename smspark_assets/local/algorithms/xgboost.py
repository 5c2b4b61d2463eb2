"""The SageMaker XGBoost container (``sagemaker-xgboost:1.7-1``, algorithm mode) on the xgboost library.

Training (``ALGORITHM.train(env)``):

* channels ``train`` (required) and ``validation`` (optional; enables early stopping and ``validation:*``
  metrics); content types ``text/libsvm`` (the container's default), ``text/csv`` (label first, no header;
  ``csv_weights=1``: the second column is the instance weight), ``application/x-parquet`` (first column the
  label) and ``application/x-recordio-protobuf`` (label under the record's label key ``values``). The libsvm
  convention (1-based indices, the same for serving; ``qid:<n>`` for ranking) is documented in :mod:`.data`.
* every objective the container allows. ``survival:aft`` takes each row's label as an observed (uncensored)
  survival time (lower bound = upper bound = label): these channel formats carry no censoring interval.
* hyperparameters as the container names them (the contract: :mod:`smspark_assets.sagemaker.algorithms.xgboost`);
  only those the user set are handed to ``xgboost.train``, so the booster equals the library's for the same
  parameters and data.
* every boosting round is logged as the container logs it (``[3]#011train-auc:0.91#011validation-auc:0.88``)
  and the final values (at the best iteration when early stopping fired) become ``train:<metric>`` /
  ``validation:<metric>`` metrics. Without ``eval_metric``, a binary classifier reports ``auc``, ``error`` and
  ``logloss`` (xgboost's default, ``logloss``, last: early stopping watches the last metric, so it behaves as
  in the library). The metrics the container computes from predictions (``accuracy``, ``f1``, ``r2``,
  ``mse``, ...) are computed once, on the final model, with scikit-learn; early stopping uses the last
  xgboost-native metric (or the native ``_tuning_objective_metric``).
* the model is ``<model_dir>/xgboost-model``, written with ``Booster.save_raw("ubj")`` -- the UBJSON form
  ``Booster.save_model`` writes for a name without an extension (the 1.7 container wrote xgboost's older
  binary format, which xgboost >= 3 no longer writes; UBJSON loads in any xgboost >= 1.6). It keeps the
  ``best_iteration`` attribute, which serving uses.

Serving: :class:`.xgboost_serving.XGBoostPredictor`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

# Why: the local stack shares a few cores between Spark, model servers and training jobs, and OpenMP's default
# busy-waiting makes xgboost 10-30x slower when cores are oversubscribed (measured on 2 cores). Only effective
# before libgomp loads, i.e. before the first ``import xgboost`` of the process (true in the workers).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402

from smspark_assets.local.algorithms.base import ChannelError, HyperparameterError, TrainingEnvironment
from smspark_assets.local.algorithms.data import (
    Dataset,
    normalize_content_type,
    read_csv_channel,
    read_libsvm_channel,
)
from smspark_assets.local.algorithms.xgboost_serving import MODEL_FILE, XGBoostPredictor
from smspark_assets.sagemaker.algorithms.xgboost import (
    CONTAINER_METRICS,
    CONTRACT,
    DEFAULT_CONTENT_TYPE,
    NOT_PASSED_TO_XGBOOST,
    TRAINING_CONTENT_TYPES,
    XGBOOST_HYPERPARAMETERS,
    default_eval_metrics,
    validate_xgboost_hyperparameters,
)

__all__ = [
    "ALGORITHM",
    "XGBoostAlgorithm",
    "XGBOOST_HYPERPARAMETERS",
    "validate_xgboost_hyperparameters",
    "xgboost_params",
    "read_channel",
    "MODEL_FILE",
    "TRAINING_CONTENT_TYPES",
]



def xgboost_params(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params`` for ``xgboost.train`` from validated hyperparameters: only what the user set, mapped
    from the container's forms (``silent``, ``gpu_hist``, list-valued ``updater``) to xgboost's."""
    params: dict[str, Any] = {}
    for name in hyperparameters.get("_given", []):
        value = hyperparameters[name]
        if name in NOT_PASSED_TO_XGBOOST or value is None:
            continue
        if name == "updater":
            value = ",".join(value)
        elif name == "tree_method" and value == "gpu_hist":
            value = "hist"  # the local engine is CPU-only; same algorithm on the CPU
        params[name] = value
    if hyperparameters.get("silent") == 1 and "verbosity" not in params:
        params["verbosity"] = 0
    params.setdefault("objective", hyperparameters.get("objective", "reg:squarederror"))
    return params


def _eval_metrics(hyperparameters: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(metrics xgboost evaluates -- the last one drives early stopping --, metrics computed afterwards)."""
    requested = list(hyperparameters.get("eval_metric") or [])
    native = [m for m in requested if m not in CONTAINER_METRICS]
    computed = [m for m in requested if m in CONTAINER_METRICS]
    if not requested:
        native = default_eval_metrics(hyperparameters["objective"])
    tuning = hyperparameters.get("_tuning_objective_metric")
    if tuning:
        metric = tuning.partition(":")[2]
        if metric in CONTAINER_METRICS:
            computed = computed if metric in computed else computed + [metric]
        else:  # the container early-stops on the tuning metric: make it the last one
            native = [m for m in native if m != metric] + [metric]
    return native, computed


def read_channel(env: TrainingEnvironment, channel: str, *, csv_weights: bool) -> Dataset:
    """Read one channel in its declared content type; :class:`ChannelError` saying what is allowed if not."""
    declared = env.content_type(channel, DEFAULT_CONTENT_TYPE)
    content_type = normalize_content_type(declared, DEFAULT_CONTENT_TYPE)
    if content_type is None:
        raise ChannelError(
            f"channel {channel!r} has content type {declared!r}; XGBoost accepts "
            f"{', '.join(TRAINING_CONTENT_TYPES)}"
        )
    folder = env.channel_dir(channel)
    if content_type == "text/csv":
        return read_csv_channel(folder, csv_weights=csv_weights, channel=channel)
    if content_type == "text/libsvm":
        return read_libsvm_channel(folder, channel=channel)
    if content_type == "application/x-parquet":
        from smspark_assets.local.algorithms.xgboost_parquet import read_parquet_channel

        return read_parquet_channel(folder, channel=channel)
    from smspark_assets.local.algorithms.xgboost_recordio import read_recordio_channel

    return read_recordio_channel(folder, channel=channel)


def _dmatrix(data: Dataset, num_features: int, channel: str, objective: str) -> xgb.DMatrix:
    features = data.features
    if features.shape[1] != num_features:
        if isinstance(features, np.ndarray):
            raise ChannelError(
                f"channel {channel!r} has {features.shape[1]} feature columns, the train channel "
                f"{num_features}; they must match"
            )
        import scipy.sparse as sp

        features = sp.csr_matrix(
            (features.data, features.indices, features.indptr), shape=(features.shape[0], num_features)
        )
    try:
        matrix = xgb.DMatrix(features, label=data.labels, weight=data.weights, qid=data.qid, missing=np.nan)
        if objective == "survival:aft":
            # The channel formats carry one label per row: take it as an observed (uncensored) survival time.
            matrix.set_float_info("label_lower_bound", data.labels)
            matrix.set_float_info("label_upper_bound", data.labels)
        return matrix
    except xgb.core.XGBoostError as exc:
        raise ChannelError(
            f"channel {channel!r}: xgboost refused the data: {_xgboost_message(exc)}"
        ) from None


def _xgboost_message(exc: Exception) -> str:
    """xgboost's first error line without its ``[12:00:00] /path/file.cu:71:`` prefix."""
    return (
        re.sub(r"^\[[\d:]+\] \S+: ", "", str(exc).strip().splitlines()[0]) if str(exc).strip() else repr(exc)
    )


class _ContainerLog(xgb.callback.TrainingCallback):
    """Print each round's metrics in the container's log format (tab as ``#011``, as CloudWatch shows it)."""

    def __init__(self, env: TrainingEnvironment) -> None:
        super().__init__()
        self.env = env

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        parts = [
            f"{channel}-{metric}:{values[-1]:.5f}"
            for channel, metrics in evals_log.items()
            for metric, values in metrics.items()
        ]
        self.env.log(f"[{epoch}]#011" + "#011".join(parts))
        return False


def _predicted_labels(objective: str, predictions: np.ndarray) -> np.ndarray:
    if objective == "multi:softprob":
        return predictions.argmax(axis=1)
    if objective == "binary:logistic":
        return (predictions > 0.5).astype(np.int64)
    if objective == "binary:logitraw":
        return (predictions > 0).astype(np.int64)
    return np.rint(predictions).astype(np.int64)


def _computed_metric(name: str, objective: str, labels: np.ndarray, predictions: np.ndarray) -> float:
    """The container's prediction-based metrics (its ``custom_metrics``), vectorized with scikit-learn."""
    from sklearn import metrics as skm

    if name == "mse":
        return float(np.mean((predictions - labels) ** 2))
    if name == "r2":
        return float(skm.r2_score(labels, predictions))
    predicted = _predicted_labels(objective, predictions)
    truth = labels.astype(np.int64)
    if name == "accuracy":
        return float(np.mean(predicted == truth))
    if name == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(truth, predicted))
    kind, _, average = name.partition("_")
    if not average or average == "binary":
        average = "binary" if objective.startswith("binary:") else "macro"
    scorer = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[kind]
    return float(scorer(truth, predicted, average=average, zero_division=0))


class XGBoostAlgorithm:
    """The local implementation of the SageMaker XGBoost container (see the module docstring)."""

    name = CONTRACT.name
    contract = CONTRACT
    hyperparameters = XGBOOST_HYPERPARAMETERS

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        return validate_xgboost_hyperparameters(hyperparameters)

    def train(self, env: TrainingEnvironment) -> None:
        hp = self.validate_hyperparameters(env.hyperparameters)
        if hp["_kfold"] is not None or hp["_num_cv_round"] is not None:
            raise HyperparameterError(
                "_kfold/_num_cv_round (the container's cross-validation mode) are not "
                "supported by the local engine; remove them"
            )
        if not env.has_channel("train"):
            raise ChannelError("channel 'train' is required (XGBoost channels: train, validation)")
        unknown = sorted(set(env.input_data_config) - set(CONTRACT.channels))
        if unknown:
            raise ChannelError(
                f"unknown channel(s) {', '.join(unknown)}; XGBoost channels: train, validation"
            )
        started = time.time()
        csv_weights = hp["csv_weights"] == 1
        train = read_channel(env, "train", csv_weights=csv_weights)
        validation = (
            read_channel(env, "validation", csv_weights=csv_weights)
            if env.has_channel("validation")
            else None
        )
        num_features = max(train.num_features, validation.num_features if validation else 0)
        dtrain = _dmatrix(train, num_features, "train", hp["objective"])
        evals = [(dtrain, "train")]
        dvalid = None
        if validation is not None:
            dvalid = _dmatrix(validation, num_features, "validation", hp["objective"])
            evals.append((dvalid, "validation"))
        env.log(
            f"Train matrix has {train.num_rows} rows and {num_features} columns"
            + (f"; validation matrix has {validation.num_rows} rows" if validation else "")
            + f" (read in {time.time() - started:.2f}s)"
        )

        params = xgboost_params(hp)
        native, computed = _eval_metrics(hp)
        # xgboost needs the variance power in the metric's name; the container reports "tweedie-nloglik".
        power = hp["tweedie_variance_power"] if "tweedie_variance_power" in hp["_given"] else 1.5
        xgb_name = {m: f"{m}@{power:g}" if m == "tweedie-nloglik" else m for m in native}
        reported = {v: k for k, v in xgb_name.items()}
        if native:
            params["eval_metric"] = [xgb_name[m] for m in native]
        early = hp["early_stopping_rounds"]
        if early is not None and dvalid is None:
            env.log("early_stopping_rounds is ignored: it needs a 'validation' channel")
            early = None
        history: dict[str, dict[str, list[float]]] = {}
        try:
            booster = xgb.train(
                params,
                dtrain,
                num_boost_round=hp["num_round"],
                evals=evals,
                early_stopping_rounds=early,
                evals_result=history,
                verbose_eval=False,
                callbacks=[_ContainerLog(env)],
            )
        except xgb.core.XGBoostError as exc:
            # Labels that do not suit the objective, a parameter xgboost itself refuses (max_bin=0): its first
            # line says what is wrong; both are the user's to fix, hence a client error.
            raise ChannelError(
                f"xgboost could not train with these hyperparameters and data: {_xgboost_message(exc)}"
            ) from None

        best = booster.attr("best_iteration")
        at = int(best) if early is not None and best is not None else None
        for channel, metrics in history.items():
            for metric, values in metrics.items():
                env.log_metric(
                    f"{channel}:{reported.get(metric, metric)}", values[at] if at is not None else values[-1]
                )
        if computed:
            iteration_range = (0, at + 1) if at is not None else (0, 0)
            for channel, dmatrix, data in (("train", dtrain, train), ("validation", dvalid, validation)):
                if dmatrix is None or data is None:
                    continue
                predictions = booster.predict(dmatrix, iteration_range=iteration_range)
                for metric in computed:
                    env.log_metric(
                        f"{channel}:{metric}",
                        _computed_metric(metric, hp["objective"], data.labels, predictions),
                    )
        if at is not None:
            env.log(f"Early stopping: best iteration {at} of {booster.num_boosted_rounds()} rounds")
        env.model_dir.mkdir(parents=True, exist_ok=True)
        (env.model_dir / MODEL_FILE).write_bytes(bytes(booster.save_raw(raw_format="ubj")))
        env.log(f"Saved {MODEL_FILE} ({booster.num_boosted_rounds()} rounds) in {time.time() - started:.2f}s")

    def load(self, model_dir: Path) -> XGBoostPredictor:
        return XGBoostPredictor.load(model_dir)


ALGORITHM = XGBoostAlgorithm()
