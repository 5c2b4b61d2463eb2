"""Faults the stack injects on purpose, so clients' retry paths can be exercised (``benchmarks/faults.py``).

Off unless ``config.json`` has a ``fault_injection`` object::

    "fault_injection": {"invoke_error_rate": 0.1, "status": 503, "dynamodb_unprocessed_rate": 0.1}

* ``invoke_error_rate``: the share of InvokeEndpoint requests answered with an error *before* they reach a
  model server, as SageMaker does when it sheds load: ``status`` 503 -> ``ServiceUnavailable``, 429 ->
  ``ThrottlingException``. Both are retried by botocore's standard retry mode.
* ``dynamodb_unprocessed_rate``: the share of a BatchWriteItem's items handed back in ``UnprocessedItems``
  (not written), as DynamoDB does under throttling.

The file is re-read when it changes (one ``stat`` per request), so a running stack picks a change up.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path

from smspark_assets.local.api_errors import ApiError

# status -> (error code, message) of SageMaker Runtime's answers.
_INVOKE_ERRORS = {
    503: ("ServiceUnavailable", "The service is unavailable. Try your call again. (injected fault)"),
    429: ("ThrottlingException", "Rate exceeded. (injected fault)"),
}


@dataclass(frozen=True)
class FaultSettings:
    invoke_error_rate: float = 0.0
    invoke_status: int = 503
    dynamodb_unprocessed_rate: float = 0.0


def _rate(value: object) -> float:
    try:
        return min(max(float(value), 0.0), 1.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


class FaultConfig:
    """The ``fault_injection`` settings of one ``config.json``, cached until the file changes."""

    def __init__(self, config_json: Path) -> None:
        self.path = config_json
        self._mtime: int | None = -1
        self._settings = FaultSettings()
        self._lock = threading.Lock()

    def settings(self) -> FaultSettings:
        try:
            mtime: int | None = os.stat(self.path).st_mtime_ns  # per request: os.stat, not Path.stat
        except OSError:
            mtime = None
        if mtime != self._mtime:
            with self._lock:
                self._settings = self._load() if mtime is not None else FaultSettings()
                self._mtime = mtime
        return self._settings

    def _load(self) -> FaultSettings:
        from smspark_assets.local.algorithm_lookup import read_config

        try:
            doc = read_config(self.path).get("fault_injection") or {}
        except Exception:  # noqa: BLE001 - a broken config disables injection; the service keeps serving
            return FaultSettings()
        if not isinstance(doc, dict):
            return FaultSettings()
        status = doc.get("status", 503)
        return FaultSettings(
            invoke_error_rate=_rate(doc.get("invoke_error_rate", 0.0)),
            invoke_status=status if status in _INVOKE_ERRORS else 503,
            dynamodb_unprocessed_rate=_rate(doc.get("dynamodb_unprocessed_rate", 0.0)),
        )

    def maybe_fail_invoke(self) -> None:
        """Raise SageMaker's throttling or unavailability error for the configured share of invocations."""
        settings = self.settings()
        if settings.invoke_error_rate and random.random() < settings.invoke_error_rate:
            code, message = _INVOKE_ERRORS[settings.invoke_status]
            raise ApiError(code, message, settings.invoke_status)

    def unprocessed_rate(self) -> float:
        return self.settings().dynamodb_unprocessed_rate
