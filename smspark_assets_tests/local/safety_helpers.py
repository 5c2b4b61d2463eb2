"""Helpers of the safety tests: a script-mode algorithm that reports what it sees, and a private stack.

The script's behaviour is chosen by its ``mode`` hyperparameter:

* ``env`` (default): writes the variables it was given into ``model/env.json``;
* ``rewrite``: first overwrites every file of its ``train`` channel in place (as a careless script might);
* ``stop_after_write``: writes ``model/env.json``, then sleeps (to be stopped with a model on disk);
* ``stop_before_write``: sleeps before writing anything.

Serving answers ``MY_NUMBER`` (from the model's Environment) for every row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from local_service_helpers import BUCKET, training_request

SAFETY_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local-safety:1"
# Set in the service's own environment by the tests: it must never reach a job or a model server.
SERVICE_ONLY_VAR = "SAFETY_SERVICE_ONLY"
REPORTED = ("MY_SETTING", SERVICE_ONLY_VAR, "PYTHONWARNINGS", "BASH_ENV", "BROWSER", "SM_MODEL_DIR")

SAFETY_SCRIPT = f"""
import json, os, sys, time
from pathlib import Path
import numpy as np

def main():
    hps = json.loads(os.environ["SM_HPS"])
    mode = hps.get("mode", "env")
    model = Path(os.environ["SM_MODEL_DIR"])
    if mode == "rewrite":
        for path in sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).rglob("*")):
            if path.is_file():
                with open(path, "r+b") as fh:
                    fh.write(b"tampered by the job")
    if mode == "stop_before_write":
        time.sleep(120)
    (model / "env.json").write_text(json.dumps({{k: os.environ.get(k) for k in {REPORTED!r}}}))
    if mode == "stop_after_write":
        time.sleep(120)

def model_fn(model_dir):
    return float(os.environ.get("MY_NUMBER", "0"))

def predict_fn(data, number):
    return np.full(len(data), number)

if __name__ == "__main__":
    main()
"""

TRAIN_ROWS = b"1,1,2\n0,3,4\n1,5,6\n"


def private_write(path: Path, data: bytes) -> None:
    """Write ``data`` with the modes the stack's state has (0700 folders, 0600 files)."""
    missing = []
    current = path.parent
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def configure_safety_algorithm(root: Path) -> Path:
    """The script, a config mapping :data:`SAFETY_IMAGE` to it, and the ``train`` channel; returns the
    path of the stored channel object."""
    script = root / "safety_algorithm.py"
    private_write(script, SAFETY_SCRIPT.encode())
    private_write(root / "local" / "config.json",
                  json.dumps({"custom_images": {SAFETY_IMAGE: str(script)}}).encode())
    stored = root / "s3" / BUCKET / "safety" / "train" / "rows.csv"
    private_write(stored, TRAIN_ROWS)
    return stored


def safety_job(name: str, environment: dict[str, str] | None = None, **hyperparameters: Any) -> dict[str, Any]:
    request = training_request(name, f"s3://{BUCKET}/safety", {k: str(v) for k, v in hyperparameters.items()},
                               image=SAFETY_IMAGE)
    request["InputDataConfig"] = request["InputDataConfig"][:1]
    if environment is not None:
        request["Environment"] = environment
    return request


def walk(root: Path) -> Iterator[Path]:
    yield root
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield Path(dirpath) / name
