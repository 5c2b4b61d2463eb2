"""The local S3's objects as plain files: ``<s3_root>/<bucket>/<key>``, written atomically, listed in key order.

Writes are staged: the body streams into a temporary file under ``<local_dir>/s3-staging/tmp`` (same file
system as the buckets, outside them) and is moved into place with ``os.replace`` only once it is complete
and its checksums match, so no reader ever sees half an object and a failed upload leaves nothing visible.
Readers open the file once and answer from that descriptor: a concurrent overwrite swaps the inode and
never mixes two versions in one answer.

Files that appeared without the API (Spark writes into the buckets directly) are objects too; their
ETag is computed on first need and cached (see :mod:`.s3_meta`). Listings walk the tree with
``os.scandir`` in S3's key order (UTF-8 byte order: a folder ``a`` sorts as ``a/``), pruning whole
subtrees before ``StartAfter`` or the continuation point, and stop as soon as a page is full.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, Iterator

from smspark_assets.local.s3_errors import S3Error, key_conflict, no_such_bucket, no_such_key
from smspark_assets.local.s3_meta import MetaStore, ObjectMeta
from smspark_assets.local.s3_names import bucket_name_problem, check_bucket, inside, is_hidden, object_path

EMPTY_MD5 = hashlib.md5(b"").hexdigest()
_HASH_CHUNK = 1 << 20


@dataclass
class Listed:
    """One item of a listing: an object (``meta`` set) or a common prefix (``meta`` is ``None``)."""

    key: str
    meta: ObjectMeta | None


class ObjectStore:
    """Buckets and objects under ``s3_root``; facts in ``meta``; temporary files under ``staging``."""

    def __init__(self, s3_root: Path, staging: Path, meta: MetaStore) -> None:
        self.root = s3_root
        self.staging = staging
        self.tmp_dir = staging / "tmp"
        self.meta = meta
        # Striped locks: the metadata row and the file of one key change together.
        self._locks = [threading.Lock() for _ in range(64)]
        for directory in (self.root, self.staging, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.staging, 0o700)

    def clean_staging(self) -> int:
        """Remove temporary files of requests that never finished (the service was killed mid-upload)."""
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
        return removed

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        return self._locks[hash((bucket, key)) % len(self._locks)]

    # -- buckets --------------------------------------------------------------------------------------------

    def bucket_dir(self, bucket: str) -> Path:
        """The folder of an existing bucket (name validated first), else ``NoSuchBucket``."""
        path = self.root / check_bucket(bucket)
        if not path.is_dir():
            raise no_such_bucket(bucket)
        return path

    def list_buckets(self) -> list[tuple[str, float]]:
        """``(name, creation time)`` of every folder under the root that is a valid bucket name, by name."""
        out = []
        for entry in os.scandir(self.root):
            if entry.is_dir() and bucket_name_problem(entry.name) is None:
                out.append((entry.name, self.created(entry.name, entry.stat().st_mtime)))
        return sorted(out)

    def created(self, bucket: str, fallback: float) -> float:
        created = self.meta.bucket_created(bucket)
        if created is None:  # a folder made without the API: remember when it was first seen
            created = fallback
            self.meta.set_bucket_created(bucket, created)
        return created

    def create_bucket(self, bucket: str) -> None:
        path = self.root / check_bucket(bucket)
        try:
            path.mkdir()
        except FileExistsError:
            raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                          "succeeded and you already own it.", 409, BucketName=bucket) from None
        self.meta.set_bucket_created(bucket, time.time())

    def delete_bucket(self, bucket: str) -> None:
        path = self.bucket_dir(bucket)
        if next(self.walk(bucket, path, "", "", None), None) is not None:
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409, BucketName=bucket)
        # Only hidden files (checksum sidecars) and empty folders remain: they go with the bucket.
        shutil.rmtree(path)
        self.meta.forget_bucket(bucket)

    # -- writing ----------------------------------------------------------------------------------------------

    def temp_file(self) -> tuple[int, str]:
        """A new private temporary file in the staging folder: ``(fd, path)``."""
        return tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")

    def check_writable(self, bucket_dir: Path, key: str) -> Path:
        """The target path of ``key``; a ``KeyConflict`` now (before reading a body) if the tree forbids it."""
        path = object_path(bucket_dir, key)
        if key.endswith("/"):
            if path.exists() and not path.is_dir():
                raise key_conflict(key, f"an object named {key[:-1]!r} exists")
            return path
        if path.is_dir():
            raise key_conflict(key, f"other keys start with {key + '/'!r}")
        parent = path.parent
        while parent != bucket_dir and not parent.exists():
            parent = parent.parent
        if parent != bucket_dir and not parent.is_dir():
            raise key_conflict(key, f"an object named {str(parent.relative_to(bucket_dir))!r} exists")
        return path

    def commit(self, bucket: str, bucket_dir: Path, key: str, tmp: str, meta: ObjectMeta,
               if_none_match: bool = False) -> ObjectMeta:
        """Move the complete temporary file ``tmp`` into place as ``key``; record ``meta``.

        ``tmp`` is removed on every failure. ``if_none_match``: fail with 412 if the key exists (atomic,
        through ``link``).
        """
        try:
            path = self.check_writable(bucket_dir, key)
            st = os.stat(tmp)
            meta.size, meta.mtime_ns = st.st_size, st.st_mtime_ns  # rename keeps both: the row stays valid
            with self._lock(bucket, key):
                for attempt in range(3):
                    try:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        inside(bucket_dir, path.parent, key)
                        self.meta.put(bucket, key, meta)
                        if if_none_match:
                            os.link(tmp, path)
                            os.unlink(tmp)
                        else:
                            os.replace(tmp, path)
                        return meta
                    except FileNotFoundError:
                        # A concurrent delete pruned the freshly made parent folder: make it again.
                        self.meta.delete(bucket, key)
                        if attempt == 2:
                            raise
                    except FileExistsError:
                        self.meta.delete(bucket, key)
                        if if_none_match and not path.is_dir():
                            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you "
                                          "specified did not hold", 412, Condition="If-None-Match") from None
                        raise key_conflict(key, "a file stands where a folder is needed") from None
                    except (IsADirectoryError, NotADirectoryError):
                        self.meta.delete(bucket, key)
                        raise key_conflict(key, "a folder and an object would share a name") from None
            raise AssertionError("unreachable")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_marker(self, bucket: str, bucket_dir: Path, key: str) -> ObjectMeta:
        """A folder marker ``a/b/``: the folder exists and a row says the marker object does too."""
        path = self.check_writable(bucket_dir, key)
        with self._lock(bucket, key):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise key_conflict(key, "an object stands where the folder would be") from None
            inside(bucket_dir, path, key)
            meta = ObjectMeta(0, time.time_ns(), EMPTY_MD5, marker=True)
            self.meta.put(bucket, key, meta)
        return meta

    # -- reading ----------------------------------------------------------------------------------------------

    def open(self, bucket: str, bucket_dir: Path, key: str) -> tuple[BinaryIO | None, ObjectMeta]:
        """The object's open file (``None`` for a folder marker) and its facts; ``NoSuchKey`` if absent."""
        path = object_path(bucket_dir, key)
        if key.endswith("/"):
            meta = self.meta.get(bucket, key)
            if meta is None or not meta.marker or not path.is_dir():
                raise no_such_key(key)
            return None, meta
        try:
            fh = open(path, "rb")  # noqa: SIM115 - handed to the response, closed after sending
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise no_such_key(key) from None
        try:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise no_such_key(key)
            return fh, self.describe(bucket, key, st, fh)
        except BaseException:
            fh.close()
            raise

    def head(self, bucket: str, bucket_dir: Path, key: str) -> ObjectMeta:
        fh, meta = self.open(bucket, bucket_dir, key)
        if fh is not None:
            fh.close()
        return meta

    def describe(self, bucket: str, key: str, st: os.stat_result, fh: BinaryIO | None = None,
                 path: str | None = None) -> ObjectMeta:
        """The recorded facts if the file is unchanged, else freshly computed ones (and cached)."""
        meta = self.meta.get(bucket, key)
        if meta is not None and meta.size == st.st_size and meta.mtime_ns == st.st_mtime_ns:
            return meta
        fresh = ObjectMeta(st.st_size, st.st_mtime_ns, file_md5(fh, path))
        self.meta.put(bucket, key, fresh)
        return fresh

    # -- deleting ---------------------------------------------------------------------------------------------

    def delete(self, bucket: str, bucket_dir: Path, key: str) -> bool:
        """Remove ``key`` (no error when absent, as S3); prune folders it leaves empty. True if it existed."""
        path = object_path(bucket_dir, key)
        with self._lock(bucket, key):
            if key.endswith("/"):
                existed = self.meta.get(bucket, key) is not None
                self.meta.delete(bucket, key)
                self._prune(bucket, bucket_dir, path)
                return existed
            try:
                if path.is_dir():
                    return False
                os.unlink(path)
                existed = True
            except (FileNotFoundError, NotADirectoryError):
                existed = False
            self.meta.delete(bucket, key)
        self._prune(bucket, bucket_dir, path.parent)
        return existed

    def _prune(self, bucket: str, bucket_dir: Path, folder: Path) -> None:
        """Remove empty folders up to the bucket, as S3 prefixes vanish with their last key; keep markers."""
        while folder != bucket_dir and bucket_dir in folder.parents:
            key = "/".join(folder.relative_to(bucket_dir).parts) + "/"
            if self.meta.get(bucket, key) is not None:
                return
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): stop
                return
            folder = folder.parent

    # -- listing ----------------------------------------------------------------------------------------------

    def walk(self, bucket: str, bucket_dir: Path, prefix: str, after: str, delimiter: str | None,
             skip: str = "") -> Iterator[Listed]:
        """Objects and common prefixes of ``prefix`` in key order, strictly after ``after``.

        ``skip``: leave out keys starting with it (the common prefix a continuation token ended on).
        ETags are filled per page by :meth:`fill`; items here carry a placeholder ``meta``.
        """
        base, _, name_prefix = prefix.rpartition("/")
        base = base + "/" if base or prefix.startswith("/") else ""
        start = bucket_dir
        for segment in base.split("/")[:-1]:
            if segment in ("", ".", "..") or is_hidden(segment):
                return  # no stored key can have such a prefix
            start = start / segment
        markers = self.meta.markers(bucket, prefix)
        if base and not name_prefix and base in markers and base > after and not (skip and base.startswith(skip)):
            if os.path.isdir(start):
                yield Listed(base, _MARKER)
        collapse = delimiter == "/"
        last_common = ""
        for key, kind, entry in self._walk(str(start), base, name_prefix, after, skip, markers, collapse):
            if kind == "prefix":
                yield Listed(key, None)
            elif delimiter and not collapse and delimiter in key[len(prefix):]:
                # Any other delimiter: group consecutive keys (they are in order) by their common prefix.
                rest = key[len(prefix):]
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if common != last_common:
                    last_common = common
                    yield Listed(common, None)
            else:
                yield Listed(key, _MARKER if kind == "marker" else _Pending(entry))

    def _walk(self, directory: str, base: str, name_prefix: str, after: str, skip: str, markers: set[str],
              collapse: bool) -> Iterator[tuple[str, str, os.DirEntry[str] | None]]:
        try:
            with os.scandir(directory) as it:
                entries = []
                # The hot loop of a listing (every entry of every folder walked): keep it lean.
                rest = after[len(base):] if after and after.startswith(base) else ""
                for entry in it:
                    name = entry.name
                    if name[0] == "." or (name_prefix and not name.startswith(name_prefix)):
                        continue  # hidden (see s3_names), or outside the prefix
                    if rest and name < rest and not rest.startswith(name):
                        continue  # this entry (and a folder's whole subtree) sorts before the start point
                    if not name.isascii():
                        try:
                            name.encode("utf-8")
                        except UnicodeEncodeError:
                            continue  # not UTF-8: no S3 key can name it
                    if entry.is_dir(follow_symlinks=False):
                        entries.append((name + "/", entry, True))
                    elif entry.is_file(follow_symlinks=False):
                        entries.append((name, entry, False))
        except (FileNotFoundError, NotADirectoryError):
            return
        entries.sort(key=itemgetter(0))
        for sort_name, entry, is_dir in entries:
            key = base + sort_name
            if skip and key.startswith(skip):
                continue
            if not is_dir:
                if key > after:
                    yield key, "file", entry
                continue
            if after.startswith(key):
                sub_after = after
            elif key > after:
                sub_after = ""
            else:
                continue  # the whole folder sorts before the start point
            if collapse:
                if (key in markers and key > after) or next(
                        self._walk(entry.path, key, "", sub_after, skip, markers, False), None) is not None:
                    yield key, "prefix", None
                continue
            if key in markers and key > after:
                yield key, "marker", entry
            yield from self._walk(entry.path, key, "", sub_after, skip, markers, False)

    def fill(self, bucket: str, items: list[Listed]) -> None:
        """Replace placeholders by the objects' facts: cached rows where the files are unchanged, one
        range query for the page, MD5 computed (and cached) for files that appeared without the API."""
        keys = [item.key for item in items if item.meta is not None]
        if not keys:
            return
        rows = self.meta.between(bucket, keys[0], keys[-1])
        fresh: list[tuple[str, ObjectMeta]] = []
        for item in items:
            pending = item.meta
            if isinstance(pending, _Pending):
                st = pending.entry.stat(follow_symlinks=False)
                row = rows.get(item.key)
                if row is None or row.size != st.st_size or row.mtime_ns != st.st_mtime_ns:
                    try:
                        row = ObjectMeta(st.st_size, st.st_mtime_ns, file_md5(None, pending.entry.path))
                    except FileNotFoundError:
                        row = ObjectMeta(st.st_size, st.st_mtime_ns, EMPTY_MD5)
                    fresh.append((item.key, row))
                item.meta = row
            elif pending is _MARKER:
                item.meta = rows.get(item.key) or ObjectMeta(0, 0, EMPTY_MD5, marker=True)
        if fresh:
            self.meta.put_many(bucket, fresh)

    # -- copying ----------------------------------------------------------------------------------------------

    def copy_into(self, fh: BinaryIO, offset: int, length: int, fd: int, want_md5: bool) -> str | None:
        """Copy ``length`` bytes of ``fh`` from ``offset`` into ``fd`` in the kernel; MD5 hex if asked."""
        src = fh.fileno()
        if want_md5:
            digest = hashlib.md5()
            buffer = bytearray(_HASH_CHUNK)
            view = memoryview(buffer)
            done = 0
            while done < length:
                n = os.preadv(src, [view[: min(_HASH_CHUNK, length - done)]], offset + done)
                if n <= 0:
                    raise S3Error("InvalidObjectState", "The source object changed while it was copied", 409)
                digest.update(view[:n])
                _write_all(fd, view[:n])
                done += n
            return digest.hexdigest()
        copy_range(src, offset, length, fd)
        return None


