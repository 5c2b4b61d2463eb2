"""Spark jobs as steps of an existing EMR cluster (issue 10, item 2): botocore's Stubber plays EMR,
moto's S3 holds the code upload and the Pipes bucket; the "job" reports through the real dagster-pipes
S3 writer, from the Pipes variables the step carries."""

import base64
import json
import zlib
from typing import Any, Iterator

import boto3
import dagster as dg
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.spark_emr_cluster import EmrClusterSparkJobRunner

pytestmark = pytest.mark.timeout(120)

CLUSTER = "j-2AXXXXXXGAPLF"
STEP = "s-1XXXXXXXXXXA"
BUCKET = "demo"


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        clients = {"s3": s3, "emr": boto3.client("emr", region_name="us-east-1")}
        monkeypatch.setattr(EmrClusterSparkJobRunner, "client", lambda self, service: clients[service])
        yield clients


def _runner() -> EmrClusterSparkJobRunner:
    return EmrClusterSparkJobRunner(region_name="us-east-1", cluster_id=CLUSTER, code_uri=f"s3://{BUCKET}/code",
                                    pipes_bucket=BUCKET, log_uri=f"s3://{BUCKET}/logs/emr/", poll_seconds=0.01,
                                    spark_conf={"spark.sql.shuffle.partitions": "8"})


@dg.asset
def features(context: dg.AssetExecutionContext, spark: SparkJobRunner) -> dg.MaterializeResult:
    invocation = spark.run(context, "prepare_features", {"day": "2026-11-01"})
    return invocation.get_materialize_result()


def _materialize() -> dg.ExecuteInProcessResult:
    return dg.materialize([features], resources={"spark": _runner()}, raise_on_error=False)


def _step(state: str, **status: Any) -> dict[str, Any]:
    return {"Step": {"Id": STEP, "Name": "prepare_features-x", "ActionOnFailure": "CONTINUE",
                     "Config": {"Jar": "command-runner.jar", "Args": []},
                     "Status": {"State": state, **status}}}


def _cluster() -> dict[str, Any]:
    return {"Cluster": {"Id": CLUSTER, "Name": "shared", "Status": {"State": "WAITING"},
                        "LogUri": f"s3://{BUCKET}/logs/emr/"}}


def _decode(value: str) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(value)))


def _pipes_env(args: list[str]) -> dict[str, str]:
    prefix = "spark.yarn.appMasterEnv."
    return dict(a[len(prefix):].split("=", 1) for a in args if a.startswith(prefix))


def _run_job_from(args: list[str], s3: Any) -> None:
    """What the job script does on the cluster: open Pipes from its environment and report metadata."""
    from dagster_pipes import PipesMappingParamsLoader, PipesS3ContextLoader, PipesS3MessageWriter, open_dagster_pipes

    env = _pipes_env(args)
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(env),
                            context_loader=PipesS3ContextLoader(client=s3),
                            message_writer=PipesS3MessageWriter(client=s3, interval=0.01)) as pipes:
        assert pipes.extras["params"] == {"day": "2026-11-01"}
        pipes.report_asset_materialization(metadata={"rows": 42})


def _stub_start(stub: Stubber, captured: list[list[str]], emr: Any) -> None:
    emr.meta.events.register("before-parameter-build.emr.AddJobFlowSteps",
                             lambda params, **_: captured.append(params["Steps"][0]["HadoopJarStep"]["Args"]))
    stub.add_response("add_job_flow_steps", {"StepIds": [STEP]}, {"JobFlowId": CLUSTER, "Steps": ANY})


