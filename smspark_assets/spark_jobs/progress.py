"""Progress of a Spark job's running stages, logged through Pipes while the job works.

A job's own log says when it starts and ends; in between, a long stage (scoring a day through the
endpoint, writing a large day) would be silent for minutes. :class:`StageProgress` reads Spark's status
tracker every few seconds on a daemon thread and logs one line per running stage whose task counts
changed since the last line, e.g. ``stage 4 (mapPartitions at score_endpoint.py:88): 12 of 40 tasks``.
The tracker is Spark's public, read-only API; reading it costs a few py4j calls.

A stage of few tasks moves in large steps, so a job can also ask for the rows a plan node has put out
so far (:func:`count_rows`): the scoring job counts the rows its ``MapInArrow`` node got back from the
endpoint, e.g. ``rows scored through the endpoint: 130,000 of 279,440 (47%)``. The figure is Spark's
own SQL metric ("number of output rows"), which executors send with their heartbeats while a task runs
(``spark.executor.heartbeatInterval``: 10 s by default, 2 s on the local stack), read from the driver's
SQL status store, the same figures the Spark UI's SQL tab shows live.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
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


@dataclass(frozen=True)
class RowCount:
    """Rows a plan node (``MapInArrow``, ``Project``...) put out so far, as a progress line names them."""

    label: str
    node: str
    total: int | None = None

    def line(self, rows: int) -> str:
        if self.total:
            return f"{self.label}: {rows:,} of {self.total:,} ({min(100, round(100 * rows / self.total))}%)"
        return f"{self.label}: {rows:,}"


# The progress of the job running in this process (one job per driver), which count_rows adds to.
_current: "StageProgress | None" = None


def active() -> bool:
    """Whether a job's progress is being reported in this process (so a figure for it is worth computing)."""
    return _current is not None


def count_rows(label: str, node: str, total: int | None = None) -> None:
    """Have the progress lines of the running job say how many rows ``node`` has put out so far, out of
    ``total`` when known. Outside a job's progress (a test calling the job function) it does nothing."""
    if _current is not None:
        _current.counts.append(RowCount(label, node, total))


def _scala(seq: Any) -> Iterator[Any]:
    items = seq.iterator()
    while items.hasNext():
        yield items.next()


def live_node_rows(spark: Any, node: str) -> int | None:
    """The rows the plan nodes named ``node`` of the running SQL executions of ``spark`` (a
    ``SparkSession``) have put out so far, from the live "number of output rows" metric; None when no
    running execution has such a node yet."""
    store = spark._jsparkSession.sharedState().statusStore()
    found: int | None = None
    for execution in _scala(store.executionsList()):
        if execution.completionTime().isDefined():
            continue
        execution_id = execution.executionId()
        wanted = {metric.accumulatorId()
                  for plan_node in _scala(store.planGraph(execution_id).allNodes()) if plan_node.name() == node
                  for metric in _scala(plan_node.metrics()) if metric.name() == "number of output rows"}
        if not wanted:
            continue
        found = found or 0
        for pair in _scala(store.executionMetrics(execution_id)):
            if pair._1() in wanted:  # a sum metric reads "130,000"
                found += int(str(pair._2()).replace(",", "") or 0)
    return found


class StageProgress:
    """Logs the running stages' task counts every ``every_seconds`` while the ``with`` block runs, and
    the rows of the nodes the job asked for (:func:`count_rows`) when ``node_rows`` can read them.

    A stage or a count is logged again only when it changed, so a stalled stage does not repeat itself.
    """

    def __init__(self, tracker: Any, log: Callable[[str], None], every_seconds: float = PROGRESS_SECONDS,
                 node_rows: Callable[[str], int | None] | None = None) -> None:
        self.tracker, self.log, self.every, self.node_rows = tracker, log, every_seconds, node_rows
        self.counts: list[RowCount] = []
        self._stop = threading.Event()
        self._last: dict[int, StageCounts] = {}
        self._last_rows: dict[RowCount, int] = {}
        self._thread = threading.Thread(target=self._loop, name="spark-stage-progress", daemon=True)

    def report(self) -> None:
        """Log the stages whose counts changed since they were last logged, then the row counts."""
        for stage in running_stages(self.tracker):
            if self._last.get(stage.stage_id) != stage:
                self._last[stage.stage_id] = stage
                self.log(stage.line())
        if self.node_rows is None:
            return
        for count in list(self.counts):
            try:
                rows = self.node_rows(count.node)
            except Exception:  # noqa: BLE001 - a Spark without these internals: task counts only from now on
                self.node_rows = None
                return
            # A node's figure moves from live to final as its tasks end: it is only ever shown growing.
            if rows is not None and rows > self._last_rows.get(count, 0):
                self._last_rows[count] = rows
                self.log(count.line(rows))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.report()
            except Exception:  # noqa: BLE001 - progress is a courtesy: it must never fail the job
                return

    def __enter__(self) -> "StageProgress":
        global _current
        _current = self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        global _current
        _current = None
        self._stop.set()
        self._thread.join(timeout=self.every + 5)
