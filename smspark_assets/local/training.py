"""Training jobs of the local service: lay out the job folder, run the worker subprocess, record the outcome.

Each job runs in a thread that waits for a free slot (a configurable number of jobs run at once; the
rest queue with ``SecondaryStatus=Starting``), copies its channels from the local object store
(real copies: a script that rewrites its input must not change the stored object), runs
``python -m smspark_assets.local.algorithms.train <job_dir>``, enforces
``StoppingCondition.MaxRuntimeInSeconds``, and publishes ``model.tar.gz`` at
``<S3OutputPath>/<job>/output/model.tar.gz``. A stopped job publishes what its ``model/`` folder holds, as
SageMaker uploads it on a stop; a job that ends with no artifact does not name one. Every state change is
written to the state store at once. The job folder is private (0700) and the worker starts with an
allow-listed environment (:mod:`.process_environment`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from smspark_assets.local.algorithm_lookup import AlgorithmRef
from smspark_assets.local.algorithms.train import PARENT_PID_VAR
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.private_files import open_private, private_dir
from smspark_assets.local.process_environment import (PRIVATE_UMASK, TRAINING_LIMITS, checked_or_error,
                                                     child_environment)
from smspark_assets.local.state import StateStore

KIND = "training-job"
WORKER_MODULE = "smspark_assets.local.algorithms.train"
TERMINATE_GRACE_SECONDS = 5.0


def transition(doc: dict[str, Any], status: str, message: str, now: float | None = None) -> None:
    """Move ``SecondaryStatus`` to ``status``, closing the previous entry of
    ``SecondaryStatusTransitions``."""
    now = time.time() if now is None else now
    transitions = doc.setdefault("SecondaryStatusTransitions", [])
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    entry: dict[str, Any] = {"Status": status, "StartTime": now, "StatusMessage": message}
    if status in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
        entry["EndTime"] = now
    transitions.append(entry)
    doc["SecondaryStatus"] = status
    doc["LastModifiedTime"] = now


class ChannelDataError(Exception):
    """A channel's S3 prefix matched no object in the local store."""


def _prefix_matches(prefix_path: Path) -> list[tuple[Path, Path]]:
    """``(source file, path relative to the channel)`` for every object under an S3 prefix (S3Prefix
    semantics).

    ``s3://b/data/train`` matches ``data/train/...``, ``data/train.csv`` and ``data/training/...``, as an S3
    key prefix does. Files of a matched directory keep their paths relative to the prefix's parent
    unless the prefix is itself a directory (the common case), where they are relative to it.
    Dot-files are skipped: they are artifacts of the local file system (e.g. Spark's ``.crc`` files),
    never S3 objects.
    """
    found: list[tuple[Path, Path]] = []

    def walk(top: Path, base: Path) -> None:
        if top.is_file():
            if not top.name.startswith("."):
                found.append((top, top.relative_to(base)))
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    path = Path(dirpath) / name
                    found.append((path, path.relative_to(base)))

    if prefix_path.is_dir():
        walk(prefix_path, prefix_path)
        siblings_of = prefix_path.parent
        stem = prefix_path.name
        # other keys sharing the prefix (``train`` also matches ``training/``), relative to the parent
        for sibling in sorted(siblings_of.iterdir()):
            if sibling != prefix_path and sibling.name.startswith(stem) and not sibling.name.startswith("."):
                walk(sibling, siblings_of)
    elif prefix_path.parent.is_dir():
        for sibling in sorted(prefix_path.parent.iterdir()):
            if sibling.name.startswith(prefix_path.name) and not sibling.name.startswith("."):
                walk(sibling, prefix_path.parent)
    return found


