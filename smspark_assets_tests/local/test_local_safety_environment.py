"""Environment maps cannot make a job or a model server run what a request chose (issue 9, item 1).

The exploit below ran ``id`` as the service's user through the worker's environment before the fix: the
map is now refused at create, naming the key, and no marker file appears. A legitimate variable still
reaches a script-mode training script and a model server; the service's own environment does not.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from botocore.exceptions import ClientError

from conftest import RunningService, _fake_aws_env
from local_service_helpers import FAST, ROLE, csv_rows
from safety_helpers import SAFETY_IMAGE, SERVICE_ONLY_VAR, configure_safety_algorithm, safety_job
from smspark_assets.local import process
from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.process_environment import (CONTAINER_LIMITS, TRAINING_LIMITS, TRANSFORM_LIMITS,
                                                     check_environment, child_environment)

pytestmark = pytest.mark.timeout(180)


def exploit(marker: Path) -> dict[str, str]:
    """The map of the issue: Python imports ``antigravity``, which opens $BROWSER (bash), which sources
    $BASH_ENV, which runs the command substitution."""
    return {"PYTHONWARNINGS": "ignore::antigravity.x", "BROWSER": "bash", "BASH_ENV": f"$(id>{marker})"}


# -- the checks themselves ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "PYTHONWARNINGS", "PYTHONPATH", "PYTHONSTARTUP", "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES",
    "BASH_ENV", "ENV", "BROWSER", "PERL5OPT", "PERLLIB", "RUBYOPT", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "IFS", "PATH", "HOME", "SHELL", "PS4",
    "PROMPT_COMMAND", "GCONV_PATH", "LOCPATH", "MALLOC_CHECK_", "GLIBC_TUNABLES", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "HTTPS_PROXY", "http_proxy", "SMSPARK_ROOT",
    "PYSPARK_PYTHON", "pythonpath",
])
def test_interpreter_and_loader_variables_are_refused_by_name(key: str) -> None:
    for limits in (TRAINING_LIMITS, CONTAINER_LIMITS, TRANSFORM_LIMITS):
        with pytest.raises(ApiError) as raised:
            check_environment({"FINE": "1", key: "x"}, "environment", limits)
        assert raised.value.code == "ValidationException" and raised.value.status == 400
        assert f"'{key}'" in raised.value.message


def test_keys_values_and_sizes_follow_sagemakers_model() -> None:
    # botocore's service model: key pattern [a-zA-Z_][a-zA-Z0-9_]*, lengths 512 (training), 1024/1024
    # (containers), 1024/10240 (transform); at most 100 entries (16 for transform jobs).
    ok = {"MY_SETTING": "x" * 512, "_private": "", "SAGEMAKER_PROGRAM": "serve.py", "AWS_REGION": "us-east-1"}
    assert check_environment(ok, "environment", TRAINING_LIMITS) == ok
    assert check_environment(None, "environment", TRAINING_LIMITS) == {}
    bad_maps = [
        ({"1ABC": "x"}, TRAINING_LIMITS), ({"A-B": "x"}, CONTAINER_LIMITS), ({"": "x"}, CONTAINER_LIMITS),
        ({"A": "x" * 513}, TRAINING_LIMITS), ({"A": "x" * 1025}, CONTAINER_LIMITS),
        ({"A" * 1025: "x"}, CONTAINER_LIMITS), ({"A": "x" * 10241}, TRANSFORM_LIMITS),
        ({f"K{i}": "x" for i in range(101)}, CONTAINER_LIMITS), ({f"K{i}": "x" for i in range(17)}, TRANSFORM_LIMITS),
        ({"A": 1}, TRAINING_LIMITS), (["A"], TRAINING_LIMITS), ("A=1", CONTAINER_LIMITS),
    ]
    for env, limits in bad_maps:
        with pytest.raises(ApiError) as raised:
            check_environment(env, "environment", limits)
        assert raised.value.code == "ValidationException" and raised.value.status == 400
    assert check_environment({"A": "x" * 10240}, "environment", TRANSFORM_LIMITS)


def test_child_environment_is_an_allow_list_with_the_contract_last() -> None:
    parent = {"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_ALL": "C", "OMP_NUM_THREADS": "1",
              "AWS_SECRET_ACCESS_KEY": "operator-secret", "PYTHONPATH": "/somewhere", "LD_PRELOAD": "x.so",
              "DATABASE_PASSWORD": "hunter2"}
    env = child_environment({"MY_SETTING": "a", "SM_MODEL_DIR": "/elsewhere"},
                            {"SM_MODEL_DIR": "/job/model", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, parent)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_ALL": "C",
                   "OMP_NUM_THREADS": "1", "MY_SETTING": "a", "SM_MODEL_DIR": "/job/model",
                   "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}


# -- through the stack -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    root = tmp_path_factory.mktemp("safety-env") / "root"
    with pytest.MonkeyPatch.context() as mp:
        _fake_aws_env(mp, root)
        mp.setenv(SERVICE_ONLY_VAR, "the service's own secret")
        configure_safety_algorithm(root)
        info = process.start(root)
        try:
            yield RunningService(root, info.url)
        finally:
            process.stop(root)


def _refused(call, **kwargs) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Message"]


@pytest.mark.integration
def test_exploit_map_is_refused_everywhere_and_runs_nothing(stack: RunningService, tmp_path: Path) -> None:
    sm = stack.sm
    marker = tmp_path / "marker"
    message = _refused(sm.create_training_job, **safety_job("exploit-training", exploit(marker)))
    assert "PYTHONWARNINGS" in message
    assert sm.list_training_jobs(NameContains="exploit")["TrainingJobSummaries"] == []
    assert "BASH_ENV" in _refused(sm.create_training_job, **safety_job("exploit-bash", {"BASH_ENV": "x"}))
    container = {"Image": SAFETY_IMAGE, "Environment": exploit(marker)}
    assert "PYTHONWARNINGS" in _refused(sm.create_model, ModelName="exploit-model", ExecutionRoleArn=ROLE,
                                        PrimaryContainer=container)
    assert "PYTHONWARNINGS" in _refused(sm.create_model, ModelName="exploit-model", ExecutionRoleArn=ROLE,
                                        Containers=[container])
    assert sm.list_models(NameContains="exploit")["Models"] == []
    sm.create_model(ModelName="plain-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": SAFETY_IMAGE})
    transform = {
        "TransformJobName": "exploit-transform", "ModelName": "plain-model", "Environment": exploit(marker),
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": "s3://local-test/safety/train"}}},
        "TransformOutput": {"S3OutputPath": "s3://local-test/safety-out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    assert "PYTHONWARNINGS" in _refused(sm.create_transform_job, **transform)
    time.sleep(1.0)  # a process started anyway would have run the command by now
    assert not marker.exists()
    assert not list(stack.root.rglob("marker"))


@pytest.mark.integration
def test_legitimate_variables_reach_the_script_and_the_model_server(stack: RunningService) -> None:
    sm = stack.sm
    sm.create_training_job(**safety_job("env-ok", {"MY_SETTING": "from the request"}))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="env-ok", WaiterConfig=FAST)
    job = sm.describe_training_job(TrainingJobName="env-ok")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    artifact = stack.root / "s3" / job["ModelArtifacts"]["S3ModelArtifacts"][len("s3://"):]
    with tarfile.open(artifact) as tar:
        seen = json.loads(tar.extractfile("env.json").read())
    assert seen["MY_SETTING"] == "from the request"
    assert seen[SERVICE_ONLY_VAR] is None  # the service's own environment stays with the service
    assert seen["PYTHONWARNINGS"] is None and seen["BROWSER"] is None
    assert seen["SM_MODEL_DIR"].endswith("/training-jobs/env-ok/model")

    sm.create_model(ModelName="env-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SAFETY_IMAGE, "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
        "Environment": {"MY_NUMBER": "42.5"}})
    sm.create_endpoint_config(EndpointConfigName="env-model", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "env-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="env-model", EndpointConfigName="env-model")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="env-model", WaiterConfig=FAST)
    body = stack.runtime.invoke_endpoint(EndpointName="env-model", ContentType="text/csv",
                                         Body=csv_rows(np.ones((3, 2))))["Body"].read()
    assert json.loads(body) == {"predictions": [42.5, 42.5, 42.5]}
    sm.delete_endpoint(EndpointName="env-model")

