"""CloudWatch Logs of the local stack (JSON 1.1, ``X-Amz-Target: Logs_20140328.<Operation>``).

Serves what the platform and dagster-aws call: CreateLogGroup, CreateLogStream, DeleteLogGroup,
DeleteLogStream, DescribeLogGroups, DescribeLogStreams, PutLogEvents, GetLogEvents, FilterLogEvents.
Other code of the stack (the EMR Serverless runner) appends lines in process with :meth:`LogsApi.append`.

Events live in one SQLite file (``local/cloudwatch-logs.sqlite``) so they survive a restart. Each stream
numbers its events 1, 2, 3... in arrival order; GetLogEvents tokens are positions in that order
(``f/<n>``: after event n; ``b/<n>``: before event n), so a reader holding a token never misses or repeats
an event that arrives later. Timestamps are real wall-clock milliseconds: dagster-aws filters with
``startTime`` = the time its session started.

A forward read that finds nothing new waits up to :data:`EMPTY_TAIL_WAIT_SECONDS` for the next event
before answering: dagster-aws's ``tail_cloudwatch_events`` polls without sleeping, and would otherwise spin
a core for as long as its process lives (on AWS, throttling bounds it).
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from smspark_assets.local.sqlite_store import SqliteStore
from smspark_assets.local.api_errors import ApiError

ACCOUNT = "123456789012"
REGION = "us-east-1"
# AWS limits (CloudWatch Logs quotas).
MAX_EVENTS_PER_PUT = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024
MAX_GET_EVENTS = 10_000
MAX_DESCRIBE = 50
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
EMPTY_TAIL_WAIT_SECONDS = 0.5
_GROUP_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
_STREAM_RE = re.compile(r"^[^:*]{1,512}$")
_TOKEN_RE = re.compile(r"^([fb])/(\d{1,56})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_groups (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    retention INTEGER,
    group_class TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY,
    grp TEXT NOT NULL REFERENCES log_groups(name),
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    first_ts INTEGER,
    last_ts INTEGER,
    last_ingest INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (grp, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    ingest INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def group_arn(group: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"


def _not_found(what: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"The specified {what} does not exist.")


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def _str(params: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise _invalid(f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: "
                           "Member must not be null")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string")
    return value


def _int(params: dict[str, Any], key: str, low: int | None = None, high: int | None = None) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key} must be an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _invalid(f"1 validation error detected: Value '{value}' at '{key}' failed to satisfy constraint: "
                       f"Member must have value between {low} and {high}")
    return value


def _group_name(params: dict[str, Any]) -> str:
    """``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN), checked against AWS's pattern."""
    name = _str(params, "logGroupName")
    ident = _str(params, "logGroupIdentifier")
    if name is not None and ident is not None:
        raise _invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if name is None and ident is not None:
        name = ident.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in ident else ident
    if name is None:
        raise _invalid("Either logGroupName or logGroupIdentifier must be provided.")
    if not _GROUP_RE.match(name):
        raise _invalid(f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy "
                       r"constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
    return name


def _stream_name(value: str | None) -> str:
    if value is None or not _STREAM_RE.match(value):
        raise _invalid(f"1 validation error detected: Value '{value}' at 'logStreamName' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: [^:*]*")
    return value


class LogStore(SqliteStore):
    """Groups, streams and events in SQLite; one connection under a lock (writes are small batches)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)
        # Readers waiting for a stream's next event (long poll); notified on every append.
        self.appended = threading.Condition(threading.Lock())

    tx = SqliteStore.transaction

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def create_group(self, name: str, tags: dict[str, str] | None = None, group_class: str = "STANDARD",
                     exist_ok: bool = False) -> None:
        with self.tx() as db:
            if db.execute("SELECT 1 FROM log_groups WHERE name=?", (name,)).fetchone():
                if exist_ok:
                    return
                raise ApiError("ResourceAlreadyExistsException", "The specified log group already exists")
            db.execute("INSERT INTO log_groups VALUES (?, ?, NULL, ?, ?)",
                       (name, now_ms(), group_class, json.dumps(tags or {})))

    def stream_id(self, group: str, stream: str, create: bool = False) -> int:
        """The stream's row id; created (with its group) when ``create``, else ResourceNotFoundException."""
        with self.tx() as db:
            row = db.execute("SELECT id FROM log_streams WHERE grp=? AND name=?", (group, stream)).fetchone()
            if row:
                return int(row[0])
            if not db.execute("SELECT 1 FROM log_groups WHERE name=?", (group,)).fetchone():
                if not create:
                    raise _not_found("log group")
                db.execute("INSERT INTO log_groups VALUES (?, ?, NULL, 'STANDARD', '{}')", (group, now_ms()))
            if not create:
                raise _not_found("log stream")
            cur = db.execute("INSERT INTO log_streams (grp, name, created) VALUES (?, ?, ?)",
                             (group, stream, now_ms()))
            return int(cur.lastrowid)

    def append(self, stream_id: int, events: list[tuple[int, str]]) -> int:
        """Add ``(timestamp ms, message)`` events in order; returns the last sequence number."""
        if not events:
            return 0
        ingest = now_ms()
        with self.tx() as db:
            last = int(db.execute("SELECT last_seq FROM log_streams WHERE id=?", (stream_id,)).fetchone()[0])
            rows = [(stream_id, last + i, ts, ingest, msg) for i, (ts, msg) in enumerate(events, start=1)]
            db.executemany("INSERT INTO log_events VALUES (?, ?, ?, ?, ?)", rows)
            size = sum(len(m.encode()) for _, m in events)
            db.execute(
                "UPDATE log_streams SET last_seq=?, last_ingest=?, stored_bytes=stored_bytes+?, "
                "first_ts=COALESCE(first_ts, ?), last_ts=MAX(COALESCE(last_ts, ?), ?) WHERE id=?",
                (last + len(rows), ingest, size, events[0][0], events[-1][0], max(t for t, _ in events), stream_id),
            )
        with self.appended:
            self.appended.notify_all()
        return last + len(rows)

    def last_seq(self, stream_id: int) -> int:
        return int(self.query("SELECT last_seq FROM log_streams WHERE id=?", (stream_id,))[0][0])


class LogsApi:
    """The CloudWatch Logs API of the local stack (also used in process by the EMR Serverless runner)."""

    def __init__(self, service: Any) -> None:
        self.store = LogStore(service.layout.local_dir / "cloudwatch-logs.sqlite")

    def shutdown(self) -> None:
        self.store.close()

    # -- in process -------------------------------------------------------------------------------------

    def append(self, group: str, stream: str, lines: list[str], timestamp_ms: int | None = None) -> None:
        """Append ``lines`` as events of ``group``/``stream`` (both created on the first event, not before:
        an existing empty stream makes dagster-aws's tail loop spin)."""
        lines = [line for line in lines if line]
        if not lines:
            return
        ts = now_ms() if timestamp_ms is None else timestamp_ms
        sid = self.store.stream_id(group, stream, create=True)
        # Over-long lines are cut at AWS's event size limit rather than refused: a log must not lose the rest.
        self.store.append(sid, [(ts, line.encode()[:MAX_EVENT_BYTES].decode(errors="ignore")) for line in lines])

    # -- the API ----------------------------------------------------------------------------------------

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise ApiError("UnknownOperationException", f"The local stack does not implement Logs {operation}.")
        return handler(params)

    def _op_CreateLogGroup(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = _group_name(params)
        tags = params.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise _invalid("tags must be a map of strings")
        group_class = _str(params, "logGroupClass") or "STANDARD"
        if group_class not in ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY"):
            raise _invalid(f"logGroupClass {group_class!r} is not one of STANDARD, INFREQUENT_ACCESS, DELIVERY")
        self.store.create_group(name, tags, group_class)
        return {}

    def _op_CreateLogStream(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        stream = _stream_name(_str(params, "logStreamName", required=True))
        with self.store.tx() as db:
            if not db.execute("SELECT 1 FROM log_groups WHERE name=?", (group,)).fetchone():
                raise _not_found("log group")
            if db.execute("SELECT 1 FROM log_streams WHERE grp=? AND name=?", (group, stream)).fetchone():
                raise ApiError("ResourceAlreadyExistsException", "The specified log stream already exists")
            db.execute("INSERT INTO log_streams (grp, name, created) VALUES (?, ?, ?)", (group, stream, now_ms()))
        return {}

    def _op_DeleteLogGroup(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        with self.store.tx() as db:
            if not db.execute("SELECT 1 FROM log_groups WHERE name=?", (group,)).fetchone():
                raise _not_found("log group")
            db.execute("DELETE FROM log_events WHERE stream IN (SELECT id FROM log_streams WHERE grp=?)", (group,))
            db.execute("DELETE FROM log_streams WHERE grp=?", (group,))
            db.execute("DELETE FROM log_groups WHERE name=?", (group,))
        return {}

    def _op_DeleteLogStream(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        sid = self.store.stream_id(group, _stream_name(_str(params, "logStreamName", required=True)))
        with self.store.tx() as db:
            db.execute("DELETE FROM log_events WHERE stream=?", (sid,))
            db.execute("DELETE FROM log_streams WHERE id=?", (sid,))
        return {}

    def _op_DescribeLogGroups(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        prefix = _str(params, "logGroupNamePrefix")
        pattern = _str(params, "logGroupNamePattern")
        if prefix is not None and pattern is not None:
            raise _invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        limit = _int(params, "limit", 1, MAX_DESCRIBE) or MAX_DESCRIBE
        after = _str(params, "nextToken") or ""
        rows = self.store.query(
            "SELECT g.name, g.created, g.retention, g.group_class, "
            "(SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams s WHERE s.grp=g.name) "
            "FROM log_groups g WHERE g.name > ? ORDER BY g.name", (after,))
        if prefix:
            rows = [r for r in rows if r[0].startswith(prefix)]
        if pattern:
            rows = [r for r in rows if pattern.lower() in r[0].lower()]
        page = rows[:limit]
        groups = []
        for name, created, retention, group_class, stored in page:
            doc: dict[str, Any] = {"logGroupName": name, "creationTime": created, "metricFilterCount": 0,
                                   "arn": group_arn(name) + ":*", "storedBytes": stored,
                                   "logGroupClass": group_class, "logGroupArn": group_arn(name)}
            if retention is not None:
                doc["retentionInDays"] = retention
            groups.append(doc)
        out: dict[str, Any] = {"logGroups": groups}
        if len(rows) > limit:
            out["nextToken"] = page[-1][0]
        return out

    def _op_DescribeLogStreams(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        prefix = _str(params, "logStreamNamePrefix")
        order = _str(params, "orderBy") or "LogStreamName"
        if order not in ("LogStreamName", "LastEventTime"):
            raise _invalid(f"orderBy {order!r} is not one of LogStreamName, LastEventTime")
        if order == "LastEventTime" and prefix:
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        descending = bool(params.get("descending", False))
        limit = _int(params, "limit", 1, MAX_DESCRIBE) or MAX_DESCRIBE
        offset = 0
        token = _str(params, "nextToken")
        if token is not None:
            if not token.isdigit():
                raise _invalid("The specified nextToken is invalid.")
            offset = int(token)
        if not self.store.query("SELECT 1 FROM log_groups WHERE name=?", (group,)):
            raise _not_found("log group")
        key = "name" if order == "LogStreamName" else "COALESCE(last_ts, 0), name"
        if descending:
            key = ", ".join(f"{part.strip()} DESC" for part in key.split(","))
        sql = ("SELECT name, created, first_ts, last_ts, last_ingest, stored_bytes FROM log_streams WHERE grp=?"
               + (" AND substr(name, 1, ?) = ?" if prefix else "") + f" ORDER BY {key} LIMIT ? OFFSET ?")
        args: list[Any] = [group] + ([len(prefix), prefix] if prefix else []) + [limit + 1, offset]
        rows = self.store.query(sql, args)
        streams = []
        for name, created, first_ts, last_ts, last_ingest, stored in rows[:limit]:
            doc: dict[str, Any] = {"logStreamName": name, "creationTime": created,
                                   "arn": f"{group_arn(group)}:log-stream:{name}", "storedBytes": stored}
            if first_ts is not None:
                doc.update(firstEventTimestamp=first_ts, lastEventTimestamp=last_ts, lastIngestionTime=last_ingest)
            streams.append(doc)
        out: dict[str, Any] = {"logStreams": streams}
        if len(rows) > limit:
            out["nextToken"] = str(offset + limit)
        return out

    def _op_PutLogEvents(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        stream = _stream_name(_str(params, "logStreamName", required=True))
        events = params.get("logEvents")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_PUT:
            raise _invalid(f"logEvents must be a list of 1 to {MAX_EVENTS_PER_PUT} events")
        parsed: list[tuple[int, str]] = []
        size = 0
        for i, event in enumerate(events):
            if not isinstance(event, dict):
                raise _invalid(f"logEvents[{i}] must be an object")
            ts, message = event.get("timestamp"), event.get("message")
            if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(message, str) or not message:
                raise _invalid(f"logEvents[{i}] needs an integer timestamp and a non-empty message")
            length = len(message.encode())
            if length > MAX_EVENT_BYTES:
                raise _invalid(f"Log event too large: {length} bytes exceeds limit of {MAX_EVENT_BYTES}")
            size += length + EVENT_OVERHEAD_BYTES
            parsed.append((ts, message))
        if size > MAX_BATCH_BYTES:
            raise _invalid(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
        if any(b[0] < a[0] for a, b in zip(parsed, parsed[1:])):
            raise _invalid("Log events in a single PutLogEvents request must be in chronological order.")
        if parsed[-1][0] - parsed[0][0] > 24 * 3600 * 1000:
            raise _invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
        sid = self.store.stream_id(group, stream)
        current = now_ms()
        # As AWS: events older than 14 days or over 2 hours ahead are rejected by index range, the rest kept.
        too_old = max((i for i, (ts, _) in enumerate(parsed) if ts < current - TOO_OLD_MS), default=None)
        too_new = min((i for i, (ts, _) in enumerate(parsed) if ts > current + TOO_NEW_MS), default=None)
        keep = parsed[(too_old + 1 if too_old is not None else 0):(too_new if too_new is not None else len(parsed))]
        seq = self.store.append(sid, keep) if keep else self.store.last_seq(sid)
        out: dict[str, Any] = {"nextSequenceToken": f"{seq:056d}"}
        rejected: dict[str, int] = {}
        if too_old is not None:
            rejected["tooOldLogEventEndIndex"] = too_old
        if too_new is not None:
            rejected["tooNewLogEventStartIndex"] = too_new
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    def _op_GetLogEvents(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        stream = _stream_name(_str(params, "logStreamName", required=True))
        start = _int(params, "startTime", 0)
        end = _int(params, "endTime", 0)
        limit = _int(params, "limit", 1, MAX_GET_EVENTS) or MAX_GET_EVENTS
        token = _str(params, "nextToken")
        from_head = bool(params.get("startFromHead", False))
        sid = self.store.stream_id(group, stream)
        if token is not None:
            match = _TOKEN_RE.match(token)
            if match is None:
                raise _invalid("The specified nextToken is invalid.")
            forward, position = match.group(1) == "f", int(match.group(2))
        else:
            forward, position = from_head, (0 if from_head else 1 << 62)
        out = self._read(sid, forward, position, start, end, limit)
        if token is not None and forward and not out["events"]:
            # Long poll: wait briefly for the next event rather than let a client spin (see module docstring).
            last = self.store.last_seq(sid)
            with self.store.appended:
                self.store.appended.wait_for(lambda: self.store.last_seq(sid) != last, EMPTY_TAIL_WAIT_SECONDS)
            out = self._read(sid, forward, position, start, end, limit)
        return out

    def _read(self, sid: int, forward: bool, position: int, start: int | None, end: int | None,
              limit: int) -> dict[str, Any]:
        where, args = ["stream=?"], [sid]
        where.append("seq > ?" if forward else "seq < ?")
        args.append(position)
        if start is not None:
            where.append("ts >= ?")
            args.append(start)
        if end is not None:
            where.append("ts < ?")
            args.append(end)
        rows = self.store.query(
            f"SELECT seq, ts, ingest, message FROM log_events WHERE {' AND '.join(where)} "
            f"ORDER BY seq {'ASC' if forward else 'DESC'} LIMIT ?", [*args, limit])
        # A response holds at most 1 MB of events, as on AWS.
        kept, size = [], 0
        for row in rows:
            size += len(row[3].encode()) + EVENT_OVERHEAD_BYTES
            if size > MAX_BATCH_BYTES and kept:
                break
            kept.append(row)
        if not forward:
            kept.reverse()
        events = [{"timestamp": ts, "message": msg, "ingestionTime": ingest} for _, ts, ingest, msg in kept]
        if kept:
            first, last = kept[0][0], kept[-1][0]
        elif forward:
            first, last = position + 1, position
        else:
            # Nothing before this point: reading forward from here starts after what exists now.
            last = min(position - 1, self.store.last_seq(sid))
            first = last + 1
        return {"events": events, "nextForwardToken": f"f/{last:056d}", "nextBackwardToken": f"b/{first:056d}"}

    def _op_FilterLogEvents(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        group = _group_name(params)
        names = params.get("logStreamNames")
        prefix = _str(params, "logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise _invalid("logStreamNames must be a list of strings")
        start = _int(params, "startTime", 0)
        end = _int(params, "endTime", 0)
        limit = _int(params, "limit", 1, MAX_GET_EVENTS) or MAX_GET_EVENTS
        terms = _filter_terms(_str(params, "filterPattern") or "")
        token = _str(params, "nextToken")
        after = (0, 0, 0)
        if token is not None:
            try:
                after = tuple(int(x) for x in token.split("-"))  # type: ignore[assignment]
                assert len(after) == 3
            except (ValueError, AssertionError):
                raise _invalid("The specified nextToken is invalid.") from None
        if not self.store.query("SELECT 1 FROM log_groups WHERE name=?", (group,)):
            raise _not_found("log group")
        where, args = ["s.grp=?", "(e.ts, e.stream, e.seq) > (?, ?, ?)"], [group, *after]
        if names:
            where.append(f"s.name IN ({','.join('?' * len(names))})")
            args += names
        if prefix:
            where.append("substr(s.name, 1, ?) = ?")
            args += [len(prefix), prefix]
        if start is not None:
            where.append("e.ts >= ?")
            args.append(start)
        if end is not None:
            where.append("e.ts < ?")
            args.append(end)
        sql = (f"SELECT e.ts, e.stream, e.seq, s.name, e.ingest, e.message FROM log_events e "
               f"JOIN log_streams s ON s.id = e.stream WHERE {' AND '.join(where)} ORDER BY e.ts, e.stream, e.seq")
        events: list[dict[str, Any]] = []
        more = False
        with self.store._lock:  # noqa: SLF001 - iterate the cursor without materialising a whole group
            for ts, stream_id, seq, name, ingest, message in self.store._db.execute(sql, args):  # noqa: SLF001
                if not _matches(message, terms):
                    continue
                if len(events) == limit:
                    more = True
                    break
                events.append({"logStreamName": name, "timestamp": ts, "message": message,
                               "ingestionTime": ingest, "eventId": f"{ts}-{stream_id}-{seq}"})
        out: dict[str, Any] = {"events": events, "searchedLogStreams": []}
        if more:
            out["nextToken"] = events[-1]["eventId"]
        return out


def _filter_terms(pattern: str) -> tuple[list[str], list[str], list[str]]:
    """CloudWatch's text filter syntax: ``term`` (all required), ``?term`` (any of), ``-term`` (none of)."""
    pattern = pattern.strip()
    if not pattern or pattern == '""':
        return [], [], []
    if pattern.startswith(("{", "[", "%")):
        raise _invalid("The local stack supports text filter patterns only (terms, \"quoted phrases\", ?any, -not).")
    try:
        tokens = shlex.split(pattern)
    except ValueError as exc:
        raise _invalid(f"Invalid character(s) in term: {exc}") from None
    required = [t for t in tokens if not t.startswith(("?", "-"))]
    anyof = [t[1:] for t in tokens if t.startswith("?") and len(t) > 1]
    none = [t[1:] for t in tokens if t.startswith("-") and len(t) > 1]
    return required, anyof, none


def _matches(message: str, terms: tuple[list[str], list[str], list[str]]) -> bool:
    required, anyof, none = terms
    return (all(t in message for t in required) and (not anyof or any(t in message for t in anyof))
            and not any(t in message for t in none))
