"""Launch the code location's defined jobs as the Dagster UI would: named runs on the instance.

``dg.materialize`` runs as ``__ephemeral_asset_job__`` with no code origin, so the UI cannot match the run
to a job ("Re-execute" disabled). Here each run is created from the code location's remote job, the way
the webserver's launch mutation creates one: it carries the job name, the job snapshot, the repository
origin (location ``smspark_assets``, as in ``workspace.yaml``) and the Python origin. It then executes in
this process (the stack, Spark jobs and training are separate processes anyway), on the persistent
instance, so ``make dev`` lists it as a user's own run and can re-execute it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.events import DagsterEvent
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import execute_run
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import serialize_value
from dagster._utils.hosted_user_process import recon_job_from_origin
from dagster._utils.merger import merge_dicts

# The location name of workspace.yaml / [tool.dagster]: the UI matches a run's origin to it.
LOCATION_NAME = "smspark_assets"
DEFINITIONS_MODULE = "smspark_assets.definitions"
# A function, not the module's ``defs``: each load builds the resources from the current environment
# (SMSPARK_ROOT, DAGSTER_HOME), which may differ from when the module was first imported.
DEFINITIONS_FACTORY = "build_definitions"

# In-process steps: one Spark/training client per step needs no process of its own, and a multiprocess
# executor would re-import the code location per step. Re-executions from the UI inherit this config.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@contextmanager
def code_location(instance: dg.DagsterInstance, module: str = DEFINITIONS_MODULE,
                  attribute: str = DEFINITIONS_FACTORY) -> Iterator[CodeLocation]:
    """The project's code location (or ``module``'s ``attribute``), loaded in this process under the
    workspace's location name."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=module, attribute=attribute,
            working_directory=os.getcwd()),
        location_name=LOCATION_NAME)
    with origin.create_location(instance) as location:
        yield location


def job_names(location: CodeLocation) -> list[str]:
    """The user jobs of the location (not Dagster's hidden asset jobs)."""
    repository = next(iter(location.get_repositories().values()))
    return sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__"))


def create_job_run(location: CodeLocation, instance: dg.DagsterInstance, job_name: str, *,
                   assets: Iterable[dg.AssetKey] | None = None, tags: Mapping[str, str] | None = None,
                   run_config: Mapping[str, Any] | None = None) -> dg.DagsterRun:
    """A NOT_STARTED run of ``job_name`` (optionally only ``assets`` of it), created as the UI creates one."""
    repository = next(iter(location.get_repositories().values()))
    if not repository.has_job(job_name):
        raise ValueError(f"job {job_name!r} is not defined in code location {location.name!r}; "
                         f"defined: {', '.join(job_names(location))}")
    asset_selection = frozenset(assets) if assets else None
    remote_job = location.get_job(JobSubsetSelector(
        location_name=location.name, repository_name=repository.name, job_name=job_name, op_selection=None,
        asset_selection=asset_selection))
    config = merge_dicts(IN_PROCESS, dict(run_config or {}))
    plan = location.get_execution_plan(remote_job, config, step_keys_to_execute=None, known_state=None,
                                       instance=instance)
    return instance.create_run(
        job_name=job_name, run_id=None, run_config=config,
        resolved_op_selection=None, op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
        status=DagsterRunStatus.NOT_STARTED, root_run_id=None, parent_run_id=None,
        tags=merge_dicts(remote_job.tags, dict(tags or {})),
        job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=asset_selection, asset_check_selection=None, asset_graph=repository.asset_graph)


def execute_job_run(run: dg.DagsterRun, instance: dg.DagsterInstance,
                    on_event: Callable[[EventLogEntry], None] | None = None) -> JobExecutionResult:
    """Execute a created run here, reporting each stored event to ``on_event`` as it happens."""
    if on_event is not None:
        instance.add_event_listener(run.run_id, on_event)
    if run.job_code_origin is None:
        raise ValueError(f"run {run.run_id} has no code origin to execute")
    # Dagster keeps the last loaded job definition per process (an lru_cache on ReconstructableJob). The
    # definitions' resources are built from the environment when loaded, so a run of the same job in a
    # process whose environment has changed since (another stack root) would run against the old one:
    # load the definitions afresh for every run.
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    return execute_run(recon_job_from_origin(run.job_code_origin), run, instance, raise_on_error=False)


