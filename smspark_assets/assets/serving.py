"""Serving: live SageMaker endpoints for the models that passed their quality gates.

Per endpoint, :class:`EndpointConfig` chooses what serves (``endpoint_mode``: ``realtime`` instances,
``serverless``, or ``none``: no endpoint, scores come from batch transform jobs) and how an update rolls out
(a canary guarded by an error-rate and a latency alarm by default; the timings are settings so tests stay
short).
"""

import dataclasses
from typing import Any, Iterator, Literal

import dagster as dg
from pydantic import Field

from smspark_assets.endpoint_health import console_links
from smspark_assets.environment import Environment, get_environment, kms_key_arn, rollout_bake_seconds
from smspark_assets.assets.model_lifecycle import lineage_of
from smspark_assets.assets.training import MODEL_PACKAGE_GROUP
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker import registry
from smspark_assets.sagemaker.alarms import AlarmSettings
from smspark_assets.sagemaker.endpoints import (
    PROJECT_TAG, DataCapture, EndpointResult, EndpointRolledBack, EndpointSettings, RolloutSettings,
    ServerlessSettings, delete_endpoint, deploy_model,
)

EndpointMode = Literal["realtime", "serverless", "none"]
ENDPOINT_MODES = ("realtime", "serverless", "none")


class EndpointConfig(dg.Config):
    """How an endpoint serves its model; any change makes a new endpoint config and a blue/green update."""

    endpoint_mode: EndpointMode = Field(
        default="realtime", description="realtime (instances), serverless (pay per request, cold starts), or "
                                        "none (no endpoint: scores come from batch transform jobs).")
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    variant_name: str = "AllTraffic"
    variant_weight: float = 1.0
    data_capture_uri: str | None = Field(
        default=None, description="s3:// prefix to capture requests and responses to (off when unset).")
    data_capture_percentage: int = Field(default=100, description="Share of requests captured, 0..100.")
    serverless_memory_mb: int | None = Field(
        default=None, description="Serverless inference with this much memory (1024..6144, steps of 1024) "
                                  "instead of instances (also implied by endpoint_mode serverless: 2048).")
    serverless_max_concurrency: int = 5
    kms_key_id: str | None = Field(default=None, description="KMS key for the instances' storage volume "
                                                             "and the captured data (default: SMSPARK_KMS_KEY_ARN).")
    rollout: Literal["CANARY", "LINEAR", "ALL_AT_ONCE"] = Field(
        default="CANARY", description="How an update shifts traffic to the new model (serverless: ALL_AT_ONCE).")
    canary_percent: int = Field(default=10, description="CANARY: share of traffic on the new model first, 1..50.")
    linear_step_percent: int = Field(default=25, description="LINEAR: traffic added per step, 10..50.")
    rollout_wait_seconds: int = Field(default=rollout_bake_seconds(),
                                      description="Bake after each traffic step while the alarms are watched, "
                                                  "0..3600 (default SMSPARK_ROLLOUT_BAKE_SECONDS: 300 on AWS, "
                                                  "20 on the embedded stack).")
    termination_wait_seconds: int = Field(default=0, description="The old fleet is kept this long after the "
                                                                 "last bake, 0..3600.")
    alarm_error_rate: float | None = Field(default=0.05, description="Roll back when this share of requests "
                                                                     "fails 5xx in a period (None: no alarm).")
    alarm_latency_ms: float | None = Field(default=1000.0, description="Roll back when ModelLatency at "
                                                                       "alarm_latency_statistic reaches this.")
    alarm_latency_statistic: str = Field(default="p99", description="p50, p99, p99.9... or Average.")
    alarm_period_seconds: int = Field(default=60 if get_environment() is Environment.AWS else 10,
                                      description="Alarm period: 10, 20, 30 or a multiple of 60 (default 60 on "
                                                  "AWS, 10 on the embedded stack).")


def endpoint_mode(config: Any) -> str:
    """The config's endpoint mode; a serverless memory size alone means serverless (older configs)."""
    mode = getattr(config, "endpoint_mode", "realtime")
    if mode not in ENDPOINT_MODES:
        raise ValueError(f"endpoint_mode must be one of {', '.join(ENDPOINT_MODES)}, got {mode!r}")
    if mode == "realtime" and getattr(config, "serverless_memory_mb", None):
        return "serverless"
    return mode


