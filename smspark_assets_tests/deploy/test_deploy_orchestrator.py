"""The orchestrator on AWS: dagster.yaml validates against Dagster's schemas; the ECS part deploys on moto."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from smspark_assets_tests.deploy.iam_policy_eval import REPO, load_template
from smspark_assets_tests.deploy.test_deploy_template import _moto_subset

pytestmark = pytest.mark.timeout(240)

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

ENV = {"DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USERNAME": "dagster",
       "DAGSTER_PG_PASSWORD": "secret", "DAGSTER_RUN_TASK_DEFINITION": "smspark-daemon",
       "DAGSTER_MAX_CONCURRENT_RUNS": "4", "SMSPARK_BUCKET": "smspark-data"}


def test_dagster_yaml_validates_against_the_instance_and_class_schemas(tmp_path, monkeypatch) -> None:
    import shutil

    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import class_from_code_pointer

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    shutil.copy(REPO / "deploy" / "orchestrator" / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["hostname"] == {"env": "DAGSTER_PG_HOST"}
    for section in ("run_launcher", "run_coordinator", "compute_logs"):
        cls = class_from_code_pointer(config[section]["module"], config[section]["class"])
        result = process_config(resolve_to_config_type(cls.config_type()), config[section]["config"])
        assert result.success, (section, [e.message for e in result.errors])
        if section == "run_coordinator":
            assert result.value["max_concurrent_runs"] == 4
        if section == "run_launcher":
            assert result.value["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION"} or \
                result.value["task_definition"] == "smspark-daemon"
            assert result.value["secrets_tag"] is None


def test_orchestrator_part_deploys_on_moto_with_a_vpc() -> None:
    """With an image and a VPC, the ECS cluster, task definitions and services are created (with an existing
    Postgres: moto cannot resolve RDS's MasterUserSecret, so the created database is checked in the template)."""
    from moto import mock_aws
    from moto.cloudformation.parsing import get_model_map

    subset, _ = _moto_subset(load_template(), set(get_model_map()))
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")
                   ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
        group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
        cf = boto3.client("cloudformation", region_name=REGION)
        params = {"VpcId": vpc, "SubnetIds": ",".join(subnets), "SecurityGroupIds": group,
                  "OrchestratorImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/smspark-orchestrator:1",
                  "ExistingPostgresHost": "db.internal",
                  "ExistingPostgresSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dagster-pg"}
        cf.create_stack(StackName="smspark", TemplateBody=json.dumps(subset), Capabilities=["CAPABILITY_NAMED_IAM"],
                        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        assert cf.describe_stacks(StackName="smspark")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        ecs = boto3.client("ecs", region_name=REGION)
        services = ecs.describe_services(cluster="smspark", services=["webserver", "daemon"])["services"]
        assert sorted(s["serviceName"] for s in services) == ["daemon", "webserver"]
        daemon = ecs.describe_task_definition(taskDefinition="smspark-daemon")["taskDefinition"]
        # moto's CloudFormation drops TaskRoleArn: the roles are checked in the template.
        resources = load_template()["Resources"]
        assert resources["DaemonTaskDefinition"]["Properties"]["TaskRoleArn"] == {"Fn::GetAtt": ["OrchestratorRole", "Arn"]}
        assert "TaskRoleArn" not in resources["WebserverTaskDefinition"]["Properties"]  # it makes no AWS call
        env = {e["name"]: e["value"] for e in daemon["containerDefinitions"][0]["environment"]}
        assert env["DAGSTER_PG_HOST"] == "db.internal" and env["SMSPARK_ENV"] == "aws"
    db = load_template()["Resources"]["Postgres"]["Properties"]
    assert db["StorageEncrypted"] is True and db["PubliclyAccessible"] is False and db["ManageMasterUserPassword"]
