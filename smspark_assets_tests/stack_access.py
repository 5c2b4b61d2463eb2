"""How tests reach an embedded stack: boto3 clients signed with the credentials of its state root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from smspark_assets.local.credentials import load_or_create
from smspark_assets.local.layout import LocalLayout


def stack_credentials(root: Path | str) -> dict[str, str]:
    creds = load_or_create(LocalLayout.for_root(root))
    return {"aws_access_key_id": creds.access_key, "aws_secret_access_key": creds.secret_key}


def stack_client(root: Path | str, url: str, service: str, **config: Any) -> Any:
    """A boto3 client for ``service`` of the stack of ``root`` listening at ``url``."""
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        config=Config(**config) if config else None, **stack_credentials(root))


def stack_credentials_for_url(url: str) -> dict[str, str]:
    """The credentials of the stack listening at ``url`` (its health answer names its state root)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url.rstrip('/')}/_smspark/health", timeout=10) as answer:
        return stack_credentials(json.loads(answer.read())["root"])
