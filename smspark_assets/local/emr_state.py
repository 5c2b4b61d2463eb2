"""Durable state of the local EMR Serverless: applications and job runs in ``local/emr-serverless.sqlite``.

Each row holds the document GetApplication / GetJobRun answers (timestamps as epoch seconds), plus the
columns the list calls filter and page on. Writes commit before the API answers, so an acknowledged
run survives a crash; :meth:`EmrState.update_run` is an atomic read-modify-write, so the runner thread
and a CancelJobRun never overwrite each other's state change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from smspark_assets.local.sqlite_store import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY,
    client_token TEXT,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    client_token TEXT,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_by_app ON job_runs (app_id, created);
CREATE INDEX IF NOT EXISTS job_runs_by_state ON job_runs (state);
"""


class EmrState(SqliteStore):
    """Thread-safe access to the EMR Serverless tables (one connection under a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    _tx = SqliteStore.transaction

    # -- applications -----------------------------------------------------------------------------------

    def add_application(self, doc: dict[str, Any], client_token: str | None) -> dict[str, Any]:
        """Insert; with a client token already used, the earlier application is returned (idempotency)."""
        with self._tx() as db:
            if client_token:
                row = db.execute("SELECT doc FROM applications WHERE client_token=?", (client_token,)).fetchone()
                if row:
                    return json.loads(row[0])
            db.execute("INSERT INTO applications VALUES (?, ?, ?, ?, ?)",
                       (doc["applicationId"], client_token, doc["createdAt"], doc["state"], json.dumps(doc)))
            return doc

    def application(self, app_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM applications WHERE id=?", (app_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def applications(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM applications ORDER BY created DESC, id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def update_application(self, app_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute("SELECT doc FROM applications WHERE id=?", (app_id,)).fetchone()
            if row is None:
                return None
            doc = json.loads(row[0])
            change(doc)
            db.execute("UPDATE applications SET state=?, doc=? WHERE id=?", (doc["state"], json.dumps(doc), app_id))
            return doc

    def delete_application(self, app_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM applications WHERE id=?", (app_id,))

    # -- job runs ---------------------------------------------------------------------------------------

    def add_run(self, doc: dict[str, Any], client_token: str | None) -> tuple[dict[str, Any], bool]:
        """Insert a run; ``(doc, created)``. A repeated client token returns the earlier run, not a new one."""
        with self._tx() as db:
            if client_token:
                row = db.execute("SELECT doc FROM job_runs WHERE app_id=? AND client_token=?",
                                 (doc["applicationId"], client_token)).fetchone()
                if row:
                    return json.loads(row[0]), False
            db.execute("INSERT INTO job_runs VALUES (?, ?, ?, ?, ?, ?)",
                       (doc["jobRunId"], doc["applicationId"], client_token, doc["createdAt"], doc["state"],
                        json.dumps(doc)))
            return doc, True

    def run(self, app_id: str, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM job_runs WHERE id=? AND app_id=?", (run_id, app_id)).fetchone()
        return json.loads(row[0]) if row else None

    def runs(self, app_id: str, states: list[str] | None = None, after: float | None = None,
             before: float | None = None) -> list[dict[str, Any]]:
        """Runs of an application, newest first, filtered as ListJobRuns asks."""
        sql, args = "SELECT doc FROM job_runs WHERE app_id=?", [app_id]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        if after is not None:
            sql += " AND created > ?"
            args.append(after)
        if before is not None:
            sql += " AND created < ?"
            args.append(before)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created DESC, id", args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def runs_in_states(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every run in one of ``states``, oldest first (the scheduler's queue order)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT doc FROM job_runs WHERE state IN ({','.join('?' * len(states))}) ORDER BY created, id",
                states).fetchall()
        return [json.loads(r[0]) for r in rows]

    def update_run(self, app_id: str, run_id: str,
                   change: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any] | None:
        """Apply ``change`` to the run's document atomically; it may return False to leave it unchanged."""
        with self._tx() as db:
            row = db.execute("SELECT doc FROM job_runs WHERE id=? AND app_id=?", (run_id, app_id)).fetchone()
            if row is None:
                return None
            doc = json.loads(row[0])
            if change(doc) is False:
                return doc
            db.execute("UPDATE job_runs SET state=?, doc=? WHERE id=?", (doc["state"], json.dumps(doc), run_id))
            return doc
