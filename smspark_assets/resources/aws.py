"""Boto3 clients for every AWS service the platform calls: on AWS, or against the embedded local stack.

There is one set of resources. Each keeps the configuration surface of dagster-aws' resources (region,
endpoint URL); ``local_stack_root`` points them at the embedded stack of that state root instead, which
is started on first use and answers the same APIs with generated credentials. Nothing else differs, so
the code that runs on a laptop is the code that runs on AWS.
"""


from functools import cached_property
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from smspark_assets.resources.local_stack import StackConnection, connect
from smspark_assets.sagemaker.training import SecuritySettings


class AwsServiceResource(dg.ConfigurableResource):
    """Shared configuration: region, optional endpoint override, or the embedded local stack's root."""

    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    # The state root of the embedded stack ("local" environment); None on AWS.
    local_stack_root: str | None = None
    max_attempts: int = 8
    read_timeout_seconds: int = 120

    _stack: list[StackConnection] = PrivateAttr(default_factory=list)
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    def stack(self) -> StackConnection | None:
        """The running embedded stack (started on first use), or None on AWS."""
        if self.local_stack_root is None:
            return None
        if not self._stack:
            self._stack.append(connect(self.local_stack_root, self.region_name))
        return self._stack[0]

    def client_kwargs(self) -> dict[str, Any]:
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.region_name,
            "config": Config(retries={"max_attempts": self.max_attempts, "mode": "standard"},
                             read_timeout=self.read_timeout_seconds, connect_timeout=10,
                             # Path-style addressing: the stack (and any S3-compatible endpoint) serves
                             # buckets as the first path segment.
                             s3={"addressing_style": "path"} if self.local_stack_root or self.endpoint_url
                             else None),
        }
        stack = self.stack()
        if stack is not None:
            kwargs.update(stack.client_kwargs())
        elif self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return kwargs

    def client(self, service: str, validate_parameters: bool = True) -> Any:
        """A boto3 client for ``service``. ``validate_parameters=False`` skips botocore's client-side check
        of each request against the API model (the service still checks everything): for bulk writers
        whose items are already checked, where that check is half the client's CPU per request."""
        import boto3
        from botocore.config import Config

        kwargs = self.client_kwargs()
        if not validate_parameters:
            kwargs["config"] = kwargs["config"].merge(Config(parameter_validation=False))
        return boto3.client(service, **kwargs)


class SageMakerResource(AwsServiceResource):
    """SageMaker control plane + runtime, plus what every training job and model needs (role, poll interval)."""

    role_arn: str = "arn:aws:iam::000000000000:role/smspark-local"
    # How often to poll a job or endpoint; the local stack answers in seconds, AWS in minutes.
    poll_seconds: float = 30.0
    instance_type: str = "ml.m5.xlarge"
    # On AWS (see the README): the KMS key of training volumes and model outputs, and the optional VPC of
    # training jobs and models. None/empty locally: the embedded stack has neither.
    kms_key_id: str | None = None
    subnet_ids: list[str] = []
    security_group_ids: list[str] = []

    def security(self) -> SecuritySettings:
        """What every training job, tuning job and model this resource creates carries (KMS, VPC, isolation)."""
        return SecuritySettings(kms_key_id=self.kms_key_id or None, subnet_ids=tuple(self.subnet_ids),
                                security_group_ids=tuple(self.security_group_ids))

    @cached_property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @cached_property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime")


class DynamoDBResource(AwsServiceResource):
    """DynamoDB, where the latest score per key is served to applications."""

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")
