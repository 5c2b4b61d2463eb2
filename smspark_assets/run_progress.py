"""One line per thing worth seeing while a run works: steps, the assets' own log lines, checks, failures.

Dagster's console logger prints every event over several lines (DEBUG included). ``make run`` turns it
down and listens to the instance's event stream instead (``instance.add_event_listener``), printing a
compact line per step start and end, per INFO/WARNING message an asset logs (Spark stages, training
rounds, endpoint updates, rows written), and per failed check or step, with the seconds since the stage
began. Materializations and passed checks are counted and shown with the step's end.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry

# Wide enough for a message and its step, narrow enough for one terminal line.
LINE_WIDTH = 150
# Messages of dagster-aws' Pipes client that say nothing to the person waiting (object reprs, raw
# responses, a reader's unsupported log forwarding); the job's start, end and state are kept.
NOISE = ("Dashboard URL:", "is not supported for", "external process successfully opened dagster pipes",
         "workload is complete")


def one_line(text: object, width: int = LINE_WIDTH) -> str:
    """The first non-empty line of ``text``, cut to ``width`` characters with an ellipsis."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= width else first[: width - 3] + "..."


class ProgressPrinter:
    """An event listener (``instance.add_event_listener``) that passes compact progress lines to ``write``."""

    def __init__(self, write: Callable[[str], None] | None = None, *, clock: Callable[[], float] = time.monotonic,
                 min_level: int = logging.INFO, label: str = "") -> None:
        self._write = write or (lambda line: print(line, flush=True))
        # Which run a line is about when two report at once (the demo's stage number).
        self._label = f"[{label}]" if label else ""
        self._clock = clock
        self._started = clock()
        self._min_level = min_level
        self._materialized: Counter[str] = Counter()
        self._checks_passed: Counter[str] = Counter()
        self.lines: list[str] = []

    def _emit(self, step: str | None, text: str) -> None:
        prefix = f"  {self._label}{self._clock() - self._started:6.1f}s  {step or 'run'}: "
        line = prefix + one_line(text, LINE_WIDTH - len(prefix))
        self.lines.append(line)
        self._write(line)

    def __call__(self, entry: EventLogEntry) -> None:
        event = entry.dagster_event
        step = entry.step_key
        if event is None:
            # A message an asset (or a Spark job through Pipes) logged itself.
            message = entry.user_message
            if entry.level >= self._min_level and message and not any(n in message for n in NOISE):
                self._emit(step, message)
            return
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            self._emit(step, "started")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            self._materialized[step or ""] += 1
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                self._checks_passed[step or ""] += 1
            else:
                self._emit(step, f"check {evaluation.check_name} FAILED"
                                 + (" (blocking)" if evaluation.blocking else ""))
        elif kind == DagsterEventType.STEP_SUCCESS:
            seconds = event.event_specific_data.duration_ms / 1000.0  # type: ignore[union-attr]
            done = [f"done in {seconds:.1f} s"]
            if self._materialized[step or ""]:
                count = self._materialized[step or ""]
                done.append(f"{count} materialization{'s' if count != 1 else ''}")
            if self._checks_passed[step or ""]:
                done.append(f"{self._checks_passed[step or '']} check(s) passed")
            self._emit(step, ", ".join(done))
        elif kind == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error  # type: ignore[union-attr]
            self._emit(step, f"FAILED: {one_line(error.message if error else event.message)}")
        elif kind == DagsterEventType.STEP_SKIPPED:
            self._emit(step, "skipped (an upstream step failed or a blocking check did not pass)")
        elif kind == DagsterEventType.RUN_FAILURE:
            self._emit(None, f"FAILED: {one_line(event.message or entry.user_message)}")
