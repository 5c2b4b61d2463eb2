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


def sign_as_stack(mp: Any, root: Path | str) -> None:
    """Make boto3 (and so the platform's resources) sign with the credentials of the stack of ``root``,
    through ``mp`` (a ``pytest.MonkeyPatch``): no session token of the machine may ride along."""
    creds = stack_credentials(root)
    mp.setenv("AWS_ACCESS_KEY_ID", creds["aws_access_key_id"])
    mp.setenv("AWS_SECRET_ACCESS_KEY", creds["aws_secret_access_key"])
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_SECURITY_TOKEN", raising=False)


def use_local_stack(mp: Any, root: Path | str, dagster_home: bool = True) -> None:
    """Point the platform at an embedded stack with state in ``root`` (created on first use), its Dagster
    instance files under ``root/dagster`` when ``dagster_home``, and sign as that stack."""
    mp.setenv("SMSPARK_ROOT", str(root))
    mp.setenv("SMSPARK_ENV", "local")
    if dagster_home:
        mp.setenv("DAGSTER_HOME", str(Path(root) / "dagster"))
    sign_as_stack(mp, root)


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
