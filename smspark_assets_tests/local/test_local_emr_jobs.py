"""EMR Serverless of the local stack with boto3: jobs really run (spark-submit, local[*]) and end in the
states, logs and details EMR gives them."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_test_helpers import BUCKET, ROLE, create_spark_app, put_object, wait_for_file, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OK_SCRIPT = """
import os, sys
from pathlib import Path
import boto3

print("hello from the driver", sys.argv[1:])
print("driver warning line", file=sys.stderr)
# boto3 reaches the stack through the client environment the service gives the job.
logs = boto3.client("logs")
logs.create_log_group(logGroupName="/job/proof")
logs.create_log_stream(logGroupName="/job/proof", logStreamName="s")
logs.put_log_events(logGroupName="/job/proof", logStreamName="s",
                    logEvents=[{"timestamp": __import__("time").time_ns() // 10**6, "message": sys.argv[1]}])
# The EMRFS contract: s3://bucket/key is SMSPARK_EMRFS_ROOT/bucket/key inside jobs.
out = Path(os.environ["SMSPARK_EMRFS_ROOT"], "emr-test", "out", "result.txt")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(sys.argv[1] + " " + os.environ["GREETING"])
"""

FAIL_SCRIPT = """
def compute():
    raise RuntimeError("deliberate failure 42")
compute()
"""

SLEEP_SCRIPT = """
import os, sys, time
from pathlib import Path
Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(120)
"""

SPARK_SCRIPT = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
total = spark.range(0, 1000, numPartitions=1).selectExpr("sum(id) AS s").collect()[0]["s"]
print(f"SPARK_TOTAL={total} master={spark.sparkContext.master}")
jvm = spark.sparkContext._jvm
flags = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
print(f"JIT={'-XX:TieredStopAtLevel=1' in flags} MARKER={jvm.java.lang.System.getProperty('smspark.marker')}")
spark.stop()
"""


@pytest.fixture(scope="module")
def emr(service: Any) -> Any:
    return service.client("emr-serverless")


@pytest.fixture(scope="module")
def app_id(emr: Any) -> str:
    return create_spark_app(emr)


def _start(emr: Any, app_id: str, entry: str, args: list[str] | None = None, params: str = "",
           **extra: Any) -> str:
    spark: dict[str, Any] = {"entryPoint": entry, "entryPointArguments": args or []}
    if params:
        spark["sparkSubmitParameters"] = params
    return emr.start_job_run(applicationId=app_id, executionRoleArn=ROLE, jobDriver={"sparkSubmit": spark},
                             **extra)["jobRunId"]


def test_job_runs_prints_reaches_the_stack_and_logs_land_gzipped(service: Any, emr: Any, app_id: str) -> None:
    entry = put_object(service.root, "code/ok.py", OK_SCRIPT)
    run_id = _start(
        emr, app_id, entry, ["arg-7"], "--conf spark.emr-serverless.driverEnv.GREETING=a=b==",
        name="ok-job", tags={"team": "risk"}, executionTimeoutMinutes=5,
        configurationOverrides={"monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": f"s3://{BUCKET}/logs/"},
            "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/emr/test"}}},
    )
    run = wait_for_state(emr, app_id, run_id)
    assert run["state"] == "SUCCESS", run["stateDetails"]
    assert run["name"] == "ok-job" and run["tags"] == {"team": "risk"} and run["executionTimeoutMinutes"] == 5
    assert run["startedAt"] <= run["endedAt"] and isinstance(run["totalExecutionDurationSeconds"], int)
    # The driverEnv value kept every "=" after the first (dagster's base64 values end with "=").
    assert (service.root / "s3" / BUCKET / "out" / "result.txt").read_text() == "arg-7 a=b=="
    logs = service.client("logs")
    proof = logs.get_log_events(logGroupName="/job/proof", logStreamName="s", startFromHead=True)
    assert [e["message"] for e in proof["events"]] == ["arg-7"]
    base = service.root / "s3" / BUCKET / "logs" / "applications" / app_id / "jobs" / run_id / "SPARK_DRIVER"
    stdout = gzip.decompress((base / "stdout.gz").read_bytes()).decode()
    stderr = gzip.decompress((base / "stderr.gz").read_bytes()).decode()
    assert "hello from the driver ['arg-7']" in stdout
    # As on EMR, spark-submit merges a Python driver's stderr into the driver's stdout.
    assert "driver warning line" in stdout
    assert "WARNING: Using incubator modules" in stderr
    stream = f"/applications/{app_id}/jobs/{run_id}/SPARK_DRIVER/stdout"
    events = logs.get_log_events(logGroupName="/emr/test", logStreamName=stream, startFromHead=True)["events"]
    assert "hello from the driver ['arg-7']" in [e["message"] for e in events]
    assert abs(events[0]["timestamp"] / 1000 - run["startedAt"].timestamp()) < 60
    dashboard = emr.get_dashboard_for_job_run(applicationId=app_id, jobRunId=run_id)["url"]
    assert dashboard.startswith("file://") and dashboard.endswith("/stderr")


