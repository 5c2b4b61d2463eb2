"""Issue 10: the roles can do what SageMaker needs when training jobs and models use the KMS key and a VPC.

What SageMaker asks of the execution role (SageMaker developer guide, "Give SageMaker access to resources
in your Amazon VPC"; API reference of OutputDataConfig.KmsKeyId and ResourceConfig.VolumeKmsKeyId), and
of the caller that passes a KMS key for an AWS service to use (a grant).
"""

from __future__ import annotations

import pytest

from smspark_assets_tests.deploy.iam_policy_eval import allowed_actions, load_template, parameters, role_statements

pytestmark = pytest.mark.timeout(60)

VPC_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
               "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
               "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}
KEY_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"}


def test_sagemaker_role_creates_network_interfaces_only_with_a_vpc() -> None:
    template = load_template()
    with_vpc = parameters(template, SubnetIds=["subnet-0123456789abcdef0"], SecurityGroupIds=["sg-0123456789abcdef0"])
    assert VPC_ACTIONS <= allowed_actions(template, "SageMakerExecutionRole", with_vpc)
    assert not VPC_ACTIONS & allowed_actions(template, "SageMakerExecutionRole", parameters(template))


@pytest.mark.parametrize("role", ["SageMakerExecutionRole", "OrchestratorRole"])
def test_the_data_key_serves_training_volumes_and_outputs(role: str) -> None:
    template = load_template()
    statements = role_statements(template, role, parameters(template))
    on_key = {a for s in statements if s["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
              for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    needed = KEY_ACTIONS if role == "SageMakerExecutionRole" else {"kms:CreateGrant", "kms:GenerateDataKey",
                                                                     "kms:Decrypt"}
    assert needed <= on_key
    grant = next(s for s in statements if s["Action"] == "kms:CreateGrant")
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}  # grants only for AWS services
