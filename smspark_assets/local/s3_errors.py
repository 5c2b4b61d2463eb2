"""S3's error answers: ``<Error><Code>..</Code><Message>..</Message>..<RequestId>..</RequestId></Error>``.

S3 speaks XML, not the JSON of :class:`~smspark_assets.local.api_errors.ApiError`, so the S3 API raises
:class:`S3Error` and turns it into a :class:`~smspark_assets.local.wire.Response` itself. HEAD answers
carry no body (botocore reads the code from the status then).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from smspark_assets.local.wire import Response


class S3Error(Exception):
    """An S3 error: ``code`` and HTTP ``status`` as AWS sends them, plus extra elements (Key, BucketName...)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = {k: v for k, v in fields.items() if v is not None}


def error_response(exc: S3Error, request_id: str, head: bool = False) -> Response:
    """The XML error document (empty for HEAD, as S3 answers HEAD errors)."""
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    if head:
        return Response(status=exc.status, body=b"", headers=headers, content_type="application/xml",
                        action=exc.code)
    parts = [f"<Code>{escape(exc.code)}</Code>", f"<Message>{escape(exc.message)}</Message>"]
    parts += [f"<{name}>{escape(str(value))}</{name}>" for name, value in exc.fields.items()]
    parts.append(f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId>")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()
    return Response(status=exc.status, body=body, headers=headers, content_type="application/xml")


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
        404,
        UploadId=upload_id,
    )


def malformed_xml(detail: str = "") -> S3Error:
    message = "The XML you provided was not well-formed or did not validate against our published schema"
    return S3Error("MalformedXML", message + (f" ({detail})" if detail else ""), 400)


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> S3Error:
    return S3Error("InvalidArgument", message, 400, ArgumentName=name, ArgumentValue=value)


def key_conflict(key: str, detail: str) -> S3Error:
    """A key that cannot be a file because the tree has a folder there (or the reverse).

    AWS has no such error (S3 keys are flat); the local store keeps objects as plain files, so ``a`` and
    ``a/b`` cannot both exist. 409 Conflict says that the request is valid but clashes with stored state.
    """
    return S3Error("KeyConflict", f"The key {key!r} conflicts with the stored objects: {detail}. "
                   "The local store keeps objects as files, so a key cannot also be a prefix of other "
                   "keys followed by '/'.", 409, Key=key)
