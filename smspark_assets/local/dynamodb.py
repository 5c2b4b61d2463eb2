"""DynamoDB inside the local service: moto's implementation, called in-process, with its state persisted.

Requests with ``X-Amz-Target: DynamoDB_20120810.*`` are handed to moto's WSGI app for DynamoDB. moto keeps
tables in memory; two files make them durable:

* a **journal** (``dynamodb.journal.<generation>``): every acknowledged write request is appended before
  the answer leaves (one buffered ``write`` per request, no fsync: it survives the process being killed,
  which is what a local service has to survive);
* a **snapshot** (``dynamodb.pickle``): the pickled moto backend, written in a background thread once
  writes go quiet (debounced, so bulk loads of hundreds of thousands of items never pay a snapshot per
  request), at most ``max_dirty_seconds`` apart under sustained writes, and on graceful stop. Pickling
  holds the lock (about 4 s for 280,000 items), so under sustained writes it is rare: the journal
  already makes every write durable, a snapshot only shortens the replay after a crash.

Taking a snapshot starts a new journal generation under the same lock, so restoring = loading the
snapshot (generation ``g``) and replaying the journals ``>= g`` in order. moto is not thread-safe, so
requests are serialised.

Paginated reads are linear: moto answers each page of a ``Query`` or ``Scan`` by filtering, sorting and
skipping through the whole table again, so reading a day of N items in pages cost O(N * table). The
host runs such a read once, whole, cuts it into DynamoDB's 1 MB pages and answers the following pages
(requested with the ``LastEvaluatedKey`` it handed out) from memory until the next write
(:class:`PagedReads`). Reads it cannot reproduce exactly (``Limit``, filters, segments, ``COUNT``,
consumed capacity, legacy parameters) go to moto page by page as before.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

from smspark_assets.local.dynamodb_batch_writes import apply_puts
from smspark_assets.local.private_files import FILE_MODE, open_private, private_dir, tighten

# Reads leave the state unchanged; anything else is journaled and marks the state dirty.
_READ_ONLY = {
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables", "TransactGetItems",
    "DescribeTimeToLive", "ListTagsOfResource", "DescribeContinuousBackups", "DescribeEndpoints",
    "DescribeLimits", "ListBackups", "ListGlobalTables", "DescribeKinesisStreamingDestination",
}  # fmt: skip
# What moto reads from a request's headers (region and account come from the credential scope).
_REPLAY_HEADERS = ("content-type", "x-amz-target", "authorization", "x-moto-account-id")
_RECORD = struct.Struct("<II")
_JSON_HEADERS = [("Content-Type", "application/x-amz-json-1.0")]
# DynamoDB reads at most 1 MB per Query or Scan page; the host's pages hold at most this many bytes of items.
PAGE_BYTES = 1_000_000
# Pages kept for reads in progress (oldest read dropped first); a page not kept is read from moto instead.
PAGE_CACHE_BYTES = 256 * 1024 * 1024
# Parameters under which a page depends on more than the items and the start key: left to moto.
_NOT_PAGED_HERE = ("Limit", "FilterExpression", "QueryFilter", "ScanFilter", "ConditionalOperator", "Segment",
                   "TotalSegments", "AttributesToGet")


class DynamoDBHost:
    """moto's DynamoDB behind a lock, durable through a journal and snapshots next to ``snapshot_path``."""

    def __init__(
        self, snapshot_path: Path, quiet_seconds: float = 2.0, max_dirty_seconds: float = 120.0
    ) -> None:
        self.snapshot_path = snapshot_path
        self.quiet_seconds = quiet_seconds
        self.max_dirty_seconds = max_dirty_seconds
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one snapshot at a time (the saver thread and close())
        self._app: Any = None
        self._backend: Any = None
        self._dirty_since: float | None = None
        self._last_write = 0.0
        self._generation = 0
        self._journal: BinaryIO | None = None
        self._closing = threading.Event()
        self._saver = threading.Thread(target=self._save_loop, name="dynamodb-snapshots", daemon=True)
        self.snapshots = 0
        self.replayed = 0
        # Share of BatchWriteItem items handed back unprocessed (fault injection; the service sets it).
        self.unprocessed_rate: Callable[[], float] = lambda: 0.0
        self.paged_reads = PagedReads()
        self.page_bytes = PAGE_BYTES

    # -- files ------------------------------------------------------------------------------------------

    def _journal_path(self, generation: int) -> Path:
        return self.snapshot_path.with_name(f"dynamodb.journal.{generation}")

    def _journals(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.snapshot_path.parent.glob("dynamodb.journal.*"):
            suffix = path.name.rsplit(".", 1)[-1]
            if suffix.isdigit():
                found.append((int(suffix), path))
        return sorted(found)

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Import moto, restore the snapshot, replay the journals after it, start the snapshot thread."""
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        import moto.backends
        from moto.moto_server.werkzeug_app import create_backend_app

        self._backend = moto.backends.get_backend("dynamodb")
        self._app = create_backend_app("dynamodb")
        private_dir(self.snapshot_path.parent)
        tighten(self.snapshot_path, FILE_MODE)  # the tables are users' data: private (0600)
        generation = 0
        if self.snapshot_path.exists():
            with self.snapshot_path.open("rb") as fh:
                saved = pickle.load(fh)
            if "generation" not in saved:  # a snapshot of the first version: the bare backend, no journal
                saved = {"generation": 0, "backend": saved}
            generation = int(saved["generation"])
            self._backend.clear()
            self._backend.update(saved["backend"])
        for number, path in self._journals():
            if number >= generation:
                self.replayed += self._replay(path)
        if self.replayed:
            # Continue in a fresh generation: what was replayed is only durable in the old journals until
            # the next snapshot, so they are kept until then.
            self._generation = max([generation] + [n for n, _ in self._journals()]) + 1
        else:
            # Nothing after the snapshot: its (empty or stale) journals can go, and the generation continues.
            for _, path in self._journals():
                path.unlink(missing_ok=True)
            self._generation = generation
        self._journal = open_private(self._journal_path(self._generation), "ab")
        if self.replayed:
            self._dirty_since = self._last_write = time.monotonic()
        self._saver.start()

    def _replay(self, path: Path) -> int:
        data = path.read_bytes()
        offset, count = 0, 0
        while offset + _RECORD.size <= len(data):
            meta_len, body_len = _RECORD.unpack_from(data, offset)
            end = offset + _RECORD.size + meta_len + body_len
            if end > len(data):
                break  # the last record was cut short by a crash; it was never acknowledged
            meta = json.loads(data[offset + _RECORD.size:offset + _RECORD.size + meta_len])
            body = data[offset + _RECORD.size + meta_len:end]
            action = meta["headers"].get("x-amz-target", "").rsplit(".", 1)[-1]
            self._apply(action, meta["path"], meta["query"], list(meta["headers"].items()), body)
            offset, count = end, count + 1
        return count

    def close(self) -> None:
        """Stop the snapshot thread and write a final snapshot if anything changed."""
        self._closing.set()
        if self._saver.is_alive():
            self._saver.join(timeout=5)
        if self._dirty_since is not None:
            self.save()
        if self._journal is not None:
            self._journal.close()

    # -- requests ---------------------------------------------------------------------------------------

    def _call(
        self, path: str, query: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "0",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        for key, value in headers:
            name = key.upper().replace("-", "_")
            if name == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif name != "CONTENT_LENGTH":
                environ[f"HTTP_{name}"] = value
        captured: dict[str, Any] = {}

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> None:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = response_headers

        out = b"".join(self._app(environ, start_response))
        return captured["status"], captured["headers"], out

    def _apply(self, action: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes,
               doc: dict[str, Any] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request applied to moto (the caller holds the lock): bulk puts skip moto's HTTP layer (a
        third of its time); anything else, or any error, is moto's. ``doc`` is ``body`` already parsed."""
        answered = apply_puts(headers, body, doc) if action == "BatchWriteItem" else None
        return answered or self._call(path, query, headers, body)

    def handle(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes, target: str,
        doc: dict[str, Any] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one DynamoDB request (always a POST); returns ``(status, headers, body)``. ``doc``: the
        body already parsed (the service parses it to check it), so that bulk puts do not parse it again."""
        action = target.rsplit(".", 1)[-1]
        writes = action not in _READ_ONLY
        if action in ("Query", "Scan"):
            answered = self._paged_read(path, query, headers, body, action)
            if answered is not None:
                return answered
        held: dict[str, list[Any]] = {}
        if target.endswith(".BatchWriteItem"):
            rate = self.unprocessed_rate()
            if rate > 0.0:
                body, held = _hold_back(body, rate)
                doc = None  # the body that is applied is no longer the one parsed
                if body is None:  # every item held back: nothing to apply, nothing to journal
                    return 200, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(
                        {"UnprocessedItems": held}).encode()
        with self._lock:
            status, response_headers, out = self._apply(action, path, query, headers, body, doc)
            if held and status == 200:
                answer = json.loads(out)
                unprocessed = answer.setdefault("UnprocessedItems", {})
                for table, requests in held.items():
                    unprocessed.setdefault(table, []).extend(requests)
                out = json.dumps(answer).encode()
                response_headers = [(k, v) for k, v in response_headers if k.lower() not in
                                    ("content-length", "x-amz-crc32")]
            if writes and status == 200:
                self.paged_reads.clear()  # pages cut before a write may no longer be what a read sees
                self._append(path, query, headers, body)
                now = time.monotonic()
                self._last_write = now
                if self._dirty_since is None:
                    self._dirty_since = now
        return status, response_headers, out

    def _paged_read(self, path: str, query: str, headers: list[tuple[str, str]], body: bytes, action: str
                    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """A page of a Query or Scan from the host's pages, or None to let moto answer it."""
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not _pageable(doc):
            return None
        read = _read_identity(action, doc, headers)
        with self._lock:
            start = doc.get("ExclusiveStartKey")
            if start is not None:
                page = self.paged_reads.take(read, start)
                return None if page is None else (200, list(_JSON_HEADERS), page)
            keys = self._key_attributes(path, query, headers, doc)
            if keys is None:
                return None
            ask, added = _with_key_attributes(doc, keys)
            status, response_headers, out = self._call_whole(path, query, headers, json.dumps(ask).encode())
            if status != 200:
                return status, response_headers, out
            answer = json.loads(out)
            pages = cut_pages(answer.get("Items", []), keys, added, self.page_bytes)
            self.paged_reads.keep(read, pages[1:], pages[0].last_key)
            return 200, list(_JSON_HEADERS), pages[0].body

    def _call_whole(self, path: str, query: str, headers: list[tuple[str, str]], body: bytes
                    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's answer to a read without its 1 MB page limit (the caller holds the lock)."""
        from moto.dynamodb.models import table as moto_table

        limit = moto_table.RESULT_SIZE_LIMIT
        moto_table.RESULT_SIZE_LIMIT = float("inf")
        try:
            return self._call(path, query, headers, body)
        finally:
            moto_table.RESULT_SIZE_LIMIT = limit

    def _key_attributes(self, path: str, query: str, headers: list[tuple[str, str]], doc: dict[str, Any]
                        ) -> list[str] | None:
        """The attributes a ``LastEvaluatedKey`` of this read holds: the table's keys, then the index's."""
        describe = [(k, "DynamoDB_20120810.DescribeTable" if k.lower() == "x-amz-target" else v) for k, v in headers]
        status, _, out = self._call(path, query, describe, json.dumps({"TableName": doc.get("TableName")}).encode())
        if status != 200:
            return None  # moto answers the read itself, with its own error
        table = json.loads(out)["Table"]
        names = [k["AttributeName"] for k in table.get("KeySchema", [])]
        index_name = doc.get("IndexName")
        if index_name:
            indexes = table.get("GlobalSecondaryIndexes", []) + table.get("LocalSecondaryIndexes", [])
            index = next((i for i in indexes if i.get("IndexName") == index_name), None)
            if index is None:
                return None
            names += [k["AttributeName"] for k in index.get("KeySchema", []) if k["AttributeName"] not in names]
        return names

    def _append(self, path: str, query: str, headers: list[tuple[str, str]], body: bytes) -> None:
        kept = {k.lower(): v for k, v in headers if k.lower() in _REPLAY_HEADERS}
        meta = json.dumps({"path": path, "query": query, "headers": kept}).encode()
        assert self._journal is not None
        # One write call per record; flushed to the OS before the client gets its answer.
        self._journal.write(_RECORD.pack(len(meta), len(body)) + meta + body)
        self._journal.flush()

    # -- snapshots --------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the snapshot now (atomically: a crash mid-write keeps the previous one and its journals)."""
        with self._save_lock:
            self._save()

    def _save(self) -> None:
        with self._lock:
            if self._backend is None:
                return
            data = pickle.dumps(
                {"generation": self._generation + 1, "backend": dict(self._backend)},
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            # New writes go to the next generation's journal; the snapshot covers everything before it.
            self._generation += 1
            if self._journal is not None:
                self._journal.close()
            self._journal = open_private(self._journal_path(self._generation), "ab")
            self._dirty_since = None
        tmp = self.snapshot_path.with_suffix(".tmp")
        with open_private(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.snapshot_path)
        for number, path in self._journals():
            if number < self._generation:
                path.unlink(missing_ok=True)
        self.snapshots += 1

    def _save_loop(self) -> None:
        while not self._closing.wait(0.25):
            dirty_since = self._dirty_since
            if dirty_since is None:
                continue
            now = time.monotonic()
            if now - self._last_write >= self.quiet_seconds or now - dirty_since >= self.max_dirty_seconds:
                try:
                    self.save()
                except Exception:  # noqa: BLE001 - retried on the next tick; the service must keep serving
                    time.sleep(1.0)


@dataclass(frozen=True)
class Page:
    """One page of a read: the answer's body and the ``LastEvaluatedKey`` it ends with (None: the last)."""

    body: bytes
    last_key: dict[str, Any] | None


class PagedReads:
    """Pages of reads in progress, by (read, start key); all dropped on any write.

    A read is identified by its action, its parameters without ``ExclusiveStartKey`` and the caller's
    account and region; the page after a ``LastEvaluatedKey`` is kept under that key. At most
    ``max_bytes`` of pages are kept: the oldest reads' pages go first.
    """

    def __init__(self, max_bytes: int = PAGE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[tuple[str, str], Page] = OrderedDict()
        self._bytes = 0
        self.served = 0

    def clear(self) -> None:
        self._pages.clear()
        self._bytes = 0

    def keep(self, read: str, pages: list[Page], first_key: dict[str, Any] | None = None) -> None:
        """Keep ``pages`` (the pages after the first) under the last key of the page before each."""
        previous = first_key
        for page in pages:
            if previous is None:
                break
            self._pages[(read, _canonical(previous))] = page
            self._bytes += len(page.body)
            previous = page.last_key
        while self._bytes > self.max_bytes and self._pages:
            _, dropped = self._pages.popitem(last=False)
            self._bytes -= len(dropped.body)

    def take(self, read: str, start: dict[str, Any]) -> bytes | None:
        """The page of ``read`` after ``start``, once (None when it is not kept)."""
        page = self._pages.pop((read, _canonical(start)), None)
        if page is None:
            return None
        self._bytes -= len(page.body)
        self.served += 1
        return page.body


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _pageable(doc: dict[str, Any]) -> bool:
    """A read the host pages exactly as DynamoDB: every item counted, no limit, no segments."""
    if any(name in doc for name in _NOT_PAGED_HERE):
        return False
    if doc.get("Select") == "COUNT" or doc.get("ReturnConsumedCapacity", "NONE") != "NONE":
        return False
    return isinstance(doc.get("TableName"), str)


def _read_identity(action: str, doc: dict[str, Any], headers: list[tuple[str, str]]) -> str:
    """The read's action, parameters (without its start key) and the caller's account and region."""
    lowered = {k.lower(): v for k, v in headers}
    scope = re.search(r"Credential=[^/]*/[^/]*/([^/]*)/", lowered.get("authorization", ""))
    return _canonical([action, {k: v for k, v in doc.items() if k != "ExclusiveStartKey"},
                       scope.group(1) if scope else "", lowered.get("x-moto-account-id", "")])


def _with_key_attributes(doc: dict[str, Any], keys: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The read asking also for the key attributes its projection leaves out (to build each page's
    ``LastEvaluatedKey``); the names added, to be removed from the items again."""
    projection = doc.get("ProjectionExpression")
    if not isinstance(projection, str):
        return doc, []
    names = dict(doc.get("ExpressionAttributeNames") or {})
    heads = set()
    for path in projection.split(","):
        head = re.split(r"[.\[]", path.strip(), maxsplit=1)[0]
        heads.add(names.get(head, head))
    added = [key for key in keys if key not in heads]
    if not added:
        return doc, []
    extra = []
    for number, key in enumerate(added):
        alias = f"#smsparkkey{number}"
        names[alias] = key
        extra.append(alias)
    return {**doc, "ProjectionExpression": ", ".join([projection, *extra]), "ExpressionAttributeNames": names}, added


def cut_pages(items: list[dict[str, Any]], keys: list[str], added: list[str], page_bytes: int = PAGE_BYTES
              ) -> list[Page]:
    """Cut a whole read's items (in moto's order) into pages of at most ``page_bytes`` of item JSON;
    each page but the last ends with the ``LastEvaluatedKey`` of its last item."""
    pages: list[Page] = []
    chunk: list[str] = []
    size = 0

    def close(last: dict[str, Any] | None) -> None:
        last_key = None if last is None else {k: last[k] for k in keys if k in last}
        body = '{"Count":%d,"Items":[%s],"ScannedCount":%d' % (len(chunk), ",".join(chunk), len(chunk))
        body += (',"LastEvaluatedKey":%s}' % json.dumps(last_key)) if last_key is not None else "}"
        pages.append(Page(body.encode(), last_key))

    previous: dict[str, Any] | None = None
    for item in items:
        shown = {k: v for k, v in item.items() if k not in added} if added else item
        text = json.dumps(shown)
        if chunk and size + len(text) > page_bytes:
            close(previous)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text)
        previous = item
    close(None)
    return pages


def _hold_back(body: bytes, rate: float) -> tuple[bytes | None, dict[str, list[Any]]]:
    """Injected throttling: hand back each write request of a BatchWriteItem with probability ``rate``.

    Returns the body with the kept requests (``None`` when none is kept) and the held-back ones by table,
    which the answer lists under ``UnprocessedItems`` as DynamoDB does when it throttles part of a batch.
    """
    doc = json.loads(body)
    kept: dict[str, list[Any]] = {}
    held: dict[str, list[Any]] = {}
    for table, requests in (doc.get("RequestItems") or {}).items():
        for request in requests:
            (held if random.random() < rate else kept).setdefault(table, []).append(request)
    if not held:
        return body, {}
    if not kept:
        return None, held
    doc["RequestItems"] = kept
    return json.dumps(doc).encode(), held
