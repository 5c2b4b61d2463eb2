"""Helpers for the EMR Serverless tests: put a script in the store, create an application, wait for a run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/emr-local"
BUCKET = "emr-test"
TERMINAL = ("SUCCESS", "FAILED", "CANCELLED")


def put_object(root: Path, key: str, body: str | bytes, bucket: str = BUCKET) -> str:
    """Write an object straight into the store's files (independent of the S3 API); returns its URI."""
    path = root / "s3" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return f"s3://{bucket}/{key}"


def create_spark_app(emr: Any, name: str = "local-test") -> str:
    return emr.create_application(name=name, releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]


def wait_for_state(emr: Any, app_id: str, run_id: str, states: tuple[str, ...] = TERMINAL,
                   timeout: float = 60.0) -> dict[str, Any]:
    """Poll GetJobRun until the run is in one of ``states``; returns the jobRun document."""
    deadline = time.monotonic() + timeout
    while True:
        run = emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
        if run["state"] in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['state']} after {timeout}s: {run.get('stateDetails')}")
        time.sleep(0.1)


def wait_for_file(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {timeout}s")
        time.sleep(0.05)
    return path.read_text()
