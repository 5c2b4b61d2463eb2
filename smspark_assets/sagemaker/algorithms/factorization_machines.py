"""SageMaker Factorization Machines' contract (DG ``fact-machines.md``, ``fm-in-formats.md``).

Channels ``train`` and optional ``test``, recordIO-protobuf with Float32 tensors only; JSON, JSON Lines or
recordIO-protobuf requests (no CSV).
"""

from __future__ import annotations

from typing import Any, Mapping

from smspark_assets.sagemaker.algorithms.content_types import JSON, JSONLINES, RECORDIO
from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, first_party
from smspark_assets.sagemaker.errors import HyperparameterError
from smspark_assets.sagemaker.hyperparameters import Hyperparameter as H
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec, Interval

NAME = "factorization-machines"
BINARY, REGRESSOR = "binary_classifier", "regressor"
_NONNEG = Interval(0, None)
_INIT = ("normal", "uniform", "constant")

HYPERPARAMETERS = HyperparameterSpec(
    algorithm=NAME,
    parameters=[
        H("feature_dim", "int", Interval(1, None), required=True),
        H("num_factors", "int", Interval(1, None), required=True),
        H("predictor_type", "str", choices=(BINARY, REGRESSOR), required=True),
        H("epochs", "int", Interval(1, None), default=1),
        H("mini_batch_size", "int", Interval(1, None), default=1000),
        H("clip_gradient", "float", default=None),
        H("eps", "float", Interval(0, None, False), default=None),
        H("rescale_grad", "float", default=None),
        H("bias_lr", "float", _NONNEG, default=0.1),
        H("linear_lr", "float", _NONNEG, default=0.001),
        H("factors_lr", "float", _NONNEG, default=0.0001),
        H("bias_wd", "float", _NONNEG, default=0.01),
        H("linear_wd", "float", _NONNEG, default=0.001),
        H("factors_wd", "float", _NONNEG, default=0.00001),
        H("bias_init_method", "str", choices=_INIT, default="normal"),
        H("bias_init_scale", "float", _NONNEG, default=None),
        H("bias_init_sigma", "float", _NONNEG, default=0.01),
        H("bias_init_value", "float", default=None),
        H("linear_init_method", "str", choices=_INIT, default="normal"),
        H("linear_init_scale", "float", _NONNEG, default=None),
        H("linear_init_sigma", "float", _NONNEG, default=0.01),
        H("linear_init_value", "float", default=None),
        H("factors_init_method", "str", choices=_INIT, default="normal"),
        H("factors_init_scale", "float", _NONNEG, default=None),
        H("factors_init_sigma", "float", _NONNEG, default=0.001),
        H("factors_init_value", "float", default=None),
    ],
    ignored=FIRST_PARTY_IGNORED,
)


def validate(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parse and cross-check (each ``*_init_method`` has the value it needs; ``clip_gradient`` > 0)."""
    hp = HYPERPARAMETERS.validate(hyperparameters)
    for group in ("bias", "linear", "factors"):
        method = hp[f"{group}_init_method"]
        if method == "uniform" and hp[f"{group}_init_scale"] is None:
            raise HyperparameterError(f"{NAME}: {group}_init_method=uniform needs {group}_init_scale (a number >= 0)")
        if method == "constant" and hp[f"{group}_init_value"] is None:
            raise HyperparameterError(f"{NAME}: {group}_init_method=constant needs {group}_init_value (a number)")
    if hp["clip_gradient"] is not None and hp["clip_gradient"] <= 0:
        raise HyperparameterError(f"{NAME}: clip_gradient={hp['clip_gradient']} is out of range; allowed: a number > 0")
    return hp


# Float32 recordIO-protobuf only, for training and inference alike (no CSV).
CONTRACT = first_party(NAME, HYPERPARAMETERS, training_content_types=(RECORDIO,),
                       inference_content_types=(JSON, JSONLINES, RECORDIO),
                       response_content_types=(JSON, JSONLINES, RECORDIO), validator=validate)
