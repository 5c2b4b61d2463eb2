"""Hyperparameter tuning jobs through the SageMaker API (AWS or the local stack alike), for any built-in algorithm.

A :class:`TuningRequest` says what to tune (ranges), how (strategy, budget, parallelism, early stopping, warm
start) and towards what (an objective metric the algorithm publishes). :meth:`TuningRequest.validate` refuses,
before any job exists, what SageMaker or the algorithm would refuse: an objective the algorithm does not emit,
a range over a hyperparameter it does not have or beyond what it accepts, a Grid over a numeric range; each
error names what is allowed.

As for training jobs (:mod:`.training`), the tuning job is named by a hash of what determines it: a completed
one is adopted, a running one re-attached to, a failed or stopped one retried under the next attempt suffix.
Whatever ends the wait early (a cancelled run, Ctrl-C, a failed poll, the deadline) stops the tuning job, and
with it its trials, before the exception goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from smspark_assets.interruption import stopped_if_abandoned
from smspark_assets.sagemaker.algorithms import algorithm_spec, builtin_algorithms
from smspark_assets.sagemaker.algorithms import xgboost as xgboost_contract
from smspark_assets.sagemaker.algorithms.spec import AlgorithmSpec
from smspark_assets.sagemaker.hyperparameters import Hyperparameter
from smspark_assets.sagemaker.job_control import ENDED, STOP_CONFIRM_SECONDS, JobKind, stop_job
from smspark_assets.sagemaker.naming import content_hash, sanitize
from smspark_assets.sagemaker.training import (
    Channel, SecuritySettings, TrainingResult, job_definition_fields, training_result,
)

__all__ = [
    "ParameterRange", "TuningRequest", "TuningRequestError", "TuningJobFailed", "Trial", "TuningResult",
    "objective_metrics", "run_tuning_job", "stop_tuning_job", "adopt_training_job",
]

MAX_TUNING_NAME = 32  # SageMaker: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}; it prefixes every trial's name
MAX_ATTEMPTS = 3
STRATEGIES = ("Bayesian", "Random", "Grid")  # Hyperband needs per-epoch resources no built-in here reports
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
RANGE_KINDS = ("Integer", "Continuous", "Categorical")
EARLY_STOPPING = ("Off", "Auto")
WARM_START_TYPES = ("IdenticalDataAndAlgorithm", "TransferLearning")
MAX_TRAINING_JOBS = 500  # SageMaker's default quota of training jobs per tuning job
MAX_PARALLEL = 100
MAX_RANGES = 30  # all range lists together
MAX_CATEGORICAL_VALUES = 30
MAX_HYPERPARAMETERS = 100  # static + tuned (+ the service's _tuning_objective_metric)
MAX_WARM_START_PARENTS = 5
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
# botocore has no waiter for tuning jobs: :func:`_wait` polls.
TUNING_JOB = JobKind("tuning job", "describe_hyper_parameter_tuning_job", "stop_hyper_parameter_tuning_job",
                     "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
                     stopping_note=" and its running trials")
# Beyond the trials' own runtime the tuner spends time starting trials; wait this much longer at most.
WAIT_MARGIN_SECONDS = 3600

# --- objective metrics ------------------------------------------------------------------------------------
# What each built-in algorithm publishes for tuning, and which way is better (AWS DG "<algorithm>-tuning").
# XGBoost's come from its contract module (every metric the container computes, on either channel); the
# first-party algorithms' contract modules list no metrics, so their tables live here.
_XGBOOST_MAXIMIZE = frozenset({
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision",
    "precision_macro", "precision_micro", "r2", "recall", "recall_macro", "recall_micro",
    "interval-regression-accuracy",
})
_LINEAR_LEARNER_MAXIMIZE = ("binary_classification_accuracy", "binary_f_beta", "precision", "recall",
                            "roc_auc_score", "multiclass_accuracy", "multiclass_top_k_accuracy", "dcg",
                            "macro_f_beta", "macro_precision", "macro_recall")
_LINEAR_LEARNER_MINIMIZE = ("objective_loss", "mse", "absolute_loss")


def _xgboost_metrics() -> dict[str, str]:
    names = xgboost_contract.NATIVE_METRICS + xgboost_contract.CONTAINER_METRICS
    return {f"{channel}:{name}": "Maximize" if name in _XGBOOST_MAXIMIZE else "Minimize"
            for channel in ("validation", "train") for name in names}


def _linear_learner_metrics() -> dict[str, str]:
    table = {f"{channel}:{name}": "Maximize" for channel in ("test", "validation") for name in _LINEAR_LEARNER_MAXIMIZE}
    table.update({f"{channel}:{name}": "Minimize" for channel in ("test", "validation")
                  for name in _LINEAR_LEARNER_MINIMIZE})
    table["validation:rmse"] = "Minimize"  # rmse is reported for the validation channel only
    return table


_OBJECTIVE_METRICS: dict[str, dict[str, str]] = {
    "xgboost": _xgboost_metrics(),
    "linear-learner": _linear_learner_metrics(),
    "kmeans": {"test:msd": "Minimize", "test:ssd": "Minimize"},
    "lda": {"test:pwll": "Maximize"},
    "factorization-machines": {"test:rmse": "Minimize", "test:binary_classification_accuracy": "Maximize",
                               "test:binary_classification_cross_entropy": "Minimize",
                               "test:binary_f_beta": "Maximize"},
    "pca": {},  # SageMaker publishes no tuning metric for PCA
}
# Alternative names a container folds into a canonical hyperparameter (a range may use either).
_ALIASES: dict[str, Mapping[str, str]] = {"xgboost": xgboost_contract.ALIASES}


def objective_metrics(algorithm: str) -> dict[str, str]:
    """The metrics built-in ``algorithm`` publishes for tuning, each with its direction (Maximize/Minimize)."""
    algorithm_spec(algorithm)  # KeyError naming the known algorithms
    return dict(_OBJECTIVE_METRICS.get(algorithm, {}))


class TuningRequestError(ValueError):
    """A tuning request SageMaker or the algorithm would refuse; the message names what is allowed."""


class TuningJobFailed(RuntimeError):
    """The tuning job ended Failed or Stopped, or produced no usable trial; the message says why."""


# --- the request ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter: an ``Integer`` or ``Continuous`` range (``low``..``high``, ``scaling``) or a
    ``Categorical`` list of ``values``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] = ()
    scaling: str = "Auto"

    @classmethod
    def integer(cls, name: str, low: int, high: int, scaling: str = "Auto") -> "ParameterRange":
        return cls(name, "Integer", low, high, scaling=scaling)

    @classmethod
    def continuous(cls, name: str, low: float, high: float, scaling: str = "Auto") -> "ParameterRange":
        return cls(name, "Continuous", low, high, scaling=scaling)

    @classmethod
    def categorical(cls, name: str, values: Sequence[Any]) -> "ParameterRange":
        return cls(name, "Categorical", values=tuple(str(v) for v in values))

    def ends(self) -> tuple[str, ...]:
        """The values a trial can receive at the range's edges (every value of a categorical range)."""
        if self.kind == "Categorical":
            return self.values
        return (_number_text(self.low, self.kind), _number_text(self.high, self.kind))

    def to_api(self) -> dict[str, Any]:
        if self.kind == "Categorical":
            return {"Name": self.name, "Values": list(self.values)}
        return {"Name": self.name, "MinValue": _number_text(self.low, self.kind),
                "MaxValue": _number_text(self.high, self.kind), "ScalingType": self.scaling}

    def check(self, hyperparameter: Hyperparameter | None, algorithm: str) -> None:
        """Shape checks that need no other hyperparameter; raises :class:`TuningRequestError`."""
        where = f"range {self.name!r}"
        if self.kind not in RANGE_KINDS:
            raise TuningRequestError(f"{where}: kind {self.kind!r} is not one of {', '.join(RANGE_KINDS)}")
        if self.kind == "Categorical":
            if not 1 <= len(self.values) <= MAX_CATEGORICAL_VALUES:
                raise TuningRequestError(f"{where}: a categorical range lists 1 to {MAX_CATEGORICAL_VALUES} values, "
                                         f"not {len(self.values)}")
            if len(set(self.values)) != len(self.values):
                raise TuningRequestError(f"{where}: categorical values repeat: {list(self.values)}")
            return
        if self.low is None or self.high is None or not all(map(math.isfinite, (self.low, self.high))):
            raise TuningRequestError(f"{where}: an {self.kind.lower()} range needs finite low and high values")
        if self.low > self.high:
            raise TuningRequestError(f"{where}: low {self.low:g} is above high {self.high:g}")
        if self.kind == "Integer" and (self.low != int(self.low) or self.high != int(self.high)):
            raise TuningRequestError(f"{where}: an integer range needs integer ends, not [{self.low:g}, {self.high:g}]")
        if self.scaling not in SCALING_TYPES:
            raise TuningRequestError(f"{where}: scaling {self.scaling!r} is not one of {', '.join(SCALING_TYPES)}")
        if self.scaling == "Logarithmic" and self.low <= 0:
            raise TuningRequestError(f"{where}: Logarithmic scaling needs a range above 0; low is {self.low:g}")
        if self.scaling == "ReverseLogarithmic" and (self.kind != "Continuous" or not 0 <= self.low < self.high < 1):
            raise TuningRequestError(f"{where}: ReverseLogarithmic scaling is for continuous ranges within "
                                     f"0 <= low < high < 1")
        if hyperparameter is not None:
            numeric = {"Integer": ("int", "float"), "Continuous": ("float",)}[self.kind]
            if hyperparameter.kind not in numeric:
                allowed = ("an Integer or Continuous" if hyperparameter.kind == "float" else
                           "an Integer or Categorical" if hyperparameter.kind == "int" else "a Categorical")
                raise TuningRequestError(f"{where}: {algorithm} hyperparameter {self.name} is "
                                         f"{_kind_words(hyperparameter)}; tune it with {allowed} range")


