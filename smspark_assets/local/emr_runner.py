"""Runs EMR Serverless job runs for real: pyspark's ``spark-submit --master local[*]``, one process group each.

A run moves SUBMITTED -> PENDING -> SCHEDULED -> RUNNING -> SUCCESS | FAILED | CANCELLING -> CANCELLED.
At most ``max_concurrent`` runs hold a process; the others wait in SUBMITTED, in creation order (the
stack's ``config.json`` key ``max_concurrent_emr_jobs``, default 2).

Each run gets a private folder ``local/emr-jobs/<run>/`` (0700) with copies of its entry point and
``--py-files``/``--jars``/``--files`` from the store, the driver's ``stdout``/``stderr`` files, and
Spark's scratch directory. The process environment is built from an allow-list, never from the service's
own environment (see :func:`job_environment`). While the driver runs, new lines of both files are shipped
to CloudWatch Logs when the run asks for it; at the end both files are written gzipped under the S3
``logUri`` (where EMR writes them), and only then does the run reach its final state, so a client that
sees SUCCESS finds every log line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from smspark_assets.local.emr_state import EmrState
from smspark_assets.local.emr_store_paths import copy_object, object_path, prefix_path, put_gzipped
from smspark_assets.local.emr_submit import SubmitPlan

log = logging.getLogger("smspark.local.emr")

TERMINAL = ("SUCCESS", "FAILED", "CANCELLED")
QUEUED_STATES = ("SUBMITTED", "PENDING", "QUEUED")
ACTIVE_STATES = ("SCHEDULED", "RUNNING", "CANCELLING")
DEFAULT_MAX_CONCURRENT = 2
DEFAULT_GRACE_SECONDS = 10
MAX_GRACE_SECONDS = 1800
POLL_SECONDS = 0.2
# JVM flags of the service's own choosing (a request may only add -D properties, see emr_submit), put
# before the run's own driver options. A job here is one short-lived JVM on a small machine: most of
# its CPU goes to compiling Spark's own code at start-up, and the optimizing compiler (C2) rarely pays
# that back within a job. Compiling with C1 only halves a driver's CPU time for a trivial job (18 -> 9
# CPU seconds, 15 -> 9 s wall on 2 cores) and keeps the demo's jobs from starving what runs alongside.
DRIVER_JAVA_FLAGS = ("-XX:TieredStopAtLevel=1",)
# Variables copied from the service's environment into a job's (nothing else is inherited).
ALLOWED_ENV = ("PATH", "JAVA_HOME", "HOME", "LANG", "LC_ALL", "TMPDIR", "SPARK_HOME")
STATE_DETAILS_MAX = 256
FAILED_PREFIX = "Job failed, please check complete logs in configured logging destination."
RESTARTED = ("Job run failed: the local EMR Serverless service restarted while the job was running "
             "(it was stopped or killed); start the job again")
STOPPED = ("Job run failed: the local EMR Serverless service was stopped while the job was running; "
           "start the job again")
# A line that names an exception: Python's "ValueError: ...", Java's "org.x.FooException: ...",
# "Exception in thread ...", "Caused by: ...".
_EXCEPTION_RE = re.compile(
    r"^(?:Exception in thread .*|Caused by: .*|(?:[A-Za-z_][\w$]*\.)*[A-Za-z_][\w$]*(?:Error|Exception|Exit|Interrupt)(?::.*)?)$")


def spark_submit() -> Path:
    """pyspark's own ``bin/spark-submit`` (found without importing pyspark into the service)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyspark is not installed in the service's environment")
    return Path(spec.origin).parent / "bin" / "spark-submit"


def last_exceptions(stderr: Path, count: int = 3) -> list[str]:
    """The last ``count`` distinct exception lines of a driver's stderr, most recent first."""
    try:
        with open(stderr, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 256 * 1024))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    for line in reversed(lines):
        line = line.strip()
        if _EXCEPTION_RE.match(line) and line not in found:
            found.append(line)
            if len(found) == count:
                break
    return found


def failure_details(exit_code: int, stdout: Path, stderr: Path) -> str:
    """``stateDetails`` of a failed run, worded as EMR words it, at most 256 characters.

    A Python driver's traceback is in *stdout*: spark-submit's PythonRunner merges the Python process's
    stderr into its own stdout. So both files are searched, stdout first.
    """
    text = f"{FAILED_PREFIX} ExitCode: {exit_code}."
    exceptions: list[str] = []
    for path in (stdout, stderr):
        exceptions += [line for line in last_exceptions(path) if line not in exceptions]
    exceptions = exceptions[:3]
    if exceptions:
        text += " Last few exceptions: " + "\n".join(exceptions)
    return text[:STATE_DETAILS_MAX]


