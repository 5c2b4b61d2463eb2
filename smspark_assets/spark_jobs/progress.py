"""Progress of a Spark job's running stages, logged through Pipes while the job works.

A job's own log says when it starts and ends; in between, a long stage (scoring a day through the
endpoint, writing a large day) would be silent for minutes. :class:`StageProgress` reads Spark's status
tracker every few seconds on a daemon thread and logs one line per running stage whose task counts
changed since the last line, e.g. ``stage 4 (mapPartitions at score_endpoint.py:88): 12 of 40 tasks``.
The tracker is Spark's public, read-only API; reading it costs a few py4j calls.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

# How often running stages are looked at: often enough to show movement, rarely enough to stay quiet.
PROGRESS_SECONDS = 5.0
# A file path in a call site ("at /jobs/<run>/entry/0/prepare_features.py:52"): its folders are dropped.
_PATH = re.compile(r"(/[^\s:]*/)([^/\s:]+)")


@dataclass(frozen=True)
class StageCounts:
    """What a progress line says of one running stage."""

    stage_id: int
    name: str
    tasks: int
    completed: int
    failed: int

    def line(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"stage {self.stage_id} ({self.name}): {self.completed} of {self.tasks} tasks{failed}"


def running_stages(tracker: Any) -> list[StageCounts]:
    """The active stages of ``tracker`` (a ``pyspark.StatusTracker``), in stage order."""
    counts = []
    for stage_id in sorted(tracker.getActiveStageIds()):
        info = tracker.getStageInfo(stage_id)
        if info is None:  # it ended between the two calls
            continue
        counts.append(StageCounts(stage_id, stage_label(str(info.name)), int(info.numTasks),
                                  int(info.numCompletedTasks), int(info.numFailedTasks)))
    return counts


def stage_label(name: str) -> str:
    """A stage's call site as a reader wants it: ``collect at prepare_features.py:52``, without the job
    folder's path; stages Spark runs for a query plan (names like ``$anonfun$...``) are "query stage"."""
    first = name.split("\n", 1)[0]
    if first.startswith("$anonfun"):
        return "query stage"
    return _PATH.sub(lambda m: m.group(2), first)[:80]


class StageProgress:
    """Logs the running stages' task counts every ``every_seconds`` while the ``with`` block runs.

    A stage is logged again only when its counts changed, so a stalled stage does not repeat itself.
    """

    def __init__(self, tracker: Any, log: Callable[[str], None], every_seconds: float = PROGRESS_SECONDS) -> None:
        self.tracker, self.log, self.every = tracker, log, every_seconds
        self._stop = threading.Event()
        self._last: dict[int, StageCounts] = {}
        self._thread = threading.Thread(target=self._loop, name="spark-stage-progress", daemon=True)

    def report(self) -> None:
        """Log the stages whose counts changed since they were last logged."""
        for stage in running_stages(self.tracker):
            if self._last.get(stage.stage_id) != stage:
                self._last[stage.stage_id] = stage
                self.log(stage.line())

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.report()
            except Exception:  # noqa: BLE001 - progress is a courtesy: it must never fail the job
                return

    def __enter__(self) -> "StageProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)
