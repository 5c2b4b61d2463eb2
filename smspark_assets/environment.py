"""The one place that decides where the platform runs and where its data lives.

``SMSPARK_ENV`` selects ``local`` (the default: an embedded local stack on this machine) or ``aws``.
Every configuration value, metadata value and API request speaks ``s3://bucket/key`` URIs, in both
environments: locally the stack's S3 API serves them (from files under ``<root>/s3/<bucket>/<key>``).
Nothing else in the project reads these environment variables.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from urllib.parse import urlparse

ENV_VAR = "SMSPARK_ENV"
ROOT_VAR = "SMSPARK_ROOT"
BUCKET_VAR = "SMSPARK_BUCKET"
REGION_VAR = "AWS_REGION"

DEFAULT_BUCKET = "smspark-demo"
DEFAULT_REGION = "us-east-1"


class Environment(str, Enum):
    LOCAL = "local"
    AWS = "aws"


def get_environment() -> Environment:
    """The environment named by ``SMSPARK_ENV`` (``local`` when unset)."""
    raw = os.environ.get(ENV_VAR, Environment.LOCAL.value).strip().lower()
    try:
        return Environment(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in Environment)
        raise ValueError(f"{ENV_VAR}={raw!r} is not an environment; allowed: {allowed}") from None


def project_root() -> Path:
    """The state root of the local stack (``SMSPARK_ROOT``, default ``./.smspark``), absolute."""
    return Path(os.environ.get(ROOT_VAR, ".smspark")).expanduser().resolve()


def local_s3_root() -> Path:
    return project_root() / "s3"


def default_bucket() -> str:
    return os.environ.get(BUCKET_VAR, DEFAULT_BUCKET)


def region() -> str:
    return os.environ.get(REGION_VAR) or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; refuses anything that is not an S3 URI."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a", "s3n") or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://<bucket>/<key>)")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_uri(bucket: str, *parts: str) -> str:
    key = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def local_path(uri: str, root: Path | None = None) -> Path:
    """The file or directory that stands for ``uri`` in the local object store."""
    bucket, key = split_s3_uri(uri)
    base = (root or local_s3_root()) / bucket
    path = (base / key).resolve() if key else base
    if base.resolve() not in (path, *path.parents):
        raise ValueError(f"S3 key escapes its bucket: {uri!r}")
    return path


def partitions_start() -> str:
    """First day of the daily partitions (``SMSPARK_PARTITIONS_START``, default 2026-10-01)."""
    return os.environ.get("SMSPARK_PARTITIONS_START", "2026-10-01")


def sklearn_image_uri() -> str:
    """The custom scikit-learn container (``SMSPARK_SKLEARN_IMAGE``); locally a name the service maps to the script."""
    return os.environ.get("SMSPARK_SKLEARN_IMAGE",
                          f"000000000000.dkr.ecr.{region()}.amazonaws.com/smspark-sklearn-logistic:1")