def endpoint_settings(config: Any) -> EndpointSettings:
    """The endpoint settings of a run's config; configs that only set instance type and count (such as
    the algorithm endpoints') get the defaults for the rest. The KMS key defaults to the platform's
    (``SMSPARK_KMS_KEY_ARN``) for instance volumes and captured data; serverless variants have no volume."""
    mode = endpoint_mode(config)
    capture_uri = getattr(config, "data_capture_uri", None)
    serverless = mode == "serverless"
    if serverless and capture_uri:
        raise ValueError("data capture is not supported on serverless endpoints (SageMaker refuses it); "
                         "unset data_capture_uri or use endpoint_mode realtime")
    kms = getattr(config, "kms_key_id", None) or (None if serverless else kms_key_arn())
    capture_kms = getattr(config, "kms_key_id", None) or kms_key_arn()
    return EndpointSettings(
        instance_type=config.instance_type,
        instance_count=config.instance_count,
        variant_name=getattr(config, "variant_name", "AllTraffic"),
        variant_weight=getattr(config, "variant_weight", 1.0),
        data_capture=DataCapture(capture_uri, getattr(config, "data_capture_percentage", 100),
                                 kms_key_id=capture_kms) if capture_uri else None,
        serverless=ServerlessSettings(getattr(config, "serverless_memory_mb", None) or 2048,
                                      getattr(config, "serverless_max_concurrency", 5)) if serverless else None,
        kms_key_id=kms,
        tags={PROJECT_TAG[0]: PROJECT_TAG[1]},
    )


def rollout_settings(config: Any) -> RolloutSettings:
    """How updates of this endpoint roll out; defaults: a 10 % canary baked 5 minutes under both alarms."""
    error_rate = getattr(config, "alarm_error_rate", 0.05)
    latency = getattr(config, "alarm_latency_ms", 1000.0)
    alarms = None
    if error_rate is not None or latency is not None:
        alarms = AlarmSettings(error_rate=error_rate, latency_ms=latency,
                               latency_statistic=getattr(config, "alarm_latency_statistic", "p99"),
                               period_seconds=getattr(config, "alarm_period_seconds", 60))
    return RolloutSettings(
        mode=getattr(config, "rollout", "CANARY"), canary_percent=getattr(config, "canary_percent", 10),
        linear_step_percent=getattr(config, "linear_step_percent", 25),
        wait_seconds=getattr(config, "rollout_wait_seconds", 300),
        termination_wait_seconds=getattr(config, "termination_wait_seconds", 0), alarms=alarms)


def serve_model(context: dg.AssetExecutionContext, sagemaker: SageMakerResource, endpoint_name: str,
                model_name: str, config: Any) -> tuple[EndpointResult | None, dict[str, Any]]:
    """Serve ``model_name`` on ``endpoint_name`` as ``config`` says; the result (None in mode ``none``) and
    the metadata that says what happened.

    Mode ``none`` serves nothing: an endpoint left from an earlier mode is deleted (it only costs money
    now) and scores come from batch transform jobs of the model. A rolled-back update fails the step with
    SageMaker's reason; its metadata says the endpoint still serves the old config.
    """
    try:
        mode = endpoint_mode(config)
        settings = endpoint_settings(config)
        settings.config_request(model_name)  # refuse bad settings before anything is created
        rollout = rollout_settings(config)
        rollout.validate()
    except ValueError as exc:
        raise dg.Failure(f"endpoint {endpoint_name}: invalid settings: {exc}") from exc
    sm = sagemaker.sagemaker
    if mode == "none":
        deleted = delete_endpoint(sm, endpoint_name, sagemaker.poll_seconds)
        context.log.info(f"endpoint mode none: {'deleted' if deleted else 'no'} endpoint {endpoint_name}; "
                         f"scores of {model_name} come from batch transform jobs")
        return None, {"endpoint_mode": "none", "model_name": model_name, "endpoint_deleted": deleted}
    tags = {**settings.tags, "asset": context.asset_key.to_user_string()}
    settings = dataclasses.replace(settings, tags=tags)
    try:
        result = deploy_model(sm, endpoint_name, model_name, settings, poll_seconds=sagemaker.poll_seconds,
                              log=context.log.info, rollout=rollout, cloudwatch=sagemaker.client("cloudwatch"))
    except EndpointRolledBack as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"endpoint_name": endpoint_name, "rolled_back": True, "rollback_reason": exc.reason,
                      "still_serving_config": exc.serving_config or "", "rejected_model": model_name,
                      "rollout": rollout.mode}) from exc
    metadata: dict[str, Any] = {"endpoint_mode": mode, "rollout": rollout.effective_mode(mode == "serverless")}
    if result.alarms:
        metadata["rollback_alarms"] = ", ".join(result.alarms)
    if get_environment().value == "aws":
        metadata.update({k: dg.MetadataValue.url(u) for k, u in console_links(endpoint_name).items()})
    return result, metadata


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
    result, serving = serve_model(context, sagemaker, endpoint_name, model["model_name"], config)
    if result is None:  # endpoint mode none: the handle names the model for batch transform jobs
        handle = {"endpoint_name": None, "endpoint_mode": "none", "model_name": model["model_name"],
                  "status": "NotDeployed", "feature_columns": model.get("feature_columns"), **(extra_handle or {})}
        return dg.Output(handle, metadata={**serving, "status": "NotDeployed"})
    handle = {"endpoint_name": result.endpoint_name, "config_name": result.config_name,
              "model_name": result.model_name, "status": result.status, "endpoint_mode": serving["endpoint_mode"],
              "feature_columns": model.get("feature_columns"), **(extra_handle or {})}
    return dg.Output(handle, metadata={"endpoint_name": result.endpoint_name, "status": result.status,
                                       "action": result.action, "endpoint_config": result.config_name,
                                       "model_name": result.model_name, **serving})


