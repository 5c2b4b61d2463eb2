"""Applications and job runs survive a restart of the stack; a run that was running when the service was
killed ends FAILED with a reason naming the restart, and its driver process does not outlive it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import pytest

from emr_test_helpers import ROLE, create_spark_app, put_object, wait_for_file, wait_for_state
from smspark_assets.local import process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SLEEP_SCRIPT = """
import os, sys, time
from pathlib import Path
Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(120)
"""


def _emr(url: str):  # noqa: ANN202 - a boto3 client
    return boto3.client("emr-serverless", endpoint_url=url, region_name="us-east-1",
                        **stack_credentials_for_url(url))


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


def test_running_job_fails_after_the_service_is_killed(fresh_root: Path, tmp_path: Path) -> None:
    info = process.start(fresh_root)
    emr = _emr(info.url)
    app_id = create_spark_app(emr, "restart")
    entry = put_object(fresh_root, "code/sleep.py", SLEEP_SCRIPT)
    pid_file = tmp_path / "pid"
    run_id = emr.start_job_run(applicationId=app_id, executionRoleArn=ROLE,
                               jobDriver={"sparkSubmit": {"entryPoint": entry,
                                                          "entryPointArguments": [str(pid_file)]}})["jobRunId"]
    driver_pid = int(wait_for_file(pid_file))
    wait_for_state(emr, app_id, run_id, ("RUNNING",))
    os.kill(info.pid, signal.SIGKILL)  # a crash: nothing is cleaned up by the service itself
    assert _gone(info.pid)
    again = process.start(fresh_root)
    emr = _emr(again.url)
    assert emr.get_application(applicationId=app_id)["application"]["type"] == "Spark"
    run = emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
    assert run["state"] == "FAILED"
    assert "restarted" in run["stateDetails"]
    assert _gone(driver_pid)
