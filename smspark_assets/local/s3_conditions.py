"""S3's conditional and range headers: If-Match / If-None-Match / If-(Un)Modified-Since, the
``x-amz-copy-source-if-*`` family, and ``Range: bytes=...``, evaluated in S3's order."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from smspark_assets.local.s3_errors import S3Error
from smspark_assets.local.s3_meta import ObjectMeta
from smspark_assets.local.wire import Request

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def http_time(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def etag_matches(header: str, etag: str) -> bool:
    wanted = [item.strip().strip('"') for item in header.split(",")]
    return "*" in wanted or etag in wanted


def preconditions(request: Request, etag: str, modified: int) -> int:
    """200, 304 (not modified) or a 412 raised, as S3 evaluates If-Match/-None-Match/-(Un)Modified-Since."""
    if_match, if_none_match = request.header("if-match"), request.header("if-none-match")
    if if_match and not etag_matches(if_match, etag):
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="If-Match")
    since = http_time(request.header("if-unmodified-since"))
    if not if_match and since is not None and modified > since:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="If-Unmodified-Since")
    if if_none_match and etag_matches(if_none_match, etag):
        return 304
    since = http_time(request.header("if-modified-since"))
    if not if_none_match and since is not None and modified <= since:
        return 304
    return 200


def copy_preconditions(request: Request, src: ObjectMeta) -> None:
    modified = src.mtime_ns // 1_000_000_000
    if_match = request.header("x-amz-copy-source-if-match")
    if if_match and not etag_matches(if_match, src.etag):
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="x-amz-copy-source-If-Match")
    if_none_match = request.header("x-amz-copy-source-if-none-match")
    if if_none_match and etag_matches(if_none_match, src.etag):
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="x-amz-copy-source-If-None-Match")
    since = http_time(request.header("x-amz-copy-source-if-unmodified-since"))
    if since is not None and modified > since:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="x-amz-copy-source-If-Unmodified-Since")
    since = http_time(request.header("x-amz-copy-source-if-modified-since"))
    if since is not None and modified <= since:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412,
                      Condition="x-amz-copy-source-If-Modified-Since")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(offset, length)`` of a single ``bytes=`` range; ``None`` for no (or an unparseable) range, which
    S3 answers with the whole object; ``InvalidRange`` (416) when it starts past the end."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise S3Error("InvalidRange", "The requested range is not satisfiable", 416, RangeRequested=header,
                          ActualObjectSize=size)
        n = min(n, size)
        return size - n, n
    start = int(first)
    end = int(last) if last else max(start, size - 1)
    if end < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", "The requested range is not satisfiable", 416, RangeRequested=header,
                      ActualObjectSize=size)
    end = min(end, size - 1)
    return start, end - start + 1
