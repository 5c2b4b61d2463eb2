"""Lifecycle of the local service: start/stop/status/ensure_running, the CLI, persistence, crash recovery,
and training-job control (stop, max runtime, failures, queueing) with a fast script-mode algorithm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import pytest
from botocore.exceptions import WaiterError

from local_service_helpers import CUSTOM_IMAGE, FAST, configure_custom_algorithm, deploy, linear_job
from smspark_assets.local import cli, process

pytestmark = pytest.mark.integration


def clients(url: str) -> tuple:
    kwargs = dict(
        endpoint_url=url, region_name="us-east-1", **stack_credentials_for_url(url)
    )
    return (
        boto3.client("sagemaker", **kwargs),
        boto3.client("sagemaker-runtime", **kwargs),
        boto3.client("dynamodb", **kwargs),
    )


def wait_status(sm, name: str, secondary: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["SecondaryStatus"] == secondary:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {secondary}: {job['SecondaryStatus']}")


def test_concurrent_ensure_running_starts_one_service_and_cli_manages_it(fresh_root, capsys):
    code = (
        "import sys; from smspark_assets.local.process import ensure_running, status;"
        "url = ensure_running(sys.argv[1]); print(url, status(sys.argv[1]).pid)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(fresh_root)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(outputs) == 1, outputs
    url, pid = outputs.pop().split()
    assert url.startswith("http://127.0.0.1:")
    assert cli.main(["--root", str(fresh_root), "status"]) == 0
    assert json.loads(capsys.readouterr().out)["pid"] == int(pid)
    assert process.ensure_running(fresh_root) == url
    assert cli.main(["--root", str(fresh_root), "stop"]) == 0
    assert process.status(fresh_root) is None
    assert cli.main(["--root", str(fresh_root), "status"]) == 1
    assert cli.main(["--root", str(fresh_root), "logs", "no-such-job"]) == 1
    # the next start reuses the port, so URLs held by clients stay valid
    assert cli.main(["--root", str(fresh_root), "start"]) == 0
    assert process.status(fresh_root).url == url


def test_dynamodb_tables_survive_stop_start_and_kill(fresh_root):
    info = process.start(fresh_root)
    _, _, ddb = clients(info.url)
    ddb.create_table(
        TableName="scores",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, 100, 25):
        ddb.batch_write_item(
            RequestItems={
                "scores": [
                    {"PutRequest": {"Item": {"id": {"S": f"app-{i}"}, "score": {"N": str(i / 100)}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    process.stop(fresh_root)
    info = process.start(fresh_root)
    _, _, ddb = clients(info.url)
    assert ddb.get_item(TableName="scores", Key={"id": {"S": "app-42"}})["Item"]["score"] == {"N": "0.42"}
    assert ddb.scan(TableName="scores", Select="COUNT")["Count"] == 100
    # a write followed by a quiet period is snapshotted in the background: it survives kill -9
    ddb.put_item(TableName="scores", Item={"id": {"S": "late"}, "score": {"N": "1"}})
    time.sleep(3.5)
    os.kill(info.pid, signal.SIGKILL)
    _wait_dead(info.pid)
    info = process.start(fresh_root)
    _, _, ddb = clients(info.url)
    assert ddb.get_item(TableName="scores", Key={"id": {"S": "late"}})["Item"]["score"] == {"N": "1"}
    assert ddb.scan(TableName="scores", Select="COUNT")["Count"] == 101
    # a write acknowledged just before kill -9, long before any snapshot: replayed from the journal
    ddb.update_item(
        TableName="scores",
        Key={"id": {"S": "late"}},
        UpdateExpression="SET score = :s",
        ExpressionAttributeValues={":s": {"N": "2"}},
    )
    ddb.delete_item(TableName="scores", Key={"id": {"S": "app-0"}})
    os.kill(info.pid, signal.SIGKILL)
    _wait_dead(info.pid)
    info = process.start(fresh_root)
    _, _, ddb = clients(info.url)
    assert ddb.get_item(TableName="scores", Key={"id": {"S": "late"}})["Item"]["score"] == {"N": "2"}
    assert "Item" not in ddb.get_item(TableName="scores", Key={"id": {"S": "app-0"}})
    assert ddb.scan(TableName="scores", Select="COUNT")["Count"] == 100
    process.stop(fresh_root)
    info = process.start(fresh_root)  # graceful stop wrote a snapshot; the journals before it are gone
    _, _, ddb = clients(info.url)
    assert ddb.scan(TableName="scores", Select="COUNT")["Count"] == 100
    journals = sorted(p.name for p in (fresh_root / "local").glob("dynamodb.journal.*"))
    assert len(journals) == 1


def _wait_dead(pid: int) -> None:
    for _ in range(200):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_kill_9_during_training_then_restart_recovers(fresh_root):
    configure_custom_algorithm(fresh_root)
    info = process.start(fresh_root)
    sm, runtime, _ = clients(info.url)
    sm.create_training_job(**linear_job("quick", w=2))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="quick", WaiterConfig=FAST)
    quick = sm.describe_training_job(TrainingJobName="quick")
    assert quick["TrainingJobStatus"] == "Completed"
    assert quick["FinalMetricDataList"][0]["MetricName"] == "train:loss"  # from MetricDefinitions
    deploy(sm, "linear", quick["ModelArtifacts"]["S3ModelArtifacts"], image=CUSTOM_IMAGE)
    assert (
        runtime.invoke_endpoint(EndpointName="linear", ContentType="text/csv", Body=b"1,2\n")["Body"].read()
        == b'{"predictions": [6.0]}'
    )
    sm.create_training_job(**linear_job("slow", sleep=120))
    wait_status(sm, "slow", "Training")
    worker_pids = _children_of(info.pid)
    os.kill(info.pid, signal.SIGKILL)
    _wait_dead(info.pid)
    # orphaned workers notice and exit on their own
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in worker_pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in worker_pids), [(p, _describe(p)) for p in worker_pids if _alive(p)]

    info = process.start(fresh_root)
    sm, runtime, _ = clients(info.url)
    slow = sm.describe_training_job(TrainingJobName="slow")
    assert slow["TrainingJobStatus"] == "Failed"
    assert "local service stopped while the job was running" in slow["FailureReason"]
    assert sm.describe_training_job(TrainingJobName="quick")["TrainingJobStatus"] == "Completed"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="linear", WaiterConfig=FAST)
    assert (
        runtime.invoke_endpoint(
            EndpointName="linear", ContentType="text/csv", Body=b"1,2\n3,4\n", Accept="text/csv"
        )["Body"].read()
        == b"6\n14\n"
    )


def _children_of(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_max_runtime_failure_and_queueing(fresh_root):
    configure_custom_algorithm(fresh_root, max_concurrent_training_jobs=1)
    info = process.start(fresh_root)
    sm, _, _ = clients(info.url)
    waiter = sm.get_waiter("training_job_completed_or_stopped")

    sm.create_training_job(**linear_job("to-stop", sleep=60))
    sm.create_training_job(**linear_job("queued", sleep=0))
    wait_status(sm, "to-stop", "Training")
    queued = sm.describe_training_job(TrainingJobName="queued")
    assert (
        queued["SecondaryStatus"] == "Starting"
        and "Waiting for a free training slot" in queued["SecondaryStatusTransitions"][-1]["StatusMessage"]
    )
    sm.stop_training_job(TrainingJobName="to-stop")
    waiter.wait(TrainingJobName="to-stop", WaiterConfig=FAST)
    stopped = sm.describe_training_job(TrainingJobName="to-stop")
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "Stopping" in [t["Status"] for t in stopped["SecondaryStatusTransitions"]]
    waiter.wait(TrainingJobName="queued", WaiterConfig=FAST)
    assert sm.describe_training_job(TrainingJobName="queued")["TrainingJobStatus"] == "Completed"

    request = linear_job("too-long", sleep=60)
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 2}
    sm.create_training_job(**request)
    waiter.wait(TrainingJobName="too-long", WaiterConfig=FAST)
    too_long = sm.describe_training_job(TrainingJobName="too-long")
    assert (too_long["TrainingJobStatus"], too_long["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert too_long["TrainingTimeInSeconds"] <= 10

    sm.create_training_job(**linear_job("fails", fail=1))
    with pytest.raises(WaiterError):
        waiter.wait(TrainingJobName="fails", WaiterConfig=FAST)
    failed = sm.describe_training_job(TrainingJobName="fails")
    assert failed["FailureReason"] == "AlgorithmError: asked to fail"
    assert failed["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    log = (fresh_root / "local" / "training-jobs" / "fails" / "training.log").read_text()
    assert "training with ['--fail', '1']" in log
    assert cli.main(["--root", str(fresh_root), "logs", "fails"]) == 0
    assert (
        sm.list_training_jobs(StatusEquals="Stopped", SortBy="Name", SortOrder="Ascending")[
            "TrainingJobSummaries"
        ][0]["TrainingJobName"]
        == "to-stop"
    )


def _describe(pid: int) -> str:
    import psutil

    try:
        process_ = psutil.Process(pid)
        return f"{process_.status()} ppid={process_.ppid()} {' '.join(process_.cmdline())}"
    except psutil.NoSuchProcess:
        return "gone"
