"""The content types SageMaker's built-in algorithms name, and the aliases clients send for them.

One table for the whole project: the client side checks a channel's ``ContentType`` against an
algorithm's contract with it, and the local algorithms parse requests and channels with it.
"""

from __future__ import annotations

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"
LIBSVM = "text/libsvm"
PARQUET = "application/x-parquet"
JSON = "application/json"
JSONLINES = "application/jsonlines"

# Other spellings clients use for the same formats (the SDKs, the AWS CLI and curl users differ).
MIME_ALIASES: dict[str, str] = {
    "text/x-csv": CSV,
    "application/csv": CSV,
    "application/x-recordio": RECORDIO,
    "application/recordio-protobuf": RECORDIO,
    "text/x-libsvm": LIBSVM,
    "application/x-libsvm": LIBSVM,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/json-lines": JSONLINES,
}


def parse_content_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; label_size=1"`` -> ``("text/csv", {"label_size": "1"})`` (mime lower-cased, aliases resolved)."""
    if not content_type:
        return "", {}
    parts = [p.strip() for p in content_type.split(";")]
    mime = parts[0].lower()
    params: dict[str, str] = {}
    for p in parts[1:]:
        if "=" in p:
            key, value = p.split("=", 1)
            params[key.strip().lower()] = value.strip().strip('"')
    return MIME_ALIASES.get(mime, mime), params
