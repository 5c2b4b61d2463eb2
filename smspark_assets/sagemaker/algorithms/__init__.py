"""The SageMaker contract of each built-in algorithm, looked up by SageMaker's name.

``algorithm_spec("linear-learner")`` is the :class:`~.spec.AlgorithmSpec` the assets validate against
before any job starts, and the one the local implementations of the algorithms validate with::

    from smspark_assets.sagemaker.algorithms import algorithm_spec
    algorithm_spec("kmeans").validate_hyperparameters({"k": "1", "feature_dim": "4"})  # HyperparameterError: [2, inf)

The contract modules declare data and pure-Python checks only (no NumPy, no emulator).
"""

from __future__ import annotations

from smspark_assets.sagemaker.algorithms import factorization_machines, kmeans, lda, linear_learner, pca, xgboost
from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, AlgorithmSpec, ChannelError

__all__ = ["AlgorithmSpec", "ChannelError", "FIRST_PARTY_IGNORED", "algorithm_spec", "builtin_algorithms"]

_SPECS: dict[str, AlgorithmSpec] = {
    module.CONTRACT.name: module.CONTRACT
    for module in (xgboost, kmeans, linear_learner, pca, factorization_machines, lda)
}


def builtin_algorithms() -> list[str]:
    """SageMaker's names of the built-in algorithms with a contract here."""
    return sorted(_SPECS)


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The contract of built-in algorithm ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"no built-in algorithm {name!r}; known: {', '.join(builtin_algorithms())}") from None
