"""Every built-in algorithm's demo model, for real: Spark channels, training jobs, blocking gates, endpoints
answering recordIO-protobuf requests with the algorithm's output columns."""

import datetime as dt
from pathlib import Path

import boto3

from smspark_assets_tests.stack_access import stack_credentials
import dagster as dg
import pytest


# The first test pays for the shared demo run (Spark, training, endpoints) in its setup.
pytestmark = pytest.mark.timeout(1500)

EXPECTED_COLUMNS = {
    "algo-kmeans": {"closest_cluster": "scalar", "distance_to_cluster": "scalar"},
    "algo-linear-binary": {"score": "scalar", "predicted_label": "scalar"},
    "algo-linear-regressor": {"score": "scalar"},
    "algo-linear-multiclass": {"score": [4], "predicted_label": "scalar"},
    "algo-pca": {"projection": [5]},
    "algo-fm": {"score": "scalar"},
    "algo-lda": {"topic_mixture": [5]},
}


integration = pytest.mark.integration


@pytest.fixture
def flow(demo_flow: dict) -> dict:
    """The shared demo run's algorithm step (the credit features it needs come from the same run)."""
    from smspark_assets.definitions import ASSETS

    return {**demo_flow, "result": demo_flow["report"].results["algorithms"], "assets": ASSETS}


def _step_seconds(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Wall seconds per step (printed with ``-s``: where the time of the algorithm flow goes)."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            seconds[event.step_key] = round(entry.timestamp - started[event.step_key], 1)
    return seconds


def _client(flow: dict, service: str):
    return boto3.client(service, endpoint_url=flow["url"], region_name="us-east-1", **stack_credentials(flow["root"]))


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} was not materialized"
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()}


@integration
def test_every_model_trains_passes_its_gate_and_is_served(flow: dict) -> None:
    from smspark_assets.assets.algorithm_catalog import DEMO_MODELS

    result = flow["result"]
    print("seconds per step:", _step_seconds(flow["instance"], result))
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {m.check_name: True for m in DEMO_MODELS}
    sm = _client(flow, "sagemaker")
    for model in DEMO_MODELS:
        md = _metadata(result, model.asset_name)
        assert md["adopted_existing_job"] is False
        job = sm.describe_training_job(TrainingJobName=md["training_job_name"])
        assert job["TrainingJobStatus"] == "Completed"
        assert model.algorithm in job["AlgorithmSpecification"]["TrainingImage"]
        endpoint = sm.describe_endpoint(EndpointName=model.endpoint_name)
        assert endpoint["EndpointStatus"] == "InService"


@integration
def test_endpoints_answer_with_each_algorithms_columns(flow: dict) -> None:
    md = _metadata(flow["result"], "algorithm_endpoint_scores")
    assert md["columns_by_endpoint"] == EXPECTED_COLUMNS


@integration
def test_endpoint_figures_agree_with_the_training_jobs(flow: dict) -> None:
    result = flow["result"]
    scores = _metadata(result, "algorithm_endpoint_scores")
    jobs = {key: _metadata(result, f"{key}_model")["final_metrics"]
            for key in ("kmeans", "linear_binary", "linear_regressor", "linear_multiclass", "fm", "pca")}
    # Served on the same held-out rows, the endpoints must reproduce what the training jobs measured.
    assert scores["kmeans__msd"] == pytest.approx(jobs["kmeans"]["test:msd"], rel=1e-3)
    assert scores["linear_binary__auc"] == pytest.approx(jobs["linear_binary"]["test:roc_auc_score"],
                                                         abs=1e-3)
    assert scores["linear_regressor__rmse"] ** 2 == pytest.approx(jobs["linear_regressor"]["test:mse"],
                                                                  rel=1e-3)
    assert scores["linear_multiclass__accuracy"] == pytest.approx(
        jobs["linear_multiclass"]["test:multiclass_accuracy"], abs=1e-3)
    assert scores["fm__rmse"] == pytest.approx(jobs["fm"]["test:rmse"], rel=1e-3)
    # Quality, from the endpoints' answers alone.
    assert scores["linear_binary__auc"] > 0.7
    assert scores["linear_regressor__r2"] > 0.5
    assert scores["linear_multiclass__accuracy"] > scores["linear_multiclass__majority_share"] + 0.1
    assert scores["kmeans__clusters_used"] == 5
    assert scores["pca__variance_captured"] > 0.45
    assert scores["lda__max_mixture_sum_error"] < 1e-3
    assert scores["lda__mean_dominant_topic_share"] > 0.5


@integration
def test_a_failed_gate_keeps_the_model_off_its_endpoint_and_nothing_retrains(flow: dict) -> None:
    from smspark_assets.assets.algorithm_models import ENDPOINT_ASSETS, MODEL_ASSETS

    sm = _client(flow, "sagemaker")
    jobs_before = sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    config_before = sm.describe_endpoint(EndpointName="algo-linear-binary")["EndpointConfigName"]
    result = dg.materialize(
        flow["assets"], selection=[MODEL_ASSETS["linear_binary"], ENDPOINT_ASSETS["linear_binary"]],
        instance=flow["instance"], resources=_resources(), raise_on_error=False,
        run_config={"ops": {"linear_binary_model": {"config": {"gate_parameter": 0.999}}}})
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"linear_binary_quality_gate": False}
    assert _metadata(result, "linear_binary_model")["adopted_existing_job"] is True
    assert not result.asset_materializations_for_node("linear_binary_endpoint")
    assert sm.describe_endpoint(EndpointName="algo-linear-binary")["EndpointConfigName"] == config_before
    assert sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"] == jobs_before