def job_environment(service_env: dict[str, str], client_env: dict[str, str], s3_root: Path,
                    driver_env: dict[str, str]) -> dict[str, str]:
    """The driver's environment: allow-listed service variables, the stack's client settings, the
    interpreter of this service, the EMRFS root, and the run's own (already checked) driverEnv."""
    env = {key: service_env[key] for key in ALLOWED_ENV if key in service_env}
    env.update(client_env)
    env.update({
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SMSPARK_EMRFS_ROOT": str(s3_root),
        # Servers the driver starts (RPC, block manager, UI if enabled) listen on loopback only.
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Print-as-you-go: CloudWatch gets lines while the job runs, not at exit.
        "PYTHONUNBUFFERED": "1",
    })
    env.update(driver_env)
    return env


@dataclass
class LogTargets:
    """Where a run's driver logs go: a CloudWatch group/stream base and/or an S3 bucket folder + prefix."""

    cloudwatch_group: str | None = None
    cloudwatch_stream: str | None = None  # ".../SPARK_DRIVER"; "/stdout" and "/stderr" are appended
    cloudwatch_types: tuple[str, ...] = ("stdout", "stderr")
    s3_bucket_dir: Path | None = None
    s3_prefix: str = ""


def log_targets(monitoring: dict[str, Any], app_id: str, run_id: str, s3_root: Path) -> LogTargets:
    """EMR's log layout for a run's merged ``monitoringConfiguration``."""
    targets = LogTargets()
    cw = monitoring.get("cloudWatchLoggingConfiguration") or {}
    if cw.get("enabled") is True:
        targets.cloudwatch_group = cw.get("logGroupName") or "/aws/emr-serverless"
        targets.cloudwatch_stream = f"{cw.get('logStreamNamePrefix') or ''}/applications/{app_id}/jobs/{run_id}/SPARK_DRIVER"
        types = (cw.get("logTypes") or {}).get("SPARK_DRIVER")
        if types is not None:
            targets.cloudwatch_types = tuple(t.lower() for t in types if t.lower() in ("stdout", "stderr"))
    log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
    if log_uri:
        bucket_dir, prefix = prefix_path(s3_root, log_uri, "logUri")
        targets.s3_bucket_dir = bucket_dir
        targets.s3_prefix = f"{prefix}applications/{app_id}/jobs/{run_id}/SPARK_DRIVER/"
    return targets


class LogShipper:
    """Follows a driver's stdout/stderr files and appends new complete lines to CloudWatch Logs."""

    def __init__(self, append: Callable[[str, str, list[str]], None] | None, targets: LogTargets,
                 files: dict[str, Path]) -> None:
        self.append = append
        self.targets = targets
        self.files = {k: v for k, v in files.items() if k in targets.cloudwatch_types}
        self.offsets = {k: 0 for k in self.files}
        self.partial = {k: b"" for k in self.files}

    @property
    def active(self) -> bool:
        return self.append is not None and self.targets.cloudwatch_group is not None and bool(self.files)

    def ship(self, final: bool = False) -> None:
        """Send what was written since the last call (with ``final``, also an unterminated last line)."""
        if not self.active:
            return
        for kind, path in self.files.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets[kind])
                    chunk = fh.read(8 << 20)
            except OSError:
                continue
            self.offsets[kind] += len(chunk)
            data = self.partial[kind] + chunk
            complete, _, rest = data.rpartition(b"\n")
            if final:
                complete, rest = data, b""
            self.partial[kind] = rest
            lines = complete.decode(errors="replace").splitlines()
            if lines:
                try:
                    self.append(self.targets.cloudwatch_group, f"{self.targets.cloudwatch_stream}/{kind}", lines)  # type: ignore[misc]
                except Exception:  # noqa: BLE001 - a log store problem must not fail the job
                    log.exception("shipping %s lines to CloudWatch Logs failed", kind)


@dataclass
class _Handle:
    """A run that holds (or is about to hold) a process."""

    app_id: str
    run_id: str
    process: subprocess.Popen[bytes] | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    timed_out: bool = False
    stopped_by_service: bool = False


