"""CreateHyperParameterTuningJob: the request checked with SageMaker's rules before anything exists.

:func:`check_request` refuses what SageMaker refuses (names, strategy constraints, limits, ranges, objective,
warm start) and what this service cannot run (Hyperband, several training definitions, Autotune), each with a
ValidationException naming the member. It also checks the trials' hyperparameters before the first trial:
the static hyperparameters with each range's ends (and every categorical value) go through the algorithm's own
validation, so a range the algorithm refuses is reported at create, not as N failed trials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from smspark_assets.local.algorithm_lookup import SCRIPT, AlgorithmRef, load_algorithm
from smspark_assets.local.api_errors import ApiError, validation
from smspark_assets.local.process_environment import TRAINING_LIMITS, check_environment
from smspark_assets.local.tuning_search import SearchSpace, SearchSpaceError
from smspark_assets.sagemaker.errors import HyperparameterError

TUNING_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
OBJECTIVE_METRIC = "_tuning_objective_metric"
MAX_TRAINING_JOBS = 500  # SageMaker's default quota of training jobs per tuning job
MAX_HYPERPARAMETERS = 100
MIN_RUNTIME, MAX_RUNTIME = 120, 15768000


@dataclass(frozen=True)
class TuningPlan:
    """What the controller needs, derived from a valid request."""

    strategy: str
    space: SearchSpace
    maximize: bool
    metric: str
    max_jobs: int
    max_parallel: int
    max_runtime: int | None
    early_stopping: bool
    seed: int | None
    target: float | None
    not_improving: int | None
    algorithm: str


def _member(p: dict[str, Any], *path: str) -> Any:
    value: Any = p
    for i, key in enumerate(path):
        if not isinstance(value, dict) or value.get(key) in (None, ""):
            raise validation(
                f"1 validation error detected: Value null at '{'.'.join(path[: i + 1])}' failed to satisfy "
                "constraint: Member must not be null"
            )
        value = value[key]
    return value


def _enum(value: Any, member: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _int(value: Any, member: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"greater than or equal to {low}"
        raise validation(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
    return value


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not TUNING_NAME_RE.match(name):
        raise validation(
            f"1 validation error detected: Value '{name}' at 'hyperParameterTuningJobName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {TUNING_NAME_RE.pattern} "
            "(1-32 letters, digits and hyphens)"
        )
    return name


def check_request(
    p: dict[str, Any],
    resolve: Callable[[str, str], AlgorithmRef],
    check_s3_uri: Callable[[Any, str], str],
) -> TuningPlan:
    """Validate a CreateHyperParameterTuningJob request; returns the plan or raises :class:`ApiError`."""
    check_name(_member(p, "HyperParameterTuningJobName"))
    config = _member(p, "HyperParameterTuningJobConfig")
    strategy = _member(p, "HyperParameterTuningJobConfig", "Strategy")
    _enum(strategy, "hyperParameterTuningJobConfig.strategy", STRATEGIES)
    if strategy == "Hyperband":
        raise validation(
            "Strategy Hyperband is not supported locally (it needs per-epoch resource allocation); "
            "use Bayesian, Random or Grid"
        )
    if p.get("TrainingJobDefinitions"):
        raise validation(
            "TrainingJobDefinitions (several algorithms in one tuning job) is not supported locally; "
            "give one TrainingJobDefinition"
        )
    if p.get("Autotune"):
        raise validation("Autotune is not supported locally; give the strategy and ranges explicitly")
    definition = _member(p, "TrainingJobDefinition")
    early = config.get("TrainingJobEarlyStoppingType", "Off")
    _enum(early, "hyperParameterTuningJobConfig.trainingJobEarlyStoppingType", ("Off", "Auto"))

    objective = _member(p, "HyperParameterTuningJobConfig", "HyperParameterTuningJobObjective")
    _enum(objective.get("Type"), "hyperParameterTuningJobConfig.hyperParameterTuningJobObjective.type",
          ("Maximize", "Minimize"))
    metric = _member(p, "HyperParameterTuningJobConfig", "HyperParameterTuningJobObjective", "MetricName")

    ranges = definition.get("HyperParameterRanges") or config.get("ParameterRanges")
    if definition.get("HyperParameterRanges") and config.get("ParameterRanges"):
        raise validation("Give ParameterRanges in HyperParameterTuningJobConfig or in TrainingJobDefinition, not both")
    try:
        space = SearchSpace.from_ranges(ranges)
    except SearchSpaceError as exc:
        raise validation(str(exc)) from None
    if not space.parameters:
        raise validation("ParameterRanges must name at least one hyperparameter to tune")

    limits = _member(p, "HyperParameterTuningJobConfig", "ResourceLimits")
    max_parallel = _int(_member(limits, "MaxParallelTrainingJobs"),
                        "hyperParameterTuningJobConfig.resourceLimits.maxParallelTrainingJobs", 1, 100)
    max_jobs_given = limits.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        if any(prm.kind != "Categorical" for prm in space.parameters):
            raise validation("The Grid strategy takes only CategoricalParameterRanges")
        combinations = len(space.grid())
        if combinations > MAX_TRAINING_JOBS:
            raise validation(f"The grid has {combinations} combinations; at most {MAX_TRAINING_JOBS} are allowed")
        if max_jobs_given is not None and max_jobs_given != combinations:
            raise validation(
                f"With the Grid strategy, MaxNumberOfTrainingJobs must equal the number of distinct "
                f"combinations of the categorical values ({combinations}), or be omitted; it is {max_jobs_given}"
            )
        max_jobs = combinations
    else:
        max_jobs = _int(_member(limits, "MaxNumberOfTrainingJobs"),
                        "hyperParameterTuningJobConfig.resourceLimits.maxNumberOfTrainingJobs", 1, MAX_TRAINING_JOBS)
    runtime = limits.get("MaxRuntimeInSeconds")
    if runtime is not None:
        _int(runtime, "hyperParameterTuningJobConfig.resourceLimits.maxRuntimeInSeconds", MIN_RUNTIME, MAX_RUNTIME)
    seed = config.get("RandomSeed")
    if seed is not None:
        _int(seed, "hyperParameterTuningJobConfig.randomSeed", 0, 2**31 - 1)

    criteria = config.get("TuningJobCompletionCriteria") or {}
    target = criteria.get("TargetObjectiveMetricValue")
    if target is not None and not isinstance(target, (int, float)):
        raise validation("TuningJobCompletionCriteria.TargetObjectiveMetricValue must be a number")
    not_improving = (criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
    if not_improving is not None:
        _int(not_improving, "tuningJobCompletionCriteria.bestObjectiveNotImproving.maxNumberOfTrainingJobsNotImproving", 3)
    if (criteria.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled":
        raise validation(
            "ConvergenceDetected.CompleteOnConvergence=Enabled is not supported locally; use "
            "TargetObjectiveMetricValue or BestObjectiveNotImproving"
        )

    ref = _check_definition(definition, resolve, check_s3_uri)
    _check_hyperparameters(definition, space, metric, ref)
    return TuningPlan(
        strategy=strategy, space=space, maximize=objective["Type"] == "Maximize", metric=metric,
        max_jobs=max_jobs, max_parallel=max_parallel, max_runtime=runtime, early_stopping=early == "Auto",
        seed=seed, target=float(target) if target is not None else None, not_improving=not_improving,
        algorithm=ref.algorithm,
    )


def _check_definition(
    definition: dict[str, Any], resolve: Callable[[str, str], AlgorithmRef], check_s3_uri: Callable[[Any, str], str]
) -> AlgorithmRef:
    prefix = "trainingJobDefinition"
    spec = _member(definition, "AlgorithmSpecification")
    if spec.get("AlgorithmName") and not spec.get("TrainingImage"):
        raise validation("AlgorithmSpecification.AlgorithmName is not supported locally; give TrainingImage")
    _member(definition, "AlgorithmSpecification", "TrainingInputMode")
    image = _member(definition, "AlgorithmSpecification", "TrainingImage")
    _member(definition, "RoleArn")
    check_s3_uri(_member(definition, "OutputDataConfig", "S3OutputPath"), f"{prefix}.outputDataConfig.s3OutputPath")
    _member(definition, "StoppingCondition")
    for i, channel in enumerate(definition.get("InputDataConfig") or []):
        uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        check_s3_uri(uri, f"{prefix}.inputDataConfig.{i + 1}.member.dataSource.s3DataSource.s3Uri")
    check_environment(definition.get("Environment"), f"{prefix}.environment", TRAINING_LIMITS)
    for item in spec.get("MetricDefinitions") or []:
        try:
            re.compile(str(item.get("Regex", "")))
        except re.error as exc:
            raise validation(f"MetricDefinitions {item.get('Name')!r}: Regex is not valid: {exc}") from None
    return resolve(image, f"{prefix}.algorithmSpecification.trainingImage")


def _check_hyperparameters(definition: dict[str, Any], space: SearchSpace, metric: str, ref: AlgorithmRef) -> None:
    static = definition.get("StaticHyperParameters") or {}
    if not isinstance(static, dict):
        raise validation("StaticHyperParameters must be a map of strings")
    overlap = sorted(set(static) & set(space.names))
    if overlap:
        raise validation(f"Hyperparameters are both static and tuned: {', '.join(overlap)}")
    if len(static) + len(space.names) + 1 > MAX_HYPERPARAMETERS:
        raise validation(f"Static and tuned hyperparameters together must number at most {MAX_HYPERPARAMETERS}")
    definitions = (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    if ref.algorithm == SCRIPT and metric not in {d.get("Name") for d in definitions}:
        raise validation(
            f"The objective metric {metric!r} is not emitted by the algorithm: custom images report only the "
            "metrics of AlgorithmSpecification.MetricDefinitions "
            f"({', '.join(str(d.get('Name')) for d in definitions) or 'none given'})"
        )
    try:
        algorithm = load_algorithm(ref)
    except (ImportError, KeyError, ValueError) as exc:
        raise validation(f"The local implementation of {ref.algorithm!r} cannot be loaded: {exc}") from None
    base = {str(k): str(v) for k, v in static.items()} | {OBJECTIVE_METRIC: metric}
    # The ends of each range (and each categorical value), with the other ranges at their low end.
    low = {p.name: p.format(p.low) if p.kind != "Categorical" else p.values[0] for p in space.parameters}
    probes = [low]
    for p in space.parameters:
        ends = p.values if p.kind == "Categorical" else (p.format(p.high),)
        probes.extend({**low, p.name: value} for value in ends)
    for probe in probes:
        try:
            algorithm.validate_hyperparameters({**base, **probe})
        except HyperparameterError as exc:
            raise validation(
                f"The training jobs of this tuning job would be refused: {exc} (checked with the static "
                f"hyperparameters and the range ends {probe})"
            ) from None
        except ApiError:
            raise
