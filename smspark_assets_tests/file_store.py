"""A store over the stack's folder layout for tests that run jobs in-process, without a running stack.

The embedded EMR's jobs see ``s3://b/k`` as ``<root>/s3/b/k`` (``SMSPARK_EMRFS_ROOT``); tests that call a
job function directly land their input the same way. It has the three calls the demo-data writer uses.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smspark_assets.environment import local_path


@dataclass(frozen=True)
class _Info:
    uri: str


class FileStore:
    def __init__(self, s3_root: Path) -> None:
        self.s3_root = Path(s3_root)

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = local_path(uri, root=self.s3_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def list_objects(self, prefix_uri: str) -> list[_Info]:
        base = local_path(prefix_uri, root=self.s3_root)
        bucket_root = self.s3_root
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        return [_Info("s3://" + p.relative_to(bucket_root).as_posix()) for p in files]

    def delete(self, uri: str) -> None:
        local_path(uri, root=self.s3_root).unlink(missing_ok=True)