def _kind_words(hp: Hyperparameter) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean", "list": "a list"}.get(hp.kind, "a string")


def _number_text(value: float | None, kind: str) -> str:
    """Range ends as SageMaker takes them: strings, integers without a decimal point."""
    if value is None:
        return ""
    return str(int(value)) if kind == "Integer" else repr(float(value))


@dataclass(frozen=True)
class TuningRequest:
    """Everything a tuning job of built-in ``algorithm`` needs; equal requests name equal jobs."""

    algorithm: str  # SageMaker's name of the built-in algorithm: "xgboost", "linear-learner", ...
    name_prefix: str
    image: str
    role_arn: str
    static_hyperparameters: Mapping[str, str]
    ranges: Sequence[ParameterRange]
    objective_metric: str
    channels: Mapping[str, Channel]
    output_uri: str
    data_fingerprint: str
    strategy: str = "Bayesian"
    max_jobs: int | None = 8  # None only with Grid (the number of combinations)
    max_parallel: int = 2
    objective_type: str | None = None  # Maximize | Minimize; None: the metric's own direction
    early_stopping: str = "Off"
    warm_start_parents: Sequence[str] = ()
    warm_start_type: str = "IdenticalDataAndAlgorithm"
    random_seed: int | None = 7
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_gb: int = 30
    max_runtime_seconds: int = 3600  # per trial
    tags: Mapping[str, str] = field(default_factory=dict)
    # KMS key, VPC, network isolation of the trials. Not part of the name, as for training jobs: they do not
    # change what is learned.
    security: SecuritySettings = field(default_factory=SecuritySettings)

    # -- validation ---------------------------------------------------------------------------------------

    def spec(self) -> AlgorithmSpec:
        try:
            return algorithm_spec(self.algorithm)
        except KeyError:
            raise TuningRequestError(f"no built-in algorithm {self.algorithm!r}; known: "
                                     f"{', '.join(builtin_algorithms())}") from None

    def objective_direction(self) -> str:
        """Maximize or Minimize: the one given, which must agree with the metric's own direction."""
        metrics = objective_metrics(self.algorithm)
        if not metrics:
            raise TuningRequestError(f"{self.algorithm} publishes no metric SageMaker can tune on")
        if self.objective_metric not in metrics:
            raise TuningRequestError(f"{self.algorithm} does not publish the objective metric "
                                     f"{self.objective_metric!r}; allowed: {', '.join(sorted(metrics))}")
        direction = metrics[self.objective_metric]
        if self.objective_type is not None and self.objective_type != direction:
            raise TuningRequestError(f"objective {self.objective_metric} is better when "
                                     f"{'higher' if direction == 'Maximize' else 'lower'}: its type is "
                                     f"{direction}, not {self.objective_type}")
        return direction

    def grid_size(self) -> int:
        return math.prod(len(r.values) for r in self.ranges)

    def validate(self) -> None:
        """Refuse what SageMaker or the algorithm would refuse, before any job exists."""
        spec = self.spec()
        self.objective_direction()
        if self.strategy not in STRATEGIES:
            raise TuningRequestError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.early_stopping not in EARLY_STOPPING:
            raise TuningRequestError(f"early stopping {self.early_stopping!r} is not one of "
                                     f"{', '.join(EARLY_STOPPING)}")
        if not self.ranges:
            raise TuningRequestError("name at least one hyperparameter range to tune")
        if len(self.ranges) > MAX_RANGES:
            raise TuningRequestError(f"at most {MAX_RANGES} ranges may be tuned; {len(self.ranges)} given")
        names = [r.name for r in self.ranges]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise TuningRequestError(f"hyperparameters in more than one range: {', '.join(repeated)}")
        both = sorted(set(names) & set(self.static_hyperparameters))
        if both:
            raise TuningRequestError(f"hyperparameters both static and tuned: {', '.join(both)}; "
                                     "remove them from the static hyperparameters")
        if OBJECTIVE_HYPERPARAMETER in self.static_hyperparameters or OBJECTIVE_HYPERPARAMETER in names:
            raise TuningRequestError(f"{OBJECTIVE_HYPERPARAMETER} is set by SageMaker from the objective metric; "
                                     "do not set it")
        if len(self.static_hyperparameters) + len(names) + 1 > MAX_HYPERPARAMETERS:
            raise TuningRequestError(f"static and tuned hyperparameters together must number at most "
                                     f"{MAX_HYPERPARAMETERS - 1}")
        known = spec.hyperparameters.by_name
        aliases = _ALIASES.get(self.algorithm, {})
        for r in self.ranges:
            hp = known.get(aliases.get(r.name, r.name))
            if hp is None:
                raise TuningRequestError(f"{self.algorithm} has no hyperparameter {r.name!r} to tune; allowed: "
                                         f"{', '.join(sorted(n for n in known if not n.startswith('_')))}")
            r.check(hp, self.algorithm)
        self._check_budget()
        self._check_trial_hyperparameters(spec)
        try:
            spec.validate_channels({name: ch.content_type for name, ch in self.channels.items()})
        except ValueError as exc:
            raise TuningRequestError(f"channels: {exc}") from None
        if self.warm_start_parents:
            if not 1 <= len(self.warm_start_parents) <= MAX_WARM_START_PARENTS:
                raise TuningRequestError(f"a warm start names 1 to {MAX_WARM_START_PARENTS} parent tuning jobs")
            if self.warm_start_type not in WARM_START_TYPES:
                raise TuningRequestError(f"warm start type {self.warm_start_type!r} is not one of "
                                         f"{', '.join(WARM_START_TYPES)}")

    def _check_budget(self) -> None:
        if self.strategy == "Grid":
            numeric = [r.name for r in self.ranges if r.kind != "Categorical"]
            if numeric:
                raise TuningRequestError(f"the Grid strategy takes categorical ranges only; {', '.join(numeric)} "
                                         "are numeric (use Bayesian or Random, or list their values)")
            combinations = self.grid_size()
            if combinations > MAX_TRAINING_JOBS:
                raise TuningRequestError(f"the grid has {combinations} combinations; at most {MAX_TRAINING_JOBS}")
            if self.max_jobs is not None and self.max_jobs != combinations:
                raise TuningRequestError(f"with the Grid strategy the number of trials is the number of "
                                         f"combinations ({combinations}); leave max_jobs unset or set it to that")
        elif self.max_jobs is None or not 1 <= self.max_jobs <= MAX_TRAINING_JOBS:
            raise TuningRequestError(f"max_jobs must be an integer in [1, {MAX_TRAINING_JOBS}] with the "
                                     f"{self.strategy} strategy; it is {self.max_jobs}")
        if not 1 <= self.max_parallel <= MAX_PARALLEL:
            raise TuningRequestError(f"max_parallel must be in [1, {MAX_PARALLEL}]; it is {self.max_parallel}")

    def _check_trial_hyperparameters(self, spec: AlgorithmSpec) -> None:
        """Each range's ends (and every categorical value), with the static hyperparameters and the other ranges
        at their first end, go through the algorithm's own validation: a range the algorithm refuses is reported
        now, not as N failed trials."""
        base = {**{str(k): str(v) for k, v in self.static_hyperparameters.items()},
                OBJECTIVE_HYPERPARAMETER: self.objective_metric}
        first = {r.name: r.ends()[0] for r in self.ranges}
        probes = [first] + [{**first, r.name: end} for r in self.ranges for end in r.ends()[1:]]
        for probe in probes:
            try:
                spec.validate_hyperparameters({**base, **probe})
            except ValueError as exc:  # HyperparameterError
                raise TuningRequestError(f"trials would be refused by {self.algorithm}: {exc} (static "
                                         f"hyperparameters with {probe})") from None

    # -- the API request ----------------------------------------------------------------------------------

    def _determinants(self) -> list[Any]:
        """What determines the tuning job's outcome; its hash names the job."""
        return [self.algorithm, self.image, dict(self.static_hyperparameters), [r.to_api() | {"Kind": r.kind}
                for r in self.ranges], self.objective_metric, self.strategy, self.max_jobs, self.max_parallel,
                self.early_stopping, list(self.warm_start_parents), self.warm_start_type, self.random_seed,
                self.data_fingerprint, {k: (c.content_type, c.distribution) for k, c in sorted(self.channels.items())},
                self.instance_type, self.instance_count]

    def job_name(self, attempt: int = 1) -> str:
        """``<prefix>-<hash>[-r<attempt>]`` within SageMaker's 32 characters for tuning jobs."""
        tail = "-" + content_hash(*self._determinants(), length=10) + ("" if attempt == 1 else f"-r{attempt}")
        return sanitize(self.name_prefix)[: MAX_TUNING_NAME - len(tail)].rstrip("-") + tail

    def create_kwargs(self, job_name: str) -> dict[str, Any]:
        """The CreateHyperParameterTuningJob request."""
        ranges: dict[str, list[dict[str, Any]]] = {"IntegerParameterRanges": [], "ContinuousParameterRanges": [],
                                                   "CategoricalParameterRanges": []}
        for r in self.ranges:
            ranges[f"{r.kind}ParameterRanges"].append(r.to_api())
        limits: dict[str, Any] = {"MaxParallelTrainingJobs": self.max_parallel}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_direction(),
                                                 "MetricName": self.objective_metric},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": self.early_stopping,
        }
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        kwargs: dict[str, Any] = {
            "HyperParameterTuningJobName": job_name,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": {
                # Built-in algorithms publish their metrics themselves: no MetricDefinitions.
                **job_definition_fields(
                    image=self.image, role_arn=self.role_arn, channels=self.channels, output_uri=self.output_uri,
                    instance_type=self.instance_type, instance_count=self.instance_count, volume_gb=self.volume_gb,
                    max_runtime_seconds=self.max_runtime_seconds, security=self.security),
                "StaticHyperParameters": {str(k): str(v) for k, v in self.static_hyperparameters.items()},
            },
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
        }
        if self.warm_start_parents:
            kwargs["WarmStartConfig"] = {
                "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in self.warm_start_parents],
                "WarmStartType": self.warm_start_type,
            }
        return kwargs

    def wait_seconds(self) -> float:
        """How long the tuning job may take at most: its trials in waves of ``max_parallel``, plus a margin."""
        jobs = self.max_jobs if self.max_jobs is not None else self.grid_size()
        return math.ceil(jobs / self.max_parallel) * self.max_runtime_seconds + WAIT_MARGIN_SECONDS