def test_a_step_runs_the_job_script_and_reports(aws: dict[str, Any]) -> None:
    emr, captured = aws["emr"], []
    emr.meta.events.register("before-parameter-build.emr.DescribeStep",
                             lambda **_: _run_job_from(captured[0], aws["s3"]) if len(captured) == 1 else None)
    with Stubber(emr) as stub:
        _stub_start(stub, captured, emr)
        stub.add_response("describe_step", _step("COMPLETED"), {"ClusterId": CLUSTER, "StepId": STEP})
        stub.add_response("describe_cluster", _cluster(), {"ClusterId": CLUSTER})
        result = _materialize()
        stub.assert_no_pending_responses()
    assert result.success
    metadata = result.asset_materializations_for_node("features")[0].metadata
    assert metadata["rows"].value == 42 and metadata["AWS EMR Step ID"].value == STEP
    args = captured[0]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    code_files = {o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="code/")["Contents"]}
    zip_key = next(k for k in code_files if k.endswith("/smspark_assets.zip"))
    assert args[3:5] == ["--py-files", f"s3://{BUCKET}/{zip_key}"]
    assert args[-1] == f"s3://{BUCKET}/{zip_key.rsplit('/', 1)[0]}/spark_jobs/prepare_features.py"
    assert args[-1][len(f"s3://{BUCKET}/"):] in code_files  # the script was uploaded next to the zip
    assert "spark.sql.shuffle.partitions=8" in args
    env = _pipes_env(args)
    assert _decode(env["DAGSTER_PIPES_CONTEXT"])["bucket"] == BUCKET
    assert _decode(env["DAGSTER_PIPES_MESSAGES"])["bucket"] == BUCKET


def test_a_failed_step_surfaces_its_failure_details(aws: dict[str, Any]) -> None:
    emr, captured = aws["emr"], []
    details = {"Reason": "Unknown Error.", "Message": "ValueError: label column has NaN",
               "LogFile": f"s3://{BUCKET}/logs/emr/{CLUSTER}/steps/{STEP}/stderr.gz"}
    with Stubber(emr) as stub:
        _stub_start(stub, captured, emr)
        stub.add_response("describe_step", _step("RUNNING"), {"ClusterId": CLUSTER, "StepId": STEP})
        stub.add_response("describe_step", _step("FAILED", FailureDetails=details),
                          {"ClusterId": CLUSTER, "StepId": STEP})
        result = _materialize()
        stub.assert_no_pending_responses()  # in particular: no cancel_steps, no terminate_job_flows
    assert not result.success
    message = _failure(result)
    assert "ended FAILED" in message and "label column has NaN" in message and details["LogFile"] in message


def test_a_step_that_reports_nothing_fails(aws: dict[str, Any]) -> None:
    emr, captured = aws["emr"], []
    with Stubber(emr) as stub:
        _stub_start(stub, captured, emr)
        stub.add_response("describe_step", _step("COMPLETED"), {"ClusterId": CLUSTER, "StepId": STEP})
        stub.add_response("describe_cluster", _cluster(), {"ClusterId": CLUSTER})
        result = _materialize()
        stub.assert_no_pending_responses()
    message = _failure(result)
    assert "ended without reporting its result" in message and f"EMR step {STEP}" in message
    assert f"s3://{BUCKET}/logs/emr/{CLUSTER}/steps/{STEP}/" in message


def test_an_interrupted_wait_cancels_the_step_not_the_cluster(aws: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import smspark_assets.resources.spark_emr_cluster as cluster_module

    def interrupted(_: float) -> None:
        raise dg.DagsterExecutionInterruptedError("run terminated")

    monkeypatch.setattr(cluster_module.time, "sleep", interrupted)
    emr, captured = aws["emr"], []
    with Stubber(emr) as stub:
        _stub_start(stub, captured, emr)
        stub.add_response("describe_step", _step("RUNNING"), {"ClusterId": CLUSTER, "StepId": STEP})
        stub.add_response("describe_step", _step("RUNNING"), {"ClusterId": CLUSTER, "StepId": STEP})
        stub.add_response("cancel_steps", {"CancelStepsInfoList": [{"StepId": STEP, "Status": "SUBMITTED"}]},
                          {"ClusterId": CLUSTER, "StepIds": [STEP], "StepCancellationOption": "SEND_INTERRUPT"})
        stub.add_response("describe_step", _step("CANCEL_PENDING"), {"ClusterId": CLUSTER, "StepId": STEP})
        # dagster-aws's own handler then asks again and finds the cancellation under way.
        stub.add_response("describe_step", _step("CANCEL_PENDING"), {"ClusterId": CLUSTER, "StepId": STEP})
        with pytest.raises(BaseException):
            dg.materialize([features], resources={"spark": _runner()})
        stub.assert_no_pending_responses()


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failures[0].step_failure_data.error
    texts = []
    while error is not None:
        texts.append(error.message)
        error = error.cause
    return "\n".join(texts)
