"""Hyperparameter tuning: a SageMaker tuning job over a built-in algorithm's channels, as an asset.

:func:`build_tuning_asset` makes the tuning asset of any built-in algorithm; :data:`credit_model_tuning` is the
credit model's (XGBoost on ``credit_training_channels``, ``validation:auc`` maximized). The tuning job is named
by what determines it (channels fingerprint, image, static hyperparameters, ranges, strategy, budget), so a
re-materialization with nothing changed adopts the completed job and trains nothing.

Each trial's hyperparameters and objective are in the materialization's metadata (a table, the JSON, and a
plot of the objective per trial), and the handle names the best training job. :func:`tuned_challenger` hands
that handle to the model asset when it was tuned on the channels the model trains on: the model then adopts the
best training job (:func:`smspark_assets.sagemaker.tuning.adopt_training_job`) as its challenger instead of
training again.
"""

import base64
import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import dagster as dg
import numpy as np
from pydantic import Field

from smspark_assets.environment import region
from smspark_assets.layout import layout
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker.algorithms import algorithm_spec
from smspark_assets.sagemaker.training import Channel
from smspark_assets.sagemaker.tuning import (
    ParameterRange,
    Trial,
    TuningRequest,
    TuningRequestError,
    TuningResult,
    run_tuning_job,
)

CREDIT_TUNING = "credit_model_tuning"


class ParameterRangeConfig(dg.Config):
    """One tuned hyperparameter, as SageMaker's ParameterRanges take it."""

    name: str = Field(description="The algorithm's hyperparameter name, e.g. eta.")
    kind: str = Field(default="Continuous", description="Integer, Continuous or Categorical.")
    min_value: float | None = Field(default=None, description="Lowest value (Integer and Continuous ranges).")
    max_value: float | None = Field(default=None, description="Highest value (Integer and Continuous ranges).")
    values: list[str] = Field(default_factory=list, description="The values of a Categorical range.")
    scaling: str = Field(default="Auto", description="Auto, Linear, Logarithmic or ReverseLogarithmic.")

    def to_range(self) -> ParameterRange:
        return ParameterRange(self.name, self.kind, self.min_value, self.max_value, tuple(self.values),
                              self.scaling)


@dataclass(frozen=True)
class TuningDefaults:
    """The defaults of one tuning asset's config (shown, editable, in the launchpad)."""

    ranges: Sequence[ParameterRangeConfig]
    static_hyperparameters: Mapping[str, str]
    objective_metric: str
    strategy: str = "Bayesian"
    max_jobs: int | None = 8
    max_parallel: int = 2
    early_stopping: str = "Off"
    random_seed: int = 7
    instance_type: str = "ml.m5.xlarge"


@dataclass(frozen=True)
class TunedData:
    """What a tuning job trains on, read from the upstream channels handle."""

    channels: dict[str, Channel]
    fingerprint: str


def _config_class(asset_name: str, defaults: TuningDefaults) -> type[dg.Config]:
    """A config class whose defaults are this asset's (each tuning asset tunes its own algorithm)."""

    class TuningConfig(dg.Config):
        # Plain dicts as defaults, so the launchpad shows them; validate_default makes them range configs.
        ranges: list[ParameterRangeConfig] = Field(
            default=[r.model_dump() for r in defaults.ranges], validate_default=True,
            description="The hyperparameters to tune and their ranges (checked against the algorithm's "
                        "hyperparameters before any job starts).")
        static_hyperparameters: dict[str, str] = Field(
            default=dict(defaults.static_hyperparameters),
            description="Hyperparameters every trial receives unchanged (strings).")
        objective_metric: str = Field(default=defaults.objective_metric,
                                      description="A metric the algorithm publishes; its direction is the "
                                                  "metric's own (e.g. validation:auc is maximized).")
        strategy: str = Field(default=defaults.strategy, description="Bayesian, Random or Grid.")
        max_jobs: int | None = Field(default=defaults.max_jobs,
                                     description="The budget: training jobs in all (unset with Grid: one per "
                                                 "combination).")
        max_parallel: int = Field(default=defaults.max_parallel, description="Training jobs at once, at most.")
        early_stopping: str = Field(default=defaults.early_stopping,
                                    description="Off, or Auto: stop trials worse than the median of earlier "
                                                "ones at the same epoch.")
        warm_start_parents: list[str] = Field(default=[],
                                              description="Tuning jobs whose trials seed this search (1-5).")
        warm_start_type: str = Field(default="IdenticalDataAndAlgorithm",
                                     description="IdenticalDataAndAlgorithm or TransferLearning.")
        random_seed: int = Field(default=defaults.random_seed, description="Seed of the search strategy.")
        instance_type: str = defaults.instance_type

    TuningConfig.__name__ = TuningConfig.__qualname__ = "".join(p.title() for p in asset_name.split("_")) + "Config"
    return TuningConfig