# --- the result -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One training job of a tuning job."""

    training_job_name: str
    status: str
    hyperparameters: dict[str, str]  # the tuned ones
    objective: float | None
    objective_status: str
    start: datetime | None
    end: datetime | None
    failure_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"training_job_name": self.training_job_name, "status": self.status,
                "hyperparameters": self.hyperparameters, "objective": self.objective,
                "objective_status": self.objective_status,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "failure_reason": self.failure_reason}


@dataclass(frozen=True)
class TuningResult:
    """A finished tuning job: its best training job and every trial, in creation order."""

    job_name: str
    status: str
    strategy: str
    objective_metric: str
    objective_type: str
    best_training_job_name: str
    best_objective: float
    best_hyperparameters: dict[str, str]  # the best trial's full hyperparameters (static + tuned)
    best_model_artifacts: str
    trials: list[Trial]
    adopted: bool
    seconds: float

    @property
    def maximize(self) -> bool:
        return self.objective_type == "Maximize"


def _trial(summary: Mapping[str, Any]) -> Trial:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return Trial(
        training_job_name=summary["TrainingJobName"],
        status=summary["TrainingJobStatus"],
        hyperparameters={str(k): str(v) for k, v in (summary.get("TunedHyperParameters") or {}).items()},
        objective=float(metric["Value"]) if "Value" in metric else None,
        objective_status=summary.get("ObjectiveStatus", "Pending"),
        start=summary.get("TrainingStartTime"),
        end=summary.get("TrainingEndTime"),
        failure_reason=summary.get("FailureReason"),
    )


