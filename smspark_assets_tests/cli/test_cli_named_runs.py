"""The demo's runs as the Dagster UI sees them, through Dagster's GraphQL API on the workspace ``make dev``
loads: named jobs (not ``__ephemeral_asset_job__``), the workspace's location as their origin and the job's
snapshot as their parent, so the UI matches them to the job ("origin-and-snapshot": Re-execute enabled).

One real stage runs (the features of two small days, Spark on the embedded EMR) as ``make run`` runs it;
its progress lines are checked on the way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"

RUNS_QUERY = """
query DemoRuns {
  runsOrError {
    ... on Runs {
      results {
        runId
        pipelineName
        status
        pipelineSnapshotId
        parentPipelineSnapshotId
        repositoryOrigin { repositoryLocationName repositoryName }
        assetSelection { path }
        tags { key value }
      }
    }
  }
}
"""

JOB_QUERY = """
query Job($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { name pipelineSnapshotId }
  }
}
"""


@pytest.fixture
def features_run(smspark_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The demo's first stage on two days of 300 rows, on a test instance; its progress lines."""
    from smspark_assets.demo import RANGE_END, RANGE_START, STAGES, land_demo_data, launch_stage
    from smspark_assets.environment import default_bucket
    from smspark_assets.job_runs import code_location
    from smspark_assets.local import process
    from smspark_assets_tests.stack_access import sign_as_stack

    lines: list[str] = []
    try:
        landed, _ = land_demo_data(dt.date(2026, 11, 1), 2, 300, 7, default_bucket())
        sign_as_stack(monkeypatch, smspark_root)
        with dg.instance_for_test() as instance:
            with code_location(instance) as location:
                result = launch_stage(STAGES[0], instance, location,
                                      {RANGE_START: landed[0], RANGE_END: landed[-1]}, write=lines.append)
            yield {"instance": instance, "result": result, "lines": lines, "days": landed}
    finally:
        process.stop(smspark_root)


def test_demo_runs_are_named_jobs_the_ui_can_reexecute(features_run: dict) -> None:
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    result = features_run["result"]
    assert result.success, [e.message for e in result.get_step_failure_events()]
    location = yaml.safe_load(WORKSPACE.read_text())["load_from"][0]["python_module"]["location_name"]
    with define_out_of_process_context(str(WORKSPACE), None, features_run["instance"]) as context:
        runs = execute_dagster_graphql(context, RUNS_QUERY).data["runsOrError"]["results"]
        job = execute_dagster_graphql(context, JOB_QUERY, {"selector": {
            "repositoryLocationName": location, "repositoryName": "__repository__",
            "pipelineName": "daily_scoring_job"}}).data["pipelineOrError"]
    assert job["__typename"] == "Pipeline"
    assert len(runs) == 1
    run = runs[0]
    assert run["pipelineName"] == "daily_scoring_job"
    assert run["status"] == "SUCCESS"
    assert run["repositoryOrigin"] == {"repositoryLocationName": location, "repositoryName": "__repository__"}
    # A subset run: its parent snapshot is the workspace's job, which is what the UI pairs it with.
    assert run["parentPipelineSnapshotId"] == job["pipelineSnapshotId"]
    assert run["assetSelection"] == [{"path": ["credit_features"]}]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/asset_partition_range_start"] == features_run["days"][0]
    assert tags["dagster/asset_partition_range_end"] == features_run["days"][-1]
    assert tags["smspark/launched_by"] == "smspark run"
    _progress_lines_are_compact_and_name_the_step(features_run["lines"])


def _progress_lines_are_compact_and_name_the_step(lines: list[str]) -> None:
    assert lines[0].startswith("[1/5] features: job daily_scoring_job, days 2026-11-01 .. 2026-11-02 (run ")
    assert any(line.endswith("credit_features: started") for line in lines)
    done = [line for line in lines if "credit_features: done in" in line]
    assert len(done) == 1 and "2 materializations" in done[0], lines
    assert all(len(line) <= 150 and "\n" not in line for line in lines)
    # dagster-aws' raw responses and object reprs are not progress.
    assert not any("ResponseMetadata" in line or " object at 0x" in line for line in lines), lines
