"""The one module outside ``local/`` that may start the embedded stack: ``connect(root)``.

It starts the stack of a state root when it is not running, reads the root's generated credentials and
sets up what an AWS account would already hold (the data bucket, custom container images). Everything
else talks to the stack over the wire, through the same boto3 clients as on AWS. ``smspark_assets.local``
is imported lazily, inside functions: with ``SMSPARK_ENV=aws`` nothing of it is ever loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StackConnection:
    """Where the stack listens and how to sign requests to it."""

    url: str
    access_key: str
    secret_key: str
    region: str

    def client_kwargs(self) -> dict[str, Any]:
        return {"endpoint_url": self.url, "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key, "region_name": self.region}

    def environment(self) -> dict[str, str]:
        """The exports with which boto3, the AWS CLI or pyarrow (``AWS_ENDPOINT_URL``) reach the stack."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


def connect(root: str | Path, region: str) -> StackConnection:
    """The running stack of ``root`` (started when needed), with its credentials."""
    from smspark_assets.local.credentials import load_or_create
    from smspark_assets.local.layout import LocalLayout
    from smspark_assets.local.process import ensure_running

    layout = LocalLayout.for_root(root)
    url = ensure_running(layout.root)
    creds = load_or_create(layout)
    connection = StackConnection(url, creds.access_key, creds.secret_key, region)
    _provision(layout.root, connection)
    return connection


def _provision(root: Path, connection: StackConnection) -> None:
    """What an AWS account would already hold: the data bucket and the custom algorithm's image."""
    import boto3
    from botocore.config import Config

    from smspark_assets.custom_algorithms import SKLEARN_ENTRY_POINT
    from smspark_assets.environment import default_bucket, sklearn_image_uri

    register_custom_images(root, {sklearn_image_uri(): SKLEARN_ENTRY_POINT})
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **connection.client_kwargs())
    ensure_bucket(s3, default_bucket())


def register_custom_images(root: str | Path, images: dict[str, str]) -> None:
    """Map custom image URIs to script-mode entry points in the stack's ``config.json``.

    This is the local counterpart of pushing a container image to ECR: the stack runs the entry point
    wherever a training job or model names the image. The stack re-reads the file when it changes.
    """
    from smspark_assets.local.layout import LocalLayout

    path = LocalLayout.for_root(root).config_json
    config = json.loads(path.read_text()) if path.exists() else {}
    merged = {**config.get("custom_images", {}), **images}
    if merged != config.get("custom_images"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**config, "custom_images": merged}, indent=2))
        tmp.replace(path)


def ensure_bucket(s3: Any, bucket: str) -> None:
    """Create ``bucket`` unless it exists (on AWS the deployment creates it; locally the first run does)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as create_exc:
            if create_exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise


def scores_api_access(root: str | Path, region: str) -> tuple[str, str]:
    """The scores API of the stack of ``root`` (started when needed): ``(base URL with stage, API key)``.

    The key is generated once per state root (0600), like the stack's credentials.
    """
    from smspark_assets.local.api_keys import load_or_create_api_key
    from smspark_assets.local.layout import LocalLayout
    from smspark_assets.local.scores_api import api_base_url

    connection = connect(root, region)
    return api_base_url(connection.url), load_or_create_api_key(LocalLayout.for_root(root)).value
