"""Boto3 clients for SageMaker, its runtime and DynamoDB: on AWS, or against the embedded local stack.

One resource per service keeps the configuration surface of dagster-aws' ``S3Resource`` (region,
endpoint URL). With ``local_stack=True`` the endpoint URL is the local service's, which is started on
first use; nothing else differs, so the code that runs on a laptop is the code that runs on AWS.
"""


from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from smspark_assets.environment import project_root

# The local stack checks no signature, but botocore refuses to sign without credentials.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class AwsServiceResource(dg.ConfigurableResource):
    """Shared configuration: region, optional endpoint override, or the embedded local stack."""

    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    local_stack: bool = False
    local_root: str | None = None
    max_attempts: int = 8

    _urls: dict[str, str] = PrivateAttr(default_factory=dict)

    def service_url(self) -> str | None:
        """The endpoint URL clients should use (``None`` means the AWS default for the region)."""
        if self.endpoint_url:
            return self.endpoint_url
        if not self.local_stack:
            return None
        if "local" not in self._urls:
            from smspark_assets.local.process import ensure_running

            root = Path(self.local_root) if self.local_root else project_root()
            self._urls["local"] = ensure_running(root)
        return self._urls["local"]

    def client_kwargs(self) -> dict[str, Any]:
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.region_name,
            "config": Config(retries={"max_attempts": self.max_attempts, "mode": "standard"},
                             read_timeout=120, connect_timeout=10),
        }
        url = self.service_url()
        if url:
            kwargs["endpoint_url"] = url
        if self.local_stack:
            kwargs.update(_LOCAL_CREDENTIALS)
        return kwargs

    def client(self, service: str):
        import boto3

        return boto3.client(service, **self.client_kwargs())


class SageMakerResource(AwsServiceResource):
    """SageMaker control plane + runtime, plus what every training job and model needs (role, poll interval)."""

    role_arn: str = "arn:aws:iam::000000000000:role/smspark-local"
    # Local stack only: custom image URI -> script-mode entry point (module or .py path) it stands for.
    custom_images: dict[str, str] = {}
    # How often to poll a job or endpoint; the local stack answers in seconds, AWS in minutes.
    poll_seconds: float = 30.0
    instance_type: str = "ml.m5.xlarge"

    def service_url(self) -> str | None:
        url = super().service_url()
        if self.local_stack and self.custom_images:
            self._register_custom_images()
        return url

    def _register_custom_images(self) -> None:
        """Merge our custom images into the local service's ``config.json`` (read when it changes)."""
        import json

        from smspark_assets.local.layout import LocalLayout

        path = LocalLayout.for_root(Path(self.local_root) if self.local_root else project_root()).config_json
        config = json.loads(path.read_text()) if path.exists() else {}
        images = {**config.get("custom_images", {}), **self.custom_images}
        if images != config.get("custom_images"):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**config, "custom_images": images}, indent=2))
            tmp.replace(path)

    @cached_property
    def sagemaker(self):
        return self.client("sagemaker")

    @cached_property
    def runtime(self):
        return self.client("sagemaker-runtime")


class DynamoDBResource(AwsServiceResource):
    """DynamoDB, where the latest score per key is served to applications."""

    @cached_property
    def dynamodb(self):
        return self.client("dynamodb")
