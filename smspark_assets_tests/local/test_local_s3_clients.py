"""The local S3 with the real clients: boto3, s3transfer past the multipart threshold, pyarrow's S3 filesystem,
and files that other processes (Spark) wrote straight into the bucket folders."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from pyarrow import fs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(service: Any) -> Any:
    return service.client("s3")


def multipart_etag(data: bytes, part_size: int) -> str:
    """S3's ETag of a multipart upload, computed independently: md5 of the parts' binary MD5s + '-N'."""
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_put_get_head_with_metadata(s3: Any, service: Any) -> None:
    s3.create_bucket(Bucket="cli-basic")
    data = os.urandom(300_000)
    put = s3.put_object(Bucket="cli-basic", Key="dir/obj.bin", Body=data, ContentType="application/x-test",
                        Metadata={"owner": "team-a"}, CacheControl="max-age=60")
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket="cli-basic", Key="dir/obj.bin")
    assert got["Body"].read() == data
    assert (got["ContentType"], got["Metadata"], got["CacheControl"]) == ("application/x-test",
                                                                           {"owner": "team-a"}, "max-age=60")
    head = s3.head_object(Bucket="cli-basic", Key="dir/obj.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    # The store stays plain files: the object is the file, byte for byte.
    assert (service.root / "s3" / "cli-basic" / "dir" / "obj.bin").read_bytes() == data
    part = s3.get_object(Bucket="cli-basic", Key="dir/obj.bin", Range="bytes=1000-1999")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert part["Body"].read() == data[1000:2000]
    tail = s3.get_object(Bucket="cli-basic", Key="dir/obj.bin", Range="bytes=-10")["Body"].read()
    assert tail == data[-10:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="cli-basic", Key="dir/obj.bin", Range=f"bytes={len(data)}-")
    assert code(exc) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="cli-basic", Key="dir/obj.bin", IfMatch='"0123"')
    assert code(exc) == ("PreconditionFailed", 412)


def test_s3transfer_multipart_round_trip(s3: Any, tmp_path: Any) -> None:
    s3.create_bucket(Bucket="cli-transfer")
    data = os.urandom(20 * MIB + 12345)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    s3.upload_file(str(source), "cli-transfer", "big/up.bin", Config=config)
    head = s3.head_object(Bucket="cli-transfer", Key="big/up.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag(data, 5 * MIB)
    target = tmp_path / "down.bin"
    s3.download_file("cli-transfer", "big/up.bin", str(target), Config=config)  # ranged GETs in parallel
    assert hashlib.md5(target.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    assert s3.list_multipart_uploads(Bucket="cli-transfer").get("Uploads", []) == []


def test_pyarrow_parquet_round_trip(service: Any) -> None:
    host = service.url.removeprefix("http://")
    s3fs = fs.S3FileSystem(endpoint_override=host, scheme="http", access_key=_key(service, "access_key"),
                           secret_key=_key(service, "secret_key"), region="us-east-1", allow_bucket_creation=True,
                           allow_bucket_deletion=True)
    s3fs.create_dir("cli-arrow")
    s3fs.create_dir("cli-arrow/empty/sub")
    assert s3fs.get_file_info("cli-arrow/empty/sub").type == fs.FileType.Directory
    table = pa.table({"dt": ["2026-01-01"] * 600 + ["2026-01-02"] * 400, "x": list(range(1000))})
    ds.write_dataset(table, "cli-arrow/tbl", filesystem=s3fs, format="parquet", partitioning=["dt"],
                     partitioning_flavor="hive")
    listed = sorted(info.path for info in s3fs.get_file_info(fs.FileSelector("cli-arrow/tbl", recursive=True))
                    if info.type == fs.FileType.File)
    assert listed == ["cli-arrow/tbl/dt=2026-01-01/part-0.parquet", "cli-arrow/tbl/dt=2026-01-02/part-0.parquet"]
    back = ds.dataset("cli-arrow/tbl", filesystem=s3fs, format="parquet", partitioning="hive").to_table()
    assert sorted(back.column("x").to_pylist()) == list(range(1000))
    assert back.num_rows == 1000
    with s3fs.open_output_stream("cli-arrow/stream.bin") as out:  # past pyarrow's part size: multipart
        out.write(b"z" * (12 * MIB))
    assert s3fs.get_file_info("cli-arrow/stream.bin").size == 12 * MIB
    s3fs.delete_dir("cli-arrow/tbl")
    assert s3fs.get_file_info("cli-arrow/tbl").type == fs.FileType.NotFound
    assert not (service.root / "s3" / "cli-arrow" / "tbl").exists()
    s3fs.delete_dir("cli-arrow")
    assert not (service.root / "s3" / "cli-arrow").exists()


def _key(service: Any, which: str) -> str:
    credentials = service.client("s3")._request_signer._credentials  # noqa: SLF001 - the fixture's keys
    return credentials.access_key if which == "access_key" else credentials.secret_key


def test_files_written_without_the_api_are_objects(s3: Any, service: Any) -> None:
    """Spark writes files directly (with Hadoop's .crc sidecars): they list in S3 order with their MD5."""
    s3.create_bucket(Bucket="cli-spark")
    folder = service.root / "s3" / "cli-spark" / "out"
    (folder / "sub").mkdir(parents=True)
    contents = {"out/a-b": b"1", "out/a0": b"22", "out/sub/x": b"333", "out/_SUCCESS": b"", "out/\u00e9t\u00e9": b"4"}
    for key, data in contents.items():
        (service.root / "s3" / "cli-spark" / key).write_bytes(data)
    (folder / ".a0.crc").write_bytes(b"crc")
    (folder / "sub" / ".x.crc").write_bytes(b"crc")
    listed = s3.list_objects_v2(Bucket="cli-spark", Prefix="out/")["Contents"]
    expected_order = sorted(contents, key=lambda k: k.encode())  # S3 sorts keys by their UTF-8 bytes
    assert [item["Key"] for item in listed] == expected_order
    assert {item["Key"]: item["ETag"] for item in listed} == {
        k: f'"{hashlib.md5(v).hexdigest()}"' for k, v in contents.items()}
    delimited = s3.list_objects_v2(Bucket="cli-spark", Prefix="out/", Delimiter="/")
    assert [p["Prefix"] for p in delimited["CommonPrefixes"]] == ["out/sub/"]
    # A file rewritten in place is a new object: its ETag follows the bytes.
    (folder / "a0").write_bytes(b"changed!")
    assert s3.head_object(Bucket="cli-spark", Key="out/a0")["ETag"] == f'"{hashlib.md5(b"changed!").hexdigest()}"'


def test_listing_pagination_matches_sorted_keys(s3: Any, service: Any) -> None:
    s3.create_bucket(Bucket="cli-list")
    base = service.root / "s3" / "cli-list"
    keys = [f"p/{i % 7}/k{i:05d}" for i in range(2100)] + ["p/0-", "p/0.x", "p/00", "q"]
    for key in keys:
        path = base / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    want = sorted(keys, key=lambda k: k.encode())
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="cli-list", PaginationConfig={"PageSize": 250}))
    assert [c["Key"] for page in pages for c in page.get("Contents", [])] == want
    assert all(page["KeyCount"] <= 250 for page in pages) and len(pages) == -(-len(keys) // 250)
    after = s3.list_objects_v2(Bucket="cli-list", StartAfter="p/3/k00500", MaxKeys=5)
    assert [c["Key"] for c in after["Contents"]] == [k for k in want if k > "p/3/k00500"][:5]
    assert after["IsTruncated"] is True
    # Delimiter pages: contents and common prefixes share MaxKeys, and continue after a common prefix.
    seen_prefixes, seen_keys = [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cli-list", Prefix="p/", Delimiter="/",
                                                             PaginationConfig={"PageSize": 3}):
        seen_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen_keys += [c["Key"] for c in page.get("Contents", [])]
    assert seen_prefixes == [f"p/{i}/" for i in range(7)]
    assert seen_keys == ["p/0-", "p/0.x", "p/00"]
    v1 = list(s3.get_paginator("list_objects").paginate(Bucket="cli-list", Prefix="p/1/",
                                                         PaginationConfig={"PageSize": 100}))
    assert [c["Key"] for page in v1 for c in page["Contents"]] == [k for k in want if k.startswith("p/1/")]


def test_folder_markers_and_key_conflicts(s3: Any) -> None:
    s3.create_bucket(Bucket="cli-marker")
    s3.put_object(Bucket="cli-marker", Key="folder/", Body=b"")
    assert s3.head_object(Bucket="cli-marker", Key="folder/")["ContentLength"] == 0
    listed = s3.list_objects_v2(Bucket="cli-marker")["Contents"]
    assert [(c["Key"], c["Size"]) for c in listed] == [("folder/", 0)]
    s3.put_object(Bucket="cli-marker", Key="folder/file", Body=b"x")
    assert [c["Key"] for c in s3.list_objects_v2(Bucket="cli-marker")["Contents"]] == ["folder/", "folder/file"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="cli-marker", Key="folder", Body=b"a file where a folder is")
    assert code(exc) == ("KeyConflict", 409)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="cli-marker", Key="folder/file/deeper", Body=b"x")
    assert code(exc) == ("KeyConflict", 409)
    assert s3.get_object(Bucket="cli-marker", Key="folder/file")["Body"].read() == b"x"
    s3.delete_object(Bucket="cli-marker", Key="folder/file")
    s3.delete_object(Bucket="cli-marker", Key="folder/")
    assert s3.list_objects_v2(Bucket="cli-marker")["KeyCount"] == 0
    s3.delete_bucket(Bucket="cli-marker")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="cli-marker")
    assert code(exc) == ("404", 404)


