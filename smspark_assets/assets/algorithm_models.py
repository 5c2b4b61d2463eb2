"""One demo model per built-in algorithm besides XGBoost: trained, gated, served and answering.

For each model of :data:`~smspark_assets.assets.algorithm_catalog.DEMO_MODELS`:

* ``<key>_model``: a SageMaker training job on the algorithm's image, named by what determines it
  (channel fingerprint, image, hyperparameters) and adopted when it already completed, then a SageMaker
  model; hyperparameters are validated by the algorithm's spec before any job exists;
* ``<key>_quality_gate``: a blocking asset check on a metric of the job (``FinalMetricDataList``) against
  a baseline measured on the same data; a model that fails it never reaches its endpoint;
* ``<key>_endpoint``: the endpoint ``algo-<key>`` serving the model (updated blue/green when it changes).

``algorithm_endpoint_scores`` then sends a held-out sample through every endpoint, as recordIO-protobuf
requests of at most 5 MiB, reads the answers with the algorithm's deserializer (its SageMaker-Spark output
columns) and reports test figures computed from the endpoints' answers.

Add ``ALGORITHM_ASSETS`` to the Definitions' assets and ``algorithms_job`` to its jobs.
"""


from typing import Any, Iterator, Literal

import dagster as dg
from pydantic import Field

from smspark_assets.assets.algorithm_catalog import BY_KEY, DEMO_MODELS, GROUP, DemoModel, hyperparameters_for
from smspark_assets.assets.algorithm_data import (
    algorithm_documents, algorithm_interactions, algorithm_training_channels, models_prefix,
)
from smspark_assets.assets.algorithm_scoring import score_endpoint, score_with_transform_job
from smspark_assets.assets.algorithm_tables import publish_endpoint_figures
from smspark_assets.assets.serving import deploy_gated_model
from smspark_assets.assets.training import train_register_and_gate
from smspark_assets.environment import region
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.catalog import CatalogResource
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.algorithms import algorithm_spec
from smspark_assets.sagemaker.algorithms.content_types import RECORDIO
from smspark_assets.sagemaker.artifacts import ArtifactError, model_file_from_tar, read_pca
from smspark_assets.sagemaker.endpoints import ensure_endpoint
from smspark_assets.sagemaker.training import Channel, TrainingResult


class AlgorithmModelConfig(dg.Config):
    """How a demo model is trained and what it must reach to be served."""

    hyperparameters: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of the model's default hyperparameters (strings, in either SDK's forms); "
                    "validated by the algorithm before any job starts.")
    gate_parameter: float | None = Field(
        default=None, description="The quality gate's parameter (see the check's description); default: the "
                                  "model's own.")
    instance_type: str = "ml.m5.xlarge"


class AlgorithmEndpointConfig(dg.Config):
    """How a demo model is served. Demo endpoints default to serverless: they answer a few requests a run,
    and a serverless endpoint costs nothing while nobody calls it; ``none`` serves no endpoint at all (the
    held-out scoring then runs a batch transform job)."""

    endpoint_mode: Literal["realtime", "serverless", "none"] = Field(
        default="serverless", description="realtime (instances), serverless, or none (batch transform only).")
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    serverless_memory_mb: int | None = Field(default=None, description="Serverless memory: 1024..6144 MB, "
                                                                       "steps of 1024 (default 2048).")
    serverless_max_concurrency: int = 5
    rollout_wait_seconds: int = Field(default=30, description="Bake after each traffic step of an update "
                                                              "while the rollback alarms are watched, 0..3600.")


def pca_explained_variance_ratio(store: ObjectStoreResource, model_data_url: str,
                                 total_variance: float, train_rows: int) -> float:
    """Share of ``total_variance`` the PCA model's components explain (from the artifact's ``model_algo-1``).

    ``model_algo-1`` is SageMaker's PCA layout (an MXNet NDArray dict with ``v``, ``s`` and maybe
    ``mean``), which the embedded stack writes too, so the gate reads models from either. ``s`` are
    singular values of the centred training matrix: the component variances are ``s**2 / (n - 1)``
    for the ``train_rows`` records, compared with ``total_variance`` (the sum of the features' sample
    variances). SageMaker's PCA reports no training metric, so this ratio is what its gate checks.
    """
    if total_variance <= 0:
        raise ValueError(f"the total variance of the PCA train rows must be positive, got {total_variance}")
    try:
        model = read_pca(model_file_from_tar(store.read_bytes(model_data_url)))
    except ArtifactError as exc:
        raise ValueError(f"{model_data_url} is not a PCA model artifact: {exc}") from exc
    return float(model.explained_variance(train_rows).sum() / total_variance)


