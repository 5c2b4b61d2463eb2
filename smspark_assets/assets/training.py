"""Training: Spark writes the XGBoost channels; SageMaker trains the model behind a blocking quality gate.

:func:`train_register_and_gate` is the one train -> register -> gate path of the project: the credit
models here, the script-mode model and every demo model of :mod:`.algorithm_models` go through it.
"""


from typing import Any, Callable, Iterator, Mapping

import dagster as dg
from pydantic import Field

from smspark_assets.assets.algorithm_catalog import GateOutcome
from smspark_assets.assets.features import credit_features
from smspark_assets.assets.champion_challenger import GATE_METRIC, Margins
from smspark_assets.assets.credit_assessment import assess_credit_model
from smspark_assets.assets.model_lifecycle import Assessment, RegistryTarget, approval_mode, register_and_decide
from smspark_assets.assets.tuning import trial_summaries, tuned_challenger
from smspark_assets.environment import region
from smspark_assets.layout import layout
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.algorithms import AlgorithmSpec, algorithm_spec
from smspark_assets.sagemaker.tuning import adopt_training_job
from smspark_assets.sagemaker.training import (
    Channel,
    TrainingRequest,
    TrainingResult,
    ensure_model,
    run_training_job,
)

LABEL = "defaulted_12m"
# The check's name predates the test-split gate; kept so run history and alert rules stay attached to it.
QUALITY_GATE = "validation_auc_gate"
MODEL_PACKAGE_GROUP = "credit-default"

DEFAULT_HYPERPARAMETERS: dict[str, str] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "num_round": "300",
    "early_stopping_rounds": "25",
    "max_depth": "5",
    "eta": "0.1",
    "subsample": "0.8",
    "colsample_bytree": "0.8",
    "min_child_weight": "5",
    "seed": "7",
}


class ModelConfig(dg.Config):
    """How the credit default model is trained and what it must reach to be served."""

    hyperparameters: dict[str, str] = Field(
        default=DEFAULT_HYPERPARAMETERS,
        description="SageMaker XGBoost 1.7 hyperparameters, as strings (validated before any job starts).")
    min_test_auc: float = Field(default=0.7, description="Every model's floor: AUC on the held-out test split "
                                                        "at least this (the only rule for the first model).")
    max_auc_drop: float = Field(default=0.01, description="A challenger's test AUC may be at most this much "
                                                          "below the serving champion's.")
    max_ece_increase: float = Field(default=0.02, description="A challenger's expected calibration error may be "
                                                              "at most this much above the champion's.")
    max_score_psi: float = Field(default=0.25, description="PSI of the challenger's test scores against the "
                                                           "champion's at most this (0.25: a major shift).")
    approval: str | None = Field(default=None, description="automatic (a model that passes is Approved and "
                                 "served) or manual (PendingManualApproval until approve_model_version); "
                                 "default: SMSPARK_MODEL_APPROVAL, else automatic.")
    use_tuned_challenger: bool = Field(
        default=True, description="When `credit_model_tuning` last ran on these same channels, its best training "
                                  "job is the challenger (adopted, not retrained) instead of `hyperparameters`.")
    instance_type: str = "ml.m5.xlarge"


@dg.asset(
    deps=[credit_features],
    group_name="training",
    kinds={"spark", "csv", "s3"},
    io_manager_key="json_io_manager",
)
def credit_training_channels(context: dg.AssetExecutionContext, spark: SparkJobRunner,
                             store: ObjectStoreResource) -> dg.Output[dict[str, Any]]:
    """The `train` and `validation` channels for SageMaker XGBoost, written by Spark as CSV (label first,
    no header) from every materialized day of features; with a content fingerprint that names the model."""
    days = sorted(context.instance.get_materialized_partitions(credit_features.key))
    if not days:
        raise dg.Failure("no day of credit_features is materialized yet; materialize some days first")
    paths = layout()
    invocation = spark.run(context, "write_channels", {
        "features_prefix": paths.features,
        "partitions": days,
        "label": LABEL,
        "output_prefix": paths.channels,
    })
    reported = invocation.get_materialize_result().metadata or {}
    # Folder prefixes end with "/": S3Prefix (and the fingerprint's listing) would otherwise also take
    # sibling keys such as ``train_old/``.
    channels = {name: f"{paths.channels}/{name}/" for name in ("train", "validation")}
    fingerprint = store.fingerprint(channels["train"])[:16] + store.fingerprint(channels["validation"])[:16]
    handle = {
        "channels": channels,
        "content_type": "text/csv",
        "fingerprint": fingerprint,
        "feature_columns": _plain(reported.get("feature_columns")),
        "days": days,
    }
    metadata = {**reported, "fingerprint": fingerprint, "days": len(days),
                "first_day": days[0], "last_day": days[-1]}
    return dg.Output(handle, metadata=metadata)


def _plain(value: Any) -> Any:
    """Metadata values reported through Pipes arrive wrapped; the handle stores plain JSON."""
    return getattr(value, "value", value)


