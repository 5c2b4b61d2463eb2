"""A demo stage run in a process of its own (``job_runs.RunProcess``): its progress reaches this process
while it runs, its result is rebuilt from the stored events, and an interrupt stops what it started."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
import pytest

from smspark_assets.job_runs import RunProcess, code_location, create_job_run
from smspark_assets.run_progress import ProgressPrinter
from smspark_assets_tests.cli.run_process_jobs import FOLDER_VARIABLE

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], tuple[RunProcess, list[str]]]]:
    monkeypatch.setenv(FOLDER_VARIABLE, str(tmp_path))
    processes: list[RunProcess] = []
    with dg.instance_for_test() as instance:
        def start() -> tuple[RunProcess, list[str]]:
            lines: list[str] = []
            with code_location(instance, "smspark_assets_tests.cli.run_process_jobs", "defs") as location:
                run = create_job_run(location, instance, "wait_job")
            process = RunProcess(run, instance, str(tmp_path / "child.log"), ProgressPrinter(lines.append, label="2"))
            processes.append(process)
            return process, lines
        yield start
        for process in processes:
            process.stop()


def _wait_for(predicate: Callable[[], bool], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_child_run_reports_while_it_runs_and_its_result_has_its_events(started, tmp_path: Path) -> None:
    process, lines = started()
    # The asset's own log line arrives while the run is still waiting: progress is live, not replayed.
    _wait_for(lambda: any("waiting for" in line for line in lines))
    assert process.ended_at is None
    (tmp_path / "release").touch()
    result = process.wait(90)
    assert result.success
    [materialization] = result.asset_materializations_for_node("waits_for_release")
    pid = materialization.metadata["pid"].value
    assert pid != os.getpid()  # it really ran in another process
    assert lines[0] == "  [2]" + lines[0][5:] and lines[0].endswith("waits_for_release: started")
    assert lines[-1].endswith("1 materialization")
    assert result.dagster_run.job_name == "wait_job"


def test_an_interrupted_child_run_stops_its_step_and_is_not_left_running(started, tmp_path: Path) -> None:
    process, lines = started()
    _wait_for(lambda: any("waiting for" in line for line in lines))
    process.interrupt()
    result = process.wait(90)
    assert not result.success
    assert result.dagster_run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
    # The step saw the interrupt while waiting, as a step waiting on a training job would.
    assert (tmp_path / "stopped").read_text() == "DagsterExecutionInterruptedError"
