"""Tuning benchmark: a 20-trial XGBoost tuning job with 2 trials in parallel against the same 20 training jobs
run outside the tuner, two at a time, back to back, on the same stack in the same run.

Run: ``.venv/bin/python benchmarks/tuning.py`` (``--trials``, ``--rows``, ``--rounds`` to change the sizes).

The stack runs as it runs for users (its own process, :func:`smspark_assets.local.process.start`, on a fresh
temporary root). Demo-like channels (``--rows`` rows, 12 numeric features, a binary label from a noisy
logistic model; 80/20 train/validation CSV, label first) are written with numpy and uploaded through boto3 S3.
One untimed warm-up job runs first. Then:

* tuner: ``CreateHyperParameterTuningJob`` (Bayesian, ``validation:auc`` maximized, eta/max_depth/
  min_child_weight/subsample ranges, ``MaxParallelTrainingJobs=2``), timed from the call until the tuning job
  reports ``Completed``;
* baseline: the tuner's 20 trials' hyperparameters (so the work is the same), as plain ``CreateTrainingJob``
  calls, two at a time, the next pair started when both are done; timed from the first call to the last end.

Both sides poll Describe every 0.1 s. Target (issue 11): tuner <= 1.3x the baseline. Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
import numpy as np  # noqa: E402

from smspark_assets.local import process  # noqa: E402
from smspark_assets.local.credentials import load_or_create  # noqa: E402
from smspark_assets.local.layout import LocalLayout  # noqa: E402

BUCKET = "tuning-bench"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/bench"
TARGET = 1.3
POLL = 0.1


def client(root: Path, url: str, service: str) -> Any:
    creds = load_or_create(LocalLayout.for_root(root))
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def write_channels(s3: Any, rows: int, seed: int = 0) -> None:
    """Demo-like data: 12 features, a label drawn from a logistic model of a few of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 12))
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * x[:, 4] ** 2 - 0.3
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    split = int(rows * 0.8)
    s3.create_bucket(Bucket=BUCKET)
    for channel, part in (("train", slice(0, split)), ("validation", slice(split, rows))):
        buf = io.StringIO()
        np.savetxt(buf, np.column_stack([y[part], x[part]]), delimiter=",", fmt="%.6g")
        s3.put_object(Bucket=BUCKET, Key=f"demo/{channel}/part-00000.csv", Body=buf.getvalue().encode())


def definition(rounds: int) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "StaticHyperParameters": {"objective": "binary:logistic", "num_round": str(rounds)},
        "InputDataConfig": [
            {"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/demo/{c}"}}}
            for c in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def training_request(name: str, rounds: int, hyperparameters: dict[str, str]) -> dict[str, Any]:
    d = definition(rounds)
    return {"TrainingJobName": name, "HyperParameters": hyperparameters,
            **{k: v for k, v in d.items() if k != "StaticHyperParameters"}}


def wait_jobs(sm: Any, names: list[str]) -> None:
    pending = set(names)
    while pending:
        for name in list(pending):
            status = sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
            if status == "Failed":
                raise SystemExit(f"training job {name} failed: "
                                 f"{sm.describe_training_job(TrainingJobName=name).get('FailureReason')}")
            if status in ("Completed", "Stopped"):
                pending.discard(name)
        if pending:
            time.sleep(POLL)


def run_tuner(sm: Any, trials: int, rounds: int) -> tuple[float, list[dict[str, str]]]:
    name = "bench-tuning"
    started = time.perf_counter()
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
                    {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"},
                    {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "20", "ScalingType": "Auto"}],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8"}],
            },
            "RandomSeed": 7,
        },
        TrainingJobDefinition=definition(rounds),
    )
    while True:
        doc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if doc["HyperParameterTuningJobStatus"] != "InProgress":
            break
        time.sleep(POLL)
    seconds = time.perf_counter() - started
    if doc["HyperParameterTuningJobStatus"] != "Completed":
        raise SystemExit(f"tuning job ended {doc['HyperParameterTuningJobStatus']}: {doc.get('FailureReason')}")
    summaries = [s for page in sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, SortBy="CreationTime", SortOrder="Ascending")
        for s in page["TrainingJobSummaries"]]
    hyperparameters = [sm.describe_training_job(TrainingJobName=s["TrainingJobName"])["HyperParameters"]
                       for s in summaries]
    best = doc["BestTrainingJob"]
    print(f"tuner: {len(summaries)} trials, best {best['TrainingJobName']} "
          f"validation:auc={best['FinalHyperParameterTuningJobObjectiveMetric']['Value']:.4f}")
    return seconds, hyperparameters


def run_baseline(sm: Any, rounds: int, hyperparameters: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for i in range(0, len(hyperparameters), 2):
        names = []
        for j, hps in enumerate(hyperparameters[i:i + 2]):
            name = f"bench-plain-{i + j + 1:03d}"
            sm.create_training_job(**training_request(name, rounds, hps))
            names.append(name)
        wait_jobs(sm, names)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuning-bench-") as tmp:
        root = Path(tmp) / "root"
        url = process.start(root).url
        try:
            sm = client(root, url, "sagemaker")
            write_channels(client(root, url, "s3"), args.rows)
            sm.create_training_job(**training_request("bench-warmup", args.rounds,
                                                      {"objective": "binary:logistic",
                                                       "num_round": str(args.rounds)}))
            wait_jobs(sm, ["bench-warmup"])
            tuner, hyperparameters = run_tuner(sm, args.trials, args.rounds)
            baseline = run_baseline(sm, args.rounds, hyperparameters)
        finally:
            process.stop(root)
    ratio = tuner / baseline
    print(f"tuner {tuner:.1f} s, baseline (same {len(hyperparameters)} jobs, two at a time) {baseline:.1f} s, "
          f"ratio {ratio:.2f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
