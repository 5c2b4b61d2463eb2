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
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import execute_run
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
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
def code_location(instance: dg.DagsterInstance) -> Iterator[CodeLocation]:
    """The project's code location, loaded in this process under the workspace's location name."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=DEFINITIONS_MODULE, attribute=DEFINITIONS_FACTORY,
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
