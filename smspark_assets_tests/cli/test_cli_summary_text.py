"""What ``make run`` prints, without running anything: rounded figures, Markdown as plain text, the
summary's next commands, and progress lines built from Dagster event-log entries."""

from __future__ import annotations

import logging

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData, StepSuccessData
from dagster._core.events.log import EventLogEntry

from smspark_assets.plain_text import markdown_to_plain, rounded
from smspark_assets.run_progress import LINE_WIDTH, ProgressPrinter, one_line


@pytest.mark.parametrize("value, text", [
    (279440, "279,440"), (12345.678, "12,346"), (12.345, "12.3"), (1.23456, "1.23"), (0.812345, "0.812"),
    (-0.00049, "-0.000"), (True, "yes"), (False, "no"), ("credit-default", "credit-default"), (None, "None"),
])
def test_rounded(value: object, text: str) -> None:
    assert rounded(value) == text


def test_markdown_becomes_plain_text() -> None:
    markdown = ("# Scores\n* **algo-pca** (PCA): explained variance 0.81234567\n"
                "* **algo-kmeans** ([k-means](https://example.org/km)): `5` clusters\n\n"
                "| model | auc |\n|---|---:|\n| xgb | 0.912345 |\n| linear-learner | 0.88 |\n")
    assert markdown_to_plain(markdown).splitlines() == [
        "Scores",
        "- algo-pca (PCA): explained variance 0.812",
        "- algo-kmeans (k-means (https://example.org/km)): 5 clusters",
        "",
        "model           auc",
        "xgb             0.912",
        "linear-learner  0.88",
    ]


def test_report_is_plain_rounded_and_says_what_to_do_next() -> None:
    from smspark_assets.demo import DemoReport, format_report

    report = DemoReport(days=["2026-11-01", "2026-11-02"], raw_written=40_000,
                        seconds={"demo data": 1.234, "features": 61.25, "algorithms": 50.0}, wall_seconds=70.1,
                        runs={"features": ("daily_scoring_job", "2cee3ed6-aaaa-bbbb")})
    report.metadata = {
        "credit_default_model": {"validation_auc": 0.91234567, "model_name": "credit-default-v1",
                                 "training_seconds": 5.5123, "adopted_existing_job": False},
        "credit_scores": {"rows_scored": 39_920, "rows_per_s": 2345.6789, "requests": 8},
        "algorithm_endpoint_scores": {"summary": "* **algo-pca** (PCA): variance 0.81234567"},
    }
    report.checks = {"credit_default_model:validation_auc_gate": True}
    text = format_report(report)
    assert "**" not in text and "`algo" not in text
    assert "validation AUC       0.912  gate passed" in text
    assert "scored rows          39,920  (2,346 rows/s, 8 requests)" in text
    assert "(adopted existing job: no; 5.51 s)" in text
    assert "other algorithms     - algo-pca (PCA): variance 0.812" in text
    assert "dagster runs         daily_scoring_job 2cee3ed6 (features)" in text
    assert "40,000 raw rows newly landed" in text
    # Stages that ran alongside others: their sum is more than the whole, which is shown too.
    assert ("stage seconds        demo data 1.2, features 61.2, algorithms 50.0; 70.1 in all "
            "(algorithms ran alongside the others)") in text
    tail = text.splitlines()[-4:]
    assert tail[0] == "next:" and tail[1].lstrip().startswith("make dev")
    assert 'smspark query "SHOW PARTITIONS credit_scores"' in tail[3]


def _entry(step: str | None, message: str = "", event: DagsterEvent | None = None,
           level: int = logging.INFO) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=level, user_message=message, run_id="r", timestamp=0.0,
                         step_key=step, job_name="daily_scoring_job", dagster_event=event)


def _event(kind: DagsterEventType, step: str, data: object = None) -> DagsterEvent:
    return DagsterEvent(event_type_value=kind.value, job_name="daily_scoring_job", step_key=step,
                        event_specific_data=data)


def test_progress_lines() -> None:
    lines: list[str] = []
    ticks = iter([0.0, 1.0, 2.5, 3.0, 4.0, 5.0, 70.25])
    printer = ProgressPrinter(lines.append, clock=lambda: next(ticks))
    step = "credit_features"
    printer(_entry(step, event=_event(DagsterEventType.STEP_START, step)))
    printer(_entry(step, "smspark-prepare-features: starting with params ['partitions']\nsecond line"))
    printer(_entry(step, "a debug detail", level=logging.DEBUG))
    printer(_entry(step, "[pipes] EMR Serverless job is running. Dashboard URL: {'ResponseMetadata': {}}"))
    printer(_entry(step, "x" * 400, level=logging.WARNING))
    for day in ("2026-11-01", "2026-11-02"):
        printer(_entry(step, event=_event(DagsterEventType.ASSET_MATERIALIZATION, step, StepMaterializationData(
            dg.AssetMaterialization("credit_features", partition=day)))))
    printer(_entry(step, event=_event(DagsterEventType.STEP_SUCCESS, step, StepSuccessData(duration_ms=65_432.0))))
    assert lines[0] == "     1.0s  credit_features: started"
    assert lines[1] == "     2.5s  credit_features: smspark-prepare-features: starting with params ['partitions']"
    assert lines[2].startswith("     3.0s  credit_features: xxx") and lines[2].endswith("...")
    assert len(lines[2]) == LINE_WIDTH
    assert lines[3] == "     4.0s  credit_features: done in 65.4 s, 2 materializations"
    assert len(lines) == 4


def test_one_line_takes_the_first_non_empty_line() -> None:
    assert one_line("\n\n  first  \nsecond") == "first"
    assert one_line("abcdef", width=5) == "ab..."


def test_run_figures_are_not_multiplied_by_the_partitions() -> None:
    """Metadata reported once for a range repeats on every partition: taken once. Per-day metadata: counts
    summed, other values from the last day."""
    from smspark_assets.demo import _merge_partitions

    run_level = {"rows_read": 280_000, "rows_per_s": 5837.1}
    assert _merge_partitions({"2026-11-01": run_level, "2026-11-02": dict(run_level)}) == run_level
    per_day = {"2026-11-01": {"rows_scored": 19_960, "uri": "s3://b/dt=2026-11-01", "rows_per_s": 10.0},
               "2026-11-02": {"rows_scored": 19_958, "uri": "s3://b/dt=2026-11-02", "rows_per_s": 12.0}}
    assert _merge_partitions(per_day) == {"rows_scored": 39_918, "uri": "s3://b/dt=2026-11-02", "rows_per_s": 12.0}
    assert _merge_partitions({None: {"test_auc": 0.8}}) == {"test_auc": 0.8}
