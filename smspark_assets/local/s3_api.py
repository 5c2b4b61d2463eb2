"""The S3 API of the local stack: REST/XML, path-style ``http://127.0.0.1:<port>/<bucket>/<key>``.

Objects are the plain files ``<s3_root>/<bucket>/<key>`` (:mod:`.s3_store`), their ETags and headers are
recorded in ``<local_dir>/s3-meta.sqlite`` (:mod:`.s3_meta`), uploads stream through
``<local_dir>/s3-staging`` (:mod:`.s3_body`, :mod:`.s3_multipart`); listings are built in
:mod:`.s3_listing`, conditional and range headers evaluated in :mod:`.s3_conditions`. Names follow
:mod:`.s3_names` (keys with a segment starting with ``.`` are reserved for the file tree and hidden from
listings). This module routes requests and shapes the object answers.

Served: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, PutObject, GetObject
(Range, conditional headers, ``response-*`` overrides), HeadObject, DeleteObject, DeleteObjects,
CopyObject, ListObjectsV2, ListObjects, CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads. Other subresources
(``?acl``, ``?tagging``, ...) answer 501 ``NotImplemented``. Errors are S3's XML documents.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from smspark_assets.local.s3_body import UploadBody
from smspark_assets.local.s3_conditions import RANGE_RE, copy_preconditions, parse_range, preconditions
from smspark_assets.local.s3_errors import S3Error, error_response, invalid_argument, malformed_xml
from smspark_assets.local.s3_listing import int_param, list_objects
from smspark_assets.local.s3_meta import DEFAULT_CONTENT_TYPE, MetaStore, ObjectMeta, Upload
from smspark_assets.local.s3_multipart import MultipartUploads
from smspark_assets.local.s3_names import check_bucket, key_segments
from smspark_assets.local.s3_store import ObjectStore
from smspark_assets.local.s3_xml import OWNER_ID, child_text, document, element, http_date, iso, owner, parse, text
from smspark_assets.local.wire import FileSlice, Request, Response

log = logging.getLogger("smspark.local.s3")

XML = "application/xml"
# Objects up to this size are answered from memory (one write); larger ones with sendfile.
SMALL_OBJECT_BYTES = 64 * 1024
MAX_METADATA_BYTES = 2048
# Object headers S3 stores and returns as they were sent.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type", "response-content-language": "Content-Language",
    "response-expires": "Expires", "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}
# Subresources of S3 that this API does not serve: a clear 501 rather than a wrong answer.
UNSUPPORTED = {
    "acl", "tagging", "policy", "cors", "lifecycle", "versioning", "website", "logging", "notification",
    "replication", "encryption", "ownershipControls", "publicAccessBlock", "object-lock", "accelerate",
    "requestPayment", "analytics", "inventory", "metrics", "intelligent-tiering", "retention", "legal-hold",
    "torrent", "attributes", "restore", "select", "versions", "policyStatus", "versionId", "renameObject",
}


@dataclass
class OpenFileSlice(FileSlice):
    """A :class:`FileSlice` of a file the API already opened: the bytes sent are those of the inode whose
    size and ETag went into the headers, even if the key is overwritten meanwhile."""

    file: BinaryIO | None = None


class S3Api:
    """Routes S3 requests (signing name ``s3``) to the store; built by :func:`.services.load_apis`."""

    def __init__(self, service: Any) -> None:
        layout = service.layout
        self.url = service.url
        self.meta = MetaStore(layout.local_dir / "s3-meta.sqlite")
        self.store = ObjectStore(layout.s3_root, layout.local_dir / "s3-staging", self.meta)
        self.uploads = MultipartUploads(self.store, self.meta)

    def start(self) -> None:
        """Remove what interrupted uploads left in the staging folder."""
        removed = self.store.clean_staging()
        if removed:
            log.info("removed %d temporary upload file(s) of interrupted requests", removed)
        self.uploads.recover()

    def shutdown(self) -> None:
        self.meta.close()

    # -- entry point ------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex[:16].upper()
        try:
            response = self._route(request)
        except S3Error as exc:
            response = error_response(exc, request_id, head=request.method == "HEAD")
            # A refused request is still the action it attempted (IAM authorizes before the object is looked up).
            response.action = attempted_action(request)
        except Exception as exc:  # noqa: BLE001 - an internal bug still answers S3's XML, not JSON
            log.exception("S3 %s %s failed", request.method, request.raw_path)
            response = error_response(S3Error("InternalError", f"{type(exc).__name__}: {exc}", 500), request_id,
                                      head=request.method == "HEAD")
        chunked = "chunked" in request.header("transfer-encoding").lower()
        if getattr(request, "partial_body", False) or (chunked and not getattr(request, "consumed", False)):
            # The body was read halfway: the connection cannot be reused (the server must not drain it).
            request.consumed = True  # type: ignore[attr-defined]
            response.headers["Connection"] = "close"
        response.headers.setdefault("x-amz-request-id", request_id)
        response.headers.setdefault("x-amz-id-2", request_id)
        return response

    def _route(self, request: Request) -> Response:  # noqa: C901 - one branch per S3 action
        raw = request.raw_path
        if not raw.startswith("/"):
            raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400)
        bucket_raw, _, key_raw = raw[1:].partition("/")
        try:
            bucket = unquote(bucket_raw, errors="strict")
            key = unquote(key_raw, errors="strict")
        except UnicodeDecodeError:
            raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400) from None
        unsupported = UNSUPPORTED.intersection(request.query)
        if unsupported:
            raise S3Error("NotImplemented", f"The local S3 does not implement the {sorted(unsupported)[0]!r} "
                          "subresource.", 501)
        method, query = request.method, request.query
        if not bucket:
            if method == "GET":
                return self.list_buckets()
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
        check_bucket(bucket)
        if not key:
            if method == "PUT":
                return self.create_bucket(request, bucket)
            if method == "HEAD":
                self.store.bucket_dir(bucket)
                return Response(headers={"x-amz-bucket-region": "us-east-1"}, content_type=XML,
                                action="HeadBucket")
            if method == "DELETE":
                pending = list(self.meta.uploads(bucket)) if (self.store.root / bucket).is_dir() else []
                self.store.delete_bucket(bucket)
                self.uploads.discard(pending)  # S3 drops a deleted bucket's unfinished uploads too
                return Response(status=204, action="DeleteBucket")
            if method == "GET":
                if "location" in query:
                    self.store.bucket_dir(bucket)
                    return Response(body=document("LocationConstraint", ""), content_type=XML,
                                    action="GetBucketLocation")
                if "uploads" in query:
                    return self.list_uploads(request, bucket)
                return list_objects(self.store, request, bucket, v2=request.param("list-type") == "2")
            if method == "POST" and "delete" in query:
                return self.delete_objects(request, bucket)
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
        bucket_dir = self.store.bucket_dir(bucket)
        key_segments(key)
        if method == "PUT":
            if "uploadId" in query:
                return self.upload_part(request, bucket, bucket_dir, key)
            if request.header("x-amz-copy-source"):
                return self.copy_object(request, bucket, bucket_dir, key)
            return self.put_object(request, bucket, bucket_dir, key)
        if method in ("GET", "HEAD"):
            if "uploadId" in query and method == "GET":
                return self.list_parts(request, bucket, key)
            return self.get_object(request, bucket, bucket_dir, key, head=method == "HEAD")
        if method == "DELETE":
            if "uploadId" in query:
                self.uploads.abort(self.uploads.get(bucket, key, request.param("uploadId") or ""))
                return Response(status=204, action="AbortMultipartUpload")
            self.store.delete(bucket, bucket_dir, key)
            return Response(status=204, action="DeleteObject")
        if method == "POST":
            if "uploads" in query:
                return self.create_upload(request, bucket, bucket_dir, key)
            if "uploadId" in query:
                return self.complete_upload(request, bucket, bucket_dir, key)
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)

    # -- buckets ----------------------------------------------------------------------------------------------

    def list_buckets(self) -> Response:
        items = "".join(f"<Bucket>{element('Name', name)}{element('CreationDate', iso(created))}</Bucket>"
                        for name, created in self.store.list_buckets())
        body = document("ListAllMyBucketsResult", f"{owner()}<Buckets>{items}</Buckets>")
        return Response(body=body, content_type=XML, action="ListBuckets")

    def create_bucket(self, request: Request, bucket: str) -> Response:
        body = _small_body(request)
        if body.strip():
            root = parse(body)
            if root.tag != "CreateBucketConfiguration":
                raise malformed_xml("expected CreateBucketConfiguration")
        self.store.create_bucket(bucket)
        return Response(headers={"Location": f"/{bucket}"}, content_type=XML, action="CreateBucket")

    # -- objects ----------------------------------------------------------------------------------------------

    def put_object(self, request: Request, bucket: str, bucket_dir: Any, key: str) -> Response:
        self.store.check_writable(bucket_dir, key)  # refuse a conflicting key before reading the body
        metadata = _user_metadata(request)
        body = UploadBody(request, require_length=True)
        if key.endswith("/"):
            data = body.read_all(1)
            digest = body.finish()
            if data:
                raise invalid_argument(f"The key {key!r} ends with '/': the local store keeps such keys as "
                                       "folders, which hold no bytes (an empty body is a folder marker).", "key", key)
            meta = self.store.put_marker(bucket, bucket_dir, key)
            return Response(headers=_etag_headers(meta.etag, digest.checksum), content_type=XML, action="PutObject")
        fd, tmp = self.store.temp_file()
        try:
            try:
                body.copy_to(fd)
            finally:
                os.close(fd)
            digest = body.finish()
            meta = ObjectMeta(digest.size, 0, digest.md5_hex, request.header("content-type") or DEFAULT_CONTENT_TYPE,
                              _stored_headers(request), metadata, digest.checksum)
            self.store.commit(bucket, bucket_dir, key, tmp, meta, if_none_match=request.header("if-none-match") == "*")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return Response(headers=_etag_headers(meta.etag, meta.checksum), content_type=XML, action="PutObject")

    def get_object(self, request: Request, bucket: str, bucket_dir: Any, key: str, head: bool) -> Response:
        action = "HeadObject" if head else "GetObject"
        fh, meta = self.store.open(bucket, bucket_dir, key)
        try:
            return self._object_response(request, key, fh, meta, head, action)
        except BaseException:
            if fh is not None:
                fh.close()
            raise

    def _object_response(self, request: Request, key: str, fh: BinaryIO | None, meta: ObjectMeta, head: bool,
                         action: str) -> Response:
        """GET/HEAD answer: conditions, range, stored headers, checksum; the open file is sent or closed."""
        modified = meta.mtime_ns // 1_000_000_000
        headers = {"ETag": f'"{meta.etag}"', "Last-Modified": http_date(modified), "Accept-Ranges": "bytes"}
        status = preconditions(request, meta.etag, modified)
        if status == 304:
            if fh is not None:
                fh.close()
            return Response(status=304, headers=headers, head_only=True, action=action)
        part_number = request.param("partNumber")
        if part_number is not None:
            if part_number != "1" or "-" in meta.etag:
                raise S3Error("NotImplemented", "The local S3 serves partNumber=1 of single-part objects only; "
                              "use a Range instead.", 501)
        offset, length = 0, meta.size
        ranged = parse_range(request.header("range"), meta.size)
        if ranged is not None:
            offset, length = ranged
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{meta.size}"
            status = 206
        headers.update({name.title(): value for name, value in meta.headers.items()})
        headers.update({f"x-amz-meta-{name}": value for name, value in meta.metadata.items()})
        if meta.checksum and ranged is None and request.header("x-amz-checksum-mode").upper() == "ENABLED":
            headers[f"x-amz-checksum-{meta.checksum[0]}"] = meta.checksum[1]
            headers["x-amz-checksum-type"] = "FULL_OBJECT"
        content_type = meta.content_type
        for param, header in RESPONSE_OVERRIDES.items():
            value = request.param(param)
            if value is not None:
                if header == "Content-Type":
                    content_type = value
                else:
                    headers[header] = value
        if head:
            if fh is not None:
                fh.close()
            headers["Content-Length"] = str(length)
            return Response(status=status, headers=headers, content_type=content_type, head_only=True,
                            action=action)
        if fh is None or length == 0:
            body: bytes | FileSlice = b""
            if fh is not None:
                fh.close()
        elif length <= SMALL_OBJECT_BYTES:
            with fh:
                body = os.pread(fh.fileno(), length, offset)
        else:
            body = OpenFileSlice(path=_fh_path(fh), offset=offset, length=length, file=fh)
        return Response(status=status, body=body, headers=headers, content_type=content_type, action=action)

    def copy_object(self, request: Request, bucket: str, bucket_dir: Any, key: str) -> Response:
        src_bucket, src_key = _copy_source(request.header("x-amz-copy-source"))
        src_dir = self.store.bucket_dir(src_bucket)
        self.store.check_writable(bucket_dir, key)
        _small_body(request)
        directive = request.header("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
        if (src_bucket, src_key) == (bucket, key) and directive == "COPY":
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object "
                          "to itself without changing the object's metadata, storage class, website redirect "
                          "location or encryption attributes.", 400)
        fh, src = self.store.open(src_bucket, src_dir, src_key)
        try:
            copy_preconditions(request, src)
            if directive == "COPY":
                meta = ObjectMeta(src.size, 0, src.etag, src.content_type, dict(src.headers), dict(src.metadata),
                                  src.checksum)
            else:
                meta = ObjectMeta(src.size, 0, src.etag, request.header("content-type") or DEFAULT_CONTENT_TYPE,
                                  _stored_headers(request), _user_metadata(request), None)
            if key.endswith("/") or fh is None:
                if fh is None and key.endswith("/"):
                    meta = self.store.put_marker(bucket, bucket_dir, key)
                    return self._copy_result(meta, "CopyObject", "CopyObjectResult")
                if key.endswith("/"):
                    raise invalid_argument("Only folder markers can be copied to keys ending with '/'.", "key", key)
            fd, tmp = self.store.temp_file()
            try:
                try:
                    if fh is not None:
                        md5 = self.store.copy_into(fh, 0, src.size, fd, want_md5="-" in src.etag)
                        if md5 is not None:
                            meta.etag, meta.checksum = md5, None
                finally:
                    os.close(fd)
                meta = self.store.commit(bucket, bucket_dir, key, tmp, meta)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        finally:
            if fh is not None:
                fh.close()
        return self._copy_result(meta, "CopyObject", "CopyObjectResult")

    def _copy_result(self, meta: ObjectMeta, action: str, root: str) -> Response:
        checksum = element(f"Checksum{meta.checksum[0].upper()}", meta.checksum[1]) if meta.checksum else ""
        body = document(root, element("ETag", f'"{meta.etag}"') + element("LastModified", iso(meta.mtime_ns / 1e9))
                        + checksum)
        return Response(body=body, content_type=XML, action=action)

    def delete_objects(self, request: Request, bucket: str) -> Response:
        bucket_dir = self.store.bucket_dir(bucket)
        root = parse(_small_body(request))
        if root.tag != "Delete":
            raise malformed_xml("expected Delete")
        objects = root.findall("Object")
        if not objects or len(objects) > 1000:
            raise malformed_xml("between 1 and 1000 Object elements are allowed")
        quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
        out = []
        for node in objects:
            key = child_text(node, "Key")
            if key is None:
                raise malformed_xml("an Object has no Key")
            try:
                self.store.delete(bucket, bucket_dir, key)
            except S3Error as exc:
                out.append(f"<Error>{element('Key', key)}{element('Code', exc.code)}"
                           f"{element('Message', exc.message)}</Error>")
                continue
            if not quiet:
                out.append(f"<Deleted>{element('Key', key)}</Deleted>")
        return Response(body=document("DeleteResult", "".join(out)), content_type=XML, action="DeleteObjects")

    # -- multipart ----------------------------------------------------------------------------------------------

    def create_upload(self, request: Request, bucket: str, bucket_dir: Any, key: str) -> Response:
        if key.endswith("/"):
            raise invalid_argument("Keys ending with '/' are folder markers and hold no bytes.", "key", key)
        self.store.check_writable(bucket_dir, key)
        _small_body(request)
        upload = self.uploads.create(bucket, key, request.header("content-type") or DEFAULT_CONTENT_TYPE,
                                     _stored_headers(request), _user_metadata(request))
        body = document("InitiateMultipartUploadResult",
                        element("Bucket", bucket) + element("Key", key) + element("UploadId", upload.upload_id))
        return Response(body=body, content_type=XML, action="CreateMultipartUpload")

    def upload_part(self, request: Request, bucket: str, bucket_dir: Any, key: str) -> Response:
        upload = self.uploads.get(bucket, key, request.param("uploadId") or "")
        source = request.header("x-amz-copy-source")
        if source:
            return self._upload_part_copy(request, upload, source)
        body = UploadBody(request, require_length=True)
        part = self.uploads.upload_part(upload, request.param("partNumber"), body)
        headers = {"ETag": f'"{part.etag}"'}
        if body.checksum_name and body.checksum_hasher is not None:
            headers[f"x-amz-checksum-{body.checksum_name}"] = base64.b64encode(body.checksum_hasher.digest()).decode()
        return Response(headers=headers, content_type=XML, action="UploadPart")

    def _upload_part_copy(self, request: Request, upload: Upload, source: str) -> Response:
        src_bucket, src_key = _copy_source(source)
        src_dir = self.store.bucket_dir(src_bucket)
        _small_body(request)
        fh, src = self.store.open(src_bucket, src_dir, src_key)
        try:
            copy_preconditions(request, src)
            offset, length = 0, src.size
            spec = request.header("x-amz-copy-source-range")
            if spec:
                match = RANGE_RE.match(spec.strip())
                if not match or not match.group(1) or not match.group(2):
                    raise invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                           "where first and last are the zero-based offsets of the first and last "
                                           "bytes to copy", "x-amz-copy-source-range", spec)
                first, last = int(match.group(1)), int(match.group(2))
                if first > last or last >= src.size:
                    raise S3Error("InvalidRange", "The requested range is not satisfiable", 416,
                                  RangeRequested=spec, ActualObjectSize=src.size)
                offset, length = first, last - first + 1
            part = self.uploads.upload_part_copy(upload, request.param("partNumber"), fh, offset, length)
        finally:
            if fh is not None:
                fh.close()
        body = document("CopyPartResult", element("LastModified", iso(part.last_modified))
                        + element("ETag", f'"{part.etag}"'))
        return Response(body=body, content_type=XML, action="UploadPartCopy")

    def complete_upload(self, request: Request, bucket: str, bucket_dir: Any, key: str) -> Response:
        upload = self.uploads.get(bucket, key, request.param("uploadId") or "")
        root = parse(_small_body(request))
        if root.tag != "CompleteMultipartUpload":
            raise malformed_xml("expected CompleteMultipartUpload")
        requested = []
        for node in root.findall("Part"):
            number, etag = child_text(node, "PartNumber"), child_text(node, "ETag")
            if number is None or etag is None or not number.strip().isdigit():
                raise malformed_xml("each Part needs a PartNumber and an ETag")
            requested.append((int(number), etag.strip()))
        meta = self.uploads.complete(upload, bucket_dir, requested)
        body = document("CompleteMultipartUploadResult",
                        element("Location", f"{self.url}/{bucket}/{quote(key)}") + element("Bucket", bucket)
                        + element("Key", key) + element("ETag", f'"{meta.etag}"'))
        return Response(body=body, content_type=XML, action="CompleteMultipartUpload")

    def list_parts(self, request: Request, bucket: str, key: str) -> Response:
        upload = self.uploads.get(bucket, key, request.param("uploadId") or "")
        marker = int_param(request, "part-number-marker", 0)
        max_parts = min(int_param(request, "max-parts", 1000), 1000)
        parts = [p for p in self.uploads.parts(upload) if p.number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        items = "".join(f"<Part>{element('PartNumber', p.number)}{element('LastModified', iso(p.last_modified))}"
                        f"{element('ETag', chr(34) + p.etag + chr(34))}{element('Size', p.size)}</Part>" for p in page)
        initiator = f"<Initiator><ID>{OWNER_ID}</ID><DisplayName>local</DisplayName></Initiator>"
        body = document(
            "ListPartsResult",
            element("Bucket", bucket) + element("Key", key) + element("UploadId", upload.upload_id)
            + element("PartNumberMarker", marker)
            + element("NextPartNumberMarker", page[-1].number if page else marker)
            + element("MaxParts", max_parts) + element("IsTruncated", "true" if truncated else "false")
            + items + initiator + owner() + element("StorageClass", "STANDARD"))
        return Response(body=body, content_type=XML, action="ListParts")

    def list_uploads(self, request: Request, bucket: str) -> Response:
        self.store.bucket_dir(bucket)
        prefix = request.param("prefix") or ""
        items = "".join(
            f"<Upload>{element('Key', u.key)}{element('UploadId', u.upload_id)}{owner()}"
            f"<Initiator><ID>{OWNER_ID}</ID><DisplayName>local</DisplayName></Initiator>"
            f"<StorageClass>STANDARD</StorageClass>{element('Initiated', iso(u.initiated))}</Upload>"
            for u in self.meta.uploads(bucket) if u.key.startswith(prefix))
        body = document("ListMultipartUploadsResult", element("Bucket", bucket) + "<KeyMarker></KeyMarker>"
                        "<UploadIdMarker></UploadIdMarker>" + f"<Prefix>{text(prefix)}</Prefix>"
                        + element("MaxUploads", 1000) + "<IsTruncated>false</IsTruncated>" + items)
        return Response(body=body, content_type=XML, action="ListMultipartUploads")


# -- helpers --------------------------------------------------------------------------------------------------


def _etag_headers(etag: str, checksum: tuple[str, str] | None) -> dict[str, str]:
    """ETag and the verified checksum of a write, as S3 answers a PUT."""
    headers = {"ETag": f'"{etag}"'}
    if checksum:
        headers[f"x-amz-checksum-{checksum[0]}"] = checksum[1]
        headers["x-amz-checksum-type"] = "FULL_OBJECT"
    return headers


def _read_body(request: Request, body: UploadBody, limit: int) -> bytes:
    data = body.read_all(limit)
    body.finish()
    return data


def _small_body(request: Request) -> bytes:
    """A control request's (small) body, with its Content-MD5 / checksum verified."""
    return _read_body(request, UploadBody(request), 2 * 1024 * 1024)


