"""SageMaker PCA's contract (DG ``pca.md``, ``PCA-in-formats.md``): hyperparameters, channels, content types.

Channels ``train`` and optional ``test``; recordIO-protobuf or CSV in; CSV, JSON or recordIO-protobuf requests.
"""

from __future__ import annotations

from typing import Any, Mapping

from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, first_party
from smspark_assets.sagemaker.errors import HyperparameterError
from smspark_assets.sagemaker.hyperparameters import Hyperparameter as H
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec, Interval

NAME = "pca"

HYPERPARAMETERS = HyperparameterSpec(
    algorithm=NAME,
    parameters=[
        H("feature_dim", "int", Interval(1, None), required=True),
        H("num_components", "int", Interval(1, None), required=True),
        H("mini_batch_size", "int", Interval(1, None), required=True),
        H("algorithm_mode", "str", choices=("regular", "stable", "randomized"), default="regular"),
        H("subtract_mean", "bool", default=True),
        H("extra_components", "int", Interval(-1, None), default=-1),
    ],
    ignored=FIRST_PARTY_IGNORED,
)


def validate(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parse and cross-check (``num_components`` at most ``feature_dim``; ``extra_components`` is -1 or >= 1)."""
    hp = HYPERPARAMETERS.validate(hyperparameters)
    if hp["extra_components"] == 0:
        raise HyperparameterError("pca: extra_components=0 is not valid; allowed: -1 (automatic) or an integer >= 1")
    if hp["num_components"] > hp["feature_dim"]:
        raise HyperparameterError(f"pca: num_components={hp['num_components']} exceeds feature_dim={hp['feature_dim']}; "
                                  f"allowed: an integer in [1, {hp['feature_dim']}]")
    return hp


CONTRACT = first_party(NAME, HYPERPARAMETERS, validator=validate)