def build_model_asset(model: DemoModel) -> dg.AssetsDefinition:
    """The ``<key>_model`` asset (training job + SageMaker model) with its blocking quality gate."""

    @dg.asset(
        name=model.asset_name,
        group_name=GROUP,
        kinds={"sagemaker", model.algorithm.replace("-", "")},
        io_manager_key="json_io_manager",
        description=f"{model.title}. {model.description} A training job named by what determines it "
                    "(channel fingerprint, image, hyperparameters), adopted when it already completed, "
                    "then a SageMaker model.",
        check_specs=[dg.AssetCheckSpec(
            model.check_name, asset=model.asset_name, blocking=True,
            description=f"Blocking quality gate: {model.gate_summary} "
                        f"(parameter: {model.gate_parameter_doc}; default {model.gate_parameter}). "
                        "A model that fails it never reaches its endpoint.")],
    )
    def _model(context: dg.AssetExecutionContext, config: AlgorithmModelConfig,
               algorithm_training_channels: dict[str, Any], sagemaker: SageMakerResource,
               store: ObjectStoreResource) -> Iterator[dg.Output[dict[str, Any]] | dg.AssetCheckResult]:
        data = algorithm_training_channels["models"][model.key]
        spec = algorithm_spec(model.algorithm)
        parameter = model.gate_parameter if config.gate_parameter is None else config.gate_parameter

        def derived_metrics(result: TrainingResult) -> dict[str, float]:
            # SageMaker's PCA reports no training metric; its gate reads the artifact instead.
            if model.algorithm != "pca":
                return {}
            return {"explained_variance_ratio": pca_explained_variance_ratio(
                store, result.model_artifacts, float(data["train_total_variance"]),
                int(data["channels"]["train"]["records"]))}

        yield from train_register_and_gate(
            context, sagemaker, spec=spec, name_prefix=f"algo-{model.key.replace('_', '-')}",
            image=spec.image_uri(sagemaker.region_name or region()),
            hyperparameters=hyperparameters_for(model, data, config.hyperparameters),
            channels={name: Channel(data["channels"][name]["uri"], RECORDIO) for name in model.channels},
            output_uri=f"{models_prefix()}/{model.key}", data_fingerprint=data["fingerprint"],
            instance_type=config.instance_type, check_name=model.check_name,
            gate=lambda metrics: model.gate(metrics, data, parameter), derived_metrics=derived_metrics,
            handle_fields={"model_key": model.key, "algorithm": model.algorithm,
                           "predictor_type": model.predictor_type, "feature_dim": int(data["feature_dim"])})

    return _model


def build_endpoint_asset(model: DemoModel) -> dg.AssetsDefinition:
    """The ``<key>_endpoint`` asset: the live endpoint ``algo-<key>`` serving the gated model."""

    @dg.asset(
        name=model.endpoint_asset_name,
        group_name=GROUP,
        kinds={"sagemaker"},
        io_manager_key="json_io_manager",
        ins={"trained": dg.AssetIn(model.asset_name)},
        description=f"The live endpoint {model.endpoint_name} serving the {model.title} once it passed its "
                    "quality gate; a new model updates it in place (blue/green), an unchanged one leaves it "
                    "alone.",
    )
    def _endpoint(context: dg.AssetExecutionContext, config: AlgorithmEndpointConfig, trained: dict[str, Any],
                  sagemaker: SageMakerResource) -> dg.Output[dict[str, Any]]:
        return deploy_gated_model(context, sagemaker, trained, model.endpoint_name, config, extra_handle={
            "model_key": model.key, "algorithm": model.algorithm, "predictor_type": model.predictor_type,
            "feature_dim": trained.get("feature_dim")})

    return _endpoint


MODEL_ASSETS: dict[str, dg.AssetsDefinition] = {m.key: build_model_asset(m) for m in DEMO_MODELS}
ENDPOINT_ASSETS: dict[str, dg.AssetsDefinition] = {m.key: build_endpoint_asset(m) for m in DEMO_MODELS}


SERVERLESS_MAX_REQUEST_BYTES = 4_000_000  # "4 MB": the smaller reading of the limit holds on AWS and locally


