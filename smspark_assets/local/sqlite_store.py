"""The one way the stack keeps state in SQLite: a private file, one connection, serialized writes.

Every store of the stack (SageMaker resources, EMR Serverless runs, the Glue catalog, CloudWatch Logs)
holds one connection shared by the HTTP server's threads under a lock, in WAL mode, and writes in
``BEGIN IMMEDIATE`` transactions so concurrent writers never lose an update.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from smspark_assets.local.private_files import FILE_MODE, create_private_file, private_dir, tighten


class SqliteStore:
    """``path`` created 0600 (so SQLite's -wal/-shm files follow), opened with ``schema`` applied."""

    def __init__(self, path: Path, schema: str, timeout: float = 5.0) -> None:
        private_dir(path.parent)
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
        create_private_file(path)
        for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            tighten(companion, FILE_MODE)
        self.path = path
        self._lock = threading.RLock()
        # check_same_thread=False: the HTTP server's threads share the connection under self._lock.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=timeout)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: nothing else writes until it commits (or rolls back on an exception)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
