"""Helpers of the deployment, capture, serverless and CloudWatch tests: a script-mode model that fails on some
inputs, and a stack with it trained twice (a good model and a faulty one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_service_helpers import BUCKET, FAST, ROLE, training_request
from safety_helpers import private_write

GUARD_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-guarded:1"

# Serves ``sum(row) * w``; a model trained with ``fail_at`` answers 500 for any request with a row whose first
# value is at least ``fail_at`` (a model that returns errors on some inputs).
GUARD_SCRIPT = """
import json, os
from pathlib import Path

def main():
    hps = json.loads(os.environ["SM_HPS"])
    Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(
        {"w": float(hps.get("w", 1)), "fail_at": float(hps["fail_at"]) if "fail_at" in hps else None}))

def model_fn(model_dir):
    return json.loads(Path(model_dir, "model.json").read_text())

def predict_fn(data, model):
    if model["fail_at"] is not None and (data[:, 0] >= model["fail_at"]).any():
        raise ValueError("this model cannot score rows with a first value of %s or more" % model["fail_at"])
    return data.sum(axis=1) * model["w"]

if __name__ == "__main__":
    main()
"""


def configure_guarded_algorithm(root: Path, **config: Any) -> None:
    """The script, a service config mapping :data:`GUARD_IMAGE` to it (plus ``config``), a train channel."""
    script = root / "guarded_algorithm.py"
    private_write(script, GUARD_SCRIPT.encode())
    private_write(root / "local" / "config.json",
                  json.dumps({"custom_images": {GUARD_IMAGE: str(script)}, **config}).encode())
    private_write(root / "s3" / BUCKET / "guarded" / "train" / "rows.csv", b"1,1,2\n0,3,4\n")


def train_model(sm: Any, name: str, **hyperparameters: Any) -> None:
    """Train the guarded script with ``hyperparameters`` and register the model ``name``."""
    request = training_request(f"train-{name}", f"s3://{BUCKET}/guarded",
                               {k: str(v) for k, v in hyperparameters.items()}, image=GUARD_IMAGE)
    request["InputDataConfig"] = request["InputDataConfig"][:1]
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=f"train-{name}", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName=f"train-{name}")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": GUARD_IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})


def endpoint_config(sm: Any, name: str, model: str, instances: int = 1, **extra: Any) -> str:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": instances,
        "InstanceType": "ml.m5.large"}], **extra)
    return name
