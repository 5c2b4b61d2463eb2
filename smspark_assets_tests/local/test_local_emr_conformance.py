"""Conformance: the same boto3 calls against moto's EMR Serverless and CloudWatch Logs and against the local
stack give the same response keys and value types. Differences are listed with a one-line reason."""

from __future__ import annotations

import time
from typing import Any, Callable

import boto3

from smspark_assets_tests.stack_access import stack_credentials
import pytest
from moto import mock_aws

from emr_test_helpers import BUCKET, ROLE, put_object, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# (operation, key path) present on one side only, and why.
ONLY_LOCAL: dict[tuple[str, str], str] = {
    ("GetApplication", "application.stateDetails"): "AWS answers it (empty); moto leaves it out",
    ("GetApplication", "application.architecture"): "AWS answers X86_64 by default; moto leaves it out",
    ("ListApplications", "applications[].stateDetails"): "(same as GetApplication)",
    ("ListApplications", "applications[].architecture"): "(same as GetApplication)",
    ("GetJobRun", "jobRun.createdBy"): "a required member of JobRun in botocore's model; moto leaves it out",
    ("GetJobRun", "jobRun.stateDetails"): "(same)",
    ("ListJobRuns", "jobRuns[].createdBy"): "a required member of JobRunSummary; moto leaves it out",
    ("ListJobRuns", "jobRuns[].stateDetails"): "(same)",
    ("GetJobRun", "jobRun.startedAt"): "the local run really started; moto never runs it",
    ("GetJobRun", "jobRun.endedAt"): "(same)",
    ("GetJobRun", "jobRun.mode"): "AWS answers BATCH; moto leaves it out",
    ("GetJobRun", "jobRun.attempt"): "AWS answers attempt 1; moto leaves it out",
    ("GetJobRun", "jobRun.attemptCreatedAt"): "(same)",
    ("GetJobRun", "jobRun.attemptUpdatedAt"): "(same)",
    ("ListJobRuns", "jobRuns[].mode"): "(same as GetJobRun)",
    ("ListJobRuns", "jobRuns[].attempt"): "(same)",
    ("ListJobRuns", "jobRuns[].attemptCreatedAt"): "(same)",
    ("ListJobRuns", "jobRuns[].attemptUpdatedAt"): "(same)",
    ("ListJobRuns", "jobRuns[].type"): "AWS answers the engine type; moto leaves it out",
    ("DescribeLogStreams", "logStreams[].storedBytes"): "deprecated, still answered by AWS; moto leaves it out",
    ("DescribeLogGroups", "logGroups[].logGroupClass"): "AWS answers STANDARD; moto leaves it out",
    ("DescribeLogGroups", "logGroups[].logGroupArn"): "AWS answers it; moto leaves it out",
    ("FilterLogEvents", "searchedLogStreams"): "deprecated; AWS answers an empty list",
}
ONLY_MOTO: dict[tuple[str, str], str] = {
    ("GetJobRun", "jobRun.billedResourceUtilization"): "moto answers zeros; the stack measures no vCPU-hours",
    ("GetJobRun", "jobRun.billedResourceUtilization.vCPUHour"): "(same)",
    ("GetJobRun", "jobRun.billedResourceUtilization.memoryGBHour"): "(same)",
    ("GetJobRun", "jobRun.billedResourceUtilization.storageGBHour"): "(same)",
    ("GetJobRun", "jobRun.networkConfiguration"): "moto answers an empty one; AWS omits it when not given",
    ("GetJobRun", "jobRun.networkConfiguration.subnetIds"): "(same)",
    ("GetJobRun", "jobRun.networkConfiguration.securityGroupIds"): "(same)",
    ("GetApplication", "application.networkConfiguration"): "(same, for applications)",
    ("GetApplication", "application.networkConfiguration.subnetIds"): "(same)",
    ("GetApplication", "application.networkConfiguration.securityGroupIds"): "(same)",
    ("FilterLogEvents", "searchedLogStreams[]"): "moto lists the searched streams (deprecated field)",
    ("FilterLogEvents", "searchedLogStreams[].logStreamName"): "(same)",
    ("FilterLogEvents", "searchedLogStreams[].searchedCompletely"): "(same)",
    ("DescribeLogStreams", "logStreams[].uploadSequenceToken"): "no longer used by AWS (sequence tokens are ignored)",
}


