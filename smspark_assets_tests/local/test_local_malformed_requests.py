"""Malformed requests get AWS's 4xx answers, never a 500 or a dropped connection (issue 9, item 4).

Requests are built by hand (botocore would refuse to send most of them) and signed with the root's
credentials, so they reach the handlers the checks guard.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from smspark_assets.local import process
from smspark_assets_tests.stack_access import stack_client, stack_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

JSON_11 = "application/x-amz-json-1.1"
JSON_10 = "application/x-amz-json-1.0"
# SageMaker's documented limit for one InvokeEndpoint payload (6 MB).
SAGEMAKER_INVOKE_LIMIT = 6_291_456


def _signed_headers(root: Path, url: str, service: str, path: str, body: bytes,
                    headers: dict[str, str]) -> dict[str, str]:
    creds = stack_credentials(root)
    request = AWSRequest("POST", url + path, data=body, headers=headers)
    SigV4Auth(Credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"]), service,
              "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _connection(url: str, timeout: float = 30) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _post(conn: http.client.HTTPConnection, root: Path, url: str, service: str, body: bytes,
          target: str | None = None, content_type: str = JSON_11, path: str = "/") -> tuple[int, dict[str, Any]]:
    """One signed POST on ``conn``; returns the status and the JSON error (or answer) document."""
    headers = {"Content-Type": content_type}
    if target:
        headers["X-Amz-Target"] = target
    conn.request("POST", path, body, _signed_headers(root, url, service, path, body, headers))
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def _error_code(doc: dict[str, Any]) -> str:
    return str(doc.get("__type", "")).rsplit("#", 1)[-1]


# Each of these answered 500 InternalFailure (or, for MaxResults, 200) before the type check.
@pytest.mark.parametrize("operation, params", [
    ("CreateTrainingJob", {"TrainingJobName": "t", "RoleArn": "arn:aws:iam::123456789012:role/x",
                           "AlgorithmSpecification": "x"}),
    ("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [5]}),
    ("DescribeTrainingJob", {"TrainingJobName": ["a"]}),
    ("DescribeEndpoint", {"EndpointName": {"a": 1}}),
    ("DeleteModel", {"ModelName": []}),
    ("ListTrainingJobs", {"MaxResults": True}),
])
def test_wrong_types_are_400_serialization_errors(service, operation, params) -> None:
    conn = _connection(service.url)
    status, doc = _post(conn, service.root, service.url, "sagemaker", json.dumps(params).encode(),
                        f"SageMaker.{operation}")
    assert status == 400, doc
    assert _error_code(doc) == "SerializationException"


def test_non_utf8_and_non_object_bodies_are_serialization_errors(service) -> None:
    conn = _connection(service.url)
    for body in (b'{"TrainingJobName": "\xff\xfe"}', b"[1, 2]", b"{not json"):
        status, doc = _post(conn, service.root, service.url, "sagemaker", body, "SageMaker.DescribeTrainingJob")
        assert status == 400 and _error_code(doc) == "SerializationException", (body, doc)
    status, doc = _post(conn, service.root, service.url, "glue", b'{"Name": "\xc3\x28"}', "AWSGlue.GetDatabase")
    assert status == 400 and _error_code(doc) == "SerializationException", doc


def test_malformed_dynamodb_requests_are_400_and_keep_the_connection(service) -> None:
    ddb = stack_client(service.root, service.url, "dynamodb")
    ddb.create_table(TableName="malformed", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    conn = _connection(service.url)
    bad = [b"not json at all", b"\xff\xfe\x00", b"[]", b'{"TableName": 5}',
           b'{"TableName": "malformed", "Item": {"id": {"S": 5}}}',
           b'{"TableName": "malformed", "Item": []}']
    for body in bad:
        status, doc = _post(conn, service.root, service.url, "dynamodb", body, "DynamoDB_20120810.PutItem",
                            JSON_10)
        assert 400 <= status < 500 and _error_code(doc), (body, status, doc)
    # The same connection still serves a good request: it was never dropped.
    good = json.dumps({"TableName": "malformed", "Item": {"id": {"S": "a"}}}).encode()
    status, _ = _post(conn, service.root, service.url, "dynamodb", good, "DynamoDB_20120810.PutItem", JSON_10)
    assert status == 200
    assert ddb.get_item(TableName="malformed", Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}}


def test_a_bulk_writer_without_botocores_check_still_gets_the_stacks_refusal(service) -> None:
    """The DynamoDB bulk writer skips botocore's client-side check: a request it would have refused
    (a number where DynamoDB takes a string) must still be refused, by the stack, as DynamoDB would."""
    from botocore.exceptions import ClientError, ParamValidationError

    from smspark_assets.resources.aws import DynamoDBResource

    resource = DynamoDBResource(local_stack_root=str(service.root))
    request = {"scores": [{"PutRequest": {"Item": {"id": {"S": 5}}}}]}
    with pytest.raises(ParamValidationError):  # botocore's own check, before anything is sent
        resource.client("dynamodb").batch_write_item(RequestItems=request)
    with pytest.raises(ClientError) as err:
        resource.client("dynamodb", validate_parameters=False).batch_write_item(RequestItems=request)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "SerializationException"
    assert "RequestItems.scores[0].PutRequest.Item.id.S" in err.value.response["Error"]["Message"]


def test_negative_content_length_is_answered_at_once(service) -> None:
    # Already answered before this change (in authentication): kept as a regression check.
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        began = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: " + parts.netloc.encode() + b"\r\nContent-Length: -1\r\n"
                     b"X-Amz-Target: SageMaker.ListTrainingJobs\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert time.monotonic() - began < 5


def test_control_plane_body_over_16_mib_is_413_without_reading_it(service) -> None:
    # Already answered before this change: kept as a regression check.
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: " + parts.netloc.encode() + b"\r\nContent-Length: "
                     + str(16 * 1024 * 1024 + 1).encode() + b"\r\nX-Amz-Target: AWSGlue.GetDatabases\r\n"
                     b"Content-Type: application/x-amz-json-1.1\r\n\r\n{")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_invoke_accepts_up_to_sagemakers_6_mb(service) -> None:
    runtime = stack_client(service.root, service.url, "sagemaker-runtime", retries={"max_attempts": 1})
    # 5.5 MB (over the old 5 MiB cap, under AWS's 6 MB) passes the size check: the endpoint is what is missing.
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.invoke_endpoint(EndpointName="absent", ContentType="text/csv", Body=b"1" * 5_500_000)
    assert "not found" in str(raised.value)
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.invoke_endpoint(EndpointName="absent", ContentType="text/csv",
                                Body=b"1" * (SAGEMAKER_INVOKE_LIMIT + 1))
    assert str(SAGEMAKER_INVOKE_LIMIT) in str(raised.value)


@pytest.mark.timeout(90)
def test_a_stalled_client_is_disconnected(fresh_root: Path) -> None:
    (fresh_root / "local").mkdir(parents=True, exist_ok=True)
    (fresh_root / "local" / "config.json").write_text(json.dumps({"request_read_timeout_seconds": 2}))
    info = process.start(fresh_root)
    parts = urlsplit(info.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        # Half a request: headers promise 100 bytes, 10 arrive, then the client stalls.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: " + parts.netloc.encode() + b"\r\nContent-Length: 100\r\n"
                     b"X-Amz-Target: SageMaker.ListTrainingJobs\r\n\r\n0123456789")
        began = time.monotonic()
        try:
            rest = sock.recv(65536)
            while rest and not rest.endswith(b"}"):  # an error answer, if any, then the close
                rest = sock.recv(65536)
            closed = sock.recv(65536) == b"" if rest else True
        except ConnectionResetError:
            closed = True
        waited = time.monotonic() - began
    assert closed and waited < 15, waited
    # The server still serves other clients.
    sm = stack_client(fresh_root, info.url, "sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