def list_trials(sm: Any, name: str) -> list[Trial]:
    """Every trial of tuning job ``name`` (all pages), in creation order."""
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, SortBy="CreationTime", SortOrder="Ascending")
    return [_trial(s) for page in pages for s in page["TrainingJobSummaries"]]


def _result(sm: Any, desc: Mapping[str, Any], adopted: bool, seconds: float) -> TuningResult:
    name = desc["HyperParameterTuningJobName"]
    config = desc["HyperParameterTuningJobConfig"]
    best = desc.get("BestTrainingJob")
    if not best:
        raise TuningJobFailed(f"tuning job {name} ended {desc['HyperParameterTuningJobStatus']} without a trial "
                              f"that reported its objective: {desc.get('FailureReason', 'no reason given')}")
    job = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    return TuningResult(
        job_name=name,
        status=desc["HyperParameterTuningJobStatus"],
        strategy=config["Strategy"],
        objective_metric=config["HyperParameterTuningJobObjective"]["MetricName"],
        objective_type=config["HyperParameterTuningJobObjective"]["Type"],
        best_training_job_name=best["TrainingJobName"],
        best_objective=float(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]),
        best_hyperparameters={str(k): str(v) for k, v in (job.get("HyperParameters") or {}).items()},
        best_model_artifacts=job.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""),
        trials=list_trials(sm, name),
        adopted=adopted,
        seconds=seconds,
    )


