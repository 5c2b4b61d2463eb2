"""Progress lines of running Spark stages: the formatting and change detection on a scripted tracker, then
a real local Spark job whose slow stage is reported while it runs, and whose rows are counted while a
``mapInArrow`` node puts them out."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from smspark_assets.spark_jobs import progress as progress_module
from smspark_assets.spark_jobs.progress import RowCount, StageProgress, count_rows, live_node_rows, stage_label


class ScriptedTracker:
    """A status tracker that answers from a script of {stage id: (name, tasks, completed, failed)}."""

    def __init__(self) -> None:
        self.stages: dict[int, tuple[str, int, int, int]] = {}

    def getActiveStageIds(self) -> list[int]:  # noqa: N802 - pyspark's name
        return list(self.stages)

    def getStageInfo(self, stage_id: int) -> Any:  # noqa: N802
        if stage_id not in self.stages:
            return None
        name, tasks, done, failed = self.stages[stage_id]
        return SimpleNamespace(name=name, numTasks=tasks, numCompletedTasks=done, numFailedTasks=failed)


@pytest.mark.timeout(30)
def test_a_stage_is_logged_when_its_counts_change_and_only_then() -> None:
    tracker, lines = ScriptedTracker(), []
    progress = StageProgress(tracker, lines.append)
    tracker.stages = {7: ("parquet at prepare_features.py:40\nlong call site", 40, 3, 0), 2: ("collect", 1, 0, 0)}
    progress.report()
    progress.report()  # nothing changed: nothing logged
    tracker.stages[7] = ("parquet at prepare_features.py:40\nlong call site", 40, 21, 1)
    del tracker.stages[2]
    progress.report()
    assert lines == ["stage 2 (collect): 0 of 1 tasks",
                     "stage 7 (parquet at prepare_features.py:40): 3 of 40 tasks",
                     "stage 7 (parquet at prepare_features.py:40): 21 of 40 tasks, 1 failed"]


def test_stage_labels_drop_the_job_folder_and_name_query_stages() -> None:
    assert stage_label("collect at /srv/state/local/emr-jobs/00ab/entry/0/prepare_features.py:52\nmore") == (
        "collect at prepare_features.py:52")
    assert stage_label("$anonfun$withThreadLocalCaptured$1 at CompletableFuture.java:1768") == "query stage"
    assert stage_label("count at NativeMethodAccessorImpl.java:0") == "count at NativeMethodAccessorImpl.java:0"


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_real_slow_stage_is_reported_while_it_runs() -> None:
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("test_stage_progress")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        def slow(rows: Any) -> Any:
            time.sleep(0.4)
            return rows

        lines: list[str] = []
        with StageProgress(spark.sparkContext.statusTracker(), lines.append, every_seconds=0.2):
            total = spark.sparkContext.parallelize(range(1_000), 12).mapPartitions(slow).count()
    finally:
        spark.stop()
    assert total == 1_000
    # 12 tasks of 0.4 s on 2 cores: about 2.4 s, so several lines with a growing count of done tasks.
    counts = [int(line.split(": ")[1].split(" of ")[0]) for line in lines]
    assert len(lines) >= 2, lines
    assert all(" of 12 tasks" in line for line in lines), lines
    assert counts == sorted(counts) and counts[-1] > counts[0], lines


@pytest.mark.timeout(30)
def test_row_counts_are_logged_growing_and_only_for_the_running_job() -> None:
    tracker, lines = ScriptedTracker(), []
    figures = iter([None, 5_000, 5_000, 20_000, 15_000, 40_000])
    progress = StageProgress(tracker, lines.append, node_rows=lambda node: next(figures))
    count_rows("rows scored", "MapInArrow", total=40_000)  # no job's progress is running: ignored
    assert progress.counts == [] and not progress_module.active()
    with progress:
        assert progress_module.active()
        count_rows("rows scored", "MapInArrow", total=40_000)
        assert progress.counts == [RowCount("rows scored", "MapInArrow", 40_000)]
        for _ in range(6):
            progress.report()
    assert progress_module._current is None
    # None (no such node yet), an unchanged figure and one lower than shown (a task's live figure being
    # replaced by its final one) log nothing.
    assert lines == ["rows scored: 5,000 of 40,000 (12%)", "rows scored: 20,000 of 40,000 (50%)",
                     "rows scored: 40,000 of 40,000 (100%)"]
    assert RowCount("rows", "Project").line(1234) == "rows: 1,234"


@pytest.mark.timeout(30)
def test_a_failing_row_reader_leaves_the_task_counts_going() -> None:
    tracker, lines = ScriptedTracker(), []

    def broken(node: str) -> int:
        raise AttributeError("no statusStore on this Spark")

    progress = StageProgress(tracker, lines.append, node_rows=broken)
    progress.counts.append(RowCount("rows scored", "MapInArrow"))
    tracker.stages = {1: ("save", 4, 1, 0)}
    progress.report()
    tracker.stages = {1: ("save", 4, 2, 0)}
    progress.report()
    assert lines == ["stage 1 (save): 1 of 4 tasks", "stage 1 (save): 2 of 4 tasks"]
    assert progress.node_rows is None


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_rows_a_mapinarrow_node_puts_out_are_counted_while_it_runs(tmp_path: Any) -> None:
    import pyarrow as pa

    from pyspark import SparkContext

    from smspark_assets.spark_jobs.session import local_session

    # The heartbeat interval is fixed when a context starts: a context an earlier test module left in this
    # process would keep its 10 s, and the figures would arrive too rarely to be seen growing.
    if SparkContext._active_spark_context is not None:  # noqa: SLF001 - pyspark's record of the live context
        SparkContext._active_spark_context.stop()  # noqa: SLF001
    spark = local_session("test_row_progress", cores="2", conf={
        "spark.executor.heartbeatInterval": "500ms", "spark.sql.execution.arrow.maxRecordsPerBatch": "2000"})
    try:
        def slow(batches: Any) -> Any:
            for batch in batches:
                time.sleep(0.25)
                # ~130 KB a batch: the worker's 64 KB output buffer passes each batch on as it is made (the
                # scoring job's batches of 10,000 rows are larger still), so the count moves batch by batch.
                pad = pa.array(["x" * 64] * batch.num_rows)
                yield pa.RecordBatch.from_arrays([batch.column(0), pad], names=["id", "pad"])

        lines: list[str] = []
        source = spark.range(0, 40_000, numPartitions=2)
        # 20 batches of 2,000 rows a task, 0.25 s each: about 5 s for two tasks on 2 cores.
        with StageProgress(spark.sparkContext.statusTracker(), lines.append, every_seconds=0.3,
                           node_rows=lambda node: live_node_rows(spark, node)):
            count_rows("rows out", "MapInArrow", total=40_000)
            source.mapInArrow(slow, "id long, pad string").write.parquet(str(tmp_path / "out"))
        heartbeat = spark.sparkContext.getConf().get("spark.executor.heartbeatInterval")
        written = spark.read.parquet(str(tmp_path / "out")).count()
    finally:
        spark.stop()
    assert written == 40_000 and heartbeat == "500ms"
    rows = [int(line.split(": ")[1].split(" of ")[0].replace(",", "")) for line in lines if line.startswith("rows out")]
    # Several figures while the tasks ran (not only one at the end), growing, in whole batches of 2,000.
    assert len(rows) >= 3, lines
    assert rows == sorted(rows) and rows[0] < 40_000, lines
    assert all(r % 2_000 == 0 for r in rows), lines