_COPY_CHUNK = 1 << 30


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to a new file ``target`` that shares nothing writable with it.

    Never a hard link: a training script that rewrote its input through a link changed the stored object.
    ``os.copy_file_range`` copies inside the kernel, and shares the blocks copy-on-write (a reflink) on
    file systems that can (btrfs, XFS); ``shutil.copyfile`` is the fallback where it is not available.
    """
    private_dir(target.parent)
    with open(source, "rb") as src, open_private(target, "wb") as dst:
        remaining = os.fstat(src.fileno()).st_size
        try:
            while remaining > 0:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), min(remaining, _COPY_CHUNK))
                if copied == 0:  # the source shrank while being copied
                    break
                remaining -= copied
            return
        except (AttributeError, OSError):  # no copy_file_range (old kernel, other OS, cross-device)
            src.seek(0)
            dst.seek(0)
            dst.truncate()
            shutil.copyfileobj(src, dst, 1 << 20)


def stage_channel(layout: LocalLayout, s3_uri: str, channel_dir: Path) -> tuple[int, int]:
    """Place a channel's objects into ``channel_dir``; returns ``(files, bytes)``."""
    files = _prefix_matches(layout.s3_path(s3_uri))
    if not files:
        raise ChannelDataError(
            f'No S3 objects found under S3 URL "{s3_uri}" given in input data source. '
            "Please ensure that the bucket exists in the selected region, that objects exist "
            "under that S3 prefix, and that the role has permission to read them."
        )
    total = 0
    for source, rel in files:
        copy_file(source, channel_dir / rel)
        total += source.stat().st_size
    return len(files), total


class _Job:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stop_requested = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None


