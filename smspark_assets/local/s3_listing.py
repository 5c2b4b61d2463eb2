"""ListObjectsV2 and ListObjects of the local S3: pages of the store's key-ordered walk as S3's XML.

``MaxKeys`` (at most 1,000) counts contents and common prefixes together, as S3 does. The continuation
token is opaque to clients: the last key returned and, when the page ended on a common prefix, that prefix,
so the next page resumes after every key under it. With ``EncodingType=url`` (botocore always asks for it)
keys and prefixes are percent-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json

from smspark_assets.local.s3_errors import invalid_argument
from smspark_assets.local.s3_store import Listed, ObjectStore
from smspark_assets.local.s3_xml import document, element, encode_key, iso, owner
from smspark_assets.local.wire import Request, Response

XML = "application/xml"
MAX_KEYS = 1000


def list_objects(store: ObjectStore, request: Request, bucket: str, v2: bool) -> Response:
    """ListObjectsV2 (``v2``) or ListObjects: one page of keys and common prefixes in S3's order."""
    bucket_dir = store.bucket_dir(bucket)
    prefix = request.param("prefix") or ""
    delimiter = request.param("delimiter") or None
    url = (request.param("encoding-type") or "").lower() == "url"
    if request.param("encoding-type") not in (None, "url"):
        raise invalid_argument("Invalid Encoding Method specified in Request", "encoding-type",
                               request.param("encoding-type"))
    max_keys = int_param(request, "max-keys", MAX_KEYS)
    page_size = min(max_keys, MAX_KEYS)
    token = request.param("continuation-token") if v2 else None
    after, skip = "", ""
    if token is not None:
        after, skip = decode_token(token)
    elif v2:
        after = request.param("start-after") or ""
    else:
        after = request.param("marker") or ""
        if delimiter and after.endswith(delimiter) and after.startswith(prefix):
            skip = after  # a v1 NextMarker that is a common prefix: continue after all of it
    items: list[Listed] = []
    truncated = False
    if page_size > 0:
        for item in store.walk(bucket, bucket_dir, prefix, after, delimiter, skip):
            if len(items) == page_size:
                truncated = True
                break
            items.append(item)
    store.fill(bucket, items)
    contents = []
    prefixes = []
    for item in items:
        if item.meta is None:
            prefixes.append(f"<CommonPrefixes><Prefix>{encode_key(item.key, url)}"
                            "</Prefix></CommonPrefixes>")
            continue
        meta = item.meta
        checksum = element("ChecksumAlgorithm", meta.checksum[0].upper()) + element(
            "ChecksumType", "FULL_OBJECT") if meta.checksum else ""
        contents.append(
            f"<Contents><Key>{encode_key(item.key, url)}</Key>{element('LastModified', iso(meta.mtime_ns / 1e9))}"
            f"{element('ETag', chr(34) + meta.etag + chr(34))}{checksum}{element('Size', meta.size)}"
            f"{owner() if not v2 or request.param('fetch-owner') == 'true' else ''}"
            "<StorageClass>STANDARD</StorageClass></Contents>")
    head = [element("Name", bucket), f"<Prefix>{encode_key(prefix, url)}</Prefix>"]
    if delimiter:
        head.append(f"<Delimiter>{encode_key(delimiter, url)}</Delimiter>")
    head.append(element("MaxKeys", max_keys))
    if url:
        head.append(element("EncodingType", "url"))
    if v2:
        head.append(element("KeyCount", len(items)))
        if token is not None:
            head.append(element("ContinuationToken", token))
        if request.param("start-after") is not None:
            head.append(f"<StartAfter>{encode_key(request.param('start-after') or '', url)}</StartAfter>")
        if truncated:
            last = items[-1]
            head.append(element("NextContinuationToken",
                                encode_token(last.key, last.key if last.meta is None else "")))
    else:
        head.append(f"<Marker>{encode_key(request.param('marker') or '', url)}</Marker>")
        if truncated and delimiter:
            head.append(f"<NextMarker>{encode_key(items[-1].key, url)}</NextMarker>")
    head.append(element("IsTruncated", "true" if truncated else "false"))
    body = document("ListBucketResult", "".join(head) + "".join(contents) + "".join(prefixes))
    return Response(body=body, content_type=XML, action="ListObjectsV2" if v2 else "ListObjects")


def int_param(request: Request, name: str, default: int) -> int:
    """A non-negative integer query parameter (``max-keys``, ``max-parts``...), else InvalidArgument."""
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise invalid_argument(f"Provided {name} not an integer or within integer range", name, raw)
    return value


def encode_token(after: str, skip: str) -> str:
    """The continuation token: resume after ``after``, leaving out keys under ``skip`` (a common prefix)."""
    return base64.urlsafe_b64encode(json.dumps([after, skip]).encode()).decode()


def decode_token(token: str) -> tuple[str, str]:
    """``(after, skip)`` of a token this API issued; anything else is S3's InvalidArgument."""
    try:
        after, skip = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(after, str) and isinstance(skip, str):
            return after, skip
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError):
        pass
    raise invalid_argument("The continuation token provided is incorrect", "continuation-token", token)
