"""A custom algorithm next to the built-in one: a scikit-learn logistic regression in SageMaker script mode.

On AWS the image is a container of your own (bring-your-own-container) that runs
``smspark_assets/custom_algorithms/sklearn_logistic.py`` as its entry point; set its URI in
``SMSPARK_SKLEARN_IMAGE``. Locally the same image URI is mapped to that entry point, which the local
service runs with SageMaker's script-mode contract (``SM_MODEL_DIR``, ``SM_CHANNEL_*``, ``model_fn``...).
"""

from typing import Any, Iterator

import dagster as dg
from pydantic import Field

from smspark_assets.assets.serving import EndpointConfig, deploy_gated_model
from smspark_assets.assets.training import train_on_credit_channels
from smspark_assets.environment import sklearn_image_uri
from smspark_assets.resources.aws import SageMakerResource

CUSTOM_GATE = "sklearn_validation_auc_gate"
SKLEARN_ENDPOINT = "credit-default-sklearn"


class SklearnModelConfig(dg.Config):
    hyperparameters: dict[str, str] = Field(default={"C": "1.0", "max_iter": "300"},
                                            description="Passed to the script as --C and --max_iter.")
    min_validation_auc: float = 0.7
    instance_type: str = "ml.m5.large"


@dg.asset(
    group_name="training",
    kinds={"sagemaker", "scikitlearn"},
    io_manager_key="json_io_manager",
    check_specs=[dg.AssetCheckSpec(CUSTOM_GATE, asset="credit_default_sklearn_model", blocking=True,
                                   description="Validation AUC (parsed from the job log by MetricDefinitions) "
                                               "reaches the configured minimum.")],
)
def credit_default_sklearn_model(context: dg.AssetExecutionContext, config: SklearnModelConfig,
                                 credit_training_channels: dict[str, Any], sagemaker: SageMakerResource
                                 ) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
    """A custom algorithm (scikit-learn logistic regression, script mode) trained on the same channels as
    the XGBoost model, as a baseline to compare it with; its metric comes from the job log."""
    # A custom image has no built-in contract: the script itself refuses bad settings (see its train()).
    yield from train_on_credit_channels(
        context, sagemaker, credit_training_channels, spec=None, name_prefix="credit-default-sklearn",
        image=sklearn_image_uri(), hyperparameters=config.hyperparameters, instance_type=config.instance_type,
        gate_metric="validation:auc", minimum=config.min_validation_auc, check_name=CUSTOM_GATE,
        metric_definitions={"validation:auc": r"validation-auc=([0-9.]+)"})


@dg.asset(group_name="serving", kinds={"sagemaker"}, io_manager_key="json_io_manager")
def credit_default_sklearn_endpoint(context: dg.AssetExecutionContext, config: EndpointConfig,
                                    credit_default_sklearn_model: dict[str, Any], sagemaker: SageMakerResource
                                    ) -> dg.Output[dict[str, Any]]:
    """The live endpoint `credit-default-sklearn` serving the custom model (model_fn/predict_fn contract)."""
    return deploy_gated_model(context, sagemaker, credit_default_sklearn_model, SKLEARN_ENDPOINT, config)
