"""The local S3 answers the same calls with the same response shapes (keys and types) and error codes as
moto's S3 (in-process ``mock_aws``), on one scenario covering every served action."""

from __future__ import annotations

from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Where the local S3 follows S3 and moto does not (checked against AWS's documentation):
# * ChecksumType: S3 sends x-amz-checksum-type (FULL_OBJECT) with checksums since 2025; moto does not;
# * ListObjects (v1) echoes Prefix and Marker and lists ChecksumAlgorithm, as S3 does;
# * ListMultipartUploads echoes Prefix; CompleteMultipartUpload has no VersionId on an unversioned bucket;
# * CreateBucket of a bucket one owns: BucketAlreadyOwnedByYou (409), as S3 answers in every region but
#   us-east-1's legacy 200 (moto copies the latter); "Bad_Name" is refused (moto does not validate names).
EXTRA_KEYS = {"ChecksumType", "Prefix", "Marker", "NextMarker", "ChecksumAlgorithm"}
MISSING_KEYS = {"VersionId"}
EXPECTED_DIFFERENT = {"create_again": "ERR BucketAlreadyOwnedByYou 409", "bad_name": "ERR InvalidBucketName 400"}


def shape(value: Any) -> Any:
    """Keys and type names of a response, without ResponseMetadata (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if hasattr(value, "read"):
        return "stream"
    return type(value).__name__


def strip(value: Any, drop: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: strip(v, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [strip(v, drop) for v in value]
    return value


def scenario(s3: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bucket = "conf-bkt"

    def call(name: str, fn: Callable[..., Any], **kwargs: Any) -> None:
        try:
            out[name] = shape(fn(**kwargs))
        except s3.exceptions.ClientError as exc:
            out[name] = f"ERR {exc.response['Error']['Code']} {exc.response['ResponseMetadata']['HTTPStatusCode']}"

    call("create", s3.create_bucket, Bucket=bucket)
    call("create_again", s3.create_bucket, Bucket=bucket)
    call("head_bucket", s3.head_bucket, Bucket=bucket)
    call("list_buckets", s3.list_buckets)
    call("put", s3.put_object, Bucket=bucket, Key="d/a.txt", Body=b"hello", ContentType="text/plain",
         Metadata={"m": "v"})
    call("put2", s3.put_object, Bucket=bucket, Key="d/e/b.txt", Body=b"x" * 10)
    call("put_marker", s3.put_object, Bucket=bucket, Key="m/", Body=b"")
    call("get", s3.get_object, Bucket=bucket, Key="d/a.txt")
    call("get_range", s3.get_object, Bucket=bucket, Key="d/a.txt", Range="bytes=1-2")
    call("get_range_past", s3.get_object, Bucket=bucket, Key="d/a.txt", Range="bytes=10-")
    call("head", s3.head_object, Bucket=bucket, Key="d/a.txt")
    call("get_missing", s3.get_object, Bucket=bucket, Key="nope")
    call("head_missing", s3.head_object, Bucket=bucket, Key="nope")
    call("get_no_bucket", s3.get_object, Bucket="no-such-bkt", Key="nope")
    call("head_no_bucket", s3.head_bucket, Bucket="no-such-bkt")
    call("list2", s3.list_objects_v2, Bucket=bucket)
    call("list2_delimiter", s3.list_objects_v2, Bucket=bucket, Delimiter="/", Prefix="d/")
    call("list2_page", s3.list_objects_v2, Bucket=bucket, MaxKeys=1)
    call("list2_start_after", s3.list_objects_v2, Bucket=bucket, StartAfter="d/a.txt")
    call("list1", s3.list_objects, Bucket=bucket)
    call("list1_delimiter", s3.list_objects, Bucket=bucket, Delimiter="/", MaxKeys=1)
    call("copy", s3.copy_object, Bucket=bucket, Key="c.txt", CopySource={"Bucket": bucket, "Key": "d/a.txt"})
    call("copy_to_itself", s3.copy_object, Bucket=bucket, Key="c.txt", CopySource={"Bucket": bucket, "Key": "c.txt"})
    call("delete", s3.delete_object, Bucket=bucket, Key="c.txt")
    call("delete_missing", s3.delete_object, Bucket=bucket, Key="c.txt")
    call("delete_objects", s3.delete_objects, Bucket=bucket,
         Delete={"Objects": [{"Key": "d/e/b.txt"}, {"Key": "zz"}]})
    call("delete_bucket_not_empty", s3.delete_bucket, Bucket=bucket)
    call("mpu_create", s3.create_multipart_upload, Bucket=bucket, Key="mp.bin")
    upload_id = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"]
    call("list_uploads", s3.list_multipart_uploads, Bucket=bucket)
    call("mpu_part", s3.upload_part, Bucket=bucket, Key="mp.bin", UploadId=upload_id, PartNumber=1,
         Body=b"a" * (5 << 20))
    call("mpu_part2", s3.upload_part, Bucket=bucket, Key="mp.bin", UploadId=upload_id, PartNumber=2, Body=b"b" * 100)
    call("list_parts", s3.list_parts, Bucket=bucket, Key="mp.bin", UploadId=upload_id)
    parts = s3.list_parts(Bucket=bucket, Key="mp.bin", UploadId=upload_id)["Parts"]
    call("mpu_bad_part", s3.complete_multipart_upload, Bucket=bucket, Key="mp.bin", UploadId=upload_id,
         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})
    call("mpu_complete", s3.complete_multipart_upload, Bucket=bucket, Key="mp.bin", UploadId=upload_id,
         MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
    out["mp_etag"] = s3.head_object(Bucket=bucket, Key="mp.bin")["ETag"]
    out["etag"] = s3.head_object(Bucket=bucket, Key="d/a.txt")["ETag"]
    call("abort_unknown", s3.abort_multipart_upload, Bucket=bucket, Key="mp.bin", UploadId="nosuchupload")
    second = s3.create_multipart_upload(Bucket=bucket, Key="mp2.bin")["UploadId"]
    call("abort", s3.abort_multipart_upload, Bucket=bucket, Key="mp2.bin", UploadId=second)
    call("bad_name", s3.create_bucket, Bucket="Bad_Name")
    call("location", s3.get_bucket_location, Bucket=bucket)
    return out


@pytest.fixture(scope="module")
def moto_answers() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        return scenario(boto3.client("s3", region_name="us-east-1"))


@pytest.fixture(scope="module")
def our_answers(service: Any) -> dict[str, Any]:
    return scenario(service.client("s3"))


def test_every_call_has_moto_shape(our_answers: dict[str, Any], moto_answers: dict[str, Any]) -> None:
    ours = our_answers
    assert set(ours) == set(moto_answers)
    for name, expected in moto_answers.items():
        if name in EXPECTED_DIFFERENT:
            assert ours[name] == EXPECTED_DIFFERENT[name], name
            continue
        if name in ("mp_etag", "etag"):
            assert ours[name] == expected, name  # same bytes -> same ETag as moto computes
            continue
        assert strip(ours[name], EXTRA_KEYS) == strip(expected, EXTRA_KEYS | MISSING_KEYS), name


def test_error_codes_match_moto(our_answers: dict[str, Any], moto_answers: dict[str, Any]) -> None:
    """The bad cases, spelled out: the code and status botocore reports."""
    expected = {
        "get_range_past": "ERR InvalidRange 416",
        "get_missing": "ERR NoSuchKey 404",
        "head_missing": "ERR 404 404",
        "get_no_bucket": "ERR NoSuchBucket 404",
        "head_no_bucket": "ERR 404 404",
        "copy_to_itself": "ERR InvalidRequest 400",
        "delete_bucket_not_empty": "ERR BucketNotEmpty 409",
        "mpu_bad_part": "ERR InvalidPart 400",
        "abort_unknown": "ERR NoSuchUpload 404",
    }
    for name, answer in expected.items():
        assert (our_answers[name], moto_answers[name]) == (answer, answer), name
