"""The usage plan of the scores API, locally: a token bucket per API key, and a quota per period.

API Gateway throttles each key of a usage plan with a token bucket: ``burstLimit`` tokens at most,
refilled at ``rateLimit`` tokens per second, one token per request (429 ``Too Many Requests`` when
empty); then counts the request against the key's quota for the period (429 ``Limit Exceeded`` past
it). Quota periods start at UTC midnight (DAY), Monday (WEEK), the first of the month (MONTH).

Quota counters are the stack's state (:class:`QuotaStore`, ``local/scores-api.sqlite``), written as each
request is admitted: a restart (or a changed usage plan, as in API Gateway) does not give a key its quota
back. Token buckets refill within seconds and stay in memory.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from smspark_assets.local.scores_api_spec import UsagePlan
from smspark_assets.local.sqlite_store import SqliteStore

THROTTLED = "THROTTLED"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass
class _Bucket:
    tokens: float
    updated: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_usage (
    key_id TEXT PRIMARY KEY,
    period TEXT NOT NULL,   -- start of the quota period the count belongs to (e.g. 2026-12-02)
    used INTEGER NOT NULL
);
"""


class QuotaStore(SqliteStore):
    """Requests counted per API key in the current quota period, durable across restarts."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def used(self, key_id: str, period: str) -> int:
        """Requests of ``key_id`` counted in ``period`` (0 when its count belongs to another period)."""
        with self._lock:
            row = self._db.execute("SELECT period, used FROM quota_usage WHERE key_id=?", (key_id,)).fetchone()
        return int(row[1]) if row and row[0] == period else 0

    def take(self, key_id: str, period: str, limit: int) -> bool:
        """Count one request of ``key_id`` in ``period`` unless ``limit`` are counted already; True when counted.

        A new period starts the count from zero (the row keeps only the current period).
        """
        with self.transaction() as db:
            row = db.execute("SELECT period, used FROM quota_usage WHERE key_id=?", (key_id,)).fetchone()
            used = int(row[1]) if row and row[0] == period else 0
            if used >= limit:
                return False
            db.execute("INSERT INTO quota_usage (key_id, period, used) VALUES (?, ?, ?) "
                       "ON CONFLICT(key_id) DO UPDATE SET period=excluded.period, used=excluded.used",
                       (key_id, period, used + 1))
            return True


class MemoryQuota:
    """Quota counters in memory (for tests and tools that run the API without a state root)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[str, int]] = {}

    def used(self, key_id: str, period: str) -> int:
        found = self._counts.get(key_id)
        return found[1] if found and found[0] == period else 0

    def take(self, key_id: str, period: str, limit: int) -> bool:
        used = self.used(key_id, period)
        if used >= limit:
            return False
        self._counts[key_id] = (period, used + 1)
        return True


def quota_period_start(period: str, now: dt.datetime) -> str:
    """The start of the quota period ``now`` is in (UTC), as text: the counter's key."""
    day = now.astimezone(dt.timezone.utc).date()
    if period == "WEEK":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    if period == "MONTH":
        return day.replace(day=1).isoformat()
    return day.isoformat()


def quota_counter_period(period: str, now: dt.datetime) -> str:
    """What a count is stored under: the period kind and its start (``DAY:2026-12-02``). Stored with the
    count, so a restart in the next period, or a plan with another period, starts from zero."""
    return f"{period}:{quota_period_start(period, now)}"


class UsagePlanLimiter:
    """Admits or refuses requests of each key under ``plan``; thread-safe."""

    def __init__(self, plan: UsagePlan, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 quota: QuotaStore | MemoryQuota | None = None) -> None:
        self.plan = plan
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        # The stack passes its QuotaStore; without one, counts live as long as this limiter.
        self.quota = quota if quota is not None else MemoryQuota()

    def admit(self, key: str) -> str | None:
        """None when the request may go on; else why not (``THROTTLED`` or ``QUOTA_EXCEEDED``)."""
        plan = self.plan
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(plan.burst_limit), now)
            bucket.tokens = min(float(plan.burst_limit), bucket.tokens + (now - bucket.updated) * plan.rate_limit)
            bucket.updated = now
            if bucket.tokens < 1.0:
                return THROTTLED
            period = quota_counter_period(plan.quota_period, self._wall_clock())
            if not self.quota.take(key, period, plan.quota_limit):
                return QUOTA_EXCEEDED
            bucket.tokens -= 1.0
            return None