def build_tuning_asset(*, name: str, algorithm: str, channels_asset: str,
                       data_of: Callable[[Mapping[str, Any]], TunedData], name_prefix: str,
                       output_uri: Callable[[], str], defaults: TuningDefaults, group_name: str,
                       description: str) -> dg.AssetsDefinition:
    """The tuning asset of built-in ``algorithm`` over the channels handle of ``channels_asset``.

    ``data_of`` reads the channels and their fingerprint from that handle; ``name_prefix`` starts the tuning
    job's name (and so every trial's); ``output_uri`` is where the trials write their models.
    """
    spec = algorithm_spec(algorithm)  # KeyError naming the known algorithms, at definition time
    config_class = _config_class(name, defaults)

    @dg.asset(
        name=name,
        group_name=group_name,
        kinds={"sagemaker", algorithm.replace("-", "")},
        io_manager_key="json_io_manager",
        ins={"channels_handle": dg.AssetIn(channels_asset)},
        description=description,
    )
    def _tuning(context: dg.AssetExecutionContext, config: config_class,  # type: ignore[valid-type]
                channels_handle: dict[str, Any], sagemaker: SageMakerResource) -> dg.Output[dict[str, Any]]:
        data = data_of(channels_handle)
        request = TuningRequest(
            algorithm=algorithm, name_prefix=name_prefix,
            image=spec.image_uri(sagemaker.region_name or region()), role_arn=sagemaker.role_arn,
            static_hyperparameters=dict(config.static_hyperparameters),
            ranges=[r.to_range() for r in config.ranges], objective_metric=config.objective_metric,
            channels=data.channels, output_uri=output_uri(), data_fingerprint=data.fingerprint,
            strategy=config.strategy, max_jobs=config.max_jobs, max_parallel=config.max_parallel,
            early_stopping=config.early_stopping, warm_start_parents=tuple(config.warm_start_parents),
            warm_start_type=config.warm_start_type, random_seed=config.random_seed,
            instance_type=config.instance_type,
            tags={"project": "smspark_assets", "asset": name}, security=sagemaker.security(),
        )
        try:
            request.validate()
        except TuningRequestError as exc:
            raise dg.Failure(f"{name}: {exc}") from exc
        result = run_tuning_job(sagemaker.sagemaker, request, poll_seconds=sagemaker.poll_seconds,
                                log=context.log.info)
        handle = tuning_handle(result, algorithm, request.image, data.fingerprint)
        return dg.Output(handle, metadata=tuning_metadata(result, handle))

    return _tuning


def tuning_handle(result: TuningResult, algorithm: str, image: str, fingerprint: str) -> dict[str, Any]:
    """What the model asset needs to adopt the best training job, and every trial."""
    return {
        "tuning_job_name": result.job_name,
        "algorithm": algorithm,
        "image": image,
        "strategy": result.strategy,
        "objective_metric": result.objective_metric,
        "objective_type": result.objective_type,
        "objective_value": result.best_objective,
        "best_training_job_name": result.best_training_job_name,
        "best_hyperparameters": result.best_hyperparameters,
        "best_model_artifacts": result.best_model_artifacts,
        "channels_fingerprint": fingerprint,
        "trials": [t.to_json() for t in result.trials],
    }


