"""Athena's query executions, kept in ``<local_dir>/athena.sqlite`` so they survive a restart.

Each row is the ``QueryExecution`` document GetQueryExecution answers (plus the result's column info
and the client request token). Every state change is written before it is visible to a caller.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    qid TEXT PRIMARY KEY,
    token TEXT UNIQUE,
    workgroup TEXT NOT NULL,
    submitted REAL NOT NULL,
    doc TEXT NOT NULL,
    columns TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_workgroup ON executions (workgroup, submitted);
"""


class ExecutionStore:
    """Thread-safe access to the executions table (one connection under a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # check_same_thread=False: the HTTP threads and the query workers share it under self._lock.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        try:
            path.chmod(0o600)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, doc: dict[str, Any], token: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO executions (qid, token, workgroup, submitted, doc) VALUES (?, ?, ?, ?, ?)",
                (
                    doc["QueryExecutionId"],
                    token,
                    doc["WorkGroup"],
                    doc["Status"]["SubmissionDateTime"],
                    json.dumps(doc),
                ),
            )

    def by_token(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM executions WHERE token = ?", (token,)).fetchone()
        return json.loads(row[0]) if row else None

    def get(self, qid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM executions WHERE qid = ?", (qid,)).fetchone()
        return json.loads(row[0]) if row else None

    def columns(self, qid: str) -> list[dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute("SELECT columns FROM executions WHERE qid = ?", (qid,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def update(
        self, qid: str, change: Callable[[dict[str, Any]], bool], columns: list[dict[str, Any]] | None = None
    ) -> dict[str, Any] | None:
        """Apply ``change`` to the document atomically; it returns False to leave it unchanged."""
        with self._lock:
            row = self._db.execute("SELECT doc FROM executions WHERE qid = ?", (qid,)).fetchone()
            if row is None:
                return None
            doc = json.loads(row[0])
            if change(doc) is False:
                return doc
            if columns is not None:
                self._db.execute(
                    "UPDATE executions SET doc = ?, columns = ? WHERE qid = ?",
                    (json.dumps(doc), json.dumps(columns), qid),
                )
            else:
                self._db.execute("UPDATE executions SET doc = ? WHERE qid = ?", (json.dumps(doc), qid))
            return doc

    def ids(self, workgroup: str, offset: int, limit: int) -> list[str]:
        """Newest first, as ListQueryExecutions answers."""
        with self._lock:
            rows = self._db.execute(
                "SELECT qid FROM executions WHERE workgroup = ? ORDER BY submitted DESC, rowid DESC "
                "LIMIT ? OFFSET ?",
                (workgroup, limit, offset),
            ).fetchall()
        return [r[0] for r in rows]

    def unfinished(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT qid, doc FROM executions").fetchall()
        return [qid for qid, doc in rows if json.loads(doc)["Status"]["State"] in ("QUEUED", "RUNNING")]