def test_copy_and_delete_objects(s3: Any) -> None:
    s3.create_bucket(Bucket="cli-copy")
    data = os.urandom(200_000)
    s3.put_object(Bucket="cli-copy", Key="src", Body=data, Metadata={"a": "1"})
    result = s3.copy_object(Bucket="cli-copy", Key="dst/copy", CopySource="cli-copy/src")
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    copied = s3.get_object(Bucket="cli-copy", Key="dst/copy")
    assert copied["Body"].read() == data and copied["Metadata"] == {"a": "1"}
    replaced = s3.copy_object(Bucket="cli-copy", Key="src", CopySource="cli-copy/src", MetadataDirective="REPLACE",
                              Metadata={"b": "2"})
    assert replaced["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.head_object(Bucket="cli-copy", Key="src")["Metadata"] == {"b": "2"}
    answer = s3.delete_objects(Bucket="cli-copy", Delete={"Objects": [{"Key": "src"}, {"Key": "dst/copy"}]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["dst/copy", "src"]
    assert s3.list_objects_v2(Bucket="cli-copy")["KeyCount"] == 0


def test_readers_never_see_half_an_object(s3: Any) -> None:
    """GETs racing with overwrites get one whole version or the other, never a mix or a short body."""
    s3.create_bucket(Bucket="cli-atomic")
    versions = [bytes([i]) * (3 * MIB) for i in range(2)]
    digests = {hashlib.md5(v).hexdigest() for v in versions}
    s3.put_object(Bucket="cli-atomic", Key="obj", Body=versions[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            s3.put_object(Bucket="cli-atomic", Key="obj", Body=versions[i % 2])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(25):
            got = s3.get_object(Bucket="cli-atomic", Key="obj")
            body = got["Body"].read()
            assert hashlib.md5(body).hexdigest() in digests
            assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    finally:
        stop.set()
        thread.join()


def test_multipart_abort_and_too_small(s3: Any, service: Any) -> None:
    s3.create_bucket(Bucket="cli-mpu")
    upload = s3.create_multipart_upload(Bucket="cli-mpu", Key="m.bin")["UploadId"]
    first = s3.upload_part(Bucket="cli-mpu", Key="m.bin", UploadId=upload, PartNumber=1, Body=b"a" * 100)
    second = s3.upload_part(Bucket="cli-mpu", Key="m.bin", UploadId=upload, PartNumber=2, Body=b"b" * 100)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="cli-mpu", Key="m.bin", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
    assert code(exc) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket="cli-mpu", Key="m.bin", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": second["ETag"]}, {"PartNumber": 1, "ETag": first["ETag"]}]})
    assert code(exc) == ("InvalidPartOrder", 400)
    parts = s3.list_parts(Bucket="cli-mpu", Key="m.bin", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, 100, f'"{hashlib.md5(b"a" * 100).hexdigest()}"'), (2, 100, f'"{hashlib.md5(b"b" * 100).hexdigest()}"')]
    s3.abort_multipart_upload(Bucket="cli-mpu", Key="m.bin", UploadId=upload)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="cli-mpu", Key="m.bin", UploadId=upload)
    assert code(exc) == ("NoSuchUpload", 404)
    assert s3.list_objects_v2(Bucket="cli-mpu")["KeyCount"] == 0
    assert list((service.root / "local" / "s3-staging" / "uploads").iterdir()) == []
    one = s3.create_multipart_upload(Bucket="cli-mpu", Key="single.bin")["UploadId"]
    etag = s3.upload_part(Bucket="cli-mpu", Key="single.bin", UploadId=one, PartNumber=1, Body=b"tiny")["ETag"]
    s3.complete_multipart_upload(Bucket="cli-mpu", Key="single.bin", UploadId=one,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket="cli-mpu", Key="single.bin")["Body"].read() == b"tiny"
    assert s3.head_object(Bucket="cli-mpu", Key="single.bin")["ETag"] == multipart_etag(b"tiny", 5 * MIB)


def test_restart_keeps_uploads_and_drops_stale_temp_files(fresh_root: Any) -> None:
    """A multipart upload survives a restart (as on S3 until aborted); temp files of killed requests go."""
    from smspark_assets.local import process
    from smspark_assets_tests.local.conftest import RunningService

    info = process.start(fresh_root)
    s3 = RunningService(fresh_root, info.url).client("s3")
    s3.create_bucket(Bucket="cli-restart")
    upload = s3.create_multipart_upload(Bucket="cli-restart", Key="r.bin")["UploadId"]
    etag = s3.upload_part(Bucket="cli-restart", Key="r.bin", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    stale = fresh_root / "local" / "s3-staging" / "tmp" / "put-stale"
    stale.write_bytes(b"half an upload")
    process.stop(fresh_root)
    info = process.start(fresh_root)
    s3 = RunningService(fresh_root, info.url).client("s3")
    assert not stale.exists()
    s3.complete_multipart_upload(Bucket="cli-restart", Key="r.bin", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket="cli-restart", Key="r.bin")["Body"].read() == b"part"


def test_deleting_a_bucket_drops_its_unfinished_uploads(s3: Any, service: Any) -> None:
    s3.create_bucket(Bucket="cli-drop")
    upload = s3.create_multipart_upload(Bucket="cli-drop", Key="never.bin")["UploadId"]
    s3.upload_part(Bucket="cli-drop", Key="never.bin", UploadId=upload, PartNumber=1, Body=b"p" * 1000)
    staged = service.root / "local" / "s3-staging" / "uploads" / upload
    assert staged.is_dir()
    s3.delete_bucket(Bucket="cli-drop")
    assert not staged.exists()
    assert not (service.root / "s3" / "cli-drop").exists()
