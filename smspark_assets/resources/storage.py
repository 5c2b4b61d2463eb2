"""Object storage behind ``s3://`` URIs: Amazon S3, or the embedded stack's S3 API.

Sensors, IO managers and assets read and write through this one resource; in the ``local``
environment it is the same S3 client pointed at the stack. Tables are read with pyarrow's own S3
filesystem, configured from the same connection.
"""


import hashlib
import re
from dataclasses import dataclass
from typing import Any

from smspark_assets.environment import s3_uri, split_s3_uri
from smspark_assets.resources.aws import AwsServiceResource


# The UUID Spark puts in every part file name of a write (``part-00000-<uuid>-c000.snappy.parquet``).
_SPARK_WRITE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    last_modified: float
    etag: str
    # The listing's ChecksumAlgorithm / ChecksumType (S3 adds CRC64NVME to every new object): which
    # checksum HeadObject can return, and whether it covers the whole content (FULL_OBJECT).
    checksum_algorithm: str | None = None
    checksum_type: str | None = None


class S3ObjectStoreResource(AwsServiceResource):
    """Reads, writes and lists objects by ``s3://`` URI (Amazon S3, or the stack's S3 API)."""

    def _client(self) -> Any:
        if "s3" not in self._clients:
            self._clients["s3"] = self.client("s3")
        return self._clients["s3"]

    def arrow_filesystem(self) -> Any:
        """pyarrow's S3 filesystem on the same endpoint and credentials as the boto3 client."""
        from urllib.parse import urlparse

        import pyarrow.fs as pafs

        kwargs = self.client_kwargs()
        options: dict[str, Any] = {"region": self.region_name}
        if kwargs.get("endpoint_url"):
            url = urlparse(kwargs["endpoint_url"])
            options.update(endpoint_override=url.netloc, scheme=url.scheme or "https")
        if kwargs.get("aws_access_key_id"):
            options.update(access_key=kwargs["aws_access_key_id"], secret_key=kwargs["aws_secret_access_key"])
        return pafs.S3FileSystem(**options)

    def parquet_dataset(self, uri: str) -> Any:
        """A pyarrow dataset over the Parquet files under ``uri`` (hive partitions become columns)."""
        import pyarrow.dataset as ds

        bucket, key = split_s3_uri(uri.rstrip("/"))
        return ds.dataset(f"{bucket}/{key}", format="parquet", filesystem=self.arrow_filesystem(),
                          partitioning="hive", exclude_invalid_files=False,
                          ignore_prefixes=[".", "_"])

    def fingerprint(self, prefix_uri: str) -> str:
        """A content fingerprint of the data objects under the folder ``prefix_uri``, from the listing alone.

        Nothing is downloaded: each object counts by its folder relative to the prefix, its name without
        Spark's per-write UUID (``part-00000-<uuid>-c000.csv`` -> ``part-00000--c000.csv``), its ETag and
        its size, in key (so part) order. Identical content rewritten by Spark under new part names keeps
        the fingerprint; changed content changes the ETag. Markers and Spark's work files (``_SUCCESS``,
        ``_temporary/``, ``.crc``: any path segment starting with ``_`` or ``.``) do not count.

        An object's content counts by its full-object checksum when S3 keeps one (every object written
        since S3 adds CRC64NVME by default; one HeadObject each), else by its ETag, which is the MD5 of
        the content only for single-part uploads without SSE-KMS/SSE-C (see :meth:`_content_token`).
        So under SSE-KMS the same content keeps its fingerprint; where only an ETag is known, the same
        content can get a new fingerprint, which errs on the safe side (a retrain, never a stale model
        adopted): a fingerprint never stays equal when the content changed.
        """
        prefix = prefix_uri.rstrip("/") + "/"  # a folder: never a sibling such as train_old/
        digest = hashlib.sha256()
        for info in self.list_objects(prefix):
            relative = info.uri[len(prefix):].split("/")
            if any(part.startswith(("_", ".")) for part in relative):
                continue
            name = "/".join([*relative[:-1], _SPARK_WRITE_UUID.sub("", relative[-1])])
            digest.update(f"{name}\t{self._content_token(info)}\t{info.size}\n".encode())
        return digest.hexdigest()

    def _content_token(self, info: ObjectInfo) -> str:
        """What stands for an object's content: its full-object checksum when S3 has one, else its ETag.

        The ETag is the MD5 of the content only for single-part uploads without SSE-KMS/SSE-C; a
        full-object checksum (CRC64NVME, which S3 adds to every new object, or the CRC32 the SDKs send) is
        a function of the content alone. It costs one HeadObject, made only when the listing says there
        is a checksum. A COMPOSITE checksum (of parts, so of the part size) is no better than the ETag.
        """
        if info.checksum_algorithm is None or info.checksum_type == "COMPOSITE":
            return info.etag
        bucket, key = split_s3_uri(info.uri)
        head = self._client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        value = head.get(f"Checksum{info.checksum_algorithm}")
        # Servers that do not say the type: a single-part object's checksum (its ETag has no "-<parts>")
        # covers the whole content.
        kind = head.get("ChecksumType") or info.checksum_type or ("COMPOSITE" if "-" in info.etag else "FULL_OBJECT")
        if not value or kind != "FULL_OBJECT":
            return info.etag
        return f"{info.checksum_algorithm}:{value}"

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
                algorithms = obj.get("ChecksumAlgorithm") or [None]
                out.append(ObjectInfo(s3_uri(bucket, obj["Key"]), int(obj["Size"]),
                                      obj["LastModified"].timestamp(), obj["ETag"].strip('"'),
                                      algorithms[0], obj.get("ChecksumType")))
        return sorted(out, key=lambda o: o.uri)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self._client().put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self._client().delete_object(Bucket=bucket, Key=key)

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


# The one store of the platform; the name the assets and IO managers use for it.
ObjectStoreResource = S3ObjectStoreResource
