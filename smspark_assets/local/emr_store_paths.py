"""``s3://`` URIs of EMR Serverless requests mapped to the store's files, with nothing escaping the root.

The store keeps ``s3://<bucket>/<key>`` at ``<s3_root>/<bucket>/<key>``. A URI a request carries (entry
point, ``--py-files``, log URI) is accepted only with a bucket name that follows S3's rules and a key with
no ``.``/``..`` segments, and its resolved path must stay inside the bucket's folder (symlinks included).
Objects the runner writes (driver logs) are written to a temporary file and renamed: no reader ever sees
half an object.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from pathlib import Path

from smspark_assets.local.api_errors import ApiError

# S3's bucket naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens, starting and
# ending with a letter or digit, no "..", not an IP address, none of the reserved prefixes/suffixes.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def valid_bucket(name: str) -> bool:
    return (bool(_BUCKET_RE.match(name)) and ".." not in name and not _IP_RE.match(name)
            and not name.startswith(_RESERVED_PREFIXES) and not name.endswith(_RESERVED_SUFFIXES))


def split_uri(uri: str, field: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI; ValidationException naming ``field`` otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ApiError("ValidationException", f"{field} must be an s3:// URI, got {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not valid_bucket(bucket):
        raise ApiError("ValidationException", f"{field}: {bucket!r} is not a valid S3 bucket name")
    if "\x00" in key or any(part in (".", "..") for part in key.split("/")):
        raise ApiError("ValidationException", f"{field}: the key of {uri!r} has a '.' or '..' segment")
    return bucket, key


def object_path(s3_root: Path, uri: str, field: str) -> Path:
    """The file of an existing object; ValidationException when missing (EMR fails such runs at submit)."""
    bucket, key = split_uri(uri, field)
    if not key or key.endswith("/"):
        raise ApiError("ValidationException", f"{field}: {uri!r} names a prefix, not an object")
    base = (s3_root / bucket).resolve()
    path = (base / key).resolve()
    if base not in path.parents:
        raise ApiError("ValidationException", f"{field}: {uri!r} resolves outside its bucket")
    if not path.is_file():
        raise ApiError("ValidationException", f"{field}: the object {uri} does not exist")
    return path


def prefix_path(s3_root: Path, uri: str, field: str) -> tuple[Path, str]:
    """The bucket folder and the normalised key prefix (``a/b/`` or empty) of a log URI."""
    bucket, key = split_uri(uri, field)
    prefix = "/".join(part for part in key.split("/") if part)
    return s3_root / bucket, (prefix + "/" if prefix else "")


def copy_object(source: Path, target: Path) -> None:
    """Copy an object into a job folder (a copy, never a link: the job must not change the store)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def put_gzipped(bucket_dir: Path, key: str, source: Path) -> None:
    """Write ``source`` gzipped as the object ``key`` of the bucket at ``bucket_dir``, atomically."""
    base = bucket_dir.resolve() if bucket_dir.exists() else bucket_dir
    target = (base / key)
    if any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"unsafe key {key!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if base.resolve() not in target.parent.resolve().parents and target.parent.resolve() != base.resolve():
        raise ValueError(f"key {key!r} escapes its bucket")
    fd, tmp = tempfile.mkstemp(prefix=".emr-log-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                open(source, "rb") as src:
            shutil.copyfileobj(src, gz, 1 << 20)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
