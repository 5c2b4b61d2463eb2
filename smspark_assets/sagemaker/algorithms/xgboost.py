"""The SageMaker XGBoost container's (``sagemaker-xgboost:1.7-1``, algorithm mode) contract.

Hyperparameters (names, defaults, ranges, cross-field rules), channels and content types. This module
imports neither xgboost nor NumPy, so the client side (assets, estimators) can refuse a bad setting
*before* a training job is created::

    from smspark_assets.sagemaker.algorithms.xgboost import validate_xgboost_hyperparameters
    validate_xgboost_hyperparameters({"num_round": "50", "eta": "2"})   # HyperparameterError naming [0, 1]

Names, ranges and cross-field rules follow the container's algorithm mode (``num_class`` required for the
``multi:*`` objectives, ``auc`` only for ``binary:``/``rank:`` objectives, ``error@t``/``ndcg@n``/``map@n``
thresholds, one tree-grow updater...). The container's aliases (``learning_rate``, ``min_split_loss``,
``reg_lambda``, ``reg_alpha``) are accepted and folded into their canonical names. ``silent`` (sent by the
SageMaker-Spark SDK's XGBoost estimator, unknown to the 1.x container) is accepted, mapped to ``verbosity``.

Defaults are the values xgboost itself uses; they are documented in the spec but only the hyperparameters the
user *set* are passed to the library, so a model equals ``xgboost.train`` called with the same parameters.

Channels: ``train`` (required), ``validation`` and ``code`` (``algorithm_mode/channel_validation.py``);
training content types ``text/libsvm`` (the default), ``text/csv``, ``application/x-parquet`` and
``application/x-recordio-protobuf``, also under the bare names the container's ``data_utils.py`` accepts.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from smspark_assets.sagemaker.algorithms.content_types import CSV, JSON, JSONLINES, LIBSVM, PARQUET, RECORDIO
from smspark_assets.sagemaker.algorithms.spec import AlgorithmSpec
from smspark_assets.sagemaker.errors import HyperparameterError
from smspark_assets.sagemaker.hyperparameters import Hyperparameter, HyperparameterSpec, Interval

__all__ = [
    "OBJECTIVES",
    "NATIVE_METRICS",
    "CONTAINER_METRICS",
    "XGBOOST_HYPERPARAMETERS",
    "ALIASES",
    "NOT_PASSED_TO_XGBOOST",
    "validate_xgboost_hyperparameters",
    "default_eval_metrics",
    "TRAINING_CONTENT_TYPES",
    "DEFAULT_CONTENT_TYPE",
    "REQUEST_TYPES",
    "RESPONSE_TYPES",
    "normalize_content_type",
    "CONTRACT",
]

OBJECTIVES: tuple[str, ...] = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "reg:linear",
    "reg:squarederror",
    "reg:logistic",
    "reg:gamma",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
    "reg:tweedie",
    "reg:absoluteerror",
    "reg:quantileerror",
    "survival:aft",
    "survival:cox",
)

# Metrics xgboost computes itself (usable for early stopping).
NATIVE_METRICS: tuple[str, ...] = (
    "auc",
    "aucpr",
    "error",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "rmse",
    "rmsle",
    "map",
    "ndcg",
    "poisson-nloglik",
    "gamma-deviance",
    "gamma-nloglik",
    "tweedie-nloglik",
    "cox-nloglik",
    "aft-nloglik",
    "mphe",
    "interval-regression-accuracy",
    "quantile",
)
# Metrics the container computes from predictions (its ``metrics/custom_metrics.py`` names).
CONTAINER_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "mse",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
)
_THRESHOLD_METRICS = ("error", "ndcg", "map", "tweedie-nloglik")  # metric@t / metric@n / tweedie-nloglik@rho

ALIASES: dict[str, str] = {
    "learning_rate": "eta",
    "min_split_loss": "gamma",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
}

_TREE_UPDATERS = (
    "grow_colmaker",
    "distcol",
    "grow_histmaker",
    "grow_local_histmaker",
    "grow_skmaker",
    "grow_quantile_histmaker",
    "sync",
    "refresh",
    "prune",
)
_TREE_GROW_UPDATERS = (
    "grow_colmaker",
    "distcol",
    "grow_histmaker",
    "grow_local_histmaker",
    "grow_quantile_histmaker",
)
_LINEAR_UPDATERS = ("shotgun", "coord_descent")


def _p(
    name: str, kind: str = "float", interval: Interval | None = None, default: Any = None, **kw: Any
) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, interval=interval, default=default, **kw)


_ANY = None
_NON_NEG = Interval(0, None)
_UNIT = Interval(0, 1)
_UNIT_OPEN_LOW = Interval(0, 1, low_inclusive=False)
_BIT = Interval(0, 1)

XGBOOST_HYPERPARAMETERS = HyperparameterSpec(
    algorithm="xgboost",
    parameters=(
        _p("num_round", "int", Interval(1, None), required=True),
        _p("csv_weights", "int", _BIT, 0),
        _p("early_stopping_rounds", "int", Interval(1, None)),
        _p("booster", "str", choices=("gbtree", "gblinear", "dart"), default="gbtree"),
        _p("verbosity", "int", Interval(0, 3), 1),
        _p("silent", "int", _BIT),
        _p("nthread", "int", Interval(1, None)),
        _p("eta", "float", _UNIT, 0.3),
        _p("gamma", "float", _NON_NEG, 0.0),
        _p("max_depth", "int", _NON_NEG, 6),
        _p("min_child_weight", "float", _NON_NEG, 1.0),
        _p("max_delta_step", "float", _NON_NEG, 0.0),
        _p("subsample", "float", _UNIT_OPEN_LOW, 1.0),
        _p("colsample_bytree", "float", _UNIT_OPEN_LOW, 1.0),
        _p("colsample_bylevel", "float", _UNIT_OPEN_LOW, 1.0),
        _p("colsample_bynode", "float", _UNIT_OPEN_LOW, 1.0),
        _p("lambda", "float", _NON_NEG, 1.0),
        _p("alpha", "float", _NON_NEG, 0.0),
        _p("tree_method", "str", choices=("auto", "exact", "approx", "hist", "gpu_hist"), default="auto"),
        _p("sketch_eps", "float", Interval(0, 1, low_inclusive=False, high_inclusive=False), 0.03),
        _p("scale_pos_weight", "float", Interval(0, None, low_inclusive=False), 1.0),
        _p("updater", "list", choices=_TREE_UPDATERS + _LINEAR_UPDATERS),
        _p("dsplit", "str", choices=("row", "col")),
        _p("refresh_leaf", "int", _BIT, 1),
        _p("process_type", "str", choices=("default", "update"), default="default"),
        _p("grow_policy", "str", choices=("depthwise", "lossguide"), default="depthwise"),
        _p("max_leaves", "int", _NON_NEG, 0),
        _p("max_bin", "int", _NON_NEG, 256),
        _p("predictor", "str", choices=("auto", "cpu_predictor", "gpu_predictor")),
        _p("monotone_constraints", "str"),
        _p("interaction_constraints", "str"),
        _p("sample_type", "str", choices=("uniform", "weighted"), default="uniform"),
        _p("normalize_type", "str", choices=("tree", "forest"), default="tree"),
        _p("rate_drop", "float", _UNIT, 0.0),
        _p("one_drop", "int", _BIT, 0),
        _p("skip_drop", "float", _UNIT, 0.0),
        _p("lambda_bias", "float", _UNIT, 0.0),
        _p("tweedie_variance_power", "float", Interval(1, 2, low_inclusive=False, high_inclusive=False), 1.5),
        _p("objective", "str", choices=OBJECTIVES, default="reg:squarederror"),
        _p("num_class", "int", Interval(2, None)),
        _p("base_score", "float", _NON_NEG),
        _p("_kfold", "int", Interval(2, None)),
        _p("_num_cv_round", "int", Interval(1, None)),
        _p("_tuning_objective_metric", "str"),
        _p("eval_metric", "list"),
        _p("seed", "int", Interval(-(2**31), 2**31 - 1, low_inclusive=False, high_inclusive=False), 0),
        _p("num_parallel_tree", "int", Interval(1, None), 1),
        _p("save_model_on_termination", "bool", default=False),
        _p("aft_loss_distribution", "str", choices=("normal", "logistic", "extreme"), default="normal"),
        _p("aft_loss_distribution_scale", "float", _NON_NEG, 1.0),
        _p("huber_slope", "float", _NON_NEG, 1.0),
        _p("quantile_alpha", "float", _UNIT_OPEN_LOW),
        _p("single_precision_histogram", "bool"),
        _p("deterministic_histogram", "bool"),
        _p("sampling_method", "str", choices=("uniform", "gradient_based"), default="uniform"),
        _p("prob_buffer_row", "float", Interval(1, None, low_inclusive=False)),
        _p("max_cat_to_onehot", "int", Interval(1, None)),
        _p("max_cached_hist_node", "int", Interval(1, None)),
    ),
)

# Hyperparameters that steer the container (rounds, weights, early stopping, tuning, cross-validation) or
# that xgboost >= 2 removed; they are validated but never handed to ``xgboost.train`` as params.
NOT_PASSED_TO_XGBOOST: frozenset[str] = frozenset(
    {
        "num_round",
        "csv_weights",
        "early_stopping_rounds",
        "eval_metric",
        "silent",
        "_kfold",
        "_num_cv_round",
        "_tuning_objective_metric",
        "save_model_on_termination",
        "dsplit",
        "predictor",
        "lambda_bias",
        "sketch_eps",
        "single_precision_histogram",
        "deterministic_histogram",
        "prob_buffer_row",
    }
)

_METRIC_AT = re.compile(r"^(?P<name>[a-z_-]+?)@(?P<arg>[^@]+?)(?P<minus>-)?$")


def _check_metric(metric: str, objective: str) -> None:
    base = metric
    match = _METRIC_AT.match(metric)
    if match:
        base = match.group("name")
        if base not in _THRESHOLD_METRICS:
            raise HyperparameterError(
                f"eval_metric {metric!r}: a threshold (@t) is allowed only for "
                f"{', '.join(_THRESHOLD_METRICS)}"
            )
        try:
            float(match.group("arg"))
        except ValueError:
            raise HyperparameterError(
                f"eval_metric {metric!r}: the value after '@' must be a number"
            ) from None
    elif metric.endswith("-") and metric[:-1] in ("ndcg", "map"):
        base = metric[:-1]
    if base not in NATIVE_METRICS and base not in CONTAINER_METRICS:
        raise HyperparameterError(
            f"eval_metric {metric!r} is not supported; allowed: "
            f"{', '.join(NATIVE_METRICS + CONTAINER_METRICS)} "
            f"(error@t, ndcg@n, map@n, tweedie-nloglik@rho with a parameter)"
        )
    if base in ("auc", "aucpr") and not objective.startswith(("binary:", "rank:", "multi:")):
        raise HyperparameterError(
            f"eval_metric {base!r} applies only to classification and ranking objectives "
            f"(binary:*, multi:*, rank:*), not {objective}"
        )
    if base == "aft-nloglik" and objective != "survival:aft":
        raise HyperparameterError("eval_metric 'aft-nloglik' requires objective survival:aft")
    if base == "cox-nloglik" and objective != "survival:cox":
        raise HyperparameterError("eval_metric 'cox-nloglik' requires objective survival:cox")


def _check_tuple(name: str, text: str, allowed: set[int] | None) -> None:
    body = text.strip().strip("()[]")
    try:
        values = [int(float(v)) for v in body.split(",") if v.strip()]
    except ValueError:
        raise HyperparameterError(
            f"hyperparameter {name}={text!r} must be a tuple of integers, e.g. (1,0,-1)"
        ) from None
    if allowed is not None and any(v not in allowed for v in values):
        raise HyperparameterError(f"hyperparameter {name}={text!r}: each value must be one of -1, 0, 1")


def validate_xgboost_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse the container's string hyperparameters; refuse bad ones naming what is allowed.

    Returns every known hyperparameter (defaults filled in) plus ``_given``: the sorted names the user set
    (aliases folded), which is what training passes on to xgboost.
    """
    folded: dict[str, Any] = {}
    for key, value in raw.items():
        canonical = ALIASES.get(key, key)
        if canonical in folded and canonical != key:
            raise HyperparameterError(
                f"hyperparameter {key} is an alias of {canonical}; set only one of them"
            )
        folded[canonical] = value
    parsed = XGBOOST_HYPERPARAMETERS.validate(folded)
    objective = parsed["objective"]
    if objective.startswith("multi:") and parsed["num_class"] is None:
        raise HyperparameterError(f"objective {objective} requires num_class (an integer >= 2)")
    if parsed["num_class"] is not None and not objective.startswith("multi:"):
        raise HyperparameterError(
            f"num_class is only for the multi:softmax and multi:softprob objectives, not {objective}"
        )
    for metric in parsed["eval_metric"] or []:
        _check_metric(metric, objective)
    tuning = parsed["_tuning_objective_metric"]
    if tuning is not None:
        channel, _, metric = tuning.partition(":")
        if channel not in ("train", "validation") or not metric:
            raise HyperparameterError(
                f"_tuning_objective_metric={tuning!r} must look like validation:<metric> or train:<metric>"
            )
        _check_metric(metric, objective)
    updater = parsed["updater"]
    if updater:
        if parsed["booster"] == "gblinear":
            if len(updater) != 1 or updater[0] not in _LINEAR_UPDATERS:
                raise HyperparameterError(
                    f"updater={updater}: with booster gblinear choose exactly one of "
                    f"{', '.join(_LINEAR_UPDATERS)}"
                )
        elif parsed["process_type"] == "update":
            if any(u not in ("refresh", "prune") for u in updater):
                raise HyperparameterError("process_type 'update' allows only the updaters refresh and prune")
        else:
            if any(u not in _TREE_UPDATERS for u in updater):
                raise HyperparameterError(f"updater={updater}: tree updaters are {', '.join(_TREE_UPDATERS)}")
            if sum(u in _TREE_GROW_UPDATERS for u in updater) > 1:
                raise HyperparameterError(
                    f"updater={updater}: choose only one tree-grow updater of "
                    f"{', '.join(_TREE_GROW_UPDATERS)}"
                )
    if parsed["monotone_constraints"] is not None:
        if parsed["tree_method"] not in ("exact", "hist"):
            raise HyperparameterError("monotone_constraints requires tree_method exact or hist")
        _check_tuple("monotone_constraints", parsed["monotone_constraints"], {-1, 0, 1})
    if parsed["interaction_constraints"] is not None and parsed["tree_method"] not in (
        "exact",
        "hist",
        "approx",
    ):
        raise HyperparameterError("interaction_constraints requires tree_method exact, hist or approx")
    if (
        objective in ("binary:logistic", "reg:logistic")
        and parsed["base_score"] is not None
        and not 0 < parsed["base_score"] < 1
    ):
        raise HyperparameterError(f"base_score must be in (0, 1) for objective {objective}")
    parsed["_given"] = sorted(folded)
    return parsed


