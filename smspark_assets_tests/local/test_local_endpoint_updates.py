"""Endpoints beyond the basics: variants and weights, TargetVariant, blue/green updates under load (also to a
model that cannot load), and a model server that dies. Uses the fast script-mode linear algorithm."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import boto3

from smspark_assets_tests.stack_access import stack_credentials_for_url
import psutil
import pytest

from local_service_helpers import CUSTOM_IMAGE, FAST, ROLE, configure_custom_algorithm, linear_job
from smspark_assets.local import cli, process

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """A service with the linear algorithm configured and three trained models: w=1, w=3 and one that cannot
    load.
    """
    root = tmp_path_factory.mktemp("endpoints-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        configure_custom_algorithm(root)
        info = process.start(root)
        try:
            kwargs = dict(
                endpoint_url=info.url,
                **stack_credentials_for_url(info.url),
                region_name="us-east-1",
            )
            sm = boto3.client("sagemaker", **kwargs)
            runtime = boto3.client("sagemaker-runtime", **kwargs)
            for name, hps in (("w1", {"w": 1}), ("w3", {"w": 3}), ("broken", {"broken": 1})):
                sm.create_training_job(**linear_job(f"train-{name}", **hps))
            for name in ("w1", "w3", "broken"):
                sm.get_waiter("training_job_completed_or_stopped").wait(
                    TrainingJobName=f"train-{name}", WaiterConfig=FAST
                )
                artifact = sm.describe_training_job(TrainingJobName=f"train-{name}")["ModelArtifacts"][
                    "S3ModelArtifacts"
                ]
                sm.create_model(
                    ModelName=name,
                    ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": CUSTOM_IMAGE, "ModelDataUrl": artifact},
                )
            yield info, sm, runtime
        finally:
            process.stop(root)


def config(sm, name: str, *variants: tuple[str, str, float]) -> str:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": m,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": w,
            }
            for v, m, w in variants
        ],
    )
    return name


def predict(runtime, endpoint: str, **kwargs) -> tuple[float, str]:
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,1\n", **kwargs)
    return json.loads(response["Body"].read())["predictions"][0], response["InvokedProductionVariant"]


def test_variants_weights_and_target_variant(linear):
    _, sm, runtime = linear
    sm.create_endpoint(
        EndpointName="ab", EndpointConfigName=config(sm, "ab", ("a", "w1", 1.0), ("b", "w3", 1.0))
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ab", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="ab")
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described["ProductionVariants"]] == [
        ("a", 1.0),
        ("b", 1.0),
    ]
    seen = Counter(predict(runtime, "ab") for _ in range(200))
    assert set(seen) == {(2.0, "a"), (6.0, "b")}
    assert 50 < seen[(2.0, "a")] < 150  # weighted 1:1
    assert predict(runtime, "ab", TargetVariant="b") == (6.0, "b")
    with pytest.raises(runtime.exceptions.ValidationError):
        predict(runtime, "ab", TargetVariant="nope")
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ab", DesiredWeightsAndCapacities=[{"VariantName": "a", "DesiredWeight": 0.0}]
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ab", WaiterConfig=FAST)
    assert {predict(runtime, "ab")[1] for _ in range(30)} == {"b"}
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in sm.describe_endpoint(EndpointName="ab")["ProductionVariants"]
    }
    assert weights == {"a": 0.0, "b": 1.0}
    with pytest.raises(sm.exceptions.ClientError):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ab", DesiredWeightsAndCapacities=[{"VariantName": "zz", "DesiredWeight": 1.0}]
        )


def test_blue_green_update_under_load_and_rollback_of_a_broken_model(linear):
    _, sm, runtime = linear
    sm.create_endpoint(EndpointName="bg", EndpointConfigName=config(sm, "bg-1", ("AllTraffic", "w1", 1.0)))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=FAST)
    failures: list[str] = []
    answers: Counter = Counter()
    stop = threading.Event()

    def load() -> None:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=runtime.meta.endpoint_url,
            **stack_credentials_for_url(runtime.meta.endpoint_url),
            region_name="us-east-1",
        )
        while not stop.is_set():
            try:
                answers[predict(client, "bg")[0]] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        sm.update_endpoint(
            EndpointName="bg", EndpointConfigName=config(sm, "bg-2", ("AllTraffic", "w3", 1.0))
        )
        assert sm.describe_endpoint(EndpointName="bg")["EndpointStatus"] == "Updating"
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=FAST)
        time.sleep(0.3)
        assert sm.describe_endpoint(EndpointName="bg")["EndpointConfigName"] == "bg-2"
        # an update to a model that cannot load: rolled back, still InService on the old config, with the
        # reason
        sm.update_endpoint(
            EndpointName="bg", EndpointConfigName=config(sm, "bg-3", ("AllTraffic", "broken", 1.0))
        )
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bg", WaiterConfig=FAST)
        described = sm.describe_endpoint(EndpointName="bg")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert answers[2.0] > 0 and answers[6.0] > 0 and set(answers) == {2.0, 6.0}
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "bg-2"
    assert "this model cannot be loaded" in described["FailureReason"]
    assert predict(runtime, "bg")[0] == 6.0


def test_a_dead_model_server_is_replaced_and_invocations_resume(linear, capsys):
    info, sm, runtime = linear
    sm.create_endpoint(
        EndpointName="phoenix", EndpointConfigName=config(sm, "phoenix", ("AllTraffic", "w1", 1.0))
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="phoenix", WaiterConfig=FAST)
    assert predict(runtime, "phoenix")[0] == 2.0
    servers = [
        p
        for p in psutil.Process(info.pid).children(recursive=True)
        if "model_server" in " ".join(p.cmdline()) and "/phoenix/" in " ".join(p.cmdline())
    ]
    assert len(servers) == 1
    os.kill(servers[0].pid, signal.SIGKILL)
    servers[0].wait(timeout=10)
    assert predict(runtime, "phoenix")[0] == 2.0  # answered by the replacement
    # the log (the replacement appends to the same file) is kept and shown by `smspark local logs <endpoint>`
    assert cli.main(["--root", str(info.root), "logs", "phoenix"]) == 0
    assert capsys.readouterr().out.count("==> phoenix/logs/") == 1
    sm.delete_endpoint(EndpointName="phoenix")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="phoenix", WaiterConfig=FAST)
    remaining = [
        p for p in psutil.Process(info.pid).children(recursive=True) if "/phoenix/" in " ".join(p.cmdline())
    ]
    assert remaining == []


def test_instance_count_is_the_number_of_model_server_processes(linear):
    info, sm, runtime = linear
    sm.create_endpoint_config(
        EndpointConfigName="two",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "w1",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="two", EndpointConfigName="two")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="two", WaiterConfig=FAST)

    def servers() -> int:
        return len([p for p in psutil.Process(info.pid).children() if "/two/" in " ".join(p.cmdline())])

    assert servers() == min(2, os.cpu_count() or 1)
    assert {predict(runtime, "two")[0] for _ in range(10)} == {2.0}
    sm.update_endpoint_weights_and_capacities(
        EndpointName="two",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 1}],
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="two", WaiterConfig=FAST)
    variant = sm.describe_endpoint(EndpointName="two")["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 1)
    deadline = time.monotonic() + 10
    while servers() != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers() == 1
    assert predict(runtime, "two")[0] == 2.0
