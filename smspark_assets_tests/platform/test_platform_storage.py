"""The local object store and S3 (moto) answer the same questions the same way."""

from pathlib import Path
from typing import Iterator

import boto3
import pytest
from moto import mock_aws

from smspark_assets.resources.storage import LocalObjectStoreResource, ObjectStoreResource, S3ObjectStoreResource

OBJECTS = {
    "raw/apps/dt=2026-11-01/part-00000.csv": b"a\n1\n",
    "raw/apps/dt=2026-11-01/_SUCCESS": b"",
    "raw/apps/dt=2026-11-02/part-00000.csv": b"a\n2\n",
    "raw/apps/dt=2026-11-03/part-00000.csv": b"a\n3\n",
    "raw/apps/_tmp/ignored.csv": b"x",
}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStoreResource]:
    if request.param == "local":
        resource: ObjectStoreResource = LocalObjectStoreResource(root=str(tmp_path))
        for key, data in OBJECTS.items():
            resource.write_bytes(f"s3://demo/{key}", data)
        yield resource
    else:
        with mock_aws():
            boto3.client("s3").create_bucket(Bucket="demo")
            resource = S3ObjectStoreResource(region_name="us-east-1")
            for key, data in OBJECTS.items():
                resource.write_bytes(f"s3://demo/{key}", data)
            yield resource


def test_list_prefixes_starts_after_what_was_seen(store: ObjectStoreResource) -> None:
    assert store.list_prefixes("s3://demo/raw/apps") == ["dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03"]
    assert store.list_prefixes("s3://demo/raw/apps", start_after="dt=2026-11-01") == ["dt=2026-11-02",
                                                                                     "dt=2026-11-03"]
    assert store.list_prefixes("s3://demo/raw/nothing") == []


def test_objects_round_trip(store: ObjectStoreResource) -> None:
    listed = store.list_objects("s3://demo/raw/apps/dt=2026-11-01")
    assert [o.uri for o in listed] == ["s3://demo/raw/apps/dt=2026-11-01/_SUCCESS",
                                       "s3://demo/raw/apps/dt=2026-11-01/part-00000.csv"]
    assert listed[1].size == 4
    assert store.read_bytes("s3://demo/raw/apps/dt=2026-11-02/part-00000.csv") == b"a\n2\n"
    assert store.exists("s3://demo/raw/apps/dt=2026-11-01/_SUCCESS")
    assert not store.exists("s3://demo/raw/apps/dt=2026-11-09/_SUCCESS")


def test_fingerprint_follows_content_not_names(store: ObjectStoreResource) -> None:
    before = store.fingerprint("s3://demo/raw/apps/dt=2026-11-01")
    store.write_bytes("s3://demo/raw/apps/dt=2026-11-01/_SUCCESS", b"marker content is not data")
    assert store.fingerprint("s3://demo/raw/apps/dt=2026-11-01") == before
    store.write_bytes("s3://demo/raw/apps/dt=2026-11-01/part-00000.csv", b"a\n9\n")
    assert store.fingerprint("s3://demo/raw/apps/dt=2026-11-01") != before