def test_failing_script_fails_with_its_exception_in_state_details(service: Any, emr: Any, app_id: str) -> None:
    entry = put_object(service.root, "code/fail.py", FAIL_SCRIPT)
    run = wait_for_state(emr, app_id, _start(emr, app_id, entry))
    assert run["state"] == "FAILED"
    assert run["stateDetails"].startswith(
        "Job failed, please check complete logs in configured logging destination. ExitCode: 1.")
    assert "RuntimeError: deliberate failure 42" in run["stateDetails"]
    assert len(run["stateDetails"]) <= 256


def test_missing_entry_point_fails_the_run_naming_it(service: Any, emr: Any, app_id: str) -> None:
    run = wait_for_state(emr, app_id, _start(emr, app_id, f"s3://{BUCKET}/code/absent.py"))
    assert run["state"] == "FAILED"
    assert f"s3://{BUCKET}/code/absent.py" in run["stateDetails"]


def test_cancel_stops_the_driver_process(service: Any, emr: Any, app_id: str, tmp_path: Path) -> None:
    entry = put_object(service.root, "code/sleep.py", SLEEP_SCRIPT)
    pid_file = tmp_path / "pid"
    run_id = _start(emr, app_id, entry, [str(pid_file)])
    pid = int(wait_for_file(pid_file))
    assert wait_for_state(emr, app_id, run_id, ("RUNNING",))["state"] == "RUNNING"
    answer = emr.cancel_job_run(applicationId=app_id, jobRunId=run_id, shutdownGracePeriodInSeconds=2)
    assert answer["jobRunId"] == run_id
    run = wait_for_state(emr, app_id, run_id, timeout=30)
    assert run["state"] == "CANCELLED"
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    with pytest.raises(ClientError) as err:
        emr.cancel_job_run(applicationId=app_id, jobRunId=run_id)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_real_pyspark_job(service: Any, emr: Any, app_id: str) -> None:
    entry = put_object(service.root, "code/spark.py", SPARK_SCRIPT)
    # The run's own -D option joins the service's C1-only flag (emr_runner.DRIVER_JAVA_FLAGS).
    run_id = _start(emr, app_id, entry, params="--conf spark.driver.memory=512m --conf spark.sql.shuffle.partitions=1 "
                    "--conf spark.driver.extraJavaOptions=-Dsmspark.marker=42",
                    configurationOverrides={"monitoringConfiguration": {
                        "s3MonitoringConfiguration": {"logUri": f"s3://{BUCKET}/spark-logs"}}})
    run = wait_for_state(emr, app_id, run_id, timeout=100)
    assert run["state"] == "SUCCESS", run["stateDetails"]
    stdout = service.root / "s3" / BUCKET / "spark-logs" / "applications" / app_id / "jobs" / run_id / "SPARK_DRIVER"
    printed = gzip.decompress((stdout / "stdout.gz").read_bytes()).decode()
    assert f"SPARK_TOTAL={sum(range(1000))} master=local[*]" in printed
    assert "JIT=True MARKER=42" in printed