class EndpointScoresConfig(dg.Config):
    sample_rows: int = Field(default=1000, description="At most this many held-out rows per endpoint.")
    max_request_bytes: int = Field(default=5 * 1024 * 1024, description="Request size limit (5 MiB at most).")


@dg.asset(
    group_name=GROUP,
    kinds={"sagemaker"},
    io_manager_key="json_io_manager",
    ins={"algorithm_training_channels": dg.AssetIn(),
         **{f"{m.key}_endpoint": dg.AssetIn(m.endpoint_asset_name) for m in DEMO_MODELS}},
)
def algorithm_endpoint_scores(context: dg.AssetExecutionContext, config: EndpointScoresConfig,
                              sagemaker: SageMakerResource, store: ObjectStoreResource, catalog: CatalogResource,
                              **inputs: Any) -> dg.Output[dict[str, Any]]:
    """Every algorithm endpoint answering: a held-out sample of its data sent as recordIO-protobuf requests
    (at most 5 MiB each), the answers read into the algorithm's SageMaker-Spark output columns
    (closest_cluster/distance_to_cluster, score/predicted_label, projection, topic_mixture), and test
    figures computed from those answers (AUC, accuracy, RMSE, R², msd, captured variance...)."""
    if config.sample_rows < 1:
        raise dg.Failure(f"sample_rows must be at least 1, got {config.sample_rows}")
    channels = inputs["algorithm_training_channels"]["models"]
    results: dict[str, dict[str, Any]] = {}
    recreated: list[str] = []  # endpoints the idle reaper had deleted, created again from their configs
    for model in DEMO_MODELS:
        endpoint = inputs[f"{model.key}_endpoint"]
        source_key, channel = model.sample_channel
        data = channels[source_key]
        channel_uri = data["channels"][channel]["uri"]
        if endpoint.get("endpoint_mode") == "none":  # no endpoint: a batch transform job of the model
            figures = score_with_transform_job(
                sagemaker.sagemaker, store, model, endpoint["model_name"], channel_uri, config.sample_rows,
                channels[model.key], f"{models_prefix()}/{model.key}/transform", sagemaker.poll_seconds,
                log=context.log.info)
        else:
            if ensure_endpoint(sagemaker.sagemaker, endpoint["endpoint_name"], endpoint["config_name"],
                               sagemaker.poll_seconds, {"asset": model.endpoint_asset_name}, context.log.info):
                recreated.append(endpoint["endpoint_name"])
            # A serverless endpoint takes at most 4 MiB per request (real-time: 6 MiB; we send <= 5 MiB).
            limit = min(config.max_request_bytes, SERVERLESS_MAX_REQUEST_BYTES) \
                if endpoint.get("endpoint_mode") == "serverless" else config.max_request_bytes
            figures = score_endpoint(sagemaker.runtime, endpoint["endpoint_name"], model, channel_uri,
                                     config.sample_rows, limit, channels[model.key], store.arrow_filesystem())
        results[model.key] = figures
        context.log.info(f"{figures['endpoint_name']}: {figures['summary']}")
    metadata: dict[str, Any] = {f"{key}__{name}": value for key, figs in results.items()
                                for name, value in figs["figures"].items()}
    metadata["recreated_endpoints"] = ", ".join(recreated) or "none"
    metadata["columns_by_endpoint"] = dg.MetadataValue.json({BY_KEY[k].endpoint_name: f["columns"]
                                                             for k, f in results.items()})
    metadata["summary"] = dg.MetadataValue.md("\n".join(
        f"* **{BY_KEY[k].endpoint_name}** ({BY_KEY[k].title}): {f['summary']}" for k, f in results.items()))
    metadata["table"] = publish_endpoint_figures(catalog, store, results)  # queryable: one row per figure
    return dg.Output(results, metadata=metadata)


ALGORITHM_ASSETS: list[Any] = [
    algorithm_interactions,
    algorithm_documents,
    algorithm_training_channels,
    *MODEL_ASSETS.values(),
    *ENDPOINT_ASSETS.values(),
    algorithm_endpoint_scores,
]
# The quality gates are check specs of the model assets (so they can block); no separate checks.
ALGORITHM_CHECKS: list[Any] = []

algorithms_job = dg.define_asset_job(
    "algorithms_job",
    selection=dg.AssetSelection.assets(*ALGORITHM_ASSETS),
    description="The demo model of every built-in algorithm besides XGBoost: channels (Spark), training "
                "jobs, quality gates, endpoints, and a held-out sample scored through each endpoint.",
)
