"""Serving: live SageMaker endpoints for the models that passed their quality gates."""

from typing import Any

import dagster as dg
from pydantic import Field

from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker.endpoints import DataCapture, EndpointSettings, ServerlessSettings, deploy_model


class EndpointConfig(dg.Config):
    """How an endpoint serves its model; any change makes a new endpoint config and a blue/green update."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    variant_weight: float = 1.0
    data_capture_uri: str | None = Field(
        default=None, description="s3:// prefix to capture requests and responses to (off when unset).")
    data_capture_percentage: int = Field(default=100, description="Share of requests captured, 0..100.")
    serverless_memory_mb: int | None = Field(
        default=None, description="Serverless inference with this much memory (1024..6144, steps of 1024) "
                                  "instead of instances.")
    serverless_max_concurrency: int = 5
    kms_key_id: str | None = Field(default=None, description="KMS key for the instances' storage volume "
                                                             "and the captured data.")


def endpoint_settings(config: Any) -> EndpointSettings:
    """The endpoint settings of a run's config; configs that only set instance type and count (such as
    the algorithm endpoints') get the defaults for the rest."""
    capture_uri = getattr(config, "data_capture_uri", None)
    memory = getattr(config, "serverless_memory_mb", None)
    kms = getattr(config, "kms_key_id", None)
    return EndpointSettings(
        instance_type=config.instance_type,
        instance_count=config.instance_count,
        variant_name=getattr(config, "variant_name", "AllTraffic"),
        variant_weight=getattr(config, "variant_weight", 1.0),
        data_capture=DataCapture(capture_uri, getattr(config, "data_capture_percentage", 100), kms_key_id=kms)
        if capture_uri else None,
        serverless=ServerlessSettings(memory, getattr(config, "serverless_max_concurrency", 5))
        if memory else None,
        kms_key_id=kms,
    )


def deploy_gated_model(context: dg.AssetExecutionContext, sagemaker: SageMakerResource, model: dict[str, Any],
                       endpoint_name: str, config: Any, extra_handle: dict[str, Any] | None = None
                       ) -> dg.Output[dict[str, Any]]:
    """Serve ``model`` on ``endpoint_name`` if it passed its gate; the handle names what serves.

    ``config`` carries ``instance_type`` and ``instance_count`` (and the other fields of
    :class:`EndpointConfig` when it is one); ``extra_handle`` adds fields to the handle.
    """
    gate = model.get("quality_gate", {})
    if not gate.get("passed"):
        # The blocking check stops this in the same run; this guards runs that select the endpoint alone.
        needed = f"{gate.get('comparison', '>=')} {gate.get('threshold', gate.get('minimum'))}"
        raise dg.Failure(f"model {model['model_name']} failed its quality gate ({gate.get('metric')}"
                         f" = {gate.get('value')}, needed {needed}); not deploying it")
    try:
        settings = endpoint_settings(config)
        settings.config_request(model["model_name"])  # refuse bad settings before anything is created
    except ValueError as exc:
        raise dg.Failure(f"endpoint {endpoint_name}: invalid settings: {exc}") from exc
    result = deploy_model(sagemaker.sagemaker, endpoint_name, model["model_name"], settings,
                          poll_seconds=sagemaker.poll_seconds, log=context.log.info)
    handle = {"endpoint_name": result.endpoint_name, "config_name": result.config_name,
              "model_name": result.model_name, "status": result.status,
              "feature_columns": model.get("feature_columns"), **(extra_handle or {})}
    return dg.Output(handle, metadata={"endpoint_name": result.endpoint_name, "status": result.status,
                                       "action": result.action, "endpoint_config": result.config_name,
                                       "model_name": result.model_name})


@dg.asset(group_name="serving", kinds={"sagemaker"}, io_manager_key="json_io_manager")
def credit_default_endpoint(context: dg.AssetExecutionContext, config: EndpointConfig,
                            credit_default_model: dict[str, Any], sagemaker: SageMakerResource
                            ) -> dg.Output[dict[str, Any]]:
    """The live endpoint `credit-default` serving the latest XGBoost model that passed its quality gate;
    a new model updates the endpoint in place (blue/green), an unchanged one leaves it alone."""
    return deploy_gated_model(context, sagemaker, credit_default_model, "credit-default", config)