class TrainingRunner:
    """Runs the service's training jobs; one thread per job, at most ``max_concurrent`` workers at once."""

    def __init__(self, layout: LocalLayout, store: StateStore, max_concurrent: int = 2) -> None:
        self.layout = layout
        self.store = store
        self.max_concurrent = max(1, int(max_concurrent))
        self._slots = threading.Semaphore(self.max_concurrent)
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._shutting_down = threading.Event()
        # The variables with which boto3 in a job reaches the stack (the service sets it).
        self.client_env: Callable[[str | None], dict[str, str]] = lambda role_arn=None: {}
        # Records what the service does on the job role's behalf (S3 reads and writes): (service, action, role).
        self.on_behalf: Callable[[str, str, str], None] = lambda service, action, principal: None
        # Publishes an ended job's log lines to CloudWatch Logs, as SageMaker does (the service sets it).
        self.publish_log: Callable[[str, list[str]], None] = lambda name, lines: None

    # -- public -----------------------------------------------------------------------------------------

    def submit(self, name: str, ref: AlgorithmRef) -> None:
        """Start running job ``name`` (already stored as InProgress/Starting) in the background."""
        job = _Job(name)
        job.thread = threading.Thread(target=self._run, args=(job, ref), name=f"training-{name}", daemon=True)
        with self._lock:
            self._jobs[name] = job
        job.thread.start()

    def stop(self, name: str) -> bool:
        """Ask a running job to stop (StopTrainingJob). False when it is not running here."""
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            return False
        job.stop_requested.set()
        self._terminate(job)
        return True

    def running(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def shutdown(self, reason: str) -> None:
        """Stop every worker (service shutdown) and record the jobs as Failed with ``reason``."""
        self._shutting_down.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_requested.set()
            self._terminate(job)
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=TERMINATE_GRACE_SECONDS + 5)
        self.fail_unfinished(reason)

    def fail_unfinished(self, reason: str) -> list[str]:
        """Mark every job still InProgress/Stopping in the store as Failed (after a crash or shutdown)."""
        failed = []
        for doc in self.store.list(KIND):
            if doc["TrainingJobStatus"] in ("InProgress", "Stopping"):
                name = doc["TrainingJobName"]

                def change(d: dict[str, Any]) -> None:
                    now = time.time()
                    d["TrainingJobStatus"] = "Failed"
                    d["FailureReason"] = reason
                    d.setdefault("TrainingEndTime", now)
                    _drop_missing_artifact(d, self.layout)
                    transition(d, "Failed", reason, now)
                    _fill_times(d)

                self.store.update(KIND, name, change, status_key="TrainingJobStatus")
                self._log(name, f"job failed: {reason}")
                failed.append(name)
        return failed

    # -- internals --------------------------------------------------------------------------------------

    def _log(self, name: str, message: str) -> None:
        path = self.layout.training_log(name)
        private_dir(path.parent)
        with open_private(path, "a") as fh:
            fh.write(f"[{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}] [service] {message}\n")

    def _set(self, name: str, change: Any) -> dict[str, Any]:
        return self.store.update(KIND, name, change, status_key="TrainingJobStatus")

    def _secondary(self, name: str, status: str, message: str) -> None:
        self._set(name, lambda d: transition(d, status, message))
        self._log(name, f"{status}: {message}")

    def _terminate(self, job: _Job) -> None:
        proc = job.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def _run(self, job: _Job, ref: AlgorithmRef) -> None:
        try:
            self._run_job(job, ref)
        except Exception as exc:  # noqa: BLE001 - a bug here must still end the job visibly
            reason = (
                "InternalServerError: the local service failed while running the job: "
                f"{type(exc).__name__}: {exc}"
            )
            self._finish(job.name, "Failed", "Failed", reason)
        finally:
            with self._lock:
                self._jobs.pop(job.name, None)

    def _run_job(self, job: _Job, ref: AlgorithmRef) -> None:
        name = job.name
        doc = self.store.get(KIND, name)
        assert doc is not None
        # Wait for a slot, staying responsive to StopTrainingJob while queued.
        while not self._slots.acquire(timeout=0.2):
            if job.stop_requested.is_set():
                self._finish(name, "Stopped", "Stopped", None)
                return
        try:
            self._run_in_slot(job, ref, doc)
        finally:
            self._slots.release()

    def _run_in_slot(self, job: _Job, ref: AlgorithmRef, doc: dict[str, Any]) -> None:
        name = job.name
        job_dir = self.layout.training_job_dir(name)
        started = time.time()
        self._set(
            name,
            lambda d: (
                d.__setitem__("TrainingStartTime", started),
                transition(d, "Downloading", "Downloading input data", started),
            ),
        )
        self._log(name, "Downloading input data")
        try:
            # Checked at create; checked again for jobs stored before the check existed.
            worker_env = self._worker_env(doc)
            self._layout_job(job_dir, doc, ref)
        except (ChannelDataError, ValueError) as exc:
            self._finish(name, "Failed", "Failed", f"ClientError: {exc}")
            return
        if job.stop_requested.is_set():
            self._finish(name, "Stopped", "Stopped", None)
            return

        self._secondary(name, "Training", "Training image download completed. Training in progress.")
        max_runtime = float((doc.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or 86400)
        log_path = self.layout.training_log(name)
        with open_private(log_path, "ab") as log:
            job.process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(job_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(job_dir),
                env=worker_env,
                # own process group: StopTrainingJob and shutdown signal the worker and anything it spawned
                start_new_session=True,
                umask=PRIVATE_UMASK,  # the model and outputs the job writes are private too
            )
        deadline = time.monotonic() + max_runtime - (time.time() - started)
        timed_out = False
        while True:
            try:
                code = job.process.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if job.stop_requested.is_set():
                    # StopTrainingJob may arrive between the last check and the spawn above, when stop()
                    # found no process to signal: the worker is terminated here instead.
                    self._terminate(job)
                    continue
                if time.monotonic() >= deadline:
                    timed_out = True
                    self._terminate(job)
                    code = job.process.wait()
                    break
        if timed_out:
            self._log(name, f"MaxRuntimeInSeconds={int(max_runtime)} exceeded; the job was stopped")
            self._publish_stopped(job_dir, doc)
            self._finish(
                name,
                "Stopped",
                "MaxRuntimeExceeded",
                None,
                message=f"Training job runtime exceeded MaxRuntimeInSeconds provided ({int(max_runtime)}s)",
            )
            return
        if job.stop_requested.is_set():
            reason = (
                "the local service was stopped while the job was running"
                if self._shutting_down.is_set()
                else None
            )
            if reason:
                self._finish(name, "Failed", "Failed", f"InternalServerError: {reason}")
            else:
                self._publish_stopped(job_dir, doc)
                self._finish(name, "Stopped", "Stopped", None)
            return
        if code != 0:
            failure = job_dir / "output" / "failure"
            reason = failure.read_text().strip() if failure.exists() else ""
            if not reason:
                reason = (
                    f"AlgorithmError: the training process exited with code {code} without writing a failure "
                    f"reason; see `smspark local logs {name}`"
                )
            self._finish(name, "Failed", "Failed", reason)
            return

        self._secondary(name, "Uploading", "Uploading generated training model")
        self._publish(job_dir, doc)
        metrics = self._metrics(job_dir) + self._log_metrics(name, doc)
        self._finish(name, "Completed", "Completed", None, metrics=metrics)

    def _worker_env(self, doc: dict[str, Any]) -> dict[str, str]:
        """An allow-list of the service's environment, the job's checked map, then the contract (which
        wins); ``ValueError`` when a stored map is one the service refuses."""
        user = checked_or_error(doc.get("Environment"), "environment", TRAINING_LIMITS)
        contract = {
            **self.client_env(doc.get("RoleArn")),  # the job's calls are signed as its role
            "SMSPARK_ROOT": str(self.layout.root),
            "PYTHONUNBUFFERED": "1",
            PARENT_PID_VAR: str(os.getpid()),
        }
        return child_environment(user, contract)

    def _layout_job(self, job_dir: Path, doc: dict[str, Any], ref: AlgorithmRef) -> None:
        config = job_dir / "input" / "config"
        data = job_dir / "input" / "data"
        if data.exists():  # a name is never reused, but a crashed earlier attempt may have left files
            shutil.rmtree(data)
        private_dir(config)
        private_dir(job_dir / "model")
        private_dir(job_dir / "output" / "data")
        channels = doc.get("InputDataConfig") or []
        (config / "hyperparameters.json").write_text(json.dumps(doc.get("HyperParameters") or {}))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {k: v for k, v in c.items() if k not in ("ChannelName", "DataSource")}
                    | {
                        "TrainingInputMode": c.get("InputMode")
                        or doc["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                        "S3DistributionType": c["DataSource"]["S3DataSource"].get(
                            "S3DataDistributionType", "FullyReplicated"
                        ),
                    }
                    for c in channels
                }
            )
        )
        resources = doc.get("ResourceConfig") or {}
        (config / "resourceconfig.json").write_text(
            json.dumps(
                {
                    "current_host": "algo-1",
                    "hosts": ["algo-1"],
                    "current_instance_type": resources.get("InstanceType", "local"),
                    "network_interface_name": "lo",
                }
            )
        )
        (config / "algorithm.json").write_text(json.dumps(ref.to_json()))
        for channel in channels:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            files, size = stage_channel(self.layout, uri, data / channel["ChannelName"])
            # SageMaker lists and downloads a channel with the job's execution role.
            self.on_behalf("s3", "ListObjectsV2", doc.get("RoleArn", ""))
            self.on_behalf("s3", "GetObject", doc.get("RoleArn", ""))
            self._log(
                doc["TrainingJobName"],
                f"channel {channel['ChannelName']}: {files} file(s), {size} bytes from {uri}",
            )

    def _publish_stopped(self, job_dir: Path, doc: dict[str, Any]) -> None:
        """What SageMaker does on a stop: upload what ``model/`` holds as the job's ``model.tar.gz``.

        A job stopped before it wrote anything publishes nothing (and :meth:`_finish` drops the
        ``ModelArtifacts`` it would otherwise name).
        """
        model_dir = job_dir / "model"
        if not model_dir.is_dir() or not any(p.is_file() for p in model_dir.rglob("*")):
            return
        from smspark_assets.local.algorithms.train import package_model

        archive = job_dir / "output" / "model.tar.gz"
        package_model(model_dir, archive)
        self._publish(job_dir, doc)

    def _publish(self, job_dir: Path, doc: dict[str, Any]) -> None:
        artifact = doc["ModelArtifacts"]["S3ModelArtifacts"]
        target = self.layout.s3_path(artifact)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A dot name: the S3 API never lists it, and readers never see a half-written artifact.
        tmp = target.with_name("." + target.name + ".uploading")
        shutil.copyfile(job_dir / "output" / "model.tar.gz", tmp)
        tmp.replace(target)
        self.on_behalf("s3", "PutObject", doc.get("RoleArn", ""))  # uploaded with the job's role
        out_data = job_dir / "output" / "data"
        if out_data.is_dir() and any(out_data.iterdir()):
            from smspark_assets.local.algorithms.train import package_model

            package_model(out_data, target.with_name("output.tar.gz"))

    @staticmethod
    def _metrics(job_dir: Path) -> list[dict[str, Any]]:
        path = job_dir / "output" / "metrics.json"
        if not path.exists():
            return []
        try:
            metrics = json.loads(path.read_text())
        except json.JSONDecodeError:
            return []
        return [
            {
                "MetricName": str(m["MetricName"]),
                "Value": float(m["Value"]),
                "Timestamp": float(m.get("Timestamp") or time.time()),
            }
            for m in metrics
        ]

    def _log_metrics(self, name: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """``AlgorithmSpecification.MetricDefinitions`` applied to the job's log: each regex's last match."""
        definitions = (doc.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        if not definitions:
            return []
        text = self.layout.training_log(name).read_text(errors="replace")
        found = []
        for definition in definitions:
            try:
                matches = re.findall(definition["Regex"], text)
            except re.error:
                continue
            values = [m[0] if isinstance(m, tuple) else m for m in matches]
            for value in reversed(values):
                try:
                    found.append(
                        {"MetricName": definition["Name"], "Value": float(value), "Timestamp": time.time()}
                    )
                    break
                except ValueError:
                    continue
        return found

    def _finish(
        self,
        name: str,
        status: str,
        secondary: str,
        reason: str | None,
        metrics: list[dict[str, Any]] | None = None,
        message: str | None = None,
    ) -> None:
        def change(d: dict[str, Any]) -> None:
            now = time.time()
            d["TrainingJobStatus"] = status
            if status != "Completed":
                _drop_missing_artifact(d, self.layout)
            d.setdefault("TrainingStartTime", now)
            d["TrainingEndTime"] = now
            if reason:
                d["FailureReason"] = reason
            if metrics:
                d["FinalMetricDataList"] = metrics
            default_message = {
                "Completed": "Training job completed",
                "Stopped": "Training job stopped",
                "Failed": reason or "Training job failed",
            }.get(status, status)
            transition(d, secondary, message or default_message, now)
            _fill_times(d)

        self._set(name, change)
        self._log(name, f"job {status}" + (f": {reason}" if reason else ""))
        try:
            path = self.layout.training_log(name)
            if path.is_file():
                self.publish_log(name, path.read_text(errors="replace").splitlines())
        except Exception:  # noqa: BLE001 - a log that cannot be published must not change the job's outcome
            pass


def _drop_missing_artifact(doc: dict[str, Any], layout: LocalLayout) -> None:
    """A job that ended without publishing a model names none (rather than a path to nothing)."""
    artifact = (doc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if artifact and not layout.s3_path(artifact).is_file():
        doc.pop("ModelArtifacts", None)


def _fill_times(doc: dict[str, Any]) -> None:
    """TrainingTimeInSeconds / BillableTimeInSeconds: whole seconds between start and end, as
    SageMaker bills."""
    if "TrainingStartTime" in doc and "TrainingEndTime" in doc:
        seconds = max(1, int(round(doc["TrainingEndTime"] - doc["TrainingStartTime"])))
        doc["TrainingTimeInSeconds"] = seconds
        doc["BillableTimeInSeconds"] = seconds
