"""Serving: live SageMaker endpoints for the models that passed their quality gates."""

from typing import Any

import dagster as dg

from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker.endpoints import deploy_model


class EndpointConfig(dg.Config):
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1


def deploy_gated_model(context: dg.AssetExecutionContext, sagemaker: SageMakerResource, model: dict[str, Any],
                       endpoint_name: str, config: Any, extra_handle: dict[str, Any] | None = None
                       ) -> dg.Output[dict[str, Any]]:
    """Serve ``model`` on ``endpoint_name`` if it passed its gate; the handle names what serves.

    ``config`` carries ``instance_type`` and ``instance_count``; ``extra_handle`` adds fields to the handle.
    """
    gate = model.get("quality_gate", {})
    if not gate.get("passed"):
        # The blocking check stops this in the same run; this guards runs that select the endpoint alone.
        needed = f"{gate.get('comparison', '>=')} {gate.get('threshold', gate.get('minimum'))}"
        raise dg.Failure(f"model {model['model_name']} failed its quality gate ({gate.get('metric')}"
                         f" = {gate.get('value')}, needed {needed}); not deploying it")
    result = deploy_model(sagemaker.sagemaker, endpoint_name, model["model_name"], config.instance_type,
                          config.instance_count, poll_seconds=sagemaker.poll_seconds, log=context.log.info)
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