def test_unknown_application_is_resource_not_found(emr: Any) -> None:
    for call in (lambda: emr.get_application(applicationId="00doesnotexist01"),
                 lambda: emr.get_job_run(applicationId="00doesnotexist01", jobRunId="00abc"),
                 lambda: _start(emr, "00doesnotexist01", f"s3://{BUCKET}/x.py")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("params, culprit", [
    ("--conf spark.emr-serverless.driverEnv.PYTHONSTARTUP=/tmp/x.py", "PYTHONSTARTUP"),
    ("--conf spark.emr-serverless.driverEnv.LD_PRELOAD=/tmp/x.so", "LD_PRELOAD"),
    ("--conf spark.emr-serverless.driverEnv.BASH_ENV=$(id)", "BASH_ENV"),
    ("--conf spark.emr-serverless.driverEnv.BROWSER=bash", "BROWSER"),
    ("--conf spark.emr-serverless.driverEnv.JAVA_TOOL_OPTIONS=-javaagent:/x", "JAVA_TOOL_OPTIONS"),
    ("--conf spark.emr-serverless.driverEnv.SPARK_SUBMIT_OPTS=-Dx=1", "SPARK_SUBMIT_OPTS"),
    ("--conf spark.executorEnv.PYTHONPATH=/tmp", "PYTHONPATH"),
    ("--conf spark.driver.extraJavaOptions=-XX:OnError=id", "spark.driver.extraJavaOptions"),
    ("--conf spark.jars=/tmp/evil.jar", "spark.jars"),
    ("--py-files /tmp/evil.zip", "--py-files"),
    ("--conf spark.driver.extraClassPath=/tmp", "spark.driver.extraClassPath"),
    ("--conf spark.pyspark.python=/bin/sh", "spark.pyspark.python"),
])
def test_refused_settings_are_validation_errors_naming_the_key(emr: Any, app_id: str, params: str,
                                                               culprit: str) -> None:
    before = len(emr.list_job_runs(applicationId=app_id)["jobRuns"])
    with pytest.raises(ClientError) as err:
        _start(emr, app_id, f"s3://{BUCKET}/code/ok.py", params=params)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert culprit in err.value.response["Error"]["Message"]
    assert len(emr.list_job_runs(applicationId=app_id)["jobRuns"]) == before


@pytest.mark.parametrize("entry", ["s3://../local/state.sqlite", "s3://emr-test/../../local/x.py", "/etc/passwd",
                                   "s3://Bad_Bucket/x.py"])
def test_entry_points_outside_the_store_are_refused(emr: Any, app_id: str, entry: str) -> None:
    with pytest.raises(ClientError) as err:
        _start(emr, app_id, entry)
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_list_job_runs_filters_and_pages(emr: Any, app_id: str) -> None:
    every = emr.list_job_runs(applicationId=app_id)["jobRuns"]
    assert len(every) >= 3
    created = [r["createdAt"] for r in every]
    assert created == sorted(created, reverse=True)
    failed = emr.list_job_runs(applicationId=app_id, states=["FAILED"])["jobRuns"]
    assert failed and {r["state"] for r in failed} == {"FAILED"}
    pages = list(emr.get_paginator("list_job_runs").paginate(applicationId=app_id, PaginationConfig={"PageSize": 2}))
    assert len(pages) == (len(every) + 1) // 2
    assert [r["id"] for p in pages for r in p["jobRuns"]] == [r["id"] for r in every]


def test_application_type_casing_and_lifecycle(emr: Any) -> None:
    app = emr.create_application(name="casing", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    got = emr.get_application(applicationId=app)["application"]
    assert got["type"] == "Spark" and got["state"] == "CREATED"
    emr.start_application(applicationId=app)
    assert emr.get_application(applicationId=app)["application"]["state"] == "STARTED"
    emr.stop_application(applicationId=app)
    assert emr.list_applications(states=["STOPPED"])["applications"][0]["id"] == app


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_at_most_two_runs_hold_a_process_and_queued_runs_cancel_at_once(service: Any, emr: Any, app_id: str,
                                                                        tmp_path: Path) -> None:
    entry = put_object(service.root, "code/sleep.py", SLEEP_SCRIPT)
    runs = [_start(emr, app_id, entry, [str(tmp_path / f"pid{i}")]) for i in range(3)]
    for i in range(2):
        wait_for_file(tmp_path / f"pid{i}")
    states = [emr.get_job_run(applicationId=app_id, jobRunId=r)["jobRun"]["state"] for r in runs]
    assert states[:2] == ["RUNNING", "RUNNING"] and states[2] == "PENDING"
    emr.cancel_job_run(applicationId=app_id, jobRunId=runs[2])
    assert emr.get_job_run(applicationId=app_id, jobRunId=runs[2])["jobRun"]["state"] == "CANCELLED"
    for run_id in runs[:2]:
        emr.cancel_job_run(applicationId=app_id, jobRunId=run_id, shutdownGracePeriodInSeconds=1)
    for run_id in runs[:2]:
        assert wait_for_state(emr, app_id, run_id, timeout=30)["state"] == "CANCELLED"
    assert not (tmp_path / "pid2").exists()
