"""The one Definitions object of the code location; resources are chosen by SMSPARK_ENV."""

import dagster as dg

from smspark_assets.assets.algorithm_models import ALGORITHM_ASSETS, algorithms_job
from smspark_assets.assets.custom_algorithm import credit_default_sklearn_endpoint, credit_default_sklearn_model
from smspark_assets.assets.drift import MONITORING_ASSETS, MONITORING_CHECKS, with_retraining_on_drift
from smspark_assets.assets.features import credit_features
from smspark_assets.assets.outputs import credit_model_performance, credit_scores_dynamodb
from smspark_assets.assets.raw import raw_credit_applications
from smspark_assets.assets.registry_tables import model_registry_metrics
from smspark_assets.assets.scores_api_check import credit_scores_api_consistency
from smspark_assets.assets.scoring import credit_scores
from smspark_assets.assets.model_registry import APPROVAL_JOBS, APPROVAL_SENSORS
from smspark_assets.assets.serving import credit_default_endpoint
from smspark_assets.assets.training import credit_default_model, credit_training_channels
from smspark_assets.assets.tuning import credit_model_tuning
from smspark_assets.ownership import apply_ownership
from smspark_assets.jobs import daily_scoring_job, training_job, tuning_job
from smspark_assets.resources.by_environment import resources_for
from smspark_assets.schedules import weekly_training_schedule
from smspark_assets.sensors import raw_applications_sensor
from smspark_assets.endpoint_health import endpoint_health_sensor
from smspark_assets.endpoint_reaper import endpoint_idle_reaper

ASSETS = [
    raw_credit_applications,
    credit_features,
    credit_training_channels,
    credit_default_model,
    credit_model_tuning,
    credit_default_endpoint,
    credit_default_sklearn_model,
    credit_default_sklearn_endpoint,
    credit_scores,
    credit_scores_dynamodb,
    credit_model_performance,
    model_registry_metrics,
    *MONITORING_ASSETS,
    *ALGORITHM_ASSETS,
]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        # Owners, tags, column schemas, automation conditions and code references: one place, every asset.
        assets=with_retraining_on_drift(apply_ownership(ASSETS)),
        asset_checks=[credit_scores_api_consistency, *MONITORING_CHECKS],
        jobs=[daily_scoring_job, training_job, algorithms_job, tuning_job, *APPROVAL_JOBS],
        sensors=[raw_applications_sensor, endpoint_idle_reaper, endpoint_health_sensor, *APPROVAL_SENSORS],
        schedules=[weekly_training_schedule],
        resources=resources_for(),
    )


defs = build_definitions()
