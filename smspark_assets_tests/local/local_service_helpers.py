"""Helpers for the local service tests: XGBoost data, requests and deployment (imported by the test
modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/local"
BUCKET = "local-test"
FAST = {"Delay": 0.2, "MaxAttempts": 600}


def write_xgboost_channels(
    root: Path, prefix: str = "data", rows: int = 1500, seed: int = 0
) -> tuple[str, np.ndarray]:
    """``train``/``validation`` CSV channels (label first, no header) under ``s3://BUCKET/<prefix>/``.

    Returns the S3 prefix and some feature rows for inference. The label depends on the first two features.
    """
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    split = int(rows * 0.8)
    for channel, part in (("train", slice(0, split)), ("validation", slice(split, rows))):
        directory = root / "s3" / BUCKET / prefix / channel
        directory.mkdir(parents=True, exist_ok=True)
        np.savetxt(
            directory / "part-00000.csv",
            np.column_stack([labels[part], features[part]]),
            delimiter=",",
            fmt="%.6g",
        )
    return f"s3://{BUCKET}/{prefix}", features[split:]


def training_request(
    name: str,
    data_uri: str,
    hyperparameters: dict[str, str] | None = None,
    image: str = XGBOOST_IMAGE,
    **extra: Any,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": (
            hyperparameters
            if hyperparameters is not None
            else {"objective": "binary:logistic", "num_round": "20"}
        ),
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{data_uri}/{channel}"}},
            }
            for channel in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(extra)
    return request


def deploy(
    sm: Any, name: str, artifact: str, image: str = XGBOOST_IMAGE, variants: int = 1, wait: bool = True
) -> None:
    """Model + config + endpoint named ``name`` from ``artifact``; waits for InService."""
    sm.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataUrl": artifact}
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": f"v{i}" if variants > 1 else "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
            for i in range(variants)
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)


def csv_rows(features: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:.6g}" for v in row) for row in features) + "\n").encode()


CUSTOM_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-test-linear:1"

# A tiny script-mode algorithm (numpy only, so it starts fast): trains after sleeping ``sleep`` seconds,
# fails on ``fail``, and serves ``sum(row) * w``; a model trained with ``broken`` cannot be loaded.
LINEAR_SCRIPT = """
import json, os, sys, time
from pathlib import Path

def main():
    hps = json.loads(os.environ["SM_HPS"])
    print("training with", sys.argv[1:], flush=True)
    time.sleep(float(hps.get("sleep", 0)))
    if hps.get("fail"):
        Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("AlgorithmError: asked to fail")
        sys.exit(3)
    Path(os.environ["SM_MODEL_DIR"], "weights.json").write_text(
        json.dumps({"w": float(hps.get("w", 1.0)), "broken": bool(hps.get("broken", False))}))
    print("train-loss=0.25", file=sys.stderr)

def model_fn(model_dir):
    doc = json.loads(Path(model_dir, "weights.json").read_text())
    if doc["broken"]:
        raise RuntimeError("this model cannot be loaded")
    return doc["w"]

def predict_fn(data, w):
    return data.sum(axis=1) * w

if __name__ == "__main__":
    main()
"""


def configure_custom_algorithm(root: Path, **config: Any) -> str:
    """Write the linear script and a service config mapping :data:`CUSTOM_IMAGE` to it; returns the script
    path.
    """
    import json

    local = root / "local"
    local.mkdir(parents=True, exist_ok=True)
    script = root / "linear_algorithm.py"
    script.write_text(LINEAR_SCRIPT)
    (local / "config.json").write_text(json.dumps({"custom_images": {CUSTOM_IMAGE: str(script)}, **config}))
    data = root / "s3" / BUCKET / "linear" / "train"
    data.mkdir(parents=True, exist_ok=True)
    (data / "rows.csv").write_text("1,1,2\n0,3,4\n")
    return str(script)


def linear_job(name: str, **hyperparameters: Any) -> dict[str, Any]:
    """A training request for the linear script-mode algorithm."""
    request = training_request(
        name, f"s3://{BUCKET}/linear", {k: str(v) for k, v in hyperparameters.items()}, image=CUSTOM_IMAGE
    )
    request["InputDataConfig"] = request["InputDataConfig"][:1]
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": "train-loss=([0-9.]+)"}
    ]
    return request
