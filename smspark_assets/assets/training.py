"""Training: Spark writes the XGBoost channels; SageMaker trains the model behind a blocking quality gate."""


from typing import Any, Iterator, Mapping

import dagster as dg
from pydantic import Field

from smspark_assets.assets.features import credit_features
from smspark_assets.environment import region
from smspark_assets.layout import layout
from smspark_assets.local.algorithms.xgboost_hyperparameters import validate_xgboost_hyperparameters
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.images import image_uri
from smspark_assets.sagemaker.training import Channel, TrainingRequest, ensure_model, run_training_job

LABEL = "defaulted_12m"
QUALITY_GATE = "validation_auc_gate"

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
    min_validation_auc: float = Field(default=0.7, description="The quality gate: validation AUC at least this.")
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
    channels = {name: f"{paths.channels}/{name}" for name in ("train", "validation")}
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
                                   description="Validation AUC reaches the configured minimum; a model "
                                               "that fails it never reaches the endpoint.")],
)
def credit_default_model(context: dg.AssetExecutionContext, config: ModelConfig,
                         credit_training_channels: dict[str, Any], sagemaker: SageMakerResource
                         ) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """A SageMaker XGBoost model of 12-month default risk: a training job named by what determines it
    (data fingerprint, image, hyperparameters), adopted when it already completed, then a SageMaker model."""
    # Refuse bad hyperparameters here, before any job exists, with the allowed range in the message.
    try:
        validate_xgboost_hyperparameters(config.hyperparameters)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    image = image_uri("xgboost", sagemaker.region_name or region())
    yield from train_register_and_gate(
        context, sagemaker, credit_training_channels, name_prefix="credit-default-xgb", image=image,
        hyperparameters=config.hyperparameters, instance_type=config.instance_type,
        gate_metric="validation:auc", minimum=config.min_validation_auc, check_name=QUALITY_GATE)


def train_register_and_gate(context: dg.AssetExecutionContext, sagemaker: SageMakerResource,
                            channels: dict[str, Any], *, name_prefix: str, image: str,
                            hyperparameters: Mapping[str, str], instance_type: str, gate_metric: str,
                            minimum: float, check_name: str, metric_definitions: Mapping[str, str] | None = None,
                            ) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """Train (or adopt) the job the channels and hyperparameters determine, register the SageMaker model,
    and yield the model handle plus its quality-gate check on ``gate_metric`` >= ``minimum``."""
    request = TrainingRequest(
        name_prefix=name_prefix,
        image=image,
        role_arn=sagemaker.role_arn,
        hyperparameters=hyperparameters,
        channels={name: Channel(uri, channels["content_type"]) for name, uri in channels["channels"].items()},
        output_uri=layout().model_output,
        data_fingerprint=channels["fingerprint"],
        instance_type=instance_type,
        tags={"project": "smspark_assets", "asset": context.asset_key.to_user_string()},
        metric_definitions=metric_definitions or {},
    )
    result = run_training_job(sagemaker.sagemaker, request, poll_seconds=sagemaker.poll_seconds,
                              log=context.log.info)
    created = ensure_model(sagemaker.sagemaker, result.job_name, image, result.model_artifacts, sagemaker.role_arn)
    value = result.metrics.get(gate_metric)
    passed = value is not None and value >= minimum
    shown = float(value) if value is not None else float("nan")
    handle = {
        "model_name": result.job_name,
        "training_job_name": result.job_name,
        "image": image,
        "model_data_url": result.model_artifacts,
        "metrics": result.metrics,
        "feature_columns": channels.get("feature_columns"),
        "quality_gate": {"metric": gate_metric, "value": value, "minimum": minimum, "passed": passed},
    }
    yield dg.Output(handle, metadata={
        "training_job_name": result.job_name,
        "model_name": result.job_name,
        "adopted_existing_job": result.adopted,
        "model_created": created,
        "hyperparameters": dg.MetadataValue.json(result.hyperparameters),
        "validation_metrics": dg.MetadataValue.json(result.metrics),
        gate_metric.replace(":", "_"): shown,
        "training_seconds": round(result.training_seconds, 2),
        "billable_seconds": result.billable_seconds or 0,
        "model_artifacts": dg.MetadataValue.path(result.model_artifacts),
        "image": image,
    })
    yield dg.AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={gate_metric.replace(":", "_"): shown, "minimum": minimum},
        description=None if passed else (
            f"{gate_metric} {value} is below the minimum {minimum}; the endpoint keeps its model"),
    )