def default_eval_metrics(objective: str) -> list[str]:
    """Metrics reported when ``eval_metric`` is not set.

    The *last* one is xgboost's own default for the objective, so early stopping (which watches the last
    metric) behaves exactly as in xgboost; the ones before it are extra figures SageMaker users expect
    (``validation:auc`` for a binary classifier, for instance).
    """
    if objective in ("binary:logistic", "binary:logitraw"):
        return ["auc", "error", "logloss"]
    if objective == "binary:hinge":
        return ["error"]
    if objective.startswith("multi:"):
        return ["merror", "mlogloss"]
    if objective in ("reg:squarederror", "reg:linear", "reg:logistic"):
        return ["mae", "rmse"]
    table = {
        "reg:absoluteerror": ["mae"],
        "reg:quantileerror": ["quantile"],
        "reg:pseudohubererror": ["mphe"],
        "reg:squaredlogerror": ["rmsle"],
        "reg:gamma": ["gamma-nloglik"],
        "reg:tweedie": ["tweedie-nloglik"],
        "count:poisson": ["poisson-nloglik"],
        "rank:pairwise": ["ndcg"],
        "rank:ndcg": ["ndcg"],
        "rank:map": ["map"],
        "survival:cox": ["cox-nloglik"],
        "survival:aft": ["aft-nloglik"],
    }
    return list(table.get(objective, []))