class JobRunner:
    """Schedules queued runs onto at most ``max_concurrent`` spark-submit processes."""

    def __init__(self, state: EmrState, jobs_dir: Path, s3_root: Path,
                 client_env: Callable[[str | None], dict[str, str]],
                 logs_append: Callable[[str, str, list[str]], None] | None,
                 monitoring_for: Callable[[dict[str, Any]], dict[str, Any]],
                 plan_for: Callable[[dict[str, Any]], SubmitPlan],
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT) -> None:
        self.state = state
        self.jobs_dir = jobs_dir
        self.s3_root = s3_root
        self.client_env = client_env
        self.logs_append = logs_append
        self.monitoring_for = monitoring_for
        self.plan_for = plan_for
        self.max_concurrent = max(1, max_concurrent)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._handles: dict[str, _Handle] = {}
        self._stopping = False
        self._scheduler: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Fail the runs a previous service left running (their processes are killed), then schedule."""
        for doc in self.state.runs_in_states(ACTIVE_STATES):
            _kill_leftover(doc.get("_local", {}))

            def fail(d: dict[str, Any]) -> None:
                _finish(d, "FAILED", RESTARTED)

            self.state.update_run(doc["applicationId"], doc["jobRunId"], fail)
        self._scheduler = threading.Thread(target=self._schedule_loop, name="emr-scheduler", daemon=True)
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop every running job (SIGTERM, then SIGKILL) and mark it FAILED; queued runs stay queued."""
        with self._lock:
            self._stopping = True
            handles = list(self._handles.values())
            self._wake.notify_all()
        for handle in handles:
            handle.stopped_by_service = True
            if handle.process is not None:
                _stop_group(handle.process, 2.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                if not self._handles:
                    break
            time.sleep(0.05)

    def submit(self) -> None:
        """A run was queued: let the scheduler look."""
        with self._lock:
            self._wake.notify_all()

    def cancel(self, app_id: str, run_id: str, grace_seconds: float | None) -> None:
        """Cancel a run: queued ones end CANCELLED at once, running ones get SIGTERM then SIGKILL."""
        with self._lock:
            handle = self._handles.get(run_id)
            if handle is not None:
                if grace_seconds is not None:
                    handle.grace_seconds = min(float(grace_seconds), MAX_GRACE_SECONDS)
                handle.cancel_requested.set()

        def change(doc: dict[str, Any]) -> bool:
            if doc["state"] in TERMINAL:
                return False
            if handle is None and doc["state"] in QUEUED_STATES:
                _finish(doc, "CANCELLED", "Job run was cancelled before it started.")
            else:
                _touch(doc, "CANCELLING")
            return True

        self.state.update_run(app_id, run_id, change)

    def running_count(self) -> int:
        with self._lock:
            return len(self._handles)

    # -- scheduling -------------------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                free = self.max_concurrent - len(self._handles)
            started = 0
            queued = self.state.runs_in_states(QUEUED_STATES)
            for doc in queued[:max(free, 0)]:
                if self._claim(doc):
                    started += 1
            for doc in queued[max(free, 0):]:
                if doc["state"] == "SUBMITTED":  # waiting for a free slot: the scheduler holds it PENDING
                    self.state.update_run(doc["applicationId"], doc["jobRunId"], _to_pending)
            with self._lock:
                if self._stopping:
                    return
                # Wake on submit/finish; the timeout also moves SUBMITTED runs on to PENDING when full.
                self._wake.wait(timeout=1.0 if started == 0 else 0.01)

    def _claim(self, doc: dict[str, Any]) -> bool:
        app_id, run_id = doc["applicationId"], doc["jobRunId"]

        def schedule(d: dict[str, Any]) -> bool:
            if d["state"] not in QUEUED_STATES:
                return False
            _touch(d, "SCHEDULED")
            return True

        claimed = self.state.update_run(app_id, run_id, schedule)
        if claimed is None or claimed["state"] != "SCHEDULED":
            return False
        handle = _Handle(app_id, run_id)
        with self._lock:
            self._handles[run_id] = handle
        threading.Thread(target=self._run, args=(handle, claimed), name=f"emr-{run_id}", daemon=True).start()
        return True

    # -- one run ----------------------------------------------------------------------------------------

    def _run(self, handle: _Handle, doc: dict[str, Any]) -> None:
        job_dir = self.jobs_dir / handle.run_id
        stdout, stderr = job_dir / "stdout", job_dir / "stderr"
        targets = LogTargets()
        shipper: LogShipper | None = None
        final_state, details, exit_code = "FAILED", "", None
        try:
            job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(job_dir, 0o700)
            stdout.touch(mode=0o600)
            stderr.touch(mode=0o600)
            targets = log_targets(self.monitoring_for(doc), handle.app_id, handle.run_id, self.s3_root)
            shipper = LogShipper(self.logs_append, targets, {"stdout": stdout, "stderr": stderr})
            command, env = self._prepare(doc, job_dir)
            if handle.cancel_requested.is_set():
                raise _Cancelled()
            with open(stdout, "ab") as out, open(stderr, "ab") as err:
                handle.process = subprocess.Popen(
                    command, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True,  # its own process group: cancel stops Spark's JVM and Python workers
                )

            def running(d: dict[str, Any]) -> None:
                d["_local"] = {"pid": handle.process.pid, "job_dir": str(job_dir)}  # type: ignore[union-attr]
                if d["state"] == "SCHEDULED":
                    _touch(d, "RUNNING")
                    d["startedAt"] = d["updatedAt"]

            self.state.update_run(handle.app_id, handle.run_id, running)
            timeout_minutes = doc.get("executionTimeoutMinutes")
            deadline = time.monotonic() + timeout_minutes * 60 if timeout_minutes else None
            exit_code = self._wait(handle, deadline, shipper)
            if handle.stopped_by_service:
                final_state, details = "FAILED", STOPPED
            elif handle.cancel_requested.is_set():
                final_state = "CANCELLED"
                details = ("Job run timed out after its executionTimeoutMinutes "
                           f"({timeout_minutes}) and was cancelled." if handle.timed_out
                           else "Job run was cancelled.")
            elif exit_code == 0:
                final_state, details = "SUCCESS", ""
            else:
                final_state, details = "FAILED", failure_details(exit_code, stdout, stderr)
        except _Cancelled:
            final_state, details = "CANCELLED", "Job run was cancelled before it started."
        except _JobRefused as exc:
            final_state, details = "FAILED", str(exc)[:STATE_DETAILS_MAX]
        except Exception as exc:  # noqa: BLE001 - a run must end in a state, whatever went wrong
            log.exception("job run %s failed to run", handle.run_id)
            final_state, details = "FAILED", f"Job run failed to start: {type(exc).__name__}: {exc}"[:STATE_DETAILS_MAX]
        finally:
            self._publish_logs(shipper, targets, stdout, stderr)
            shutil.rmtree(job_dir / "spark-local", ignore_errors=True)

            def finish(d: dict[str, Any]) -> None:
                _finish(d, final_state, details)
                if d.get("startedAt"):
                    d["totalExecutionDurationSeconds"] = int(round(d["endedAt"] - d["startedAt"]))
                d.pop("_local", None)

            self.state.update_run(handle.app_id, handle.run_id, finish)
            with self._lock:
                self._handles.pop(handle.run_id, None)
                self._wake.notify_all()
            log.info("job run %s ended %s (exit code %s)", handle.run_id, final_state, exit_code)

    def _prepare(self, doc: dict[str, Any], job_dir: Path) -> tuple[list[str], dict[str, str]]:
        """Copy the entry point and files from the store into the job folder; build command and env."""
        spark = doc["jobDriver"]["sparkSubmit"]
        plan = self.plan_for(doc)
        deps = job_dir / "deps"

        def fetch(uri: str, field_name: str, folder: Path) -> str:
            try:
                source = object_path(self.s3_root, uri, field_name)
            except Exception as exc:  # noqa: BLE001 - the ApiError's message says which URI and why
                raise _JobRefused(f"Job run failed: {getattr(exc, 'message', exc)}") from None
            # Keep the object's file name (Python imports a .py/.zip by it); a folder per item avoids clashes.
            target = folder / str(len(list(folder.glob("*"))) if folder.exists() else 0) / source.name
            copy_object(source, target)
            return str(target)

        entry = fetch(spark["entryPoint"], "entryPoint", job_dir / "entry")
        py_files = [fetch(u, "--py-files", deps / "py") for u in plan.py_files]
        jars = [fetch(u, "--jars", deps / "jars") for u in plan.jars]
        files = [fetch(u, "--files", deps / "files") for u in plan.files]
        command = [str(spark_submit()), "--master", "local[*]"]
        confs = {
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.app.name": doc.get("name") or doc["jobRunId"],
            **plan.confs,
            "spark.driver.extraJavaOptions": " ".join(
                [*DRIVER_JAVA_FLAGS, plan.confs.get("spark.driver.extraJavaOptions", "")]).strip(),
            # Spark's scratch space stays inside the job's folder (removed when the run ends).
            "spark.local.dir": str(job_dir / "spark-local"),
        }
        executor_env = {**plan.executor_env, "SMSPARK_EMRFS_ROOT": str(self.s3_root),
                        "PYSPARK_PYTHON": sys.executable}
        confs.update({f"spark.executorEnv.{k}": v for k, v in executor_env.items()})
        for key, value in confs.items():
            command += ["--conf", f"{key}={value}"]
        if py_files:
            command += ["--py-files", ",".join(py_files)]
        if jars:
            command += ["--jars", ",".join(jars)]
        if files:
            command += ["--files", ",".join(files)]
        if plan.main_class:
            command += ["--class", plan.main_class]
        command.append(entry)
        command += [str(a) for a in spark.get("entryPointArguments") or []]
        # The job signs its calls as its execution role, as on EMR.
        env = job_environment(dict(os.environ), self.client_env(doc.get("executionRole")), self.s3_root,
                              plan.driver_env)
        return command, env

    def _wait(self, handle: _Handle, deadline: float | None, shipper: LogShipper) -> int:
        """Wait for the process, shipping logs; on cancel or timeout stop its group. Returns the exit code."""
        process = handle.process
        assert process is not None
        last_ship = 0.0
        while True:
            try:
                return process.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() - last_ship >= 0.5:
                shipper.ship()
                last_ship = time.monotonic()
            if deadline is not None and time.monotonic() > deadline and not handle.cancel_requested.is_set():
                handle.timed_out = True
                handle.cancel_requested.set()
                self.state.update_run(handle.app_id, handle.run_id, lambda d: _touch(d, "CANCELLING"))
            if handle.cancel_requested.is_set():
                return _stop_group(process, handle.grace_seconds)

    def _publish_logs(self, shipper: LogShipper | None, targets: LogTargets, stdout: Path, stderr: Path) -> None:
        """Last CloudWatch lines, then ``stdout.gz``/``stderr.gz`` under the logUri, as EMR writes them."""
        if shipper is not None:
            shipper.ship(final=True)
        if targets.s3_bucket_dir is not None:
            for name, path in (("stdout", stdout), ("stderr", stderr)):
                try:
                    if path.exists():
                        put_gzipped(targets.s3_bucket_dir, f"{targets.s3_prefix}{name}.gz", path)
                except Exception:  # noqa: BLE001 - a missing log must not hide the run's own outcome
                    log.exception("writing %s.gz under the logUri failed", name)


class _Cancelled(Exception):
    """Cancelled while preparing."""


class _JobRefused(Exception):
    """The run cannot start (its entry point is missing...): FAILED with this message."""


def _touch(doc: dict[str, Any], state: str) -> None:
    doc["state"] = state
    doc["updatedAt"] = time.time()


def _to_pending(doc: dict[str, Any]) -> bool:
    if doc["state"] != "SUBMITTED":
        return False
    _touch(doc, "PENDING")
    return True


def _finish(doc: dict[str, Any], state: str, details: str) -> None:
    _touch(doc, state)
    doc["stateDetails"] = details[:STATE_DETAILS_MAX]
    doc["endedAt"] = doc["updatedAt"]
    doc["attemptUpdatedAt"] = doc["updatedAt"]


def _stop_group(process: subprocess.Popen[bytes], grace_seconds: float) -> int:
    """SIGTERM the process group, SIGKILL it after ``grace_seconds``; returns the exit code."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        code = process.wait(timeout=max(0.0, grace_seconds))
    except subprocess.TimeoutExpired:
        code = None
    # Children (the JVM's Python workers) may outlive the leader: the whole group goes.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return process.wait() if code is None else code


def _kill_leftover(local: dict[str, Any]) -> None:
    """Kill the process group a previous service started for a run, if that process still runs it."""
    pid, job_dir = local.get("pid"), local.get("job_dir")
    if not pid or not job_dir:
        return
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
            cmdline = fh.read().decode(errors="replace")
    except OSError:
        return
    # Only a process whose command line names this run's folder: the pid may have been reused.
    if job_dir in cmdline:
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
