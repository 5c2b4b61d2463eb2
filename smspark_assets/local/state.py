"""The local service's durable state: one SQLite file holding every SageMaker resource as its Describe
document.

Each resource is a row ``(kind, name)`` whose ``doc`` is the JSON the Describe call returns (timestamps
as epoch seconds). Writes commit before the API answers, so whatever the service acknowledged survives
a crash. Tags live in their own table keyed by ARN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from smspark_assets.local.sqlite_store import SqliteStore

KINDS = (
    "training-job",
    "model",
    "endpoint-config",
    "endpoint",
    "transform-job",
    "model-package-group",
    "model-package",  # by "<group>/<version>" (versioned) or by name (unversioned)
    "hyper-parameter-tuning-job",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX IF NOT EXISTS resources_by_arn ON resources (arn);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);
"""


class AlreadyExists(Exception):
    """A resource of that kind and name exists already."""


class NotFound(Exception):
    """No resource of that kind and name."""


class StateStore(SqliteStore):
    """Thread-safe access to ``state.sqlite``; one connection guarded by a lock (the service is small)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    _tx = SqliteStore.transaction

    # -- resources ---------------------------------------------------------------------------------------

    def create(self, kind: str, name: str, arn: str, doc: dict[str, Any], status: str | None = None) -> None:
        """Insert a new resource; :class:`AlreadyExists` when the name is taken (names are unique
        per kind)."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM resources WHERE kind=? AND name=?", (kind, name)).fetchone():
                raise AlreadyExists(f"{kind} {name}")
            db.execute(
                "INSERT INTO resources (kind, name, arn, created, status, doc) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, name, arn, float(doc.get("CreationTime", 0.0)), status, json.dumps(doc)),
            )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM resources WHERE kind=? AND name=?", (kind, name)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def update(
        self, kind: str, name: str, change: Callable[[dict[str, Any]], None], status_key: str | None = None
    ) -> dict[str, Any]:
        """Read-modify-write one document atomically; ``change`` edits it in place. Returns the new
        document."""
        with self._tx() as db:
            row = db.execute("SELECT doc FROM resources WHERE kind=? AND name=?", (kind, name)).fetchone()
            if row is None:
                raise NotFound(f"{kind} {name}")
            doc = json.loads(row[0])
            change(doc)
            status = doc.get(status_key) if status_key else None
            db.execute(
                "UPDATE resources SET doc=?, status=? WHERE kind=? AND name=?",
                (json.dumps(doc), status, kind, name),
            )
            return doc

    def delete(self, kind: str, name: str) -> dict[str, Any]:
        """Remove a resource (and its tags); returns the document it had."""
        with self._tx() as db:
            row = db.execute(
                "SELECT doc, arn FROM resources WHERE kind=? AND name=?", (kind, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"{kind} {name}")
            db.execute("DELETE FROM resources WHERE kind=? AND name=?", (kind, name))
            db.execute("DELETE FROM tags WHERE arn=?", (row[1],))
            return json.loads(row[0])

    def list(self, kind: str) -> list[dict[str, Any]]:
        """All documents of ``kind`` in creation order (callers sort and filter as the API asks)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM resources WHERE kind=? ORDER BY created, name", (kind,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def kind_of_arn(self, arn: str) -> tuple[str, str] | None:
        """``(kind, name)`` of the resource with this ARN, if any."""
        with self._lock:
            row = self._db.execute("SELECT kind, name FROM resources WHERE arn=?", (arn,)).fetchone()
        return (row[0], row[1]) if row else None

    # -- tags --------------------------------------------------------------------------------------------

    def add_tags(self, arn: str, tags: list[dict[str, str]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?, ?, ?)",
                [(arn, t["Key"], t.get("Value", "")) for t in tags],
            )

    def list_tags(self, arn: str) -> list[dict[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM tags WHERE arn=? ORDER BY key", (arn,)).fetchall()
        return [{"Key": k, "Value": v} for k, v in rows]

    def delete_tags(self, arn: str, keys: list[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM tags WHERE arn=? AND key=?", [(arn, k) for k in keys])
