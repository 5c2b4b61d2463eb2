"""Object storage behind ``s3://`` URIs: a directory on this machine, or Amazon S3.

Both implementations answer the same questions with the same URIs, so sensors and IO managers never
branch on the environment.
"""


import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from smspark_assets.environment import local_path, s3_uri, split_s3_uri, uri_for_local_path


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    last_modified: float
    etag: str


class ObjectStoreResource(dg.ConfigurableResource, ABC):
    """Reads, writes and lists objects by ``s3://`` URI."""

    @abstractmethod
    def list_prefixes(self, prefix_uri: str, start_after: str | None = None) -> list[str]:
        """Immediate "sub-folder" names under ``prefix_uri`` (e.g. ``dt=2026-11-01``), sorted, after ``start_after``."""

    @abstractmethod
    def list_objects(self, prefix_uri: str) -> list[ObjectInfo]:
        """Every object under ``prefix_uri`` (recursively), sorted by URI."""

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None: ...

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    def fingerprint(self, prefix_uri: str) -> str:
        """A content hash of every data object under a prefix, independent of generated file names.

        Spark names part files with a per-write UUID, so the hash covers sizes and bytes in part order only.
        """
        digest = hashlib.sha256()
        for info in self.list_objects(prefix_uri):
            name = info.uri.rsplit("/", 1)[-1]
            if name.startswith(("_", ".")):
                continue
            digest.update(self.read_bytes(info.uri))
        return digest.hexdigest()


class LocalObjectStoreResource(ObjectStoreResource):
    """``s3://bucket/key`` is the file ``<root>/<bucket>/<key>``."""

    root: str

    def _path(self, uri: str) -> Path:
        return local_path(uri, root=Path(self.root))

    def list_prefixes(self, prefix_uri: str, start_after: str | None = None) -> list[str]:
        base = self._path(prefix_uri)
        if not base.is_dir():
            return []
        # Directory names come back unsorted from the OS; S3 lists in key order, so sort the same way.
        names = sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith((".", "_")))
        return [n for n in names if start_after is None or n > start_after]

    def list_objects(self, prefix_uri: str) -> list[ObjectInfo]:
        base = self._path(prefix_uri)
        if base.is_file():
            files = [base]
        elif base.is_dir():
            files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            return []
        out = []
        for path in files:
            stat = path.stat()
            out.append(ObjectInfo(uri_for_local_path(path, Path(self.root)), stat.st_size, stat.st_mtime,
                                  f"{stat.st_size:x}-{stat.st_mtime_ns:x}"))
        return out

    def read_bytes(self, uri: str) -> bytes:
        return self._path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic replace: a reader never sees half an object, as with S3.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()


class S3ObjectStoreResource(ObjectStoreResource):
    """Amazon S3 (or anything speaking its API at ``endpoint_url``)."""

    region_name: str | None = None
    endpoint_url: str | None = None

    def _client(self):
        import boto3

        return boto3.client("s3", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def list_prefixes(self, prefix_uri: str, start_after: str | None = None) -> list[str]:
        bucket, key = split_s3_uri(prefix_uri)
        prefix = key.rstrip("/") + "/" if key else ""
        kwargs = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
        if start_after:
            # S3 starts the listing at this key, so a tick does not re-list the partitions it already saw
            # (with the delimiter, the last seen folder itself comes back once, as one common prefix).
            kwargs["StartAfter"] = prefix + start_after
        names: list[str] = []
        for page in self._client().get_paginator("list_objects_v2").paginate(**kwargs):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix):].rstrip("/"))
        return sorted(n for n in names if not n.startswith(("_", ".")) and (start_after is None or n > start_after))

    def list_objects(self, prefix_uri: str) -> list[ObjectInfo]:
        bucket, key = split_s3_uri(prefix_uri)
        out: list[ObjectInfo] = []
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                out.append(ObjectInfo(s3_uri(bucket, obj["Key"]), int(obj["Size"]),
                                      obj["LastModified"].timestamp(), obj["ETag"].strip('"')))
        return sorted(out, key=lambda o: o.uri)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self._client().put_object(Bucket=bucket, Key=key, Body=data)

    def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            self._client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
