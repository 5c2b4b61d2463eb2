"""Local implementations of SageMaker's built-in algorithms, looked up by name.

Each module exposes ``ALGORITHM``, an object following :class:`~.base.Algorithm`. Imports are lazy so
that a model server only loads what it serves.
"""

from __future__ import annotations

import importlib

from smspark_assets.local.algorithms.base import Algorithm

_MODULES: dict[str, str] = {
    "xgboost": "smspark_assets.local.algorithms.xgboost",
    "kmeans": "smspark_assets.local.algorithms.kmeans",
    "linear-learner": "smspark_assets.local.algorithms.linear_learner",
    "pca": "smspark_assets.local.algorithms.pca",
    "factorization-machines": "smspark_assets.local.algorithms.factorization_machines",
    "lda": "smspark_assets.local.algorithms.lda",
}


def available_algorithms() -> list[str]:
    return sorted(_MODULES)


def get_algorithm(name: str) -> Algorithm:
    """The implementation of built-in algorithm ``name``; a clear error for an unknown one."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise KeyError(f"no local implementation of algorithm {name!r}; available: {', '.join(available_algorithms())}")
    return importlib.import_module(module_name).ALGORITHM
