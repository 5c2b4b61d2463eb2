"""The local S3 on the wire: aws-chunked bodies (both forms), ``Expect: 100-continue``, and bad input sent as
raw (signed) HTTP, which botocore would refuse to send: each gets S3's error code and leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import time
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BUCKET = "wire-bkt"


def signed_headers(service: Any, method: str, path: str, payload_hash: str,
                   headers: dict[str, str] | None = None) -> dict[str, str]:
    """SigV4 headers for a raw request, signed with the fixture's credentials (the stack may check them)."""
    credentials = service.client("s3")._request_signer._credentials  # noqa: SLF001

    class Signer(S3SigV4Auth):
        def payload(self, request: AWSRequest) -> str:
            return payload_hash

    request = AWSRequest(method=method, url=service.url + path, headers=dict(headers or {}))
    Signer(credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def raw(service: Any, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    all_headers = signed_headers(service, method, path, hashlib.sha256(body).hexdigest(), headers)
    host, port = service.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    root = ElementTree.fromstring(body)
    assert root.tag == "Error" and root.findtext("RequestId")
    return root.findtext("Code") or ""


@pytest.fixture(scope="module")
def bucket(service: Any) -> Path:
    service.client("s3").create_bucket(Bucket=BUCKET)
    return service.root / "s3" / BUCKET


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def staging_files(service: Any) -> list[Path]:
    return [p for p in (service.root / "local" / "s3-staging" / "tmp").iterdir()]


def aws_chunked(data: bytes, chunk: int, signed: bool, crc: str | None = None) -> bytes:
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        ext = f";chunk-signature={'0' * 64}" if signed else ""
        out += f"{len(piece):x}{ext}\r\n".encode() + piece + b"\r\n"
    if signed:
        return out + f"0;chunk-signature={'0' * 64}\r\n\r\n".encode()
    crc = crc or base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    return out + f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned-trailer", "chunk-signature"])
def test_aws_chunked_bodies_are_decoded(service: Any, bucket: Path, signed: bool) -> None:
    data = os.urandom(300_000)
    body = aws_chunked(data, 65536, signed)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(len(body))}
    if signed:
        payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    else:
        payload = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    key = f"chunked-{signed}"
    all_headers = signed_headers(service, "PUT", f"/{BUCKET}/{key}", payload, headers)
    host, port = service.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PUT", f"/{BUCKET}/{key}", body=body, headers=all_headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert response.getheader("ETag") == f'"{hashlib.md5(data).hexdigest()}"'
    assert (bucket / key).read_bytes() == data
    got = service.client("s3").head_object(Bucket=BUCKET, Key=key)
    assert "ContentEncoding" not in got  # aws-chunked is the framing, not the object's encoding


def test_aws_chunked_with_wrong_trailer_checksum_leaves_nothing(service: Any, bucket: Path) -> None:
    data = b"payload" * 1000
    assert zlib.crc32(data) != 0
    body = aws_chunked(data, 4096, False, crc="AAAAAA==")
    status, _, answer = raw(service, "PUT", f"/{BUCKET}/bad-trailer", body, {
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32"})
    assert (status, error_code(answer)) == (400, "BadDigest")
    assert not (bucket / "bad-trailer").exists() and staging_files(service) == []


def test_expect_100_continue(service: Any, bucket: Path) -> None:
    data = os.urandom(2_000_000)
    headers = signed_headers(service, "PUT", f"/{BUCKET}/expect", hashlib.sha256(data).hexdigest(),
                             {"Content-Length": str(len(data)), "Expect": "100-continue"})
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"PUT /{BUCKET}/expect HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(data)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")
    assert hashlib.md5((bucket / "expect").read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("name", ["..", "%2E%2E", ".", "ab", "Bad_Name", "192.168.1.1", "a..b", "-abc", "x" * 64,
                                  "xn--abc", "abc-s3alias"])
def test_invalid_bucket_names_are_refused(service: Any, bucket: Path, name: str) -> None:
    before = tree(service.root)
    for method, path in (("PUT", f"/{name}"), ("PUT", f"/{name}/local/escape.txt"), ("GET", f"/{name}/local/state.sqlite"),
                         ("GET", f"/{name}?list-type=2")):
        status, _, answer = raw(service, method, path, b"data" if "escape" in path else b"")
        assert (status, error_code(answer)) == (400, "InvalidBucketName"), (method, path)
    assert tree(service.root) == before


@pytest.mark.parametrize("key", ["../escape", "%2E%2E/escape", "a/%2E%2E/%2E%2E/escape", "a/./b", "a//b",
                                 ".hidden", "dir/.part-0.crc", "nul%00byte"])
def test_invalid_keys_are_refused(service: Any, bucket: Path, key: str) -> None:
    before = tree(service.root)
    status, _, answer = raw(service, "PUT", f"/{BUCKET}/{key}", b"data")
    assert (status, error_code(answer)) == (400, "InvalidArgument")
    status, _, answer = raw(service, "GET", f"/{BUCKET}/{key}")
    assert (status, error_code(answer)) == (400, "InvalidArgument")
    assert tree(service.root) == before


def test_key_too_long(service: Any, bucket: Path) -> None:
    status, _, answer = raw(service, "PUT", f"/{BUCKET}/{'k' * 1025}", b"x")
    assert (status, error_code(answer)) == (400, "KeyTooLongError")
    status, _, answer = raw(service, "PUT", f"/{BUCKET}/{'k' * 256}", b"x")  # one file name over 255 bytes
    assert (status, error_code(answer)) == (400, "KeyTooLongError")


def test_missing_things_and_head_errors_without_body(service: Any, bucket: Path) -> None:
    status, _, answer = raw(service, "GET", f"/{BUCKET}/no/such/key")
    assert (status, error_code(answer)) == (404, "NoSuchKey")
    assert ElementTree.fromstring(answer).findtext("Key") == "no/such/key"
    status, _, answer = raw(service, "GET", "/no-such-bucket-x/key")
    assert (status, error_code(answer)) == (404, "NoSuchBucket")
    status, _, answer = raw(service, "HEAD", f"/{BUCKET}/no/such/key")
    assert (status, answer) == (404, b"")
    status, _, answer = raw(service, "PUT", f"/{BUCKET}")
    assert (status, error_code(answer)) == (409, "BucketAlreadyOwnedByYou")
    status, _, answer = raw(service, "GET", f"/{BUCKET}/x?tagging")
    assert (status, error_code(answer)) == (501, "NotImplemented")


def test_range_past_the_end(service: Any, bucket: Path) -> None:
    raw(service, "PUT", f"/{BUCKET}/ranged", b"0123456789")
    status, headers, answer = raw(service, "GET", f"/{BUCKET}/ranged", headers={"Range": "bytes=10-20"})
    assert (status, error_code(answer)) == (416, "InvalidRange")
    status, headers, answer = raw(service, "GET", f"/{BUCKET}/ranged", headers={"Range": "bytes=8-20"})
    assert (status, headers["content-range"], answer) == (206, "bytes 8-9/10", b"89")


@pytest.mark.parametrize("body", [b"<Delete><Object><Key>a</Key></Object>", b"not xml",
                                  b"<Wrong><Object><Key>a</Key></Object></Wrong>",
                                  b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete><Object><Key>&e;'
                                  b"</Key></Object></Delete>"])
def test_malformed_xml(service: Any, bucket: Path, body: bytes) -> None:
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, _, answer = raw(service, "POST", f"/{BUCKET}?delete", body, {"Content-MD5": md5})
    assert (status, error_code(answer)) == (400, "MalformedXML")
    s3 = service.client("s3")
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu-xml")["UploadId"]
    status, _, answer = raw(service, "POST", f"/{BUCKET}/mpu-xml?uploadId={upload}", body)
    assert (status, error_code(answer)) == (400, "MalformedXML")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu-xml", UploadId=upload)


def test_bad_content_md5_keeps_the_old_object(service: Any, bucket: Path) -> None:
    raw(service, "PUT", f"/{BUCKET}/kept", b"old bytes")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    status, _, answer = raw(service, "PUT", f"/{BUCKET}/kept", b"new bytes", {"Content-MD5": wrong})
    assert (status, error_code(answer)) == (400, "BadDigest")
    assert (bucket / "kept").read_bytes() == b"old bytes"
    assert staging_files(service) == []


def test_interrupted_upload_leaves_nothing(service: Any, bucket: Path) -> None:
    headers = signed_headers(service, "PUT", f"/{BUCKET}/interrupted", "UNSIGNED-PAYLOAD",
                             {"Content-Length": str(4_000_000)})
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"PUT /{BUCKET}/interrupted HTTP/1.1\r\nHost: {host}:{port}\r\n"
        sock.sendall((head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
        sock.sendall(b"x" * 1_000_000)
        time.sleep(0.3)
        assert staging_files(service)  # the body streams into the staging folder, not the bucket
        assert not (bucket / "interrupted").exists()
    deadline = time.monotonic() + 10
    while staging_files(service) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (bucket / "interrupted").exists()
    assert staging_files(service) == []
    status, _, answer = raw(service, "GET", f"/{BUCKET}/interrupted")
    assert (status, error_code(answer)) == (404, "NoSuchKey")


def test_symlinks_out_of_the_bucket_are_not_followed(service: Any, bucket: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not for S3 clients")
    (bucket / "link").symlink_to(secret)
    try:
        status, _, answer = raw(service, "GET", f"/{BUCKET}/link")
        assert (status, error_code(answer)) == (400, "InvalidArgument")
        keys = [c["Key"] for c in service.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert "link" not in keys
    finally:
        (bucket / "link").unlink()


def test_put_without_length_is_refused(service: Any, bucket: Path) -> None:
    headers = signed_headers(service, "PUT", f"/{BUCKET}/no-length", "UNSIGNED-PAYLOAD")
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"PUT /{BUCKET}/no-length HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        sock.sendall((head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes (Connection: close)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 411") and b"<Code>MissingContentLength</Code>" in answer
    assert not (bucket / "no-length").exists()
