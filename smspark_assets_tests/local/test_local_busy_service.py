"""A service that is alive but slow to answer is waited for, never duplicated on the same state."""

import os
import signal
from pathlib import Path

import pytest

from smspark_assets.local import process

pytestmark = pytest.mark.integration


def test_a_busy_service_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path))
    info = process.start(tmp_path)
    try:
        os.kill(info.pid, signal.SIGSTOP)  # alive, but answers nothing (as when busy saving a snapshot)
        try:
            monkeypatch.setattr(process, "HEALTH_TIMEOUT_SECONDS", 0.2)
            assert process.status(tmp_path) is None
            with pytest.raises(RuntimeError, match=f"pid {info.pid}.*smspark local stop"):
                process.start(tmp_path, timeout=1.0)
        finally:
            os.kill(info.pid, signal.SIGCONT)
        assert process.ensure_running(tmp_path) == info.url
        assert process.status(tmp_path).pid == info.pid
    finally:
        process.stop(tmp_path)