NAME = "xgboost"
TRAINING_CONTENT_TYPES: tuple[str, ...] = (LIBSVM, CSV, PARQUET, RECORDIO)
DEFAULT_CONTENT_TYPE = LIBSVM
# The model server's request and response types (``serve.py``; ``text/x-libsvm`` is accepted as sent).
REQUEST_TYPES: tuple[str, ...] = (CSV, LIBSVM, "text/x-libsvm", RECORDIO)
RESPONSE_TYPES: tuple[str, ...] = (CSV, JSON, JSONLINES, RECORDIO)

# Every spelling the container's ``data_utils.py`` reads, mapped to its canonical content type.
_CONTENT_TYPES: dict[str, str] = {
    "text/csv": CSV,
    "csv": CSV,
    "text/libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "libsvm": LIBSVM,
    "application/x-parquet": PARQUET,
    "parquet": PARQUET,
    "application/x-recordio-protobuf": RECORDIO,
    "recordio-protobuf": RECORDIO,
}


def normalize_content_type(content_type: str | None, default: str = DEFAULT_CONTENT_TYPE) -> str | None:
    """``"text/csv; label_size=1"`` -> ``"text/csv"``; the canonical name of an alias; ``None`` if unknown."""
    raw = (content_type or default).split(";", 1)[0].strip().lower()
    return _CONTENT_TYPES.get(raw)


CONTRACT = AlgorithmSpec(
    name=NAME,
    hyperparameters=XGBOOST_HYPERPARAMETERS,
    channels=("train", "validation", "code"),
    required_channels=("train",),
    training_content_types=TRAINING_CONTENT_TYPES,
    default_training_content_type=DEFAULT_CONTENT_TYPE,
    inference_content_types=REQUEST_TYPES,
    response_content_types=RESPONSE_TYPES,
    validator=validate_xgboost_hyperparameters,
    training_content_type_of=normalize_content_type,
)
