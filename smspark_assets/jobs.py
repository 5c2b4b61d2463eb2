"""Asset jobs: the daily flow for one landed day, and the (re)training flow."""

import dagster as dg

from smspark_assets.assets.custom_algorithm import credit_default_sklearn_endpoint, credit_default_sklearn_model
from smspark_assets.assets.drift import credit_drift_report, credit_feature_baseline
from smspark_assets.assets.features import credit_features
from smspark_assets.assets.outputs import credit_model_performance, credit_scores_dynamodb
from smspark_assets.assets.registry_tables import model_registry_metrics
from smspark_assets.assets.scoring import credit_scores
from smspark_assets.assets.serving import credit_default_endpoint
from smspark_assets.assets.training import credit_default_model, credit_training_channels
from smspark_assets.assets.tuning import credit_model_tuning
from smspark_assets.partitions import daily_partitions

daily_scoring_job = dg.define_asset_job(
    "daily_scoring_job",
    selection=dg.AssetSelection.assets(credit_features, credit_scores, credit_scores_dynamodb, credit_drift_report),
    partitions_def=daily_partitions,
    description="Features, scores and the DynamoDB upsert for the landed day(s).",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(credit_training_channels, credit_default_model, credit_default_endpoint,
                                       credit_default_sklearn_model, credit_default_sklearn_endpoint,
                                       credit_model_performance, credit_feature_baseline, model_registry_metrics),
    description="Channels from every prepared day, training (adopted when unchanged), quality gate, endpoint.",
)

tuning_job = dg.define_asset_job(
    "tuning_job",
    selection=dg.AssetSelection.assets(credit_model_tuning),
    description="Hyperparameter tuning of the credit model on the current channels (adopted when unchanged); "
                "its best training job is the model's challenger.",
)