def _fh_path(fh: BinaryIO) -> Any:
    from pathlib import Path

    return Path(fh.name if isinstance(fh.name, str) else "")


def _user_metadata(request: Request) -> dict[str, str]:
    metadata = {name[len("x-amz-meta-"):]: value for name, value in request.headers.items()
                if name.startswith("x-amz-meta-")}
    size = sum(len(k) + len(v.encode("utf-8", errors="replace")) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.", 400,
                      Size=size, MaxSizeAllowed=MAX_METADATA_BYTES)
    return metadata


def _stored_headers(request: Request) -> dict[str, str]:
    stored = {name: request.headers[name] for name in STORED_HEADERS if name in request.headers}
    encoding = stored.get("content-encoding")
    if encoding is not None:
        # aws-chunked is the upload's framing, not the object's encoding: S3 drops it.
        kept = [e.strip() for e in encoding.split(",") if e.strip() and e.strip().lower() != "aws-chunked"]
        if kept:
            stored["content-encoding"] = ", ".join(kept)
        else:
            del stored["content-encoding"]
    return stored


def _copy_source(header: str) -> tuple[str, str]:
    """``bucket`` and ``key`` of ``x-amz-copy-source`` (``[/]bucket/key[?versionId=..]``, URL-encoded)."""
    source = header.split("?", 1)[0]
    try:
        source = unquote(source, errors="strict")
    except UnicodeDecodeError:
        raise invalid_argument("Invalid copy source encoding", "x-amz-copy-source", header) from None
    bucket, _, key = source.lstrip("/").partition("/")
    if not bucket or not key:
        raise invalid_argument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                               "x-amz-copy-source", header)
    check_bucket(bucket)
    key_segments(key)
    return bucket, key


def attempted_action(request: Request) -> str:
    """The S3 action a request asked for, judged from its method, path and query alone."""
    _bucket, _, key = request.raw_path.lstrip("/").partition("/")
    query, method = request.query, request.method
    if not key:
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else (
                "ListMultipartUploads" if "uploads" in query else "ListObjects")
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket",
                "POST": "DeleteObjects"}.get(method, method)
    if "uploadId" in query:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                "GET": "ListParts"}.get(method, method)
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "PUT" and "x-amz-copy-source" in request.headers:
        return "CopyObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
        method, method)
