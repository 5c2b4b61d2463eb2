"""Where Athena's ``s3://`` locations live in the local store, checked so nothing escapes it.

A location ``s3://bucket/key`` is the file or folder ``<s3_root>/bucket/key``. The bucket must follow
S3's naming rules (so ``..`` or ``/`` can never be a bucket), the key may not hold ``.``/``..`` segments
or NUL, and the resolved path (symlinks followed) must stay inside the bucket's folder. Table scans list
data files without following symlinks and skip what Hive and Athena skip (names starting with ``_`` or
``.``: ``_SUCCESS``, temp files, hidden sidecars).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from smspark_assets.local.s3_names import bucket_name_problem


class LocationError(ValueError):
    """An ``s3://`` location that is malformed or would resolve outside the store."""


def check_bucket(bucket: str) -> None:
    """S3's bucket naming rules (the local S3's own, so both refuse the same names)."""
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise LocationError(f"invalid bucket name {bucket!r}: {problem}")


def split_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")`` with the bucket and key checked."""
    if not isinstance(uri, str):
        raise LocationError("a location must be a string")
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a", "s3n") or not parsed.netloc:
        raise LocationError(f"not an S3 location: {uri!r} (expected s3://<bucket>/<key>)")
    if parsed.query or parsed.fragment or "@" in parsed.netloc or ":" in parsed.netloc:
        raise LocationError(f"not an S3 location: {uri!r}")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    check_bucket(bucket)
    if "\x00" in key or any(part in (".", "..") for part in key.split("/")):
        raise LocationError(f"the key of {uri!r} has '.' or '..' segments")
    return bucket, key


def resolve(s3_root: Path, uri: str) -> Path:
    """The path in the store for ``uri``, guaranteed inside ``<s3_root>/<bucket>``."""
    bucket, key = split_location(uri)
    base = (s3_root / bucket).resolve()
    path = (base / key).resolve() if key else base
    if path != base and base not in path.parents:
        raise LocationError(f"{uri!r} resolves outside its bucket")
    return path


def data_files(s3_root: Path, uri: str) -> list[Path]:
    """Every data file under location ``uri`` (recursively, sorted), as Athena lists a table's objects.

    A location that is a file is that file; a missing location is an empty list (an empty table).
    """
    path = resolve(s3_root, uri)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    bucket_root = resolve(s3_root, "s3://" + split_location(uri)[0])
    out: list[Path] = []
    for directory, subdirs, files in os.walk(path, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(("_", ".")))
        for name in sorted(files):
            if name.startswith(("_", ".")):
                continue
            file = Path(directory, name)
            if file.is_symlink():
                # A link could point anywhere: only accept it when its target stays in the bucket.
                target = file.resolve()
                if bucket_root not in target.parents or not target.is_file():
                    continue
            if file.stat().st_size > 0:  # zero-byte "folder marker" objects hold no rows
                out.append(file)
    return out


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so no reader ever sees half of it (a unique temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
