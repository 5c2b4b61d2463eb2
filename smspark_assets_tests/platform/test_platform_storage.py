"""The store answers the same questions the same way against the embedded stack's S3 API and moto's S3."""

import itertools
from typing import Iterator

import boto3
import pytest
from moto import mock_aws

from smspark_assets.resources.storage import S3ObjectStoreResource

pytestmark = pytest.mark.timeout(120)

OBJECTS = {
    "raw/apps/dt=2026-11-01/part-00000.csv": b"a\n1\n",
    "raw/apps/dt=2026-11-01/_SUCCESS": b"",
    "raw/apps/dt=2026-11-02/part-00000.csv": b"a\n2\n",
    "raw/apps/dt=2026-11-03/part-00000.csv": b"a\n3\n",
    "raw/apps/_tmp/ignored.csv": b"x",
}
_BUCKETS = itertools.count()


@pytest.fixture(params=["stack", "moto"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[S3ObjectStoreResource, str]]:
    """``(store, "s3://<bucket>")`` holding OBJECTS; the stack is shared, so each test has its own bucket."""
    bucket = f"demo-{next(_BUCKETS)}"
    if request.param == "stack":
        root, _url = request.getfixturevalue("local_stack")
        resource = S3ObjectStoreResource(local_stack_root=str(root))
        resource.client("s3").create_bucket(Bucket=bucket)
        for key, data in OBJECTS.items():
            resource.write_bytes(f"s3://{bucket}/{key}", data)
        yield resource, f"s3://{bucket}"
    else:
        with mock_aws():
            boto3.client("s3").create_bucket(Bucket=bucket)
            resource = S3ObjectStoreResource(region_name="us-east-1")
            for key, data in OBJECTS.items():
                resource.write_bytes(f"s3://{bucket}/{key}", data)
            yield resource, f"s3://{bucket}"


def test_list_prefixes_starts_after_what_was_seen(store: tuple[S3ObjectStoreResource, str]) -> None:
    resource, base = store
    assert resource.list_prefixes(f"{base}/raw/apps") == ["dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03"]
    assert resource.list_prefixes(f"{base}/raw/apps", start_after="dt=2026-11-01") == ["dt=2026-11-02",
                                                                                      "dt=2026-11-03"]
    assert resource.list_prefixes(f"{base}/raw/nothing") == []


def test_objects_round_trip(store: tuple[S3ObjectStoreResource, str]) -> None:
    resource, base = store
    listed = resource.list_objects(f"{base}/raw/apps/dt=2026-11-01")
    assert [o.uri for o in listed] == [f"{base}/raw/apps/dt=2026-11-01/_SUCCESS",
                                       f"{base}/raw/apps/dt=2026-11-01/part-00000.csv"]
    assert listed[1].size == 4
    assert resource.read_bytes(f"{base}/raw/apps/dt=2026-11-02/part-00000.csv") == b"a\n2\n"
    assert resource.exists(f"{base}/raw/apps/dt=2026-11-01/_SUCCESS")
    assert not resource.exists(f"{base}/raw/apps/dt=2026-11-09/_SUCCESS")
    resource.delete(f"{base}/raw/apps/dt=2026-11-03/part-00000.csv")
    assert not resource.exists(f"{base}/raw/apps/dt=2026-11-03/part-00000.csv")


def test_fingerprint_follows_content_not_names(store: tuple[S3ObjectStoreResource, str]) -> None:
    resource, base = store
    before = resource.fingerprint(f"{base}/raw/apps/dt=2026-11-01")
    resource.write_bytes(f"{base}/raw/apps/dt=2026-11-01/_SUCCESS", b"marker content is not data")
    assert resource.fingerprint(f"{base}/raw/apps/dt=2026-11-01") == before
    resource.write_bytes(f"{base}/raw/apps/dt=2026-11-01/part-00000.csv", b"a\n9\n")
    assert resource.fingerprint(f"{base}/raw/apps/dt=2026-11-01") != before
