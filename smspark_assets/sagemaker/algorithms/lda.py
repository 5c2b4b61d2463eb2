"""SageMaker LDA's contract (DG ``lda.md``): hyperparameters, channels, content types.

Channels ``train`` and optional ``test``; recordIO-protobuf (dense or sparse) or dense CSV in; CSV, JSON or
recordIO-protobuf requests.
"""

from __future__ import annotations

from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, first_party
from smspark_assets.sagemaker.hyperparameters import Hyperparameter as H
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec, Interval

NAME = "lda"

HYPERPARAMETERS = HyperparameterSpec(
    algorithm=NAME,
    parameters=[
        H("num_topics", "int", Interval(1, None), required=True),
        H("feature_dim", "int", Interval(1, None), required=True),
        H("mini_batch_size", "int", Interval(1, None), required=True),
        H("alpha0", "float", Interval(0, None, False), default=1.0),
        H("max_restarts", "int", Interval(1, None), default=10),
        H("max_iterations", "int", Interval(1, None), default=1000),
        H("tol", "float", Interval(0, None, False), default=1e-8),
    ],
    ignored=FIRST_PARTY_IGNORED,
)


CONTRACT = first_party(NAME, HYPERPARAMETERS)