# --- running ----------------------------------------------------------------------------------------------


def describe_tuning_job(sm: Any, name: str) -> dict[str, Any] | None:
    """Tuning job ``name``'s description, or None when there is none."""
    return TUNING_JOB.find(sm, name)


def stop_tuning_job(sm: Any, name: str, log: Callable[[str], None] = print,
                    confirm_seconds: float = STOP_CONFIRM_SECONDS) -> str:
    """Stop tuning job ``name`` (SageMaker stops its running trials) unless it ended; wait briefly to see it
    Stopping. Returns what happened, for the message of the exception that made us stop it."""
    return stop_job(sm, TUNING_JOB, name, log, confirm_seconds)


def _wait(sm: Any, name: str, poll_seconds: float, timeout_seconds: float,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Poll until tuning job ``name`` ends and return its description; stop it if the wait ends otherwise.

    botocore has no waiter for tuning jobs, so this polls Describe itself, logging the trial counters when
    they change.
    """
    deadline = time.monotonic() + timeout_seconds
    seen: tuple[Any, ...] = ()
    with stopped_if_abandoned(f"tuning job {name}", lambda: stop_tuning_job(sm, name, log), TuningJobFailed, log):
        while True:
            desc = TUNING_JOB.describe(sm, name)
            status = desc[TUNING_JOB.status_field]
            if status in ENDED:
                return desc
            counters = desc.get("TrainingJobStatusCounters", {})
            now = (status, *sorted(counters.items()))
            if now != seen:
                seen = now
                log(f"tuning job {name}: {status}, trials "
                    + ", ".join(f"{k} {v}" for k, v in sorted(counters.items()) if v))
            if time.monotonic() >= deadline:
                raise TuningJobFailed(f"tuning job {name} was still {status} after {timeout_seconds:.0f}s")
            time.sleep(poll_seconds)


def run_tuning_job(sm: Any, request: TuningRequest, poll_seconds: float = 30.0,
                   log: Callable[[str], None] = print) -> TuningResult:
    """Tune (or adopt) the tuning job that ``request`` determines, wait until it ends, and return its trials."""
    request.validate()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = request.job_name(attempt)
        started = time.monotonic()
        desc = describe_tuning_job(sm, name)
        if desc is not None:
            status = desc["HyperParameterTuningJobStatus"]
            if status == "Completed":
                log(f"adopting completed tuning job {name}")
                return _result(sm, desc, adopted=True, seconds=0.0)
            if status in ("InProgress", "Stopping"):
                log(f"re-attaching to running tuning job {name}")
                desc = _wait(sm, name, poll_seconds, request.wait_seconds(), log)
                if desc["HyperParameterTuningJobStatus"] == "Completed":
                    return _result(sm, desc, adopted=True, seconds=time.monotonic() - started)
            log(f"tuning job {name} ended {desc['HyperParameterTuningJobStatus']}: "
                f"{desc.get('FailureReason', '')}; retrying")
            continue
        log(f"creating tuning job {name}: {request.strategy}, {request.max_jobs or request.grid_size()} trials, "
            f"{request.max_parallel} at a time, objective {request.objective_metric}")
        sm.create_hyper_parameter_tuning_job(**request.create_kwargs(name))
        desc = _wait(sm, name, poll_seconds, request.wait_seconds(), log)
        if desc["HyperParameterTuningJobStatus"] != "Completed":
            raise TuningJobFailed(f"tuning job {name} ended {desc['HyperParameterTuningJobStatus']}: "
                                  f"{desc.get('FailureReason', 'no reason given')}")
        result = _result(sm, desc, adopted=False, seconds=time.monotonic() - started)
        log(f"tuning job {name} completed in {result.seconds:.1f}s; best {result.best_training_job_name} "
            f"{result.objective_metric}={result.best_objective:g}")
        return result
    raise TuningJobFailed(f"{MAX_ATTEMPTS} attempts of tuning job {request.job_name()} failed; see their "
                          "FailureReason")


def adopt_training_job(sm: Any, job_name: str) -> TrainingResult:
    """A completed training job (e.g. a tuning job's best trial) as a :class:`TrainingResult`, so a model asset
    can register and gate it without training again. Raises :class:`TuningJobFailed` if it is not Completed."""
    desc = sm.describe_training_job(TrainingJobName=job_name)
    if desc["TrainingJobStatus"] != "Completed":
        raise TuningJobFailed(f"training job {job_name} is {desc['TrainingJobStatus']}, not Completed: it cannot "
                              "be adopted")
    return training_result(desc, adopted=True)
