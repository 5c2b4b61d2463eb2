"""Cost controls and health on the embedded stack: the idle reaper deletes only idle platform endpoints and
says so on the endpoint asset, the endpoint asset's deploy recreates a reaped endpoint, the health sensor
reports what the endpoint served, and a batch transform job scores without an endpoint."""

import json
import time

import dagster as dg
import numpy as np
import pytest
from botocore.exceptions import ClientError

from smspark_assets.endpoint_health import endpoint_health_sensor
from smspark_assets.endpoint_reaper import endpoint_idle_reaper, reap_idle_endpoints
from smspark_assets.sagemaker.endpoints import EndpointSettings, deploy_model, ensure_endpoint
from smspark_assets.sagemaker.transform import TransformRequest, output_uri_for, run_transform_job
from smspark_assets_tests.stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BUCKET = "local-test"  # the bucket of the stack side's helpers


def quiet(_: str) -> None:
    return None


def _deploy(stack, endpoint: str, model: str, asset: str | None = None):
    tags = {"project": "smspark_assets", **({"asset": asset} if asset else {})}
    return deploy_model(stack.sm, endpoint, model, EndpointSettings("ml.m5.large", tags=tags), 0.2, quiet)


def _invoke(stack, endpoint: str, body: bytes) -> float | ClientError:
    try:
        answer = stack.runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
        return float(json.loads(answer["Body"].read())["predictions"][0])
    except ClientError as exc:
        return exc


