"""SigV4 verification: every request to the stack must be signed with the state root's credentials.

The checks are AWS's: the credential scope names a known access key, the request time is within 15
minutes, and the signature over the canonical request (method, path, query, signed headers, payload hash)
matches. The canonical form follows botocore's signer: S3 paths are signed as sent, other services'
paths once more percent-encoded; the payload hash is ``x-amz-content-sha256`` when sent (S3), else the
SHA-256 of the body. Presigned URLs (``X-Amz-Signature`` in the query) are accepted the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-f]{64})\s*$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AuthFailure(Exception):
    """Why a request was refused: AWS's error code (JSON services), S3's code, HTTP status, message."""

    code: str
    s3_code: str
    message: str
    status: int = 403


def _missing(message: str) -> AuthFailure:
    return AuthFailure("MissingAuthenticationTokenException", "AccessDenied", message)


def _bad_signature(message: str) -> AuthFailure:
    return AuthFailure("InvalidSignatureException", "SignatureDoesNotMatch", message)


def _unknown_key(key: str) -> AuthFailure:
    return AuthFailure("UnrecognizedClientException", "InvalidAccessKeyId",
                       f"The security token included in the request is invalid: access key {key!r} is not this "
                       "stack's (see `smspark local env`).")


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_query(raw_query: str, drop: str | None = None) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        key, _, value = item.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        if key == drop:
            continue
        pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_path(raw_path: str, service: str) -> str:
    path = raw_path or "/"
    if service == "s3":
        return path
    # botocore normalizes the already-encoded path and encodes it once more for every service but S3.
    return quote(path, safe="/~")


def verify(method: str, raw_path: str, raw_query: str, headers: dict[str, str], body_sha256: str | None,
           secrets: dict[str, str], now: dt.datetime | None = None) -> str:
    """The access key of a correctly signed request; :class:`AuthFailure` otherwise.

    ``headers`` have lower-case names. ``body_sha256`` is the hex digest of the body, used when the
    request carries no ``x-amz-content-sha256``; ``secrets`` maps access keys to secret keys.
    """
    auth = headers.get("authorization", "")
    presigned = "X-Amz-Signature=" in raw_query
    if auth:
        match = _AUTH_RE.match(auth.strip())
        if match is None:
            if auth.startswith("AWS "):
                raise _bad_signature("Signature version 2 is not accepted; sign requests with SigV4.")
            raise _missing("The Authorization header is not a SigV4 (AWS4-HMAC-SHA256) header.")
        credential, signed, signature = match.group("cred"), match.group("signed"), match.group("sig")
        amz_date = headers.get("x-amz-date", "")
    elif presigned:
        params = dict(p.partition("=")[::2] for p in raw_query.split("&"))
        if unquote(params.get("X-Amz-Algorithm", "")) != ALGORITHM:
            raise _missing("Presigned URLs must use X-Amz-Algorithm=AWS4-HMAC-SHA256.")
        credential = unquote(params.get("X-Amz-Credential", ""))
        signed = unquote(params.get("X-Amz-SignedHeaders", ""))
        signature = unquote(params.get("X-Amz-Signature", ""))
        amz_date = unquote(params.get("X-Amz-Date", ""))
        expires = params.get("X-Amz-Expires", "")
        if not expires.isdigit():
            raise _missing("Presigned URL without a valid X-Amz-Expires.")
    else:
        raise _missing("Missing Authentication Token: every request to the stack must be signed "
                       "(SigV4) with the credentials `smspark local env` prints.")
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise _missing(f"Malformed credential scope {credential!r}.")
    access_key, date, region, service = scope[:4]
    secret = secrets.get(access_key)
    if secret is None:
        raise _unknown_key(access_key)
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _missing("The request has no valid X-Amz-Date.") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if presigned and not auth:
        if now > when + dt.timedelta(seconds=int(expires)):
            raise AuthFailure("ExpiredTokenException", "AccessDenied", "Request has expired.")
    elif abs(now - when) > MAX_SKEW:
        raise AuthFailure("InvalidSignatureException", "RequestTimeTooSkewed",
                          f"Signature expired: {amz_date} is more than 15 minutes from the stack's time.")
    if not amz_date.startswith(date):
        raise _bad_signature("The credential scope date does not match X-Amz-Date.")
    names = signed.split(";")
    if "host" not in names:
        raise _bad_signature("The Host header must be signed.")
    canonical_headers = "".join(f"{n}:{_SPACES.sub(' ', headers.get(n, '').strip())}\n" for n in names)
    payload = headers.get("x-amz-content-sha256")
    if payload is None:
        payload = "UNSIGNED-PAYLOAD" if presigned and not auth else (body_sha256 or hashlib.sha256(b"").hexdigest())
    canonical = "\n".join([method.upper(), _canonical_path(raw_path, service),
                           _canonical_query(raw_query, drop="X-Amz-Signature" if presigned and not auth else None),
                           canonical_headers, signed, payload])
    to_sign = "\n".join([ALGORITHM, amz_date, "/".join(scope[1:]),
                         hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise _bad_signature("The request signature we calculated does not match the signature you provided. "
                             "Check your AWS Secret Access Key and signing method.")
    return access_key


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def loopback_host(host_header: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback (DNS-rebinding pages send their own name)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host.split("]", 1)[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in LOOPBACK_HOSTS
