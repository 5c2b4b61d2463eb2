"""SigV4 verification against botocore's own signer (an independent implementation of the same spec)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from smspark_assets.local.sigv4 import AuthFailure, loopback_host, verify

pytestmark = pytest.mark.timeout(30)

KEY, SECRET = "AKIATESTKEY000000000", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3"
SECRETS = {KEY: SECRET}


def _sign(method: str, url: str, body: bytes, service: str, headers: dict[str, str] | None = None,
          secret: str = SECRET) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    auth_cls = S3SigV4Auth if service == "s3" else SigV4Auth
    auth_cls(Credentials(KEY, secret), service, "us-east-1").add_auth(request)
    return request


def _check(request: AWSRequest, body: bytes) -> str:
    prepared = request.prepare()
    path, _, query = prepared.url.split("://", 1)[1].partition("/")[2].partition("?")
    headers = {k.lower(): v for k, v in prepared.headers.items()}
    headers.setdefault("host", "127.0.0.1:4566")
    return verify(request.method, "/" + path, query, headers, hashlib.sha256(body).hexdigest(), SECRETS)


@pytest.mark.parametrize("service,method,url,body", [
    ("sagemaker", "POST", "http://127.0.0.1:4566/", json.dumps({"TrainingJobName": "a"}).encode()),
    ("sagemaker", "POST", "http://127.0.0.1:4566/endpoints/my%20ep/invocations", b"1,2,3\n"),
    ("emr-serverless", "GET", "http://127.0.0.1:4566/applications/abc/jobruns?states=RUNNING&maxResults=5", b""),
    ("s3", "GET", "http://127.0.0.1:4566/bucket/dir/a%20b%2Bc.csv?list-type=2&prefix=a%2Fb", b""),
    ("s3", "PUT", "http://127.0.0.1:4566/bucket/key", b"payload"),
])
def test_requests_signed_by_botocore_verify(service: str, method: str, url: str, body: bytes) -> None:
    headers = {"x-amz-content-sha256": hashlib.sha256(body).hexdigest()} if service == "s3" else {}
    assert _check(_sign(method, url, body, service, headers), body) == KEY


def test_wrong_secret_unknown_key_unsigned_and_tampered_are_refused() -> None:
    body = b'{"a": 1}'
    with pytest.raises(AuthFailure) as bad:
        _check(_sign("POST", "http://127.0.0.1:4566/", body, "glue", secret="wrong"), body)
    assert bad.value.code == "InvalidSignatureException" and bad.value.s3_code == "SignatureDoesNotMatch"
    request = _sign("POST", "http://127.0.0.1:4566/", body, "glue")
    with pytest.raises(AuthFailure) as tampered:
        _check(request, b'{"a": 2}')  # body changed after signing
    assert tampered.value.code == "InvalidSignatureException"
    with pytest.raises(AuthFailure) as unsigned:
        verify("POST", "/", "", {"host": "127.0.0.1"}, None, SECRETS)
    assert unsigned.value.code == "MissingAuthenticationTokenException"
    with pytest.raises(AuthFailure) as unknown:
        verify("POST", "/", "", {"host": "127.0.0.1", "x-amz-date": "20261202T000000Z", "authorization":
                                 "AWS4-HMAC-SHA256 Credential=AKIAOTHER/20261202/us-east-1/glue/aws4_request, "
                                 "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64}, None, SECRETS)
    assert unknown.value.code == "UnrecognizedClientException"


def test_old_request_is_refused_as_skewed() -> None:
    request = _sign("POST", "http://127.0.0.1:4566/", b"{}", "athena")
    prepared = request.prepare()
    headers = {k.lower(): v for k, v in prepared.headers.items()}
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=16)
    with pytest.raises(AuthFailure) as skewed:
        verify("POST", "/", "", headers, hashlib.sha256(b"{}").hexdigest(), SECRETS, now=later)
    assert skewed.value.s3_code == "RequestTimeTooSkewed"


def test_presigned_s3_url_verifies_and_expires() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:4566/bucket/key.txt", headers={})
    S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", "us-east-1", expires=60).add_auth(request)
    prepared = request.prepare()
    query = prepared.url.partition("?")[2]
    headers = {"host": "127.0.0.1:4566"}
    assert verify("GET", "/bucket/key.txt", query, headers, None, SECRETS) == KEY
    with pytest.raises(AuthFailure) as expired:
        verify("GET", "/bucket/key.txt", query, headers, None, SECRETS,
               now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5))
    assert expired.value.code == "ExpiredTokenException"


@pytest.mark.parametrize("host,ok", [("127.0.0.1:4566", True), ("localhost", True), ("[::1]:80", True),
                                     ("evil.example:4566", False), ("127.0.0.1.nip.io", False), ("", False)])
def test_only_loopback_host_headers(host: str, ok: bool) -> None:
    assert loopback_host(host) is ok
