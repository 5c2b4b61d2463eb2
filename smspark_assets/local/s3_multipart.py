"""Multipart uploads of the local S3: parts staged under ``<local_dir>/s3-staging/uploads/<upload id>/``.

Each part is written like an object (streamed to a temporary file, checked, then renamed to its part
number), so a part is either complete or absent. Completing concatenates the listed parts in the kernel
(``copy_file_range``) into a temporary file that is moved into place like any PUT; the ETag is S3's:
``md5(concatenated binary MD5s of the parts)-<number of parts>``. Aborting, or completing, removes the
staged parts. Uploads survive a restart of the service, as they do on S3 until aborted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from smspark_assets.local.s3_body import UploadBody
from smspark_assets.local.s3_errors import S3Error, invalid_argument, no_such_upload
from smspark_assets.local.s3_meta import MetaStore, ObjectMeta, Part, Upload, now
from smspark_assets.local.s3_store import ObjectStore, copy_range, file_md5

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000


class MultipartUploads:
    """Create, upload parts, list parts, complete and abort; state in :class:`MetaStore`."""

    def __init__(self, store: ObjectStore, meta: MetaStore) -> None:
        self.store = store
        self.meta = meta
        self.dir = store.staging / "uploads"
        self.dir.mkdir(parents=True, exist_ok=True)

    def recover(self) -> None:
        """Drop staged folders no upload knows (and uploads whose folder vanished)."""
        known = self.meta.upload_ids()
        for entry in os.scandir(self.dir):
            if entry.name not in known:
                shutil.rmtree(entry.path, ignore_errors=True)
        for upload_id in known:
            if not (self.dir / upload_id).is_dir():
                self.meta.finish_upload(upload_id)

    def create(self, bucket: str, key: str, content_type: str, headers: dict[str, str],
               metadata: dict[str, str]) -> Upload:
        upload = Upload(uuid.uuid4().hex, bucket, key, now(), content_type, headers, metadata)
        (self.dir / upload.upload_id).mkdir(mode=0o700)
        self.meta.create_upload(upload)
        return upload

    def get(self, bucket: str, key: str, upload_id: str) -> Upload:
        upload = self.meta.upload(upload_id) if upload_id.isalnum() else None
        if upload is None or upload.bucket != bucket or upload.key != key:
            raise no_such_upload(upload_id)
        return upload

    def _part_number(self, raw: str | None) -> int:
        try:
            number = int(raw or "")
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PART_NUMBER:
            raise invalid_argument(f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
                                   "partNumber", raw)
        return number

    def upload_part(self, upload: Upload, raw_number: str | None, body: UploadBody) -> Part:
        """Stream one part into the staging folder; it replaces an earlier part with the same number."""
        number = self._part_number(raw_number)
        return self._stage_part(upload, number, lambda fd: body.copy_to(fd), body)

    def upload_part_copy(self, upload: Upload, raw_number: str | None, fh: object, offset: int,
                         length: int) -> Part:
        """A part copied from a byte range of an existing object (``x-amz-copy-source``)."""
        number = self._part_number(raw_number)
        return self._stage_part(upload, number, lambda fd: self.store.copy_into(fh, offset, length, fd, False),
                                None)

    def _stage_part(self, upload: Upload, number: int, write: object, body: UploadBody | None) -> Part:
        folder = self.dir / upload.upload_id
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:
            raise no_such_upload(upload.upload_id) from None
        try:
            try:
                write(fd)  # type: ignore[operator]
            finally:
                os.close(fd)
            if body is not None:
                digest = body.finish()
                etag, size = digest.md5_hex, digest.size
            else:
                etag, size = file_md5(None, tmp), os.path.getsize(tmp)
            part = Part(number, size, etag, now())
            try:
                os.replace(tmp, folder / str(number))
            except FileNotFoundError:
                raise no_such_upload(upload.upload_id) from None
            if self.meta.upload(upload.upload_id) is None:  # aborted meanwhile
                raise no_such_upload(upload.upload_id)
            self.meta.put_part(upload.upload_id, part)
            return part
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def parts(self, upload: Upload) -> list[Part]:
        return self.meta.parts(upload.upload_id)

    def complete(self, upload: Upload, bucket_dir: Path, requested: list[tuple[int, str]]) -> ObjectMeta:
        """Assemble the listed parts (ascending, ETags matching, all but the last >= 5 MiB) into the object."""
        if not requested:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate "
                          "against our published schema (no parts)", 400)
        stored = {part.number: part for part in self.parts(upload)}
        numbers = [number for number, _ in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be "
                          "ordered by part number.", 400, UploadId=upload.upload_id)
        chosen: list[Part] = []
        for number, etag in requested:
            part = stored.get(number)
            if part is None or etag.strip('"') != part.etag:
                raise S3Error("InvalidPart", "One or more of the specified parts could not be found. The part "
                              "may not have been uploaded, or the specified entity tag may not match the part's "
                              "entity tag.", 400, UploadId=upload.upload_id, PartNumber=number, ETag=etag)
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_BYTES:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed "
                              "object size.", 400, ProposedSize=part.size, MinSizeAllowed=MIN_PART_BYTES,
                              PartNumber=part.number, ETag=part.etag)
        self.store.check_writable(bucket_dir, upload.key)  # report a conflict before copying anything
        folder = self.dir / upload.upload_id
        fd, tmp = self.store.temp_file()
        try:
            for part in chosen:
                src = os.open(folder / str(part.number), os.O_RDONLY)
                try:
                    copy_range(src, 0, part.size, fd)
                finally:
                    os.close(src)
        except FileNotFoundError:
            os.close(fd)
            os.unlink(tmp)
            raise no_such_upload(upload.upload_id) from None
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        joined = b"".join(bytes.fromhex(part.etag) for part in chosen)
        etag = f"{hashlib.md5(joined).hexdigest()}-{len(chosen)}"
        meta = ObjectMeta(0, 0, etag, upload.content_type, upload.headers, upload.metadata)
        meta = self.store.commit(upload.bucket, bucket_dir, upload.key, tmp, meta)
        self.abort(upload)
        return meta

    def discard(self, uploads: list[Upload]) -> None:
        """Remove the staged parts of uploads whose rows are already gone (their bucket was deleted)."""
        for upload in uploads:
            shutil.rmtree(self.dir / upload.upload_id, ignore_errors=True)

    def abort(self, upload: Upload) -> None:
        if not self.meta.finish_upload(upload.upload_id):
            raise no_such_upload(upload.upload_id)
        shutil.rmtree(self.dir / upload.upload_id, ignore_errors=True)