def trial_summaries(handle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The handle's trials in SageMaker's ``HyperParameterTrainingJobSummary`` field names (what the model
    page's trials table reads)."""
    out = []
    for t in handle.get("trials", []):
        summary: dict[str, Any] = {"TrainingJobName": t["training_job_name"], "TrainingJobStatus": t["status"],
                                   "TunedHyperParameters": dict(t["hyperparameters"]),
                                   "ObjectiveStatus": t["objective_status"]}
        if t.get("objective") is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": handle["objective_type"], "MetricName": handle["objective_metric"], "Value": t["objective"]}
        out.append(summary)
    return out


def max_concurrent(trials: Sequence[Trial]) -> int:
    """Most trials that trained at the same time, from their start and end times (an end at the very moment
    another starts does not overlap it)."""
    spans = [(t.start.timestamp(), t.end.timestamp()) for t in trials if t.start and t.end]
    if not spans:
        return 0
    times = np.array(spans, dtype=np.float64)
    events = np.concatenate([times[:, 0], times[:, 1]])
    steps = np.concatenate([np.ones(len(times)), -np.ones(len(times))])
    order = np.lexsort((steps, events))  # ends (-1) before starts (+1) at equal times
    return int(np.cumsum(steps[order]).max())


def trials_markdown(result: TuningResult) -> str:
    """Every trial as a markdown table: tuned hyperparameters, objective, status; the best one marked."""
    names = sorted({k for t in result.trials for k in t.hyperparameters})
    header = ["#", "training job", *names, result.objective_metric, "status", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, t in enumerate(result.trials, start=1):
        best = t.training_job_name == result.best_training_job_name
        seconds = f"{(t.end - t.start).total_seconds():.1f}" if t.start and t.end else ""
        objective = "" if t.objective is None else f"{t.objective:.5g}"
        row = [str(i), f"**{t.training_job_name}** (best)" if best else t.training_job_name,
               *[_short(t.hyperparameters.get(n, "")) for n in names], f"**{objective}**" if best else objective,
               t.status + (f": {t.failure_reason}" if t.failure_reason else ""), seconds]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def _short(value: str) -> str:
    """A hyperparameter for the table: numbers to 4 significant digits (the JSON keeps them whole)."""
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def objective_plot_markdown(result: TuningResult) -> str:
    """The objective per trial (creation order) and the best so far, as a small PNG embedded in markdown
    (Dagster has no image metadata type)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.array([np.nan if t.objective is None else t.objective for t in result.trials], dtype=np.float64)
    if not np.isfinite(values).any():
        return "_no trial reported the objective_"
    signed = values if result.maximize else -values
    best_so_far = np.fmax.accumulate(np.where(np.isfinite(signed), signed, -np.inf))
    best_so_far = np.where(np.isfinite(best_so_far), best_so_far, np.nan) * (1 if result.maximize else -1)
    x = np.arange(1, len(values) + 1)
    fig, ax = plt.subplots(figsize=(5, 2.8), dpi=90)
    try:
        ax.plot(x, values, "o", color="tab:blue", label="trial")
        ax.step(x, best_so_far, where="post", color="tab:orange", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(result.objective_metric)
        ax.set_xticks(x)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{result.objective_metric} per trial](data:image/png;base64,{encoded})"


def tuning_metadata(result: TuningResult, handle: Mapping[str, Any]) -> dict[str, Any]:
    objective_counts = {s: sum(t.objective_status == s for t in result.trials)
                        for s in ("Succeeded", "Pending", "Failed")}
    return {
        "tuning_job_name": result.job_name,
        "adopted_existing_job": result.adopted,
        "strategy": result.strategy,
        "objective": f"{result.objective_type} {result.objective_metric}",
        "best_training_job_name": result.best_training_job_name,
        "best_objective": result.best_objective,
        "best_hyperparameters": dg.MetadataValue.json(result.best_hyperparameters),
        "best_model_artifacts": dg.MetadataValue.path(result.best_model_artifacts),
        "trials": dg.MetadataValue.md(trials_markdown(result)),
        "trials_json": dg.MetadataValue.json([t.to_json() for t in result.trials]),
        "objective_per_trial": dg.MetadataValue.md(objective_plot_markdown(result)),
        "trial_count": len(result.trials),
        "trials_with_objective": objective_counts["Succeeded"],
        "max_concurrent_trials": max_concurrent(result.trials),
        "tuning_seconds": round(result.seconds, 2),
        # The whole handle, so :func:`tuned_challenger` can read it from the instance alone.
        "handle": dg.MetadataValue.json(dict(handle)),
    }


def tuned_challenger(instance: dg.DagsterInstance, channels_fingerprint: str) -> dict[str, Any] | None:
    """The latest ``credit_model_tuning`` handle when it was tuned on channels with ``channels_fingerprint``,
    else ``None`` (never tuned, or tuned on other data: its best job would not be a fair challenger)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(CREDIT_TUNING))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None or "handle" not in materialization.metadata:
        return None
    handle = materialization.metadata["handle"].value
    if not isinstance(handle, dict) or handle.get("channels_fingerprint") != channels_fingerprint:
        return None
    return dict(handle)


def _credit_data(handle: Mapping[str, Any]) -> TunedData:
    return TunedData(channels={name: Channel(uri, handle["content_type"]) for name, uri in handle["channels"].items()},
                     fingerprint=handle["fingerprint"])


# Small enough for the demo data: 8 trials, 2 at a time.
CREDIT_TUNING_RANGES = (
    ParameterRangeConfig(name="eta", kind="Continuous", min_value=0.03, max_value=0.3, scaling="Logarithmic"),
    ParameterRangeConfig(name="max_depth", kind="Integer", min_value=2, max_value=6, scaling="Linear"),
    ParameterRangeConfig(name="min_child_weight", kind="Continuous", min_value=1, max_value=10,
                         scaling="Logarithmic"),
    ParameterRangeConfig(name="subsample", kind="Continuous", min_value=0.6, max_value=1.0, scaling="Linear"),
)

# The credit model's defaults (assets/training.py) less the tuned ones. Repeated rather than imported: the model
# asset imports :func:`tuned_challenger` from here, and the import must not go both ways.
CREDIT_STATIC_HYPERPARAMETERS = {"objective": "binary:logistic", "eval_metric": "auc", "num_round": "300",
                                 "early_stopping_rounds": "25", "colsample_bytree": "0.8", "seed": "7"}

credit_model_tuning = build_tuning_asset(
    name=CREDIT_TUNING,
    algorithm="xgboost",
    channels_asset="credit_training_channels",
    data_of=_credit_data,
    name_prefix="credit-default-tune",
    output_uri=lambda: f"{layout().model_output}/tuning",
    defaults=TuningDefaults(
        ranges=CREDIT_TUNING_RANGES,
        static_hyperparameters=CREDIT_STATIC_HYPERPARAMETERS,
        objective_metric="validation:auc",
    ),
    group_name="training",
    description="A SageMaker hyperparameter tuning job (XGBoost 1.7, Bayesian by default) on the credit "
                "training channels, maximizing validation:auc. Named by what determines it and adopted when it "
                "already completed. Its best training job is the credit model's challenger; every trial's "
                "hyperparameters and objective are in the metadata.",
)
