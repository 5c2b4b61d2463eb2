"""Issue 14: the scores API's quota counters are the stack's state: a restart does not reset a daily quota."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from smspark_assets.local import process
from smspark_assets.local.api_keys import load_or_create_api_key
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.scores_api import QUOTA_DB_NAME, api_base_url
from smspark_assets.local.scores_api_limits import QUOTA_EXCEEDED, THROTTLED, QuotaStore, UsagePlanLimiter
from smspark_assets.local.scores_api_spec import UsagePlan

pytestmark = pytest.mark.timeout(120)

DAY = dt.datetime(2026, 12, 2, 23, 59, tzinfo=dt.timezone.utc)


def _limiter(path: Path, quota: int, when: list[dt.datetime], period: str = "DAY") -> UsagePlanLimiter:
    # A bucket that never empties: only the quota refuses.
    return UsagePlanLimiter(UsagePlan(1e6, 1_000_000, quota, period), wall_clock=lambda: when[0],
                            quota=QuotaStore(path))


def test_a_restart_keeps_the_days_count_and_the_next_day_starts_afresh(tmp_path: Path) -> None:
    path, when = tmp_path / "local" / QUOTA_DB_NAME, [DAY]
    first = _limiter(path, 3, when)
    assert [first.admit("key-1") for _ in range(4)] == [None, None, None, QUOTA_EXCEEDED]
    assert first.admit("key-2") is None  # each key has its own count
    first.quota.close()
    assert path.stat().st_mode & 0o777 == 0o600  # request counts per key are the stack's private state

    restarted = _limiter(path, 3, when)  # a new process: a new limiter on the same file
    assert restarted.admit("key-1") == QUOTA_EXCEEDED
    when[0] = DAY + dt.timedelta(minutes=1)  # UTC midnight: a new quota period
    assert [restarted.admit("key-1") for _ in range(4)] == [None, None, None, QUOTA_EXCEEDED]


def test_a_larger_plan_keeps_the_count(tmp_path: Path) -> None:
    """As in API Gateway, raising a plan's quota adds to what is left; it does not reset the usage."""
    path, when = tmp_path / QUOTA_DB_NAME, [DAY]
    assert [_limiter(path, 2, when).admit("k") for _ in range(3)] == [None, None, QUOTA_EXCEEDED]
    assert [_limiter(path, 3, when).admit("k") for _ in range(2)] == [None, QUOTA_EXCEEDED]
    # Another period kind counts separately (WEEK starts on Monday 2026-11-30).
    assert _limiter(path, 1, when, "WEEK").admit("k") is None


def test_throttled_requests_do_not_count(tmp_path: Path) -> None:
    store = QuotaStore(tmp_path / QUOTA_DB_NAME)
    limiter = UsagePlanLimiter(UsagePlan(0.0, 2, 10, "DAY"), clock=lambda: 0.0, wall_clock=lambda: DAY, quota=store)
    assert [limiter.admit("k") for _ in range(4)] == [None, None, THROTTLED, THROTTLED]
    assert store.used("k", "DAY:2026-12-02") == 2


def test_concurrent_requests_never_exceed_the_quota(tmp_path: Path) -> None:
    store = QuotaStore(tmp_path / QUOTA_DB_NAME)
    admitted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(40):
            ok = store.take("k", "DAY:2026-12-02", 100)
            with lock:
                admitted.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 100 and len(admitted) == 240
    assert store.used("k", "DAY:2026-12-02") == 100


def _status(url: str, key: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"x-api-key": key}), timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_stack_restart_does_not_reset_the_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    monkeypatch.setenv("SMSPARK_ROOT", str(root))
    layout = LocalLayout.for_root(root)
    layout.local_dir.mkdir(parents=True, exist_ok=True)
    layout.config_json.write_text(json.dumps({"scores_api": {"rate_limit": 100, "burst_limit": 100,
                                                             "quota_limit": 2}}))
    key = load_or_create_api_key(layout).value
    try:
        url = api_base_url(process.start(root).url) + "/scores/CA-1"
        # No table behind it: the integration answers 500, but the request passed the usage plan.
        assert [_status(url, key)[0] == 429 for _ in range(3)] == [False, False, True]
        process.stop(root)
        url = api_base_url(process.start(root).url) + "/scores/CA-1"
        assert _status(url, key) == (429, {"message": "Limit Exceeded"})
    finally:
        process.stop(root)