@dg.asset(
    group_name="training",
    kinds={"sagemaker", "xgboost"},
    io_manager_key="json_io_manager",
    check_specs=[dg.AssetCheckSpec(QUALITY_GATE, asset="credit_default_model", blocking=True,
                                   description="Champion against challenger on the held-out test split: test "
                                               "AUC, calibration error and score PSI within the configured "
                                               "margins (the first model: test AUC at least the minimum); a "
                                               "model that fails it never reaches the endpoint.")],
)
def credit_default_model(context: dg.AssetExecutionContext, config: ModelConfig,
                         credit_training_channels: dict[str, Any], sagemaker: SageMakerResource,
                         store: ObjectStoreResource) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """A SageMaker XGBoost model of 12-month default risk: a training job named by what determines it
    (data fingerprint, image, hyperparameters), adopted when it already completed, judged against the
    serving champion on the test split, and registered as a version of the model package group
    `credit-default` when it passes. The materialization is its model page: curves, calibration, feature
    importance, learning curve, the champion/challenger table, and whether it serves."""
    spec = algorithm_spec("xgboost")
    try:
        margins = Margins(config.min_test_auc, config.max_auc_drop, config.max_ece_increase, config.max_score_psi)
        approval = approval_mode(config.approval)
    except ValueError as exc:
        raise dg.Failure(f"credit_default_model: invalid settings: {exc}") from exc

    # The tuning's best trial becomes the challenger when it was tuned on exactly these channels.
    tuned = (tuned_challenger(context.instance, credit_training_channels["fingerprint"])
             if config.use_tuned_challenger else None)
    if tuned is not None:
        context.log.info(f"challenger: tuning job {tuned['tuning_job_name']}'s best training job "
                         f"{tuned['best_training_job_name']} ({tuned['objective_metric']} = "
                         f"{tuned['objective_value']})")

    def assess(result: TrainingResult, metrics: Mapping[str, float]) -> Assessment:
        return assess_credit_model(
            sm=sagemaker.sagemaker, s3=sagemaker.client("s3"), logs=sagemaker.client("logs"), store=store,
            group=MODEL_PACKAGE_GROUP, features_prefix=layout().features, days=credit_training_channels["days"],
            feature_columns=credit_training_channels.get("feature_columns") or [], label=LABEL, margins=margins,
            result=result, metrics=metrics, log=context.log.info,
            tuning_trials=trial_summaries(tuned) if tuned else None)

    yield from train_on_credit_channels(
        context, sagemaker, credit_training_channels, spec=spec, name_prefix="credit-default-xgb",
        image=spec.image_uri(sagemaker.region_name or region()),
        hyperparameters=tuned["best_hyperparameters"] if tuned else config.hyperparameters,
        instance_type=config.instance_type, gate_metric=GATE_METRIC, minimum=config.min_test_auc,
        check_name=QUALITY_GATE, assess=assess, adopt_job=tuned["best_training_job_name"] if tuned else None,
        registry=RegistryTarget(MODEL_PACKAGE_GROUP, approval, "12-month default risk of credit applications "
                                                               "(SageMaker XGBoost)"))


def train_on_credit_channels(context: dg.AssetExecutionContext, sagemaker: SageMakerResource,
                             channels: Mapping[str, Any], *, spec: AlgorithmSpec | None, name_prefix: str,
                             image: str, hyperparameters: Mapping[str, str], instance_type: str, gate_metric: str,
                             minimum: float, check_name: str, metric_definitions: Mapping[str, str] | None = None,
                             registry: RegistryTarget | None = None,
                             assess: Callable[[TrainingResult, Mapping[str, float]], Assessment] | None = None,
                             adopt_job: str | None = None,
                             ) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """:func:`train_register_and_gate` on the ``credit_training_channels`` handle, gated on
    ``gate_metric`` >= ``minimum`` (or by ``assess``), registered in ``registry`` when given."""
    yield from train_register_and_gate(
        context, sagemaker, spec=spec, name_prefix=name_prefix, image=image, hyperparameters=hyperparameters,
        channels={name: Channel(uri, channels["content_type"]) for name, uri in channels["channels"].items()},
        output_uri=layout().model_output, data_fingerprint=channels["fingerprint"], instance_type=instance_type,
        check_name=check_name, metric_definitions=metric_definitions,
        gate=lambda metrics: GateOutcome(metrics.get(gate_metric) is not None and metrics[gate_metric] >= minimum,
                                         gate_metric, metrics.get(gate_metric), minimum, ">="),
        handle_fields={"feature_columns": channels.get("feature_columns")}, registry=registry, assess=assess,
        adopt_job=adopt_job)


def refuse_bad_settings(context: dg.AssetExecutionContext, spec: AlgorithmSpec,
                        hyperparameters: Mapping[str, str], channels: Mapping[str, Channel]) -> None:
    """Check hyperparameters and channels against the algorithm's SageMaker contract before any job exists;
    the failure names what is allowed."""
    asset = context.asset_key.to_user_string()
    try:
        spec.validate_hyperparameters(hyperparameters)
    except ValueError as exc:  # HyperparameterError
        raise dg.Failure(f"{asset}: invalid hyperparameters: {exc}") from exc
    try:
        spec.validate_channels({name: channel.content_type for name, channel in channels.items()})
    except ValueError as exc:  # ChannelError
        raise dg.Failure(f"{asset}: invalid channels: {exc}") from exc


