"""``credit_model_tuning`` materialized on the embedded stack with a tiny budget: real XGBoost trials.

Checked independently of the asset: the trials listed by ListTrainingJobsForHyperParameterTuningJob (budget,
parallelism from their start/end times, the best objective among them), the best model's validation AUC
recomputed with scikit-learn from its artifact, the handle :func:`tuned_challenger` reads back, and adoption
(no new training job) when the asset is materialized again.
"""

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from smspark_assets.assets.tuning import credit_model_tuning, tuned_challenger
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.io_managers import JsonObjectIOManager
from smspark_assets.resources.storage import S3ObjectStoreResource
from smspark_assets.sagemaker.tuning import adopt_training_job
from smspark_assets_tests.stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BUCKET = "tuning-asset"
ROWS, FEATURES = 2000, 8
BUDGET, PARALLEL = 4, 2
RANGES = {"eta": (0.05, 0.5), "max_depth": (2, 5)}
RUN_CONFIG = {"ops": {"credit_model_tuning": {"config": {
    "max_jobs": BUDGET, "max_parallel": PARALLEL, "strategy": "Bayesian",
    # No early stopping: the model artifact holds every round, so its validation AUC is the reported one.
    "static_hyperparameters": {"objective": "binary:logistic", "eval_metric": "auc", "num_round": "20", "seed": "7"},
    "ranges": [{"name": "eta", "kind": "Continuous", "min_value": RANGES["eta"][0], "max_value": RANGES["eta"][1],
                "scaling": "Logarithmic"},
               {"name": "max_depth", "kind": "Integer", "min_value": RANGES["max_depth"][0],
                "max_value": RANGES["max_depth"][1], "scaling": "Linear"}],
}}}}


