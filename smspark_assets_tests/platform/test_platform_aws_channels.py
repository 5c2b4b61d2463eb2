"""Channel prefixes end with "/" and channel fingerprints come from the listing (issue 10, defect 6)."""

import hashlib
import uuid
from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from smspark_assets.resources.storage import S3ObjectStoreResource
from smspark_assets.sagemaker.training import Channel, TrainingRequest, run_training_job

pytestmark = pytest.mark.timeout(60)

BUCKET = "demo"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PARTS = [b"1,0.5,2\n0,0.1,3\n", b"0,0.7,1\n"]


@pytest.fixture()
def store() -> Iterator[tuple[S3ObjectStoreResource, list[str]]]:
    """A store on moto's S3 and the names of the GetObject calls its client makes."""
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        resource = S3ObjectStoreResource(region_name="us-east-1")
        downloads: list[str] = []
        resource._client().meta.events.register(
            "before-parameter-build.s3.GetObject", lambda params, **_: downloads.append(params["Key"]))
        yield resource, downloads


def _spark_write(resource: S3ObjectStoreResource, prefix: str, parts: list[bytes]) -> None:
    """Write ``parts`` as Spark does: part files named with a fresh write UUID, plus a _SUCCESS marker."""
    s3 = resource._client()
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]:
        s3.delete_object(Bucket=BUCKET, Key=key)
    write = uuid.uuid4()
    for index, data in enumerate(parts):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}part-{index:05d}-{write}-c000.csv", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}_SUCCESS", Body=b"")


def test_fingerprint_follows_content_not_spark_part_names(store: tuple[S3ObjectStoreResource, list[str]]) -> None:
    resource, downloads = store
    _spark_write(resource, "channels/train/", PARTS)
    first = resource.fingerprint(f"s3://{BUCKET}/channels/train")
    _spark_write(resource, "channels/train/", PARTS)  # same content, new part names
    assert resource.fingerprint(f"s3://{BUCKET}/channels/train/") == first
    _spark_write(resource, "channels/train/", [PARTS[0], b"0,0.7,9\n"])  # one value changed
    changed = resource.fingerprint(f"s3://{BUCKET}/channels/train/")
    assert changed != first
    _spark_write(resource, "channels/train/", [PARTS[1], PARTS[0]])  # same bytes, other order
    assert resource.fingerprint(f"s3://{BUCKET}/channels/train/") not in (first, changed)
    assert downloads == []  # not one object was downloaded
    resource.read_bytes(f"s3://{BUCKET}/channels/train/_SUCCESS")  # the control: a download is counted
    assert downloads == ["channels/train/_SUCCESS"]


def test_fingerprint_ignores_sibling_prefixes(store: tuple[S3ObjectStoreResource, list[str]]) -> None:
    resource, _ = store
    _spark_write(resource, "channels/train/", PARTS)
    before = resource.fingerprint(f"s3://{BUCKET}/channels/train")
    _spark_write(resource, "channels/train_old/", [b"9,9,9\n"])
    resource._client().put_object(Bucket=BUCKET, Key="channels/train/_temporary/0/part-x.csv", Body=b"junk")
    assert resource.fingerprint(f"s3://{BUCKET}/channels/train") == before


def test_listing_etags_are_content_md5s(store: tuple[S3ObjectStoreResource, list[str]]) -> None:
    """What the fingerprint relies on: a single-part object's ETag is the MD5 of its bytes."""
    resource, _ = store
    _spark_write(resource, "channels/validation/", PARTS)
    etags = [o.etag for o in resource.list_objects(f"s3://{BUCKET}/channels/validation/")
             if "/part-" in o.uri]
    assert etags == [hashlib.md5(p).hexdigest() for p in PARTS]


@mock_aws
def test_training_channels_are_requested_as_folders() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    request = TrainingRequest(
        name_prefix="credit-default-xgb", image=IMAGE, role_arn="arn:aws:iam::123456789012:role/sagemaker",
        hyperparameters={"num_round": "10"}, output_uri=f"s3://{BUCKET}/models", data_fingerprint="fp",
        channels={"train": Channel(f"s3://{BUCKET}/channels/train", "text/csv"),
                  "validation": Channel(f"s3://{BUCKET}/channels/validation/", "text/csv")})
    sent: list[dict[str, Any]] = []
    sm.meta.events.register("before-parameter-build.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(params))
    result = run_training_job(sm, request, poll_seconds=0.01, log=lambda _: None)
    assert result.status == "Completed"  # moto accepted the request
    uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in sent[0]["InputDataConfig"]]
    assert uris == [f"s3://{BUCKET}/channels/train/", f"s3://{BUCKET}/channels/validation/"]
