"""Lifecycle of the local service process: start, stop, status, ensure_running.

The running service is described by ``<root>/local/service.json`` (pid, port, url). ``start`` launches
``python -m smspark_assets.local.server`` in the background, detached from the caller, and waits until
it answers; a lock file makes concurrent ``ensure_running`` calls from several processes start exactly
one service.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.private_files import DIR_MODE, open_private, private_dir, tighten
from smspark_assets.local.process_environment import PRIVATE_UMASK

START_TIMEOUT_SECONDS = 60.0
# A busy service (saving a large DynamoDB snapshot, serving bulk writes) may answer slowly; slow is not gone.
HEALTH_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceInfo:
    """A running local service."""

    pid: int
    port: int
    url: str
    root: str
    started: float

    def to_json(self) -> dict:
        return asdict(self)


def _read_info(layout: LocalLayout) -> ServiceInfo | None:
    try:
        doc = json.loads(layout.service_json.read_text())
        return ServiceInfo(
            int(doc["pid"]),
            int(doc["port"]),
            str(doc["url"]),
            str(doc["root"]),
            float(doc.get("started", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (started by this process, not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _healthy(info: ServiceInfo, timeout: float | None = None) -> bool:
    """The service at ``info.url`` answers and is the process ``info`` names."""
    timeout = HEALTH_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        with urllib.request.urlopen(f"{info.url}/_smspark/health", timeout=timeout) as response:
            return int(json.loads(response.read())["pid"]) == info.pid
    except (OSError, ValueError, KeyError):
        return False


def _private_state(layout: LocalLayout) -> None:
    """The state root and ``local/`` exist with mode 0700 (also when an older version made them 0755)."""
    private_dir(layout.local_dir)
    tighten(layout.root, DIR_MODE)
    tighten(layout.local_dir, DIR_MODE)


@contextmanager
def _start_lock(layout: LocalLayout) -> Iterator[None]:
    _private_state(layout)
    with open_private(layout.start_lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def status(root: Path | str | None = None) -> ServiceInfo | None:
    """The running service of ``root``, or ``None`` (a stale ``service.json`` counts as not running)."""
    layout = LocalLayout.for_root(root)
    info = _read_info(layout)
    if info is None or not _pid_alive(info.pid):
        return None
    return info if _healthy(info) else None


def start(root: Path | str | None = None, timeout: float = START_TIMEOUT_SECONDS) -> ServiceInfo:
    """Start the service for ``root`` in the background (or return the one already running)."""
    layout = LocalLayout.for_root(root)
    with _start_lock(layout):
        recorded = _read_info(layout)
        if recorded is not None and _pid_alive(recorded.pid):
            # Never start a second service on the same state: wait for the live one to answer.
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _pid_alive(recorded.pid):
                if _healthy(recorded):
                    return recorded
                time.sleep(0.2)
            if _pid_alive(recorded.pid):
                raise RuntimeError(f"the local service (pid {recorded.pid}, {recorded.url}) is running but has not "
                                   f"answered for {timeout:.0f}s; stop it with `smspark local stop` and retry")
        layout.service_json.unlink(missing_ok=True)
        args = [sys.executable, "-m", "smspark_assets.local.server", "--root", str(layout.root)]
        previous_port = _last_port(layout)
        if previous_port:
            args += [
                "--port",
                str(previous_port),
            ]  # keep the URL stable across restarts when the port is free
        env = dict(os.environ)
        env["SMSPARK_ROOT"] = str(layout.root)
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        with open_private(layout.service_log, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(layout.root),
                start_new_session=True,
                close_fds=True,
                umask=PRIVATE_UMASK,  # everything the service and its children create is private
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"the local service exited with code {code} while starting; "
                    f"last log lines:\n{_tail(layout.service_log)}"
                )
            info = _read_info(layout)
            if info is not None and info.pid == proc.pid and _healthy(info):
                return info
            time.sleep(0.05)
        _signal(proc.pid, signal.SIGKILL)
        raise RuntimeError(
            f"the local service did not answer within {timeout:.0f}s; last log lines:\n"
            f"{_tail(layout.service_log)}"
        )


def stop(root: Path | str | None = None, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the service, wait for it to save and exit, SIGKILL after ``timeout``; False if none ran."""
    layout = LocalLayout.for_root(root)
    with _start_lock(layout):
        info = _read_info(layout)
        if info is None or not _pid_alive(info.pid):
            layout.service_json.unlink(missing_ok=True)
            return False
        _signal(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(info.pid):
            _reap(info.pid)
            time.sleep(0.05)
        if _pid_alive(info.pid):
            _signal(info.pid, signal.SIGKILL)
            while _pid_alive(info.pid):
                _reap(info.pid)
                time.sleep(0.05)
        layout.service_json.unlink(missing_ok=True)
        return True


def ensure_running(root: Path | str | None = None) -> str:
    """The URL of the running service for ``root``, starting it first if needed. Safe across processes."""
    info = status(root)
    if info is not None:
        return info.url
    return start(root).url


def _last_port(layout: LocalLayout) -> int:
    try:
        return int(layout.last_port.read_text().strip())
    except (OSError, ValueError):
        return 0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect the exit status when the service is our own child (tests start it from this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
