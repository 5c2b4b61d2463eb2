"""The record of every action the stack served: service, action, the caller's access key, time.

The IAM tests read it to prove that the policies of the deployment allow every action the platform
really calls. Appends are one ``write`` of one line under a lock, so lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


class ActionLog:
    """Appends ``{"t", "service", "action", "access_key", "principal"}`` lines to ``path`` (created 0600).

    ``principals`` maps access keys to who signs with them (``orchestrator`` or a role ARN).
    """

    def __init__(self, path: Path, principals: dict[str, str] | None = None) -> None:
        self.path = path
        self.principals = principals if principals is not None else {}
        self._lock = threading.Lock()
        self._fd: int | None = None

    def record(self, service: str, action: str, access_key: str) -> None:
        line = json.dumps({"t": round(time.time(), 3), "service": service, "action": action,
                           "access_key": access_key, "principal": self.principals.get(access_key, "")}) + "\n"
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, line.encode())

    def record_as(self, service: str, action: str, principal: str) -> None:
        """An action the stack performs itself on a role's behalf (SageMaker reading channels as the job's
        execution role), recorded as AWS would authorize it: against that role."""
        line = json.dumps({"t": round(time.time(), 3), "service": service, "action": action,
                           "access_key": "", "principal": principal, "on_behalf": True}) + "\n"
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, line.encode())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_actions(path: Path) -> list[dict]:
    """Every recorded action, oldest first (empty when nothing was served yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
