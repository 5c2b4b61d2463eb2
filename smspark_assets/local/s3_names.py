"""Bucket names and object keys of the local S3, and the files they stand for.

``s3://<bucket>/<key>`` is the file ``<s3_root>/<bucket>/<key>``. Because the store is a file tree, a few
keys that S3 accepts cannot be stored, and are refused with 400 before any path is built:

* bucket names follow S3's rules (3-63 characters of ``a-z 0-9 . -``, alphanumeric at both ends, no
  ``..``, not an IP address, none of the reserved prefixes and suffixes), so ``..`` is never a bucket;
* a key has no ``.`` or ``..`` segment, no empty segment (``a//b``, ``/a``; a trailing ``/`` is a folder
  marker and fine), no NUL, at most 1024 bytes and at most 255 bytes per segment (the file name limit);
* a segment starting with ``.`` is reserved for the file tree's own files: Hadoop's ``.part-0.crc``
  checksum sidecars, editors' and tools' temporary files. Such files are not objects: listings skip them,
  and keys naming them are refused, so what a listing shows is exactly what can be read and written.

Every path is also checked to stay inside its bucket folder after symlinks are resolved.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from smspark_assets.local.s3_errors import S3Error, invalid_argument

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or ``None`` when it is."""
    if not 3 <= len(name) <= 63:
        return "bucket names are 3 to 63 characters long"
    if not _BUCKET_RE.match(name):
        return ("bucket names consist of lowercase letters, digits, dots and hyphens, and begin and end "
                "with a letter or digit")
    if ".." in name:
        return "bucket names must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "bucket names must not be formatted as an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "the bucket name uses a prefix or suffix that S3 reserves"
    return None


def check_bucket(name: str) -> str:
    """``name`` when valid, else ``InvalidBucketName`` (400)."""
    problem = bucket_name_problem(name)
    if problem is not None:
        raise S3Error("InvalidBucketName", f"The specified bucket is not valid: {problem}.", 400,
                      BucketName=name)
    return name


def key_segments(key: str) -> list[str]:
    """The path segments of ``key`` (a folder marker ``a/b/`` gives ``["a", "b"]``), or a 400."""
    raw = key.encode("utf-8", errors="surrogatepass")
    if not key:
        raise invalid_argument("Object keys must not be empty.", "key", key)
    if len(raw) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long", 400, Size=len(raw),
                      MaxSizeAllowed=MAX_KEY_BYTES)
    if "\x00" in key:
        raise invalid_argument("Object keys must not contain NUL characters.", "key", key.replace("\x00", ""))
    segments = key.split("/")
    if segments[-1] == "":
        segments.pop()  # folder marker: "a/b/" is the folder a/b
    for segment in segments:
        if segment in ("", ".", ".."):
            raise invalid_argument(
                f"The key {key!r} has an empty, '.' or '..' path segment, which the local store (a file "
                "tree) cannot hold.", "key", key)
        if segment.startswith("."):
            raise invalid_argument(
                f"The key {key!r} has a segment starting with '.': the local store reserves such names for "
                "the file tree's own files (checksum sidecars, temporary files).", "key", key)
        if len(segment.encode("utf-8", errors="surrogatepass")) > MAX_SEGMENT_BYTES:
            raise S3Error("KeyTooLongError", f"A path segment of the key {key!r} is longer than "
                          f"{MAX_SEGMENT_BYTES} bytes, the file name limit of the local store.", 400)
    return segments


def is_hidden(name: str) -> bool:
    """A directory entry that is not part of any object key (see the module docstring)."""
    return name.startswith(".")


def object_path(bucket_dir: Path, key: str) -> Path:
    """The file (or, for a folder marker, the folder) of ``key`` inside ``bucket_dir``; 400 if it escapes."""
    segments = key_segments(key)
    path = bucket_dir.joinpath(*segments)
    inside(bucket_dir, path, key)
    return path


def inside(bucket_dir: Path, path: Path, key: str) -> None:
    """Refuse ``path`` unless it stays in ``bucket_dir`` once symlinks are resolved."""
    base = os.path.realpath(bucket_dir)
    real = os.path.realpath(path)
    if real != base and not real.startswith(base + os.sep):
        raise invalid_argument(f"The key {key!r} resolves outside its bucket.", "key", key)
