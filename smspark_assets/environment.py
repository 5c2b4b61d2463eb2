"""The one place that decides where the platform runs and where its data lives.

``SMSPARK_ENV`` selects ``local`` (the default: an embedded local stack on this machine) or ``aws``.
Every configuration value, metadata value and API request speaks ``s3://bucket/key`` URIs, in both
environments: locally the stack's S3 API serves them (from files under ``<root>/s3/<bucket>/<key>``).
Nothing else in the project reads these environment variables.
"""

from __future__ import annotations

import os
import re
from datetime import date
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


PARTITIONS_START_VAR = "SMSPARK_PARTITIONS_START"
# The first day the demo data lands (`smspark run --start` defaults to it): partitions begin where the
# data begins, so the UI does not show a month of missing days before the first landed one.
DEFAULT_PARTITIONS_START = "2026-11-01"


def partitions_start() -> str:
    """First day of the daily partitions (``SMSPARK_PARTITIONS_START``, ``YYYY-MM-DD``, default 2026-11-01,
    the first day of the demo data); set it to the first day your raw data holds."""
    raw = os.environ.get(PARTITIONS_START_VAR, "").strip() or DEFAULT_PARTITIONS_START
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{PARTITIONS_START_VAR}={raw!r} is not a day; expected YYYY-MM-DD "
                         f"(e.g. {DEFAULT_PARTITIONS_START})") from None
    if len(raw) != 10:  # fromisoformat also takes 20261101; partition keys are YYYY-MM-DD
        raise ValueError(f"{PARTITIONS_START_VAR}={raw!r}: write the day as YYYY-MM-DD (e.g. {day.isoformat()})")
    return day.isoformat()


def sklearn_image_uri() -> str:
    """The custom scikit-learn container (``SMSPARK_SKLEARN_IMAGE``); locally a name the service maps to the script."""
    return os.environ.get("SMSPARK_SKLEARN_IMAGE",
                          f"000000000000.dkr.ecr.{region()}.amazonaws.com/smspark-sklearn-logistic:1")


def endpoint_idle_seconds() -> float:
    """How long an endpoint may go without invocations before the idle reaper deletes it
    (``SMSPARK_ENDPOINT_IDLE_HOURS``, default 24; 0 turns the reaper off)."""
    raw = os.environ.get("SMSPARK_ENDPOINT_IDLE_HOURS", "24")
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"SMSPARK_ENDPOINT_IDLE_HOURS={raw!r} is not a number of hours (e.g. 24, 0.5; "
                         "0 turns the idle reaper off)") from None
    if hours < 0:
        raise ValueError(f"SMSPARK_ENDPOINT_IDLE_HOURS must be >= 0, got {hours}")
    return hours * 3600.0


# AWS only: the KMS key and the optional VPC that SageMaker training jobs, models and endpoint configs use
# (the CloudFormation stack applies the same ones to EMR Serverless). Unset locally: the embedded stack has
# no KMS and no VPC.
KMS_KEY_VAR = "SMSPARK_KMS_KEY_ARN"
SUBNETS_VAR = "SMSPARK_SUBNET_IDS"
SECURITY_GROUPS_VAR = "SMSPARK_SECURITY_GROUP_IDS"

# What SageMaker's KmsKeyId fields accept: a key or alias ARN, a key id (multi-Region keys: mrk-...), an alias.
_KMS_KEY = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+"
                      r"|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+")
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_SECURITY_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")


def rollout_bake_seconds() -> int:
    """Default bake after each traffic step of an endpoint update (``SMSPARK_ROLLOUT_BAKE_SECONDS``).

    On AWS 300 s, so the alarms see several one-minute periods of real traffic; on the embedded stack 20 s
    (its alarms evaluate 10 s periods), so a retrain in ``make run`` is not held up for ten minutes.
    """
    default = "300" if get_environment() is Environment.AWS else "20"
    raw = os.environ.get("SMSPARK_ROLLOUT_BAKE_SECONDS", default)
    try:
        seconds = int(raw)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 3600:
        raise ValueError(f"SMSPARK_ROLLOUT_BAKE_SECONDS={raw!r} is not allowed: whole seconds in 0..3600")
    return seconds


def kms_key_arn() -> str | None:
    """The KMS key of training volumes, model outputs and endpoints (``SMSPARK_KMS_KEY_ARN``); None when unset."""
    raw = os.environ.get(KMS_KEY_VAR, "").strip()
    if not raw:
        return None
    if not _KMS_KEY.fullmatch(raw):
        raise ValueError(f"{KMS_KEY_VAR}={raw!r} is not a KMS key; allowed: a key ARN "
                         "(arn:aws:kms:<region>:<account>:key/<id>), an alias ARN, a key id or alias/<name>")
    return raw


def _id_list(var: str, pattern: re.Pattern[str], example: str, most: int) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in os.environ.get(var, "").split(",") if part.strip())
    bad = [i for i in ids if not pattern.fullmatch(i)]
    if bad:
        raise ValueError(f"{var}: {', '.join(map(repr, bad))} not allowed; expected comma-separated ids like {example}")
    if len(ids) > most:
        raise ValueError(f"{var} names {len(ids)} ids; SageMaker's VpcConfig allows at most {most}")
    return ids


def subnet_ids() -> tuple[str, ...]:
    """Private subnets of training jobs and models (``SMSPARK_SUBNET_IDS``, comma-separated); empty = no VPC."""
    return _id_list(SUBNETS_VAR, _SUBNET, "subnet-0123456789abcdef0", 16)


def security_group_ids() -> tuple[str, ...]:
    """Their security groups (``SMSPARK_SECURITY_GROUP_IDS``, comma-separated); needed with subnets."""
    return _id_list(SECURITY_GROUPS_VAR, _SECURITY_GROUP, "sg-0123456789abcdef0", 5)