@dg.asset(group_name="serving", kinds={"sagemaker"}, io_manager_key="json_io_manager", output_required=False)
def credit_default_endpoint(context: dg.AssetExecutionContext, config: EndpointConfig,
                            credit_default_model: dict[str, Any], sagemaker: SageMakerResource
                            ) -> Iterator[dg.Output[dict[str, Any]]]:
    """The live endpoint `credit-default` serving the latest **Approved** version of the model package
    group `credit-default` (a model created from the package). A newly approved version updates the
    endpoint (blue/green); rejecting the serving version and re-materializing rolls it back to the previous
    approved one; a challenger that was rejected or waits for approval leaves it as it is. Until a first
    version is approved there is nothing to serve and nothing is materialized."""
    yield from deploy_approved_version(context, sagemaker, MODEL_PACKAGE_GROUP, "credit-default", config,
                                       credit_default_model)


def deploy_approved_version(context: dg.AssetExecutionContext, sagemaker: SageMakerResource, group: str,
                            endpoint_name: str, config: Any, challenger: dict[str, Any]
                            ) -> Iterator[dg.Output[dict[str, Any]]]:
    """Serve the latest approved version of ``group`` on ``endpoint_name``; ``challenger`` (the model
    asset's handle) is only reported: what serves is decided by the registry."""
    sm = sagemaker.sagemaker
    version = registry.latest_approved(sm, group)
    challenger_note = {"challenger_version": challenger.get("model_version"),
                       "challenger_decision": challenger.get("decision", "")}
    if version is None:
        pending = [v.version for v in registry.list_versions(sm, group, registry.PENDING)]
        context.log.warning(f"model package group {group} has no Approved version (pending: {pending or 'none'}); "
                            f"endpoint {endpoint_name} is not deployed. Approve one with the job "
                            "approve_model_version, then materialize this asset.")
        return
    image = ((sm.describe_model_package(ModelPackageName=version.arn).get("InferenceSpecification") or {})
             .get("Containers") or [{}])[0].get("Image", "")
    model_name, created = registry.ensure_model_for_version(sm, version, sagemaker.role_arn,
                                                            sagemaker.security().model_fields(image))
    result, serving = serve_model(context, sagemaker, endpoint_name, model_name, config)
    lineage = lineage_of(sm, sagemaker.client("s3"), version)
    feature_columns = lineage.get("feature_columns") or challenger.get("feature_columns")
    handle = {"endpoint_name": result.endpoint_name if result else None,
              "config_name": result.config_name if result else None, "model_name": model_name,
              "status": result.status if result else "NotDeployed", "endpoint_mode": serving["endpoint_mode"],
              "feature_columns": feature_columns, "training_job_name": lineage.get("training_job_name"),
              **version.to_json()}
    yield dg.Output(handle, metadata={
        "endpoint_name": endpoint_name, "status": handle["status"], "action": result.action if result else "none",
        "endpoint_config": handle["config_name"] or "", "model_name": model_name, "model_created": created,
        "model_version": version.version, "model_package_arn": version.arn, "approval_status": version.approval_status,
        **{k: v for k, v in challenger_note.items() if v is not None}, **serving})
