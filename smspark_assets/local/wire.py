"""What every API of the local stack receives and answers, independent of the HTTP server.

The server parses one HTTP request into a :class:`Request` (the body is *not* read yet: S3 streams
large uploads straight to disk), finds the service from the SigV4 credential scope (or the
``X-Amz-Target`` header), and hands it to that service's API, which answers a :class:`Response`.
A response body is either bytes or a slice of a file (sent with ``sendfile``: S3 GETs of large objects
never pass through Python buffers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs

from smspark_assets.local.api_errors import ApiError

# Credential=AKID/20261202/us-east-1/s3/aws4_request, in the Authorization header or a presigned query.
_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Request:
    """One HTTP request, with the caller's credential scope (empty strings when unsigned)."""

    method: str
    raw_path: str  # percent-encoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    rfile: BinaryIO
    content_length: int
    service: str = ""  # SigV4 signing name: s3, sagemaker, dynamodb, emr-serverless, glue, athena, logs
    access_key: str = ""
    region: str = ""
    _body: bytes | None = field(default=None, repr=False)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def body(self, limit: int | None = None) -> bytes:
        """The whole body, read once. Larger than ``limit`` -> ``ApiError`` (413) after draining it."""
        if self._body is None:
            if limit is not None and self.content_length > limit:
                raise ApiError("RequestEntityTooLarge",
                               f"request body of {self.content_length} bytes is over the limit of {limit} bytes",
                               413)
            self._body = self.rfile.read(self.content_length) if self.content_length else b""
            if len(self._body) != self.content_length:
                raise ApiError("IncompleteBody", "the request body ended before its Content-Length", 400)
        return self._body


@dataclass
class FileSlice:
    """``length`` bytes of ``path`` from ``offset``: sent with ``sendfile``."""

    path: Path
    offset: int
    length: int


@dataclass
class Response:
    status: int = 200
    body: bytes | FileSlice = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # The API action this request was (PutObject, StartJobRun, ...): recorded in the action log.
    action: str = ""
    # HEAD answers carry the object's Content-Length with no body.
    head_only: bool = False


class RestApi(Protocol):
    """A service that routes on method and path itself (S3, EMR Serverless)."""

    def handle(self, request: Request) -> Response: ...


class JsonTargetApi(Protocol):
    """A JSON 1.1 service routed by ``X-Amz-Target: <Prefix>.<Operation>`` (SageMaker, Glue, Athena, Logs)."""

    def dispatch(self, operation: str, params: dict) -> dict: ...


def parse_query(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True)


def credential_scope(headers: dict[str, str], query: dict[str, list[str]]) -> tuple[str, str, str]:
    """``(access_key, region, service)`` of a SigV4-signed request (header or presigned URL), else empties."""
    auth = headers.get("authorization", "")
    match = _SCOPE_RE.search(auth)
    if match is None and "X-Amz-Credential" in query:
        match = _SCOPE_RE.search("Credential=" + query["X-Amz-Credential"][0])
    if match is None:
        return "", "", ""
    return match.group(1), match.group(3), match.group(4)