def _channels(rows: int, seed: int = 3) -> dict[str, np.ndarray]:
    """Credit-like data: a label from a noisy logistic model with an interaction, label first (as Spark writes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    logit = 1.1 * x[:, 0] - 0.9 * x[:, 1] + 0.7 * x[:, 2] * x[:, 3] - 0.4
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    data = np.column_stack([y, x])
    split = int(rows * 0.8)
    return {"train": data[:split], "validation": data[split:]}


@pytest.fixture(scope="module")
def tuned(local_stack: tuple[Path, str]) -> dict[str, Any]:
    root, url = local_stack
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        mp.setenv("SMSPARK_ENV", "local")
        mp.setenv("SMSPARK_BUCKET", BUCKET)  # layout(): where the trials write their models
        store = S3ObjectStoreResource(local_stack_root=str(root))
        s3 = store.client("s3")
        try:
            s3.create_bucket(Bucket=BUCKET)
        except s3.exceptions.BucketAlreadyOwnedByYou:  # the stack may have made it on first use
            pass
        data = _channels(ROWS)
        channels = {}
        for name, part in data.items():
            buf = io.StringIO()
            np.savetxt(buf, part, delimiter=",", fmt="%.6g")
            channels[name] = f"s3://{BUCKET}/channels/credit_default/{name}/"
            store.write_bytes(f"{channels[name]}part-0.csv", buf.getvalue().encode())
        fingerprint = store.fingerprint(channels["train"])[:16] + store.fingerprint(channels["validation"])[:16]
        # The upstream handle, as credit_training_channels stores it through the JSON IO manager.
        upstream = {"channels": channels, "content_type": "text/csv", "fingerprint": fingerprint,
                    "feature_columns": [f"x{i}" for i in range(FEATURES)], "days": ["2026-11-01"]}
        store.write_bytes(f"s3://{BUCKET}/dagster/credit_training_channels.json", json.dumps(upstream).encode())
        resources = {
            "sagemaker": SageMakerResource(local_stack_root=str(root), poll_seconds=0.5,
                                           role_arn="arn:aws:iam::000000000000:role/smspark-local"),
            "json_io_manager": JsonObjectIOManager(store=store, prefix=f"s3://{BUCKET}/dagster"),
        }
        source = dg.SourceAsset("credit_training_channels", io_manager_key="json_io_manager")
        sm = stack_client(root, url, "sagemaker")
        with dg.instance_for_test() as instance:
            first = dg.materialize([source, credit_model_tuning], resources=resources, run_config=RUN_CONFIG,
                                   instance=instance)
            jobs_before = _training_job_names(sm)
            second = dg.materialize([source, credit_model_tuning], resources=resources, run_config=RUN_CONFIG,
                                    instance=instance)
            jobs_after = _training_job_names(sm)
            challenger = tuned_challenger(instance, fingerprint)
            other = tuned_challenger(instance, "another-fingerprint")
        yield {"first": first, "second": second, "sm": sm, "store": store, "data": data, "fingerprint": fingerprint,
               "jobs_before": jobs_before, "jobs_after": jobs_after, "challenger": challenger, "other": other}


def _training_job_names(sm: Any) -> set[str]:
    pages = sm.get_paginator("list_training_jobs").paginate()
    return {s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]}


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node("credit_model_tuning")
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def _trials(sm: Any, name: str) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    return [t for page in pages for t in page["TrainingJobSummaries"]]


def test_trials_stay_within_budget_parallelism_and_ranges(tuned: dict[str, Any]) -> None:
    assert tuned["first"].success
    meta = _metadata(tuned["first"])
    trials = _trials(tuned["sm"], meta["tuning_job_name"])
    assert 1 <= len(trials) <= BUDGET
    assert all(t["TrainingJobName"].startswith(meta["tuning_job_name"]) for t in trials)
    # Parallelism from the trials' own times: at each start, how many trials were running (pairwise, by hand).
    spans = [(t["TrainingStartTime"], t["TrainingEndTime"]) for t in trials]
    running_at_starts = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(running_at_starts) <= PARALLEL
    assert meta["max_concurrent_trials"] == max(running_at_starts)
    for t in trials:
        hps = t["TunedHyperParameters"]
        assert RANGES["eta"][0] <= float(hps["eta"]) <= RANGES["eta"][1]
        assert float(hps["max_depth"]) == int(float(hps["max_depth"]))
        assert RANGES["max_depth"][0] <= int(hps["max_depth"]) <= RANGES["max_depth"][1]
    assert meta["trial_count"] == len(trials)
    for t in trials:
        assert t["TrainingJobName"] in meta["trials"]  # the markdown table lists every trial
    assert "data:image/png;base64," in meta["objective_per_trial"]


def test_the_best_job_is_the_trial_with_the_highest_auc(tuned: dict[str, Any]) -> None:
    meta = _metadata(tuned["first"])
    handle = meta["handle"]
    trials = [t for t in _trials(tuned["sm"], meta["tuning_job_name"])
              if "FinalHyperParameterTuningJobObjectiveMetric" in t]
    assert trials
    best = max(trials, key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert handle["best_training_job_name"] == meta["best_training_job_name"] == best["TrainingJobName"]
    assert handle["objective_value"] == pytest.approx(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert handle["objective_metric"] == "validation:auc" and handle["objective_type"] == "Maximize"
    assert handle["channels_fingerprint"] == tuned["fingerprint"]
    assert {k: handle["best_hyperparameters"][k] for k in best["TunedHyperParameters"]} == best["TunedHyperParameters"]


def test_the_best_models_auc_is_what_scikit_learn_computes(tuned: dict[str, Any]) -> None:
    import xgboost

    handle = _metadata(tuned["first"])["handle"]
    archive = tarfile.open(fileobj=io.BytesIO(tuned["store"].read_bytes(handle["best_model_artifacts"])))
    booster = xgboost.Booster()
    booster.load_model(bytearray(archive.extractfile("xgboost-model").read()))
    validation = tuned["data"]["validation"]
    scores = booster.predict(xgboost.DMatrix(validation[:, 1:]))
    assert roc_auc_score(validation[:, 0], scores) == pytest.approx(handle["objective_value"], abs=1e-4)


def test_materializing_again_adopts_the_completed_tuning_job(tuned: dict[str, Any]) -> None:
    first, second = _metadata(tuned["first"]), _metadata(tuned["second"])
    assert tuned["second"].success
    assert not first["adopted_existing_job"] and second["adopted_existing_job"]
    assert second["tuning_job_name"] == first["tuning_job_name"]
    assert second["best_training_job_name"] == first["best_training_job_name"]
    assert tuned["jobs_after"] == tuned["jobs_before"]  # no training job was started


def test_the_challenger_is_the_tuned_best_job_on_the_same_channels_only(tuned: dict[str, Any]) -> None:
    challenger = tuned["challenger"]
    assert challenger is not None and tuned["other"] is None
    assert challenger["best_training_job_name"] == _metadata(tuned["second"])["best_training_job_name"]
    adopted = adopt_training_job(tuned["sm"], challenger["best_training_job_name"])
    assert adopted.model_artifacts == challenger["best_model_artifacts"]
    assert adopted.metrics["validation:auc"] == pytest.approx(challenger["objective_value"])
