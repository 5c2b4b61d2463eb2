"""Progress lines of running Spark stages: the formatting and change detection on a scripted tracker, then
a real local Spark job whose slow stage is reported while it runs."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from smspark_assets.spark_jobs.progress import StageProgress, stage_label


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
