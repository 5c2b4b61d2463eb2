"""What the local S3 knows about objects beyond their bytes: ETag, content type, user metadata, checksums.

Kept in ``<local_dir>/s3-meta.sqlite`` (never inside the bucket folders, which stay plain files). A row
is valid only while the file still has the ``(size, mtime_ns)`` it had when the row was written: a file
that Spark (or anyone) rewrote in place is then seen as a new object, whose MD5 is computed on first need
and cached the same way, with the default content type and no user metadata.

Folder markers (``a/b/``, created by pyarrow's ``create_dir``) are rows with ``marker = 1``; their folder
exists on disk. Multipart uploads in progress and their parts live here too (their bytes under
``<local_dir>/s3-staging/uploads/<id>/``), so they survive a restart as they do on S3.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT,
    headers TEXT,
    metadata TEXT,
    checksum TEXT,
    marker INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_markers ON objects (bucket, marker);
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated REAL NOT NULL,
    content_type TEXT,
    headers TEXT,
    metadata TEXT
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""

DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@dataclass
class ObjectMeta:
    """One object's recorded facts; ``etag`` is the hex MD5 (or ``<md5>-<parts>``) without quotes."""

    size: int
    mtime_ns: int
    etag: str
    content_type: str = DEFAULT_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, Content-Disposition, ...
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    checksum: tuple[str, str] | None = None  # (algorithm, base64 value), verified at upload
    marker: bool = False


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    content_type: str
    headers: dict[str, str]
    metadata: dict[str, str]


@dataclass
class Part:
    number: int
    size: int
    etag: str
    last_modified: float


def _row_meta(row: tuple[Any, ...]) -> ObjectMeta:
    size, mtime_ns, etag, content_type, headers, metadata, checksum, marker = row
    return ObjectMeta(size, mtime_ns, etag, content_type or DEFAULT_CONTENT_TYPE,
                      json.loads(headers) if headers else {}, json.loads(metadata) if metadata else {},
                      tuple(json.loads(checksum)) if checksum else None, bool(marker))  # type: ignore[arg-type]


_COLUMNS = "size, mtime_ns, etag, content_type, headers, metadata, checksum, marker"


class MetaStore:
    """Thread-safe access to ``s3-meta.sqlite`` (one connection under a lock; each statement is short)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- objects ------------------------------------------------------------------------------------------

    def get(self, bucket: str, key: str) -> ObjectMeta | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? AND key = ?",
                                   (bucket, key)).fetchone()
        return _row_meta(row) if row else None

    def put(self, bucket: str, key: str, meta: ObjectMeta) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO objects (bucket, key, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bucket, key, meta.size, meta.mtime_ns, meta.etag, meta.content_type,
                 json.dumps(meta.headers) if meta.headers else None,
                 json.dumps(meta.metadata) if meta.metadata else None,
                 json.dumps(list(meta.checksum)) if meta.checksum else None, int(meta.marker)),
            )

    def put_many(self, bucket: str, items: list[tuple[str, ObjectMeta]]) -> None:
        """Cache computed ETags of files that appeared on disk (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    f"INSERT OR REPLACE INTO objects (bucket, key, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(bucket, key, m.size, m.mtime_ns, m.etag, m.content_type, None, None, None, 0)
                     for key, m in items],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))

    def between(self, bucket: str, first: str, last: str) -> dict[str, ObjectMeta]:
        """Rows with ``first <= key <= last`` (SQLite compares UTF-8 bytes: S3's key order)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, {_COLUMNS} FROM objects WHERE bucket = ? AND key >= ? AND key <= ?",
                (bucket, first, last)).fetchall()
        return {row[0]: _row_meta(row[1:]) for row in rows}

    def markers(self, bucket: str, prefix: str) -> set[str]:
        """Folder-marker keys under ``prefix`` (few: one per folder created through the API)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM objects WHERE bucket = ? AND marker = 1 AND substr(key, 1, ?) = ?",
                (bucket, len(prefix), prefix)).fetchall()
        return {row[0] for row in rows}

    # -- buckets -------------------------------------------------------------------------------------------

    def bucket_created(self, name: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT created FROM buckets WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_bucket_created(self, name: str, created: float) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?)", (name, created))

    def forget_bucket(self, name: str) -> None:
        """Drop a deleted bucket's rows (objects, creation date, uploads and their parts)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM objects WHERE bucket = ?", (name,))
                self._db.execute("DELETE FROM buckets WHERE name = ?", (name,))
                self._db.execute("DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads "
                                 "WHERE bucket = ?)", (name,))
                self._db.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def upload_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT upload_id FROM uploads")}

    # -- multipart uploads ----------------------------------------------------------------------------------

    def create_upload(self, upload: Upload) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (upload.upload_id, upload.bucket, upload.key, upload.initiated, upload.content_type,
                 json.dumps(upload.headers), json.dumps(upload.metadata)),
            )

    def upload(self, upload_id: str) -> Upload | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
        if row is None:
            return None
        return Upload(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), json.loads(row[6] or "{}"))

    def uploads(self, bucket: str) -> Iterator[Upload]:
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT upload_id FROM uploads WHERE bucket = ? ORDER BY key, initiated", (bucket,))]
        for upload_id in ids:
            upload = self.upload(upload_id)
            if upload is not None:
                yield upload

    def put_part(self, upload_id: str, part: Part) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                             (upload_id, part.number, part.size, part.etag, part.last_modified))

    def parts(self, upload_id: str) -> list[Part]:
        with self._lock:
            rows = self._db.execute(
                "SELECT part_number, size, etag, last_modified FROM parts WHERE upload_id = ? ORDER BY part_number",
                (upload_id,)).fetchall()
        return [Part(*row) for row in rows]

    def finish_upload(self, upload_id: str) -> bool:
        """Forget an upload and its parts; ``False`` when it was not (or no longer) known."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                gone = self._db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,)).rowcount
                self._db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return bool(gone)


def now() -> float:
    return time.time()
