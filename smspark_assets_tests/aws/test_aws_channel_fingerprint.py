"""Issue 10: channel fingerprints follow the content, not how it was uploaded or encrypted.

ETags are content digests only for single-part uploads without SSE-KMS. The fingerprint uses S3's
full-object checksum (HeadObject with ChecksumMode) when the listing says there is one: the same content
uploaded in parts of another size (moto: ETags ``-3`` vs ``-2``) or encrypted with SSE-KMS (random ETags,
played by a Stubber) keeps its fingerprint; other content changes it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)

BUCKET = "demo-bucket"
PREFIX = "channels/credit_default/train/"
MIB = 1024 * 1024


@pytest.fixture()
def moto_store() -> Iterator[S3ObjectStoreResource]:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield S3ObjectStoreResource(region_name="us-east-1")


def _multipart(s3: Any, key: str, data: bytes, part_size: int) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC64NVME",
                                        ChecksumType="FULL_OBJECT")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), part_size), 1):
        answer = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number,
                                Body=data[start:start + part_size])
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})


def _spark_write(s3: Any, data: bytes, part_size: int) -> None:
    """One part file named as Spark names it (a fresh write UUID), uploaded in parts of ``part_size``."""
    for old in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=old["Key"])
    _multipart(s3, f"{PREFIX}part-00000-{uuid.uuid4()}-c000.csv", data, part_size)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}_SUCCESS", Body=b"")


def test_same_content_in_other_part_sizes_keeps_the_fingerprint(moto_store: S3ObjectStoreResource) -> None:
    s3 = moto_store._client()
    data = b"1,0.5,2\n" * (11 * MIB // 8)
    _spark_write(s3, data, 5 * MIB)
    first_etag = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "part")["Contents"][0]["ETag"]
    first = moto_store.fingerprint(f"s3://{BUCKET}/{PREFIX}")
    _spark_write(s3, data, 6 * MIB)
    second_etag = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "part")["Contents"][0]["ETag"]
    assert first_etag != second_etag  # the ETag follows the part size: it alone would call this new data
    assert moto_store.fingerprint(f"s3://{BUCKET}/{PREFIX}") == first
    _spark_write(s3, data[:-1] + b"3", 6 * MIB)
    assert moto_store.fingerprint(f"s3://{BUCKET}/{PREFIX}") != first


def _listing(etags: list[str], algorithm: str | None = "CRC64NVME", kind: str | None = "FULL_OBJECT") -> dict:
    when = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    contents = []
    for n, etag in enumerate(etags):
        obj: dict[str, Any] = {"Key": f"{PREFIX}part-{n:05d}-{uuid.uuid4()}-c000.csv", "ETag": f'"{etag}"',
                               "Size": 100 + n, "LastModified": when}
        if algorithm:
            obj["ChecksumAlgorithm"] = [algorithm]
        if kind:
            obj["ChecksumType"] = kind
        contents.append(obj)
    return {"Contents": contents, "KeyCount": len(contents), "IsTruncated": False}


def _fingerprint(store: S3ObjectStoreResource, listing: dict, checksums: list[str] | None) -> str:
    """The fingerprint when S3 lists ``listing`` and HeadObject answers ``checksums`` (None: no HEAD may
    be made); the Stubber fails on any other request or parameter."""
    with Stubber(store._client()) as stub:
        stub.add_response("list_objects_v2", listing, {"Bucket": BUCKET, "Prefix": PREFIX})
        for obj, checksum in zip(listing["Contents"], checksums or []):
            stub.add_response("head_object", {"ChecksumCRC64NVME": checksum, "ChecksumType": "FULL_OBJECT",
                                              "ETag": obj["ETag"], "ContentLength": obj["Size"]},
                              {"Bucket": BUCKET, "Key": obj["Key"], "ChecksumMode": "ENABLED"})
        out = store.fingerprint(f"s3://{BUCKET}/{PREFIX}")
        stub.assert_no_pending_responses()
    return out


def test_sse_kms_rewrite_keeps_the_fingerprint() -> None:
    """SSE-KMS ETags are not digests: each write gets new ones. The checksums stay with the content."""
    store = S3ObjectStoreResource(region_name="us-east-1", endpoint_url="https://s3.example.test")
    sums = ["AAAAAAAAAAE=", "AAAAAAAAAAI="]
    first = _fingerprint(store, _listing([uuid.uuid4().hex, uuid.uuid4().hex]), sums)
    assert _fingerprint(store, _listing([uuid.uuid4().hex, uuid.uuid4().hex]), sums) == first
    assert _fingerprint(store, _listing([uuid.uuid4().hex, uuid.uuid4().hex]), ["AAAAAAAAAAE=", "AAAAAAAAAAM="]) != first


@pytest.mark.parametrize(("algorithm", "kind"), [(None, None), ("CRC32", "COMPOSITE")])
def test_without_a_full_object_checksum_the_etag_counts(algorithm: str | None, kind: str | None) -> None:
    """No checksum, or one of parts (it depends on the part size too): no HEAD, the ETag decides."""
    store = S3ObjectStoreResource(region_name="us-east-1", endpoint_url="https://s3.example.test")
    first = _fingerprint(store, _listing(["a" * 32, "b" * 32], algorithm, kind), None)
    assert _fingerprint(store, _listing(["a" * 32, "b" * 32], algorithm, kind), None) == first
    assert _fingerprint(store, _listing(["a" * 32, "c" * 32], algorithm, kind), None) != first
