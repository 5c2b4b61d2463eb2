"""SageMaker Linear Learner's contract (DG ``linear-learner.md``, ``LL-in-formats.md``).

Channels ``train``, optional ``validation`` (calibration and model selection) and ``test``;
recordIO-protobuf (Float32 only) or CSV (label first) in; JSON, JSON Lines, CSV or recordIO-protobuf requests.
"""

from __future__ import annotations

from typing import Any, Mapping

from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, first_party
from smspark_assets.sagemaker.errors import HyperparameterError
from smspark_assets.sagemaker.hyperparameters import Hyperparameter as H
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec, Interval

NAME = "linear-learner"

BINARY, MULTICLASS, REGRESSOR = "binary_classifier", "multiclass_classifier", "regressor"
CRITERIA = ("accuracy", "f1", "f_beta", "precision_at_target_recall", "recall_at_target_precision",
            "cross_entropy_loss", "loss_function")
LOSSES = ("logistic", "squared_loss", "absolute_loss", "hinge_loss", "eps_insensitive_squared_loss",
          "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss", "softmax_loss", "auto")
_LOSSES_FOR = {
    BINARY: ("logistic", "hinge_loss"),
    MULTICLASS: ("softmax_loss", "logistic", "hinge_loss"),
    REGRESSOR: ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                "quantile_loss", "huber_loss"),
}
_AUTO = ("auto",)
HYPERPARAMETERS = HyperparameterSpec(
    algorithm=NAME,
    parameters=[
        H("predictor_type", "str", choices=(BINARY, MULTICLASS, REGRESSOR), required=True),
        H("feature_dim", "int", Interval(1, None), default="auto", specials=_AUTO),
        H("num_classes", "int", Interval(3, 1_000_000), default=None),
        H("mini_batch_size", "int", Interval(1, None), default=1000),
        H("epochs", "int", Interval(1, None), default=15),
        H("binary_classifier_model_selection_criteria", "str", choices=CRITERIA, default="accuracy"),
        H("target_recall", "float", Interval(0, 1, False, False), default=0.8),
        H("target_precision", "float", Interval(0, 1, False, False), default=0.8),
        H("positive_example_weight_mult", "float", Interval(0, None, False), default=1.0,
          specials=("auto", "balanced")),
        H("accuracy_top_k", "int", Interval(1, None), default=3),
        H("balance_multiclass_weights", "bool", default=False),
        H("use_bias", "bool", default=True),
        H("num_models", "int", Interval(1, None), default="auto", specials=_AUTO),
        H("num_calibration_samples", "int", Interval(1, None), default="auto", specials=_AUTO),
        H("init_method", "str", choices=("uniform", "normal"), default="uniform"),
        H("init_scale", "float", Interval(0, None, False), default=0.07),
        H("init_sigma", "float", Interval(0, None, False), default=0.01),
        H("init_bias", "float", default=0.0),
        H("optimizer", "str", choices=("sgd", "adam", "rmsprop", "auto"), default="auto"),
        H("loss", "str", choices=LOSSES, default="auto"),
        H("wd", "float", Interval(0, None), default="auto", specials=_AUTO),
        H("l1", "float", Interval(0, None), default="auto", specials=_AUTO),
        H("momentum", "float", Interval(0, 1, True, False), default="auto", specials=_AUTO),
        H("learning_rate", "float", Interval(0, None, False), default="auto", specials=_AUTO),
        H("beta_1", "float", Interval(0, 1, True, False), default="auto", specials=_AUTO),
        H("beta_2", "float", Interval(0, 1, True, False), default="auto", specials=_AUTO),
        H("bias_lr_mult", "float", Interval(0, None, False), default="auto", specials=_AUTO),
        H("bias_wd_mult", "float", Interval(0, None), default="auto", specials=_AUTO),
        H("use_lr_scheduler", "bool", default=True),
        H("lr_scheduler_step", "int", Interval(1, None), default="auto", specials=_AUTO),
        H("lr_scheduler_factor", "float", Interval(0, 1, False, False), default="auto", specials=_AUTO),
        H("lr_scheduler_minimum_lr", "float", Interval(0, None, False), default="auto", specials=_AUTO),
        H("normalize_data", "bool", default=True),
        H("normalize_label", "bool", default="auto", specials=_AUTO),
        H("unbias_data", "bool", default="auto", specials=_AUTO),
        H("unbias_label", "bool", default="auto", specials=_AUTO),
        H("num_point_for_scaler", "int", Interval(1, None), default=10000),
        H("early_stopping_patience", "int", Interval(1, None), default=3),
        H("early_stopping_tolerance", "float", Interval(0, None, False), default=0.001),
        H("margin", "float", Interval(0, None, False), default=1.0),
        H("quantile", "float", Interval(0, 1, False, False), default=0.5),
        H("loss_insensitivity", "float", Interval(0, None, False), default=0.01),
        H("huber_delta", "float", Interval(0, None, False), default=1.0),
        H("f_beta", "float", Interval(0, None, False), default=1.0),
    ],
    ignored=FIRST_PARTY_IGNORED | {"force_dense"},
)


def validate(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parse and cross-check (predictor type vs loss and num_classes)."""
    hp = HYPERPARAMETERS.validate(hyperparameters)
    kind = hp["predictor_type"]
    if kind == MULTICLASS and hp["num_classes"] is None:
        raise HyperparameterError("linear-learner: num_classes is required when predictor_type=multiclass_classifier "
                                  "(an integer in [3, 1000000])")
    if kind != MULTICLASS and "num_classes" in hyperparameters and hp["num_classes"] is not None:
        raise HyperparameterError(f"linear-learner: num_classes applies only to multiclass_classifier, not {kind}")
    if hp["loss"] != "auto" and hp["loss"] not in _LOSSES_FOR[kind]:
        raise HyperparameterError(f"linear-learner: loss={hp['loss']} does not fit predictor_type={kind}; "
                                  f"allowed: auto, {', '.join(_LOSSES_FOR[kind])}")
    return hp


CONTRACT = first_party(NAME, HYPERPARAMETERS, channels=("train", "validation", "test"), validator=validate)