def train_register_and_gate(context: dg.AssetExecutionContext, sagemaker: SageMakerResource, *,
                            spec: AlgorithmSpec | None, name_prefix: str, image: str,
                            hyperparameters: Mapping[str, str], channels: Mapping[str, Channel], output_uri: str,
                            data_fingerprint: str, instance_type: str, check_name: str,
                            gate: Callable[[Mapping[str, float]], GateOutcome],
                            metric_definitions: Mapping[str, str] | None = None,
                            derived_metrics: Callable[[TrainingResult], Mapping[str, float]] | None = None,
                            handle_fields: Mapping[str, Any] | None = None,
                            registry: RegistryTarget | None = None,
                            assess: Callable[[TrainingResult, Mapping[str, float]], Assessment] | None = None,
                            adopt_job: str | None = None,
                            ) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """Train (or adopt) the job its inputs determine, create the SageMaker model, judge it, register it
    when it passed, and yield the model handle plus the blocking quality-gate check.

    ``spec`` (a built-in algorithm's contract; ``None`` for a custom image) refuses bad settings first.
    ``derived_metrics`` adds figures computed from the trained artifact (merged into the job's
    ``FinalMetricDataList``) before ``gate`` judges them; ``handle_fields`` extends the model handle.
    ``assess`` replaces ``gate`` with a fuller assessment (e.g. champion against challenger, a model page).
    ``registry`` names the model package group a model that passes is registered in (one version per
    training job) and the approval mode; the materialization then says whether the model serves, waits
    for approval, or was rejected. ``adopt_job`` names a completed training job (a tuning job's best trial)
    to take as the model instead of the job ``hyperparameters`` determine.
    """
    if spec is not None:
        refuse_bad_settings(context, spec, hyperparameters, channels)
    request = TrainingRequest(
        name_prefix=name_prefix,
        image=image,
        role_arn=sagemaker.role_arn,
        hyperparameters=hyperparameters,
        channels=dict(channels),
        output_uri=output_uri,
        data_fingerprint=data_fingerprint,
        instance_type=instance_type,
        tags={"project": "smspark_assets", "asset": context.asset_key.to_user_string()},
        metric_definitions=dict(metric_definitions or {}),
        security=sagemaker.security(),
    )
    result = (adopt_training_job(sagemaker.sagemaker, adopt_job) if adopt_job is not None
              else run_training_job(sagemaker.sagemaker, request, poll_seconds=sagemaker.poll_seconds,
                                    log=context.log.info))
    created = ensure_model(sagemaker.sagemaker, result.job_name, image, result.model_artifacts, sagemaker.role_arn,
                           security=sagemaker.security())
    metrics = {**result.metrics, **(derived_metrics(result) if derived_metrics else {})}
    assessment = assess(result, metrics) if assess is not None else None
    if assessment is not None:
        metrics.update(assessment.metrics)
    outcome = assessment.outcome if assessment is not None else gate(metrics)
    lifecycle = register_and_decide(
        sagemaker.sagemaker, sagemaker.client("s3"), registry, result, outcome, data_fingerprint=data_fingerprint,
        channels=channels, metrics=metrics, assessment=assessment, log=context.log.info)
    shown = outcome.value if outcome.value is not None else float("nan")
    gate_key = outcome.metric.replace(":", "_")  # e.g. validation_auc, which the demo summary reads
    handle = {
        "model_name": result.job_name,
        "training_job_name": result.job_name,
        "image": image,
        "model_data_url": result.model_artifacts,
        "metrics": metrics,
        "quality_gate": outcome.to_json(),
        **lifecycle.handle_fields(),
        **(handle_fields or {}),
    }
    page = dict(assessment.page(lifecycle)) if assessment is not None and assessment.page else {}
    yield dg.Output(handle, metadata={
        "training_job_name": result.job_name,
        "model_name": result.job_name,
        "adopted_existing_job": result.adopted,
        "model_created": created,
        "hyperparameters": dg.MetadataValue.json(result.hyperparameters),
        "final_metrics": dg.MetadataValue.json(metrics),
        gate_key: shown,
        "gate_metric": outcome.metric,
        "gate_value": shown,
        "gate_threshold": outcome.threshold,
        "training_seconds": round(result.training_seconds, 2),
        "billable_seconds": result.billable_seconds or 0,
        "model_artifacts": dg.MetadataValue.path(result.model_artifacts),
        "image": image,
        **lifecycle.metadata(),
        **page,
    })
    yield dg.AssetCheckResult(
        check_name=check_name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"metric": outcome.metric, "value": shown, "threshold": outcome.threshold,
                  "comparison": outcome.comparison, gate_key: shown,
                  **{k: float(v) for k, v in outcome.details.items()},
                  **(dict(assessment.check_metadata) if assessment is not None else {})},
        description=outcome.describe() + ("" if outcome.passed else "; the endpoint keeps its model"),
    )