@integration
def test_bad_hyperparameters_are_refused_before_any_job(flow: dict) -> None:
    from smspark_assets.assets.algorithm_models import MODEL_ASSETS

    sm = _client(flow, "sagemaker")
    before = len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    result = dg.materialize(flow["assets"], selection=[MODEL_ASSETS["kmeans"]], instance=flow["instance"],
                            resources=_resources(), raise_on_error=False,
                            run_config={"ops": {"kmeans_model": {"config": {"hyperparameters": {"k": "1"}}}}})
    assert not result.success
    failure = " ".join(str(e.message) for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    failure += " ".join(str(getattr(e.event_specific_data, "error", "")) for e in result.all_events
                        if e.event_type_value == "STEP_FAILURE")
    assert "k" in failure and "2" in failure  # names the parameter and the allowed range
    assert len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == before


def _resources() -> dict:
    from smspark_assets.resources.by_environment import resources_for

    return resources_for()


@integration
def test_the_algorithm_assets_form_one_group_and_a_job(flow: dict) -> None:
    from smspark_assets.assets.algorithm_models import ALGORITHM_ASSETS
    from smspark_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("algorithms_job") is not None
    graph = defs.resolve_asset_graph()
    keys = [k for a in ALGORITHM_ASSETS for k in a.keys]
    assert {graph.get(k).group_name for k in keys} == {"algorithms"}
    assert len(keys) == 3 + 7 + 7 + 1
    assert Path(flow["root"]).exists()


@integration
def test_a_second_materialization_trains_and_deploys_nothing_new(flow: dict) -> None:
    from smspark_assets.assets.algorithm_catalog import DEMO_MODELS
    from smspark_assets.assets.algorithm_models import ALGORITHM_ASSETS

    sm = _client(flow, "sagemaker")
    jobs_before = sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    result = dg.materialize(flow["assets"], selection=ALGORITHM_ASSETS, instance=flow["instance"],
                            resources=_resources())
    assert result.success
    first = _metadata(flow["result"], "algorithm_training_channels")["fingerprints"]
    # Spark rewrote every channel with the same bytes, so every training job name is the same.
    assert _metadata(result, "algorithm_training_channels")["fingerprints"] == first
    for model in DEMO_MODELS:
        assert _metadata(result, model.asset_name)["adopted_existing_job"] is True
        assert _metadata(result, model.endpoint_asset_name)["action"] == "unchanged"
    assert sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"] == jobs_before

# ---------------------------------------------------------------------------------------------- unit tests
# The gates and the endpoint figures, without Spark or the local service.


def test_each_gate_passes_the_demo_models_figures_and_fails_a_model_that_learned_nothing() -> None:
    from smspark_assets.assets.algorithm_catalog import BY_KEY

    cases = {  # model: (data baselines, measured demo metrics, metrics of a model that learned nothing)
        "kmeans": ({"test_one_cluster_msd": 14.2}, {"test:msd": 10.9}, {"test:msd": 14.5}),
        "linear_binary": ({"test_positive_rate": 0.12}, {"test:roc_auc_score": 0.78},
                          {"test:roc_auc_score": 0.5}),
        "linear_regressor": ({"test_label_variance": 9.2}, {"test:mse": 2.6}, {"test:mse": 9.3}),
        "linear_multiclass": ({"test_majority_share": 0.34}, {"test:multiclass_accuracy": 0.58},
                              {"test:multiclass_accuracy": 0.34}),
        "pca": ({"train_total_variance": 14.0}, {"explained_variance_ratio": 0.55},
                {"explained_variance_ratio": 5 / 14}),
        "fm": ({"noise_floor_rmse": 0.41, "bias_only_rmse": 1.08}, {"test:rmse": 0.47}, {"test:rmse": 1.08}),
        "lda": ({"unigram_pwll": -5.38, "true_pwll": -4.67}, {"test:pwll": -4.67}, {"test:pwll": -5.4}),
    }
    assert set(cases) == set(BY_KEY)
    for key, (data, good, broken) in cases.items():
        model = BY_KEY[key]
        assert model.gate(good, data, model.gate_parameter).passed, key
        outcome = model.gate(broken, data, model.gate_parameter)
        assert not outcome.passed, key
        assert "fails the gate" in outcome.describe()
        # A job that reported no such metric never passes.
        assert not model.gate({}, data, model.gate_parameter).passed, key


def test_hyperparameters_take_feature_dim_from_the_data_and_overrides_last() -> None:
    from smspark_assets.assets.algorithm_catalog import BY_KEY, hyperparameters_for
    from smspark_assets.local.algorithms import get_algorithm

    for model in BY_KEY.values():
        hp = hyperparameters_for(model, {"feature_dim": 14}, {})
        assert hp["feature_dim"] == "14"
        if model.algorithm == "pca":
            hp["num_components"] = "5"
        get_algorithm(model.algorithm).validate_hyperparameters(hp)  # the defaults are valid
    hp = hyperparameters_for(BY_KEY["kmeans"], {"feature_dim": 14}, {"k": 7, "feature_dim": "3"})
    assert hp["k"] == "7" and hp["feature_dim"] == "3"


def test_roc_auc_matches_its_definition() -> None:
    import numpy as np

    from smspark_assets.assets.algorithm_scoring import roc_auc

    labels = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    pairs = [(p, n) for p in scores[labels == 1] for n in scores[labels == 0]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(labels, scores) == pytest.approx(expected)
    assert np.isnan(roc_auc(np.ones(3), np.arange(3.0)))
