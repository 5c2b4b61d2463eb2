"""The usage plan of the scores API, locally: a token bucket per API key, and a quota per period.

API Gateway throttles each key of a usage plan with a token bucket: ``burstLimit`` tokens at most,
refilled at ``rateLimit`` tokens per second, one token per request (429 ``Too Many Requests`` when
empty); then counts the request against the key's quota for the period (429 ``Limit Exceeded`` past
it). Quota periods start at UTC midnight (DAY), Monday (WEEK), the first of the month (MONTH); the
counters live in memory, so a restart of the stack resets them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Callable

from smspark_assets.local.scores_api_spec import UsagePlan

THROTTLED = "THROTTLED"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass
class _Bucket:
    tokens: float
    updated: float
    period: str = ""
    used: int = 0


def quota_period_start(period: str, now: dt.datetime) -> str:
    """The start of the quota period ``now`` is in (UTC), as text: the counter's key."""
    day = now.astimezone(dt.timezone.utc).date()
    if period == "WEEK":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    if period == "MONTH":
        return day.replace(day=1).isoformat()
    return day.isoformat()


class UsagePlanLimiter:
    """Admits or refuses requests of each key under ``plan``; thread-safe."""

    def __init__(self, plan: UsagePlan, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        self.plan = plan
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

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
            period = quota_period_start(plan.quota_period, self._wall_clock())
            if period != bucket.period:
                bucket.period, bucket.used = period, 0
            if bucket.used >= plan.quota_limit:
                return QUOTA_EXCEEDED
            bucket.tokens -= 1.0
            bucket.used += 1
            return None
