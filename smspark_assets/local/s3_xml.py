"""S3's XML documents: answers built as text (fast, no DOM), request bodies parsed defensively.

Request documents (DeleteObjects, CompleteMultipartUpload) are small: they are capped in size, refused
when they declare a DTD or entities (no entity expansion, no external fetch), and read with the
namespace stripped, as S3 accepts them with or without ``xmlns``.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from smspark_assets.local.s3_errors import malformed_xml

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
MAX_XML_BYTES = 2 * 1024 * 1024


def iso(ts: float) -> str:
    """``2026-12-02T18:06:49.000Z`` (S3's timestamps in XML)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def http_date(ts: float) -> str:
    """``Wed, 02 Dec 2026 18:06:49 GMT`` (Last-Modified)."""
    return formatdate(ts, usegmt=True)


def text(value: object) -> str:
    return escape(str(value))


def encode_key(value: str, url: bool) -> str:
    """A key for a listing: percent-encoded with ``EncodingType=url`` (botocore asks for it), else escaped."""
    return quote(value, safe="/") if url else escape(value)


def document(root: str, body: str) -> bytes:
    return f'{HEAD}<{root} xmlns="{NS}">{body}</{root}>'.encode()


def element(name: str, value: object) -> str:
    return f"<{name}>{text(value)}</{name}>"


def owner() -> str:
    return f"<Owner><ID>{OWNER_ID}</ID><DisplayName>local</DisplayName></Owner>"


def parse(body: bytes) -> ElementTree.Element:
    """The root element with namespaces removed; ``MalformedXML`` for anything else."""
    if len(body) > MAX_XML_BYTES:
        raise malformed_xml(f"the document is over {MAX_XML_BYTES} bytes")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed_xml("DTDs and entities are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise malformed_xml(str(exc)) from None
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root


def child_text(node: ElementTree.Element, name: str) -> str | None:
    found = node.find(name)
    return None if found is None else (found.text or "")