def test_reaper_deletes_only_idle_platform_endpoints_and_the_endpoint_asset_recreates_them(
        guarded_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = guarded_stack
    idle = _deploy(stack, "idle-one", "w1", asset="idle_one_endpoint")
    _deploy(stack, "busy-one", "w1", asset="busy_one_endpoint")
    stack.sm.create_endpoint_config(EndpointConfigName="foreign-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "w1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    stack.sm.create_endpoint(EndpointName="foreign", EndpointConfigName="foreign-cfg")  # not the platform's
    stack.sm.get_waiter("endpoint_in_service").wait(EndpointName="foreign", WaiterConfig={"Delay": 1})
    time.sleep(5.0)  # older than the idle time below
    assert _invoke(stack, "busy-one", b"1,1\n") == 2.0  # called within the idle time: kept
    # A pure call first: nothing is reaped when the idle time is longer than the endpoints' age.
    assert reap_idle_endpoints(stack.sm, stack.cloudwatch, 3600, log=quiet) == []

    monkeypatch.setenv("SMSPARK_ENDPOINT_IDLE_HOURS", str(4.0 / 3600))  # 4 s
    result = endpoint_idle_reaper(dg.build_sensor_context(resources={"sagemaker": stack.resource()}))
    assert isinstance(result, dg.SensorResult)
    observations = result.asset_events
    assert [o.asset_key for o in observations] == [dg.AssetKey("idle_one_endpoint")]
    metadata = observations[0].metadata
    assert metadata["reaped"].value is True and "no invocations" in metadata["reason"].value
    assert metadata["endpoint_config"].value == idle.config_name
    stack.sm.get_waiter("endpoint_deleted").wait(EndpointName="idle-one", WaiterConfig={"Delay": 1})
    names = {e["EndpointName"] for e in stack.sm.list_endpoints()["Endpoints"]}
    assert {"busy-one", "foreign"} <= names and "idle-one" not in names

    # The endpoint asset's deploy finds no endpoint and creates it again (the config was kept) ...
    again = _deploy(stack, "idle-one", "w1", asset="idle_one_endpoint")
    assert (again.action, again.config_name) == ("created", idle.config_name)
    assert _invoke(stack, "idle-one", b"1,2\n") == 3.0
    # ... and so does the scoring path, from the config its endpoint handle names.
    stack.sm.delete_endpoint(EndpointName="idle-one")
    assert ensure_endpoint(stack.sm, "idle-one", idle.config_name, 0.2, {"asset": "idle_one_endpoint"}, quiet)
    assert not ensure_endpoint(stack.sm, "idle-one", idle.config_name, 0.2, log=quiet)  # there: nothing to do
    assert _invoke(stack, "idle-one", b"2,2\n") == 4.0
    tags = stack.sm.list_tags(ResourceArn=stack.sm.describe_endpoint(EndpointName="idle-one")["EndpointArn"])
    assert {t["Key"]: t["Value"] for t in tags["Tags"]} == {"project": "smspark_assets", "asset": "idle_one_endpoint"}

    monkeypatch.setenv("SMSPARK_ENDPOINT_IDLE_HOURS", "0")
    off = endpoint_idle_reaper(dg.build_sensor_context(resources={"sagemaker": stack.resource()}))
    assert isinstance(off, dg.SkipReason) and "off" in off.skip_message


def test_health_sensor_reports_what_the_endpoint_served_without_redeploying(guarded_stack) -> None:
    stack = guarded_stack
    deployed = _deploy(stack, "health-one", "faulty", asset="health_one_endpoint")
    before = stack.sm.describe_endpoint(EndpointName="health-one")["LastModifiedTime"]
    bodies = [b"1,1\n"] * 7 + [b"9,1\n"] * 3  # the faulty model answers 500 on x0 >= 5
    answers = [_invoke(stack, "health-one", body) for body in bodies]
    failed = sum(isinstance(a, ClientError) for a in answers)
    assert failed == 3 and answers[0] == 6.0

    result = endpoint_health_sensor(dg.build_sensor_context(resources={"sagemaker": stack.resource()}))
    by_asset = {o.asset_key: o.metadata for o in result.asset_events}
    health = by_asset[dg.AssetKey("health_one_endpoint")]
    assert health["status"].value == "InService" and health["endpoint_config"].value == deployed.config_name
    assert health["invocations_last_hour"].value == len(bodies)
    assert health["errors_5xx_last_hour"].value == failed and health["errors_4xx_last_hour"].value == 0
    assert health["error_rate_last_hour"].value == pytest.approx(failed / len(bodies))
    assert health["variants"].value == [{"variant": "AllTraffic", "weight": 1.0, "instances": 1}]
    assert 0 < health["model_latency_p50_ms"].value <= health["model_latency_p99_ms"].value
    assert "console" not in health  # links only on AWS
    assert stack.sm.describe_endpoint(EndpointName="health-one")["LastModifiedTime"] == before


def test_transform_job_scores_without_an_endpoint_and_is_adopted_when_run_again(guarded_stack) -> None:
    stack = guarded_stack
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 5, size=(500, 3)).astype(float)  # x0 < 5: the faulty model would answer too
    body = "\n".join(",".join(f"{v:g}" for v in row) for row in rows).encode() + b"\n"
    s3 = stack_client(stack.root, stack.url, "s3")
    s3.put_object(Bucket=BUCKET, Key="transform/in/rows.csv", Body=body)
    request = TransformRequest(model_name="w3", input_uri=f"s3://{BUCKET}/transform/in/",
                               output_uri=f"s3://{BUCKET}/transform/out", content_type="text/csv",
                               input_fingerprint="rows-v1", split_type="Line", assemble_with="Line",
                               max_payload_mb=1, tags={"project": "smspark_assets"})
    first = run_transform_job(stack.sm, request, "guarded-scores", poll_seconds=0.2, log=quiet)
    assert (first.status, first.adopted) == ("Completed", False)
    out_uri = output_uri_for(f"s3://{BUCKET}/transform/in/rows.csv", request.input_uri, request.output_uri)
    key = out_uri.split(f"s3://{BUCKET}/", 1)[1]
    out = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    predictions = np.array([v for line in out.splitlines() if line.strip()
                            for v in json.loads(line)["predictions"]], dtype=float)
    np.testing.assert_allclose(predictions, rows.sum(axis=1) * 3)  # w = 3, computed here by hand
    again = run_transform_job(stack.sm, request, "guarded-scores", poll_seconds=0.2, log=quiet)
    assert (again.job_name, again.adopted) == (first.job_name, True)
    assert stack.sm.describe_transform_job(TransformJobName=first.job_name)["ModelName"] == "w3"


def test_algorithm_scores_from_a_transform_job_equal_the_endpoints_answers(guarded_stack) -> None:
    """Endpoint mode none: the K-means held-out sample scored by a batch transform job gives the same
    answers as the model's live endpoint, and figures computed from them by hand."""
    from smspark_assets.assets.algorithm_catalog import BY_KEY
    from smspark_assets.assets.algorithm_scoring import score_endpoint, score_with_transform_job
    from smspark_assets.resources.storage import S3ObjectStoreResource
    from smspark_assets.sagemaker.algorithms import algorithm_spec
    from smspark_assets.sagemaker.serializers import RecordIOProtobufSerializer

    stack = guarded_stack
    s3 = stack_client(stack.root, stack.url, "s3")
    rng = np.random.default_rng(11)
    centres = np.array([[0, 0, 0], [6, 6, 0], [0, 6, 6]], dtype=np.float32)
    rows = (centres[rng.integers(0, 3, 600)] + rng.normal(0, 0.3, (600, 3))).astype(np.float32)
    body = RecordIOProtobufSerializer().serialize(rows).body()
    for channel in ("train", "test"):
        s3.put_object(Bucket=BUCKET, Key=f"kmeans/{channel}/part-00000.pbr", Body=body)
    image = algorithm_spec("kmeans").image_uri("us-east-1")
    stack.sm.create_training_job(
        TrainingJobName="kmeans-3", RoleArn="arn:aws:iam::123456789012:role/local",
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        HyperParameters={"k": "3", "feature_dim": "3", "mini_batch_size": "200", "init_method": "kmeans++"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "application/x-recordio-protobuf",
                          "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                          "S3Uri": f"s3://{BUCKET}/kmeans/train/"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/kmeans/model"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    stack.sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="kmeans-3",
                                                                  WaiterConfig={"Delay": 1})
    job = stack.sm.describe_training_job(TrainingJobName="kmeans-3")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    stack.sm.create_model(ModelName="kmeans-3", ExecutionRoleArn="arn:aws:iam::123456789012:role/local",
                          PrimaryContainer={"Image": image, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"]})
    store = S3ObjectStoreResource(local_stack_root=str(stack.root))
    model = BY_KEY["kmeans"]
    channel = f"s3://{BUCKET}/kmeans/test/"
    batch = score_with_transform_job(stack.sm, store, model, "kmeans-3", channel, 600, {},
                                     f"s3://{BUCKET}/kmeans/transform", 0.2, log=quiet)
    assert batch["figures"]["rows"] == 600 and batch["transform_job"].startswith("algo-kmeans-scores-")
    _deploy(stack, "kmeans-live", "kmeans-3")
    live = score_endpoint(stack.runtime, "kmeans-live", model, channel, 600, 5 * 1024 * 1024, {},
                          store.arrow_filesystem())
    for name in ("msd", "clusters_used", "largest_cluster_share"):
        assert batch["figures"][name] == pytest.approx(live["figures"][name], rel=1e-6), name
    # Three well separated blobs: three clusters used, msd about the blobs' variance (3 dims x 0.3^2).
    assert batch["figures"]["clusters_used"] == 3
    assert batch["figures"]["msd"] == pytest.approx(3 * 0.3 ** 2, rel=0.25)
    again = score_with_transform_job(stack.sm, store, model, "kmeans-3", channel, 600, {},
                                     f"s3://{BUCKET}/kmeans/transform", 0.2, log=quiet)
    assert again["adopted"] and again["transform_job"] == batch["transform_job"]
