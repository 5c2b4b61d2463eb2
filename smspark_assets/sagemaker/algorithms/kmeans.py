"""SageMaker K-means' contract (DG ``k-means.md``, ``km-in-formats.md``): hyperparameters, channels, content types.

Channels ``train`` and optional ``test``; recordIO-protobuf or CSV (``label_size=0``) in; CSV, JSON or
recordIO-protobuf requests. ``force_dense`` (always sent by the Python SDK) is accepted and ignored.
"""

from __future__ import annotations

from smspark_assets.sagemaker.algorithms.spec import FIRST_PARTY_IGNORED, first_party
from smspark_assets.sagemaker.hyperparameters import Hyperparameter as H
from smspark_assets.sagemaker.hyperparameters import HyperparameterSpec, Interval

NAME = "kmeans"

HYPERPARAMETERS = HyperparameterSpec(
    algorithm=NAME,
    parameters=[
        H("k", "int", Interval(2, None), required=True),
        H("feature_dim", "int", Interval(1, None), required=True),
        H("mini_batch_size", "int", Interval(1, None), default=5000),
        H("init_method", "str", choices=("random", "kmeans++"), default="random"),
        H("local_lloyd_max_iter", "int", Interval(1, None), default=300),
        H("local_lloyd_tol", "float", Interval(0, 1), default=0.0001),
        H("local_lloyd_num_trials", "int", Interval(1, None), default="auto", specials=("auto",)),
        H("local_lloyd_init_method", "str", choices=("random", "kmeans++"), default="kmeans++"),
        H("half_life_time_size", "int", Interval(0, None), default=0),
        H("epochs", "int", Interval(1, None), default=1),
        H("extra_center_factor", "int", Interval(1, None), default="auto", specials=("auto",)),
        H("eval_metrics", "list", choices=("msd", "ssd"), default=["msd"]),
    ],
    # The Python SDK always sends force_dense=True; the container accepts and ignores it.
    ignored=FIRST_PARTY_IGNORED | {"force_dense"},
)


CONTRACT = first_party(NAME, HYPERPARAMETERS)
