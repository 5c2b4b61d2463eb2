"""The code a Spark job runs: this package as a ``--py-files`` zip plus the job scripts, in S3.

Uploads are content-addressed (``<code_uri>/<sha256 prefix>/``): a job always runs the code of the
process that launched it, two versions never overwrite each other, and an unchanged package is not
uploaded again (one HeadObject).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from smspark_assets.environment import split_s3_uri

PACKAGE_DIR = Path(__file__).resolve().parent
ZIP_NAME = "smspark_assets.zip"
# A fixed timestamp: the zip's bytes (and so its hash) depend on the code only.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and p.suffix in (".py", ".proto", ".json")
                  and "__pycache__" not in p.parts)


@lru_cache(maxsize=1)
def build_package() -> tuple[str, bytes, dict[str, bytes]]:
    """``(version, zip bytes, {script name: bytes})`` of the package as it is on disk now."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _sources():
            info = zipfile.ZipInfo(path.relative_to(PACKAGE_DIR.parent).as_posix(), _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    scripts = {p.name: p.read_bytes() for p in sorted((PACKAGE_DIR / "spark_jobs").glob("*.py"))}
    return hashlib.sha256(data).hexdigest()[:16], data, scripts


def upload_code(s3: Any, code_uri: str, versioned: bool = True) -> str:
    """Upload the zip and the job scripts under ``code_uri`` (``/<version>`` when ``versioned``); the URI used."""
    version, data, scripts = build_package()
    base = f"{code_uri.rstrip('/')}/{version}" if versioned else code_uri.rstrip("/")
    bucket, key = split_s3_uri(base)
    for name, body in scripts.items():
        s3.put_object(Bucket=bucket, Key=f"{key}/spark_jobs/{name}", Body=body)
    # The zip goes last: its presence marks a complete upload for ensure_code_uploaded.
    s3.put_object(Bucket=bucket, Key=f"{key}/{ZIP_NAME}", Body=data)
    return base


def ensure_code_uploaded(s3: Any, code_uri: str) -> str:
    """The versioned code URI of the current package, uploading it first when it is not there yet."""
    from botocore.exceptions import ClientError

    version, _, _ = build_package()
    base = f"{code_uri.rstrip('/')}/{version}"
    bucket, key = split_s3_uri(base)
    try:
        s3.head_object(Bucket=bucket, Key=f"{key}/{ZIP_NAME}")
        return base
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    return upload_code(s3, code_uri)
