"""Approving model versions from the Dagster UI: the job `approve_model_version`.

A person launches it with the version to decide on (its number in the group, or its ARN), the decision
(``Approved`` or ``Rejected``) and a reason; it calls UpdateModelPackage, exactly as
``aws sagemaker update-model-package --model-approval-status ...`` would. The endpoint serves the latest
approved version once it is re-materialized: the job `serve_approved_model` does that, and the sensor
`serve_after_approval` (off by default) launches it after every successful approval.
"""

# No `from __future__ import annotations` here: Dagster reads the op's Config annotation at definition time.
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from smspark_assets.assets.outputs import credit_model_performance
from smspark_assets.assets.serving import credit_default_endpoint
from smspark_assets.assets.training import MODEL_PACKAGE_GROUP
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.sagemaker import registry


class ApprovalConfig(dg.Config):
    """One decision on one model version."""

    version: str = Field(description="The version number in the group (e.g. 3), or the model package ARN.")
    decision: Literal["Approved", "Rejected"] = Field(description="Approved (it may serve) or Rejected (it may "
                                                                  "not; the previous approved version serves).")
    description: str = Field(default="", description="Why: recorded as the version's ApprovalDescription.")
    group: str = Field(default=MODEL_PACKAGE_GROUP, description="The model package group.")


@dg.op(description="UpdateModelPackage: set a model version's approval status (and the reason).")
def set_model_approval(context: dg.OpExecutionContext, config: ApprovalConfig,
                       sagemaker: SageMakerResource) -> dict[str, Any]:
    sm = sagemaker.sagemaker
    before = registry.latest_approved(sm, config.group)
    try:
        changed = registry.set_approval(sm, config.group, config.version.strip(), config.decision,
                                        config.description)
    except (registry.RegistryError, ValueError) as exc:
        raise dg.Failure(f"approve_model_version: {exc}") from exc
    after = registry.latest_approved(sm, config.group)
    serving = f"version {after.version}" if after else "nothing (no approved version left)"
    context.log.info(f"{config.group} v{changed.version} is now {config.decision}; the endpoint serves {serving} "
                     "once credit_default_endpoint is materialized (job serve_approved_model)")
    context.add_output_metadata({
        "model_version": changed.version, "approval_status": changed.approval_status,
        "model_package_arn": changed.arn, "reason": config.description,
        "serving_before": before.version if before else 0, "serving_after": after.version if after else 0,
    })
    return {**changed.to_json(), "serving_version": after.version if after else None}


@dg.job(description="Approve or reject a version of a registered model (then materialize the endpoint: job "
                    "serve_approved_model).")
def approve_model_version() -> None:
    set_model_approval()


serve_approved_model = dg.define_asset_job(
    "serve_approved_model",
    selection=dg.AssetSelection.assets(credit_default_endpoint, credit_model_performance),
    description="Deploy the latest approved credit model version on the endpoint (a rejection rolls it back), "
                "then recompute the model performance.",
)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[approve_model_version],
                      request_job=serve_approved_model, default_status=dg.DefaultSensorStatus.STOPPED,
                      description="After every successful approval decision, deploy what is now approved.")
def serve_after_approval(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}")


APPROVAL_JOBS = [approve_model_version, serve_approved_model]
APPROVAL_SENSORS = [serve_after_approval]