class _Pending:
    """A listed file whose facts are not looked up yet."""

    __slots__ = ("entry",)

    def __init__(self, entry: os.DirEntry[str] | None) -> None:
        self.entry = entry


_MARKER = ObjectMeta(0, 0, EMPTY_MD5, marker=True)


def file_md5(fh: BinaryIO | None, path: str | None = None) -> str:
    """Hex MD5 of a whole file, streamed (from the open ``fh`` when given, without moving its position)."""
    digest = hashlib.md5()
    own = fh is None
    f = open(path, "rb") if own else fh  # type: ignore[arg-type]  # noqa: SIM115
    try:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        if size <= _HASH_CHUNK:  # most files Spark writes next to data (_SUCCESS, small parts): one read
            data = os.pread(fd, size + 1, 0)
            digest.update(data)
            offset = len(data)
        else:
            offset = 0
        # Large file, or a small one that grew while being read: hash the rest chunk by chunk.
        view = memoryview(bytearray(_HASH_CHUNK)) if size > _HASH_CHUNK or offset > size else None
        while view is not None:
            n = os.preadv(fd, [view], offset)
            if not n:
                break
            digest.update(view[:n])
            offset += n
    finally:
        if own:
            f.close()
    return digest.hexdigest()


def copy_range(src: int, offset: int, length: int, dst: int) -> None:
    """Copy bytes between files in the kernel (``copy_file_range``; reflinks where the file system can)."""
    done = 0
    while done < length:
        try:
            n = os.copy_file_range(src, dst, length - done, offset + done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = os.sendfile(dst, src, offset + done, length - done)
        if n <= 0:
            raise S3Error("InvalidObjectState", "The source object changed while it was copied", 409)
        done += n


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]

