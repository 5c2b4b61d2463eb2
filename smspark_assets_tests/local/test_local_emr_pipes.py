"""dagster-aws's ``PipesEMRServerlessClient``, unchanged, against the local stack: the job reports an asset
materialization through Dagster Pipes, and its driver logs are forwarded, both through CloudWatch Logs
read by the client's default ``PipesCloudWatchMessageReader``."""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
import pytest
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

from smspark_assets_tests.stack_access import sign_as_stack

from emr_test_helpers import BUCKET, ROLE, create_spark_app, put_object

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PIPES_SCRIPT = """
import sys
from dagster_pipes import open_dagster_pipes

with open_dagster_pipes() as pipes:
    pipes.log.info("pipes log line from the driver")
    print("forwarded driver line", flush=True)
    pipes.report_asset_materialization(metadata={"rows": 3, "source": "emr-local"})
"""


def test_pipes_client_reports_metadata_and_forwards_logs(service: Any, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # The client's default message reader builds boto3.client("logs"): point the SDK at the stack.
    monkeypatch.setenv("AWS_ENDPOINT_URL", service.url)
    sign_as_stack(monkeypatch, service.root)
    emr = service.client("emr-serverless")
    app_id = create_spark_app(emr, "pipes")
    entry = put_object(service.root, "code/pipes_job.py", PIPES_SCRIPT)
    client = PipesEMRServerlessClient(client=emr, poll_interval=0.5)
    assert type(client.message_reader) is PipesCloudWatchMessageReader

    @dg.asset
    def emr_asset(context):  # noqa: ANN001, ANN202 - dagster reads the annotation, which must stay unset here
        return client.run(
            context=context,
            start_job_run_params={
                "applicationId": app_id,
                "executionRoleArn": ROLE,
                "jobDriver": {"sparkSubmit": {"entryPoint": entry}},
                "configurationOverrides": {"monitoringConfiguration": {
                    "cloudWatchLoggingConfiguration": {"enabled": True},
                    "s3MonitoringConfiguration": {"logUri": f"s3://{BUCKET}/pipes-logs/"}}},
            },
        ).get_materialize_result()

    result = dg.materialize([emr_asset])
    assert result.success
    (mat,) = result.asset_materializations_for_node("emr_asset")
    assert mat.metadata["rows"].value == 3
    assert mat.metadata["source"].value == "emr-local"
    run_id = mat.metadata["AWS EMR Serverless Job Run ID"].value
    assert emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]["state"] == "SUCCESS"
    # dagster's tags arrived on the run.
    assert "dagster/run-id" in emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]["tags"]
    # The log readers forward the driver's lines to this process's stdout from their own threads.
    seen = ""
    deadline = time.monotonic() + 20
    while "forwarded driver line" not in seen and time.monotonic() < deadline:
        time.sleep(0.2)
        seen += capsys.readouterr().out
    assert "forwarded driver line" in seen
