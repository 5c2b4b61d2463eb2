"""Fault suite: the local stack under kills, updates, injected errors and attacks, with one figure per case.

Runs on loopback against a fresh temporary state root, bounded in time (``--deadline`` seconds, default
330), and prints one line per case::

    <case>: <figure> ... ok | MISS

Cases (issue 9, "A fault suite with figures"):

* kill -9 of the service during training: the job ends Failed with a reason; seconds to restart.
* kill -9 of a model server during 2,000 invokes: failed requests (0; botocore's standard retry mode
  covers what the stack does not, the stack restarts the server).
* UpdateEndpoint during 2,000 invokes: failed requests (0).
* 10 % of invocations answered 503 ServiceUnavailable, then 429 ThrottlingException, through the stack's
  ``fault_injection`` setting, while the project's Spark-free scoring client scores a batch: rows lost and
  duplicated (0), predictions equal to a fault-free run.
* 10 % of BatchWriteItem items handed back as UnprocessedItems while ``write_items`` writes 10,000 items:
  items missing (0).
* security probes: unsigned request, wrong signature, non-loopback Host, bucket ``..``, an Environment map
  with BASH_ENV: each refused with a 4xx.

Exits non-zero when a figure misses its target.

    .venv/bin/python benchmarks/faults.py [--invokes 2000] [--items 10000] [--deadline 330]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLE = "arn:aws:iam::123456789012:role/local"
FAST = {"Delay": 0.25, "MaxAttempts": 480}
RESTART_TARGET_SECONDS = 15.0


class Report:
    """Collects one line per case and whether every figure met its target."""

    def __init__(self) -> None:
        self.misses: list[str] = []

    def line(self, case: str, figure: str, ok: bool) -> None:
        print(f"{case}: {figure} ... {'ok' if ok else 'MISS'}", flush=True)
        if not ok:
            self.misses.append(case)


# -- helpers ------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc: the model servers and training workers of the service)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _model_servers(service_pid: int) -> list[int]:
    return [p for p in _children(service_pid) if "smspark_assets.local.model_server" in _cmdline(p)]


def _write_config(root: Path, **settings: Any) -> None:
    """Rewrite ``config.json`` keeping the custom image mapping; the stack re-reads it when it changes."""
    path = root / "local" / "config.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    time.sleep(0.05)  # distinct mtime for the stack's cache


def _invoke_many(runtime: Any, endpoint: str, body: bytes, count: int, threads: int,
                 at: int, action: Callable[[], None]) -> tuple[int, float, list[str]]:
    """``count`` invocations from ``threads`` threads; ``action`` runs once ``at`` have completed.

    Returns (failed requests, seconds, first error messages)."""
    lock = threading.Lock()
    done = [0]
    fired = threading.Event()
    errors: list[str] = []

    def one(_: int) -> None:
        try:
            response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
            response["Body"].read()
        except Exception as exc:  # noqa: BLE001 - counted: the figure is the number of failed requests
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
        with lock:
            done[0] += 1
            trigger = done[0] == at
        if trigger:
            fired.set()

    runner = threading.Thread(target=lambda: (fired.wait(), action()), daemon=True)
    runner.start()
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    seconds = time.perf_counter() - began
    fired.set()
    runner.join(timeout=60)
    return len(errors), seconds, errors[:3]


# -- cases --------------------------------------------------------------------------------------------------


def kill_service_during_training(report: Report, root: Path, sm_factory: Callable[[], Any]) -> str:
    """kill -9 of the service while a job trains; returns the new URL."""
    from smspark_assets.local import process
    from smspark_assets_tests.local.local_service_helpers import linear_job

    sm = sm_factory()
    sm.create_training_job(**linear_job("killed-mid-training", sleep=120))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName="killed-mid-training")
        if job["TrainingJobStatus"] == "InProgress" and job.get("SecondaryStatus") == "Training":
            break
        time.sleep(0.2)
    time.sleep(1.0)  # the worker is running the script
    info = process.status(root)
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    while process._pid_alive(info.pid):  # noqa: SLF001 - the same zombie-aware check `start` uses
        process._reap(info.pid)  # noqa: SLF001
        time.sleep(0.02)
    began = time.perf_counter()
    new = process.start(root)
    restart = time.perf_counter() - began
    sm = sm_factory(new.url)
    job = sm.describe_training_job(TrainingJobName="killed-mid-training")
    failed = job["TrainingJobStatus"] == "Failed" and bool(job.get("FailureReason"))
    report.line("kill -9 service during training: job status", f"{job['TrainingJobStatus']} "
                f"(reason: {str(job.get('FailureReason'))[:70]!r})", failed)
    report.line("kill -9 service during training: restart seconds", f"{restart:.2f} s",
                restart < RESTART_TARGET_SECONDS)
    return new.url


def kill_model_server(report: Report, root: Path, runtime: Any, endpoint: str, body: bytes, count: int) -> None:
    from smspark_assets.local import process

    info = process.status(root)
    assert info is not None
    killed: list[int] = []

    def kill() -> None:
        for pid in _model_servers(info.pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    failed, seconds, errors = _invoke_many(runtime, endpoint, body, count, 4, count // 4, kill)
    after = _model_servers(info.pid)
    restarted = bool(after) and not set(after) & set(killed)
    report.line("kill -9 of a model server during invokes: failed requests",
                f"{failed} of {count} ({len(killed)} server(s) killed, restarted: {restarted}, "
                f"{count / seconds:.0f} req/s){' ' + '; '.join(errors) if errors else ''}",
                failed == 0 and bool(killed) and restarted)


def update_during_invokes(report: Report, sm: Any, runtime: Any, endpoint: str, model: str, body: bytes,
                          count: int) -> None:
    sm.create_endpoint_config(EndpointConfigName=f"{endpoint}-v2", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])

    def update() -> None:
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-v2")

    failed, seconds, errors = _invoke_many(runtime, endpoint, body, count, 4, count // 4, update)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST)
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    report.line("UpdateEndpoint during invokes: failed requests",
                f"{failed} of {count} (config after: {config}, {count / seconds:.0f} req/s)"
                f"{' ' + '; '.join(errors) if errors else ''}",
                failed == 0 and config == f"{endpoint}-v2")


def injected_invoke_errors(report: Report, root: Path, url: str, endpoint: str, x: np.ndarray) -> None:
    import pyarrow as pa

    from smspark_assets.spark_jobs.endpoint_client import EndpointScorer, make_runtime_client

    columns = [f"f{i}" for i in range(x.shape[1])]
    # Batches of 100 rows, requests of at most 2 KB: a few hundred requests, so 10 % is a few dozen errors.
    tables = [pa.table({c: x[i:i + 100, j] for j, c in enumerate(columns)}) for i in range(0, len(x), 100)]

    def score() -> tuple[list[np.ndarray], int]:
        client = make_runtime_client(url, "us-east-1")
        answered = {"errors": 0}

        def count(response: Any = None, **_: Any) -> None:
            if response is not None and response[0] is not None and response[0].status_code in (429, 503):
                answered["errors"] += 1

        client.meta.events.register("needs-retry.sagemaker-runtime.InvokeEndpoint", count)
        scorer = EndpointScorer(endpoint, columns, client=client, max_payload_bytes=2048, max_concurrency=4)
        results = [result.predictions for _, result in scorer.score_stream((t, None) for t in tables)]
        return results, answered["errors"]

    reference, _ = score()
    for status in (503, 429):
        _write_config(root, fault_injection={"invoke_error_rate": 0.1, "status": status})
        try:
            got, injected = score()
        except Exception as exc:  # noqa: BLE001 - the figure: the batch failed
            report.line(f"{status} injected into 10 % of scoring requests: rows lost", f"batch failed: {exc}",
                        False)
            continue
        finally:
            _write_config(root, fault_injection={})
        expected = sum(t.num_rows for t in tables)
        returned = sum(len(p) for p in got)
        lost = sum(max(t.num_rows - len(p), 0) for t, p in zip(tables, got))
        duplicated = sum(max(len(p) - t.num_rows, 0) for t, p in zip(tables, got))
        altered = sum(int(np.sum(~np.isclose(p, r))) for p, r in zip(got, reference) if len(p) == len(r))
        report.line(f"{status} injected into 10 % of scoring requests: rows lost / duplicated / altered",
                    f"{lost} / {duplicated} / {altered} of {expected} rows ({returned} returned, "
                    f"{injected} injected errors retried)",
                    lost == 0 and duplicated == 0 and altered == 0 and injected > 0)


def injected_unprocessed_items(report: Report, root: Path, ddb_factory: Callable[[], Any], items: int) -> None:
    from smspark_assets.resources.dynamodb_writes import ensure_table, write_items

    ddb = ddb_factory()
    ensure_table(ddb, "faults", "id", poll_seconds=0.2)
    rows = [{"id": {"S": f"id-{i:06d}"}, "v": {"N": str(i)}} for i in range(items)]
    _write_config(root, fault_injection={"dynamodb_unprocessed_rate": 0.1})
    try:
        began = time.perf_counter()
        stats = write_items(ddb_factory, "faults", rows, threads=4, key="id")
        seconds = time.perf_counter() - began
    finally:
        _write_config(root, fault_injection={})
    stored: dict[str, str] = {}
    for page in ddb.get_paginator("scan").paginate(TableName="faults", ConsistentRead=True):
        stored.update({item["id"]["S"]: item["v"]["N"] for item in page["Items"]})
    missing = sum(1 for row in rows if stored.get(row["id"]["S"]) != row["v"]["N"])
    report.line("UnprocessedItems injected into 10 % of batch items: items missing",
                f"{missing} of {items} ({stats['retries']} batch retries, {items / seconds:.0f} items/s)",
                missing == 0 and stats["retries"] > 0)


def security_probes(report: Report, root: Path, url: str, sm: Any, sm_wrong_secret: Any) -> None:
    from botocore.exceptions import ClientError

    def refused(call: Callable[[], Any]) -> tuple[bool, str]:
        try:
            call()
        except ClientError as exc:
            status = exc.response["ResponseMetadata"].get("HTTPStatusCode", 0)
            return 400 <= status < 500, f"{status} {exc.response['Error'].get('Code')}"
        return False, "accepted"

    # Unsigned.
    request = urllib.request.Request(url + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"})
    try:
        urllib.request.urlopen(request, timeout=10).read()
        ok, figure = False, "accepted"
    except urllib.error.HTTPError as exc:
        ok, figure = 400 <= exc.code < 500, f"{exc.code} {json.loads(exc.read() or b'{}').get('__type')}"
    report.line("probe: unsigned request", figure, ok)

    ok, figure = refused(lambda: sm_wrong_secret.list_training_jobs())
    report.line("probe: wrong signature", figure, ok)

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: attacker.example:80\r\nContent-Length: 2\r\n"
                     b"X-Amz-Target: SageMaker.ListTrainingJobs\r\n\r\n{}")
        status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    code = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
    report.line("probe: non-loopback Host", status_line, 400 <= code < 500)

    ok1, fig1 = refused(lambda: sm.create_model(ModelName="escape", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "ModelDataUrl": "s3://../local/state.sqlite"}))
    from smspark_assets_tests.local.local_service_helpers import training_request

    ok2, fig2 = refused(lambda: sm.create_training_job(**training_request("escape", "s3://../local")))
    report.line("probe: bucket '..' (CreateModel, training channel)", f"{fig1}; {fig2}", ok1 and ok2)

    marker = root / "marker"
    ok, figure = refused(lambda: sm.create_model(ModelName="bash-env", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "ModelDataUrl": "s3://local-test/models/none.tar.gz",
        "Environment": {"PYTHONWARNINGS": "ignore::antigravity.x", "BROWSER": "bash",
                        "BASH_ENV": f"$(id>{marker})"}}))
    report.line("probe: Environment with BASH_ENV", f"{figure}, marker written: {marker.exists()}",
                ok and not marker.exists())


# -- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invokes", type=int, default=2000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--score-rows", type=int, default=4000)
    parser.add_argument("--deadline", type=float, default=330.0, help="seconds before the run is abandoned")
    args = parser.parse_args(argv)

    def out_of_time(signum: int, frame: object) -> None:
        raise TimeoutError(f"the fault suite ran over its {args.deadline:.0f} s deadline")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.deadline))

    import boto3
    from botocore.config import Config

    from smspark_assets.local import process
    from smspark_assets.local.credentials import load_or_create
    from smspark_assets.local.layout import LocalLayout
    from smspark_assets_tests.local.local_service_helpers import (configure_custom_algorithm, csv_rows, deploy,
                                                                  training_request, write_xgboost_channels)

    root = Path(tempfile.mkdtemp(prefix="smspark-faults-"))
    os.environ.update(SMSPARK_ROOT=str(root), AWS_DEFAULT_REGION="us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    configure_custom_algorithm(root)
    data_uri, x = write_xgboost_channels(root, rows=400)
    creds = load_or_create(LocalLayout.for_root(root))
    os.environ.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    standard = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16)
    url = process.start(root).url

    def client(service: str, at: str | None = None, **kwargs: Any) -> Any:
        return boto3.client(service, endpoint_url=at or url, region_name="us-east-1", config=standard, **kwargs)

    report = Report()
    began = time.perf_counter()
    try:
        url = kill_service_during_training(report, root, lambda at=None: client("sagemaker", at))
        sm, runtime = client("sagemaker"), client("sagemaker-runtime")
        sm.create_training_job(**training_request("faults-model", data_uri,
                                                  {"objective": "binary:logistic", "num_round": "10"}))
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="faults-model", WaiterConfig=FAST)
        job = sm.describe_training_job(TrainingJobName="faults-model")
        if job["TrainingJobStatus"] != "Completed":
            raise SystemExit(f"training failed: {job.get('FailureReason')}")
        deploy(sm, "faults", job["ModelArtifacts"]["S3ModelArtifacts"])
        body = csv_rows(x[:10])
        kill_model_server(report, root, runtime, "faults", body, args.invokes)
        update_during_invokes(report, sm, runtime, "faults", "faults", body, args.invokes)
        rng = np.random.default_rng(3)
        injected_invoke_errors(report, root, url, "faults", rng.normal(size=(args.score_rows, x.shape[1])))
        injected_unprocessed_items(report, root, lambda: client("dynamodb"), args.items)
        security_probes(report, root, url, sm, client("sagemaker", aws_access_key_id=creds.access_key,
                                                      aws_secret_access_key="wrong-secret"))
    except Exception as exc:  # noqa: BLE001 - a crash of the suite is a miss, reported as such
        report.line("fault suite", f"aborted: {type(exc).__name__}: {exc}", False)
    finally:
        signal.alarm(0)
        process.stop(root)
        shutil.rmtree(root, ignore_errors=True)
    print(f"total: {time.perf_counter() - began:.1f} s, misses: {len(report.misses)}", flush=True)
    return 1 if report.misses else 0


if __name__ == "__main__":
    sys.exit(main())