# How often a run executing in another process is polled for new events (its progress lines).
FOLLOW_INTERVAL_SECONDS = 0.5
# After an interrupt, how long a child run may take to stop what its steps started before it is killed.
INTERRUPT_GRACE_SECONDS = 120.0


class RunProcess:
    """A created run executing in a child process, as Dagster's default run launcher executes one
    (``dagster api execute_run``), while this process goes on with other work.

    Its events are read back from the instance as they are stored and passed to ``on_event`` from a
    follower thread, so its progress reads like an in-process run's. The child has a session of its own:
    Ctrl-C reaches this process only, and :meth:`interrupt` forwards exactly one SIGINT, which Dagster turns
    into an interrupted step that stops the remote work it started.
    """

    def __init__(self, run: dg.DagsterRun, instance: dg.DagsterInstance, log_path: str,
                 on_event: Callable[[EventLogEntry], None] | None = None) -> None:
        if run.job_code_origin is None:
            raise ValueError(f"run {run.run_id} has no code origin to execute")
        self.run = run
        self.log_path = log_path
        self._instance = instance
        self._on_event = on_event or (lambda entry: None)
        self._cursor: str | None = None
        self._events: list[DagsterEvent] = []
        args = ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id,
                              instance_ref=instance.get_ref(), set_exit_code_on_failure=True)
        # The launcher's command, with this interpreter's ``dagster`` (the venv's, on PATH or not).
        command = [sys.executable, "-m", "dagster", "api", "execute_run", serialize_value(args)]
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        # When the child was seen to exit (the stage's end, even when it is waited for later).
        self.ended_at: float | None = None
        self._done = threading.Event()
        self._follower = threading.Thread(target=self._follow, name=f"follow-{run.run_id[:8]}", daemon=True)
        self._follower.start()

    def _drain(self) -> None:
        while True:
            page = self._instance.get_records_for_run(self.run.run_id, cursor=self._cursor, limit=1000)
            for record in page.records:
                entry = record.event_log_entry
                if entry.dagster_event is not None:
                    self._events.append(entry.dagster_event)
                self._on_event(entry)
            self._cursor = page.cursor
            if not page.has_more:
                return

    def _follow(self) -> None:
        while not self._done.wait(FOLLOW_INTERVAL_SECONDS):
            if self.ended_at is None and self._process.poll() is not None:
                self.ended_at = time.monotonic()
            self._drain()

    def ended(self) -> bool:
        """Whether the child has exited (its events may still be read by :meth:`wait`)."""
        return self._process.poll() is not None

    def interrupt(self) -> None:
        """Ask the run to stop (one SIGINT), as Ctrl-C on ``dagster api execute_run`` would."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)

    def wait(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the child; the run's result, built from the events it stored."""
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            stuck = self._instance.get_run_by_id(self.run.run_id)
            if stuck is not None and not stuck.is_finished:
                self._instance.report_run_failed(stuck)  # not left STARTED in the UI forever
        self._done.set()
        self._follower.join()
        if self.ended_at is None:
            self.ended_at = time.monotonic()
        self._drain()
        run = self._instance.get_run_by_id(self.run.run_id) or self.run
        if not self._events or run.status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                                                   DagsterRunStatus.CANCELED):
            tail = _tail(self.log_path)
            raise RuntimeError(f"run {run.run_id} (job {run.job_name}) ended in its process with exit status "
                               f"{self._process.returncode} and run status {run.status.value}"
                               + (f": {tail}" if tail else ""))
        job = recon_job_from_origin(run.job_code_origin)  # type: ignore[arg-type]
        # The result's outputs cannot be reopened here (their resources lived in the child): events only.
        return JobExecutionResult(job.get_definition(), nullcontext(), self._events, run)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Interrupt the run and wait for it to stop what it started (killed after a grace period)."""
        self.interrupt()
        try:
            self.wait(INTERRUPT_GRACE_SECONDS)
        except RuntimeError:
            pass


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, errors="replace") as fh:
            return " | ".join(line.strip() for line in fh.read().splitlines()[-lines:] if line.strip())
    except OSError:
        return ""
