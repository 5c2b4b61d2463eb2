"""The demo model of every built-in algorithm besides XGBoost: what it learns, how, and the gate it must pass.

Each :class:`DemoModel` names the algorithm (its image comes from :mod:`smspark_assets.sagemaker.images`),
the channels it trains on (written by the ``algorithm_channels`` Spark job), its default
hyperparameters (``feature_dim`` is filled in from the data), the endpoint that serves it, and its
quality gate: a :class:`Gate` reads the job's ``FinalMetricDataList`` (and the baselines the channel job
measured on the same data) and decides whether the model may be served.

Every threshold is relative to a baseline that a broken model cannot beat, so the gates stay
meaningful whatever the size of the demo data. The defaults are set well below what the demo models
reach (measured figures in the comments) and well above what a model that learned nothing reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

GROUP = "algorithms"


@dataclass(frozen=True)
class GateOutcome:
    """What a gate decided, with the figures shown on the asset check."""

    passed: bool
    metric: str
    value: float | None
    threshold: float
    comparison: str  # ">=" or "<="
    details: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.4f}"
        verdict = "passes" if self.passed else "fails"
        return f"{self.metric} = {shown} {verdict} the gate ({self.comparison} {self.threshold:.4f})"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "threshold": self.threshold,
                "comparison": self.comparison, "passed": self.passed, **self.details}


# A gate gets (FinalMetricDataList as a dict, the model's channel handle, the configured parameter).
GateFn = Callable[[Mapping[str, float], Mapping[str, Any], float], GateOutcome]


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _at_least(metric: str, value: float | None, threshold: float, **details: float) -> GateOutcome:
    return GateOutcome(value is not None and value >= threshold, metric, value, threshold, ">=", details)


def _at_most(metric: str, value: float | None, threshold: float, **details: float) -> GateOutcome:
    return GateOutcome(value is not None and value <= threshold, metric, value, threshold, "<=", details)


def kmeans_gate(metrics: Mapping[str, float], data: Mapping[str, Any], max_ratio: float) -> GateOutcome:
    """``test:msd`` at most ``max_ratio`` times the test rows' one-cluster msd (their total variance).

    One cluster at the mean is the best a clustering that found no structure can do; k=5 segments of the
    demo applicants reach about 0.75 of it, centres placed at random do worse than 1.
    """
    baseline = float(data["test_one_cluster_msd"])
    return _at_most("test:msd", _finite(metrics.get("test:msd")), max_ratio * baseline,
                    one_cluster_msd=baseline)


def auc_gate(metrics: Mapping[str, float], data: Mapping[str, Any], minimum: float) -> GateOutcome:
    """``test:roc_auc_score`` at least ``minimum``: 0.5 is a coin, the hidden model's ceiling is about 0.8,
    and the demo Linear Learner reaches about 0.78."""
    return _at_least("test:roc_auc_score", _finite(metrics.get("test:roc_auc_score")), minimum,
                     test_positive_rate=float(data.get("test_positive_rate", float("nan"))))


def r2_gate(metrics: Mapping[str, float], data: Mapping[str, Any], minimum_r2: float) -> GateOutcome:
    """R² of the test rows, from ``test:mse`` and the test labels' variance, at least ``minimum_r2``.

    A constant prediction has R² <= 0; the rate is priced from the credit score and term, so the
    demo regressor explains about 0.7 of its variance (test RMSE about 1.6 points).
    """
    variance = float(data["test_label_variance"])
    mse = _finite(metrics.get("test:mse"))
    r2 = None if mse is None or variance <= 0 else 1.0 - mse / variance
    return _at_least("test:r2 (from test:mse)", r2, minimum_r2,
                     test_mse=mse if mse is not None else float("nan"), test_label_variance=variance)


def accuracy_gate(metrics: Mapping[str, float], data: Mapping[str, Any], margin: float) -> GateOutcome:
    """``test:multiclass_accuracy`` at least the majority class' share plus ``margin``.

    Always answering the commonest grade scores the majority share (about 0.35 here); grades are
    bands of a noisy rate, so the demo model reaches about 0.58.
    """
    majority = float(data["test_majority_share"])
    return _at_least("test:multiclass_accuracy", _finite(metrics.get("test:multiclass_accuracy")),
                     majority + margin, majority_share=majority)


def pca_gate(metrics: Mapping[str, float], data: Mapping[str, Any], minimum: float) -> GateOutcome:
    """Share of the train rows' total variance the components capture, at least ``minimum``.

    SageMaker's PCA reports no metric, so the model asset computes ``explained_variance_ratio`` from the
    model file and passes it in ``metrics``. Five random directions of 14 standardized features capture
    about 5/14 = 0.36; the five leading components of the demo data capture about 0.55.
    """
    return _at_least("explained_variance_ratio", _finite(metrics.get("explained_variance_ratio")), minimum,
                     train_total_variance=float(data["train_total_variance"]))


def fm_gate(metrics: Mapping[str, float], data: Mapping[str, Any], fraction: float) -> GateOutcome:
    """``test:rmse`` at most ``floor + fraction * (bias_only - floor)``.

    ``floor`` is the noise of the generated ratings (no model beats it) and ``bias_only`` the RMSE of
    the true user and item biases alone, i.e. the best a linear model on one-hot users and items can
    do. The gate asks the factorization to recover most of the low-rank interaction the linear model
    cannot see: the demo FM reaches about floor * 1.15 (0.47 for a floor of 0.41 and 1.08 bias-only).
    """
    floor, bias_only = float(data["noise_floor_rmse"]), float(data["bias_only_rmse"])
    return _at_most("test:rmse", _finite(metrics.get("test:rmse")), floor + fraction * (bias_only - floor),
                    noise_floor_rmse=floor, bias_only_rmse=bias_only)


def lda_gate(metrics: Mapping[str, float], data: Mapping[str, Any], min_gain: float) -> GateOutcome:
    """``test:pwll`` at least the unigram model's per-word log-likelihood plus ``min_gain`` nats.

    One topic is a unigram model, so topics that learned nothing cannot beat it; the demo LDA gains
    about 0.7 nats per word over it (and matches the true model's likelihood).
    """
    unigram = float(data["unigram_pwll"])
    return _at_least("test:pwll", _finite(metrics.get("test:pwll")), unigram + min_gain, unigram_pwll=unigram,
                     true_model_pwll=float(data.get("true_pwll", float("nan"))))


@dataclass(frozen=True)
class DemoModel:
    """One demo model: algorithm, data, hyperparameters, gate and endpoint."""

    key: str  # model key in the channel job's output, and asset name prefix
    algorithm: str  # built-in algorithm name (images.py / local algorithm registry)
    title: str
    description: str
    channels: tuple[str, ...]
    hyperparameters: Mapping[str, str]
    gate: GateFn
    gate_parameter: float
    gate_parameter_doc: str
    gate_summary: str
    predictor_type: str | None = None
    # Where the held-out sample for the endpoint comes from: (model key, channel) of the channel job.
    sample_from: tuple[str, str] | None = None

    @property
    def asset_name(self) -> str:
        return f"{self.key}_model"

    @property
    def endpoint_asset_name(self) -> str:
        return f"{self.key}_endpoint"

    @property
    def check_name(self) -> str:
        return f"{self.key}_quality_gate"

    @property
    def endpoint_name(self) -> str:
        return "algo-" + self.key.replace("_", "-")

    @property
    def sample_channel(self) -> tuple[str, str]:
        return self.sample_from or (self.key, "test")


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        key="kmeans", algorithm="kmeans", title="K-means applicant segments",
        description="Five applicant segments found by SageMaker K-means on the standardized numeric credit "
                    "features (age, income, loan, rate, score, utilization...).",
        channels=("train", "test"),
        hyperparameters={"k": "5", "mini_batch_size": "500", "init_method": "kmeans++", "epochs": "3",
                         "eval_metrics": "[msd,ssd]"},
        gate_summary="test:msd well below the one-cluster msd of the same test rows",
        gate=kmeans_gate, gate_parameter=0.9,
        gate_parameter_doc="test:msd must be at most this fraction of the one-cluster msd",
    ),
    DemoModel(
        key="linear_binary", algorithm="linear-learner", predictor_type="binary_classifier",
        title="Linear Learner default classifier",
        description="A SageMaker Linear Learner binary classifier of 12-month default on every credit "
                    "feature (logistic loss, threshold chosen on validation for accuracy).",
        channels=("train", "validation", "test"),
        hyperparameters={"predictor_type": "binary_classifier", "mini_batch_size": "200", "epochs": "15",
                         "num_models": "8", "binary_classifier_model_selection_criteria": "accuracy"},
        gate_summary="test:roc_auc_score of the job at least the minimum",
        gate=auc_gate, gate_parameter=0.7, gate_parameter_doc="minimum test:roc_auc_score",
    ),
    DemoModel(
        key="linear_regressor", algorithm="linear-learner", predictor_type="regressor",
        title="Linear Learner interest-rate regressor",
        description="A SageMaker Linear Learner regressor of the interest rate from every other credit "
                    "feature.",
        channels=("train", "validation", "test"),
        hyperparameters={"predictor_type": "regressor", "mini_batch_size": "200", "epochs": "15",
                         "num_models": "8"},
        gate_summary="test R² (from test:mse and the test labels' variance) at least the minimum",
        gate=r2_gate, gate_parameter=0.5,
        gate_parameter_doc="minimum test R² (1 - test:mse / label variance)",
    ),
    DemoModel(
        key="linear_multiclass", algorithm="linear-learner", predictor_type="multiclass_classifier",
        title="Linear Learner loan-grade classifier",
        description="A SageMaker Linear Learner multiclass classifier of the loan grade (A-D, bands of the "
                    "interest rate) from every other credit feature.",
        channels=("train", "validation", "test"),
        hyperparameters={"predictor_type": "multiclass_classifier", "num_classes": "4",
                         "mini_batch_size": "200", "epochs": "15", "num_models": "8"},
        gate_summary="test:multiclass_accuracy clearly above always answering the commonest grade",
        gate=accuracy_gate, gate_parameter=0.1,
        gate_parameter_doc="test:multiclass_accuracy must exceed the majority-class share by this much",
    ),
    DemoModel(
        key="pca", algorithm="pca", title="PCA of applicant features",
        description="SageMaker PCA (regular mode) of the standardized numeric credit features: five "
                    "components.",
        channels=("train",),
        hyperparameters={"num_components": "5", "mini_batch_size": "500", "algorithm_mode": "regular"},
        gate_summary="the components capture at least the minimum share of the train rows' variance",
        gate=pca_gate, gate_parameter=0.45,
        gate_parameter_doc="minimum share of the total variance captured by the components",
        # PCA trains on train only; the K-means test rows are the same standardized features, held out.
        sample_from=("kmeans", "test"),
    ),
    DemoModel(
        key="fm", algorithm="factorization-machines", predictor_type="regressor",
        title="Factorization Machines rating regressor",
        description="SageMaker Factorization Machines (regressor, 8 factors) of generated user-item "
                    "ratings with a known rank-4 interaction, on sparse one-hot users and items.",
        channels=("train", "test"),
        hyperparameters={"predictor_type": "regressor", "num_factors": "8", "epochs": "15",
                         "mini_batch_size": "200", "bias_lr": "0.1", "linear_lr": "0.02",
                         "factors_lr": "0.02", "linear_wd": "0.0001", "factors_wd": "0.0001",
                         "factors_init_sigma": "0.1"},
        gate_summary="test:rmse close to the noise floor, far below a bias-only (linear) model",
        gate=fm_gate, gate_parameter=0.25,
        gate_parameter_doc="test:rmse at most noise floor + this fraction of (bias-only RMSE - floor)",
    ),
    DemoModel(
        key="lda", algorithm="lda", title="LDA topics of generated documents",
        description="SageMaker LDA (five topics) of a generated bag-of-words corpus with known topics.",
        channels=("train", "test"),
        hyperparameters={"num_topics": "5", "mini_batch_size": "200", "alpha0": "1.0", "max_restarts": "3",
                         "max_iterations": "100", "tol": "1e-4"},
        gate_summary="test:pwll clearly above the unigram model's per-word log-likelihood",
        gate=lda_gate, gate_parameter=0.3,
        gate_parameter_doc="minimum test:pwll gain over the unigram model (nats)",
    ),
)

BY_KEY: dict[str, DemoModel] = {m.key: m for m in DEMO_MODELS}


def hyperparameters_for(model: DemoModel, data: Mapping[str, Any],
                        overrides: Mapping[str, str]) -> dict[str, str]:
    """The model's defaults, ``feature_dim`` from its channels, then the user's overrides (all strings)."""
    hp = {**model.hyperparameters, "feature_dim": str(int(data["feature_dim"]))}
    hp.update({str(k): str(v) for k, v in overrides.items()})
    return hp