def _shape(value: Any, path: str, out: dict[str, type]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _shape(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        out[path] = list
        for item in value:
            _shape(item, f"{path}[]", out)
    else:
        out[path] = type(value)


def shape(response: dict[str, Any]) -> dict[str, type]:
    out: dict[str, type] = {}
    _shape({k: v for k, v in response.items() if k != "ResponseMetadata"}, "", out)
    return out


def scenario(emr: Any, logs: Any, entry: str, wait: Callable[[str, str], None]) -> dict[str, dict]:
    """The calls both implementations support, in lifecycle order; the response of each."""
    r: dict[str, dict] = {}
    r["CreateApplication"] = emr.create_application(name="conf", releaseLabel="emr-7.5.0", type="SPARK")
    app = r["CreateApplication"]["applicationId"]
    r["GetApplication"] = emr.get_application(applicationId=app)
    r["ListApplications"] = emr.list_applications()
    r["StartJobRun"] = emr.start_job_run(applicationId=app, executionRoleArn=ROLE, name="conf-run",
                                         tags={"k": "v"}, jobDriver={"sparkSubmit": {"entryPoint": entry}})
    run = r["StartJobRun"]["jobRunId"]
    wait(app, run)
    r["GetJobRun"] = emr.get_job_run(applicationId=app, jobRunId=run)
    r["ListJobRuns"] = emr.list_job_runs(applicationId=app)
    logs.create_log_group(logGroupName="/conf/group")
    logs.create_log_stream(logGroupName="/conf/group", logStreamName="stream-a")
    now = int(time.time() * 1000)
    r["PutLogEvents"] = logs.put_log_events(logGroupName="/conf/group", logStreamName="stream-a",
                                            logEvents=[{"timestamp": now, "message": "one"},
                                                       {"timestamp": now + 1, "message": "two"}])
    r["GetLogEvents"] = logs.get_log_events(logGroupName="/conf/group", logStreamName="stream-a",
                                            startFromHead=True)
    r["DescribeLogStreams"] = logs.describe_log_streams(logGroupName="/conf/group", logStreamNamePrefix="stream")
    r["DescribeLogGroups"] = logs.describe_log_groups(logGroupNamePrefix="/conf")
    r["FilterLogEvents"] = logs.filter_log_events(logGroupName="/conf/group", filterPattern="two")
    return r


def _clients(**kwargs: Any) -> tuple[Any, Any]:
    common = dict(region_name="us-east-1", **kwargs)
    return boto3.client("emr-serverless", **common), boto3.client("logs", **common)


def test_responses_have_moto_keys_and_types(service: Any) -> None:
    entry = put_object(service.root, "code/conf.py", "print('conformance')\n", bucket=BUCKET)
    emr, logs = _clients(endpoint_url=service.url, **stack_credentials(service.root))
    local = scenario(emr, logs, entry, lambda app, run: wait_for_state(emr, app, run))
    assert local["GetJobRun"]["jobRun"]["state"] == "SUCCESS"
    with mock_aws():
        m_emr, m_logs = _clients()
        moto = scenario(m_emr, m_logs, entry, lambda app, run: None)
    problems = []
    for operation in local:
        ours, theirs = shape(local[operation]), shape(moto[operation])
        for path in sorted(set(ours) | set(theirs)):
            if path in ours and path not in theirs:
                if (operation, path) not in ONLY_LOCAL and not path.startswith(("jobRun.tags.", "jobRun.jobDriver")):
                    problems.append(f"{operation}: {path} only in the local answer")
            elif path in theirs and path not in ours:
                if (operation, path) not in ONLY_MOTO:
                    problems.append(f"{operation}: {path} only in moto's answer")
            elif ours[path] is not theirs[path] and {ours[path], theirs[path]} != {int, float}:
                problems.append(f"{operation}: {path} is {ours[path].__name__} locally, {theirs[path].__name__} in moto")
    assert problems == [], "\n".join(problems)
