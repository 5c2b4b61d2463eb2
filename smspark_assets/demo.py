"""The end-to-end demo behind ``make run``: land demo data, launch the defined jobs, summarise.

Each stage is a run of one of the code location's jobs (``daily_scoring_job``, ``training_job``,
``algorithms_job``; a stage that needs only part of a job runs that subset, as the UI's "Materialize
selected" does), created with the location's origin on the persistent Dagster instance
(``DAGSTER_HOME``): ``make dev`` shows them as named runs that can be re-executed, with the same
lineage and metadata.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import dagster as dg
from dagster._core.execution.job_execution_result import JobExecutionResult

from smspark_assets.assets.outputs import LATEST_SCORES_TABLE
from smspark_assets.assets.raw import RAW_APPLICATIONS
from smspark_assets.assets.scoring import SCORES_TABLE
from smspark_assets.datasets.credit import partition_uri, write_day
from smspark_assets.environment import default_bucket, project_root
from smspark_assets.job_runs import RunProcess, code_location, create_job_run, execute_job_run
from smspark_assets.plain_text import markdown_to_plain, rounded
from smspark_assets.resources.by_environment import resources_for
from smspark_assets.run_progress import ProgressPrinter, one_line

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Runs the demo launched carry this tag (the UI filters on it; the sensor's runs do not have it).
LAUNCHED_BY_TAG = "smspark/launched_by"
# Count-like figures a per-partition materialization reports per day: the run's total is their sum.
# (Run totals, when an asset reports them, are under ``run_<name>`` and preferred by the summary.)
ADDITIVE_KEYS = frozenset({"rows_read", "rows_written", "malformed_rows", "rows_rejected", "rows_scored",
                           "scored_rows", "feature_rows", "items_written", "items_quarantined", "requests",
                           "quarantined_rows", "dagster/row_count", "dagster/partition_row_count"})


@dataclass(frozen=True)
class Stage:
    """One stage of the demo: a named job, or the listed assets of it, over a day range or not.

    ``after`` names the stages whose outputs it reads. A ``background`` stage runs in a process of its own
    (``job_runs.RunProcess``) from the moment those are done, alongside the stages that follow it.
    """

    name: str
    job: str
    assets: tuple[str, ...] = ()
    partitioned: bool = False
    after: tuple[str, ...] = ()
    background: bool = False


# Features first (training and the algorithms' channels read every prepared day). The other algorithms
# need nothing else, so they run alongside training and scoring: much of each stage is waiting (a Spark
# job's start-up and teardown, a training job's polls, the stack writing DynamoDB items), and on 2 cores
# the overlap takes about a minute off `make run`. Then training and the endpoint, scoring through it,
# and the model's performance on the scored days.
STAGES = (
    Stage("features", "daily_scoring_job", ("credit_features",), partitioned=True),
    Stage("algorithms", "algorithms_job", after=("features",), background=True),
    Stage("training + endpoint", "training_job",
          ("credit_training_channels", "credit_default_model", "credit_default_endpoint",
           "credit_default_sklearn_model", "credit_default_sklearn_endpoint", "credit_feature_baseline"),
          after=("features",)),
    Stage("scores + dynamodb", "daily_scoring_job",
          ("credit_scores", "credit_scores_dynamodb", "credit_drift_report"), partitioned=True,
          after=("training + endpoint",)),
    Stage("performance", "training_job", ("credit_model_performance", "model_registry_metrics"),
          after=("scores + dynamodb",)),
)


@dataclass
class DemoReport:
    days: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    query: Any = None
    lookup: dict[str, Any] | None = None
    # One call of the scores API (what an application would do) and its JSON answer.
    api_call: str = ""
    api_answer: dict[str, Any] | None = None
    raw_written: int = 0
    results: dict[str, JobExecutionResult] = field(default_factory=dict)
    # The job each stage ran as and its run id (what the Dagster UI lists).
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # From the demo data to the last stage's end (less than the stages' sum: some run alongside others).
    wall_seconds: float = 0.0
    # Which services carried the run: the AWS resources, against AWS or the embedded stack at a URL.
    services: str = ""


# Spark jobs each take the machine's cores: queue sensor-launched runs one at a time locally.
INSTANCE_YAML = """\
concurrency:
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
"""


def prepare_dagster_home() -> str:
    """DAGSTER_HOME (default ``.smspark/dagster``) with an instance config, shared by run and dev."""
    home = os.environ.setdefault("DAGSTER_HOME", str(project_root() / "dagster"))
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        with open(config, "w") as fh:
            fh.write(INSTANCE_YAML)
    return home


def dagster_instance() -> dg.DagsterInstance:
    """The persistent instance ``make dev`` also uses."""
    prepare_dagster_home()
    return dg.DagsterInstance.get()


def land_demo_data(start: dt.date, days: int, rows: int, seed: int, bucket: str) -> tuple[list[str], int]:
    """Write the demo days that are not there yet (a complete day is never rewritten)."""
    store = resources_for()["store"]
    landed, written = [], 0
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        if not store.exists(f"{partition_uri(f's3://{bucket}', day)}/_SUCCESS"):
            write_day(store, f"s3://{bucket}", day, rows, seed)
            written += rows
        landed.append(day.isoformat())
    return landed, written


def _values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _merge_partitions(per_partition: dict[str | None, dict[str, Any]]) -> dict[str, Any]:
    """One asset's figures for a run from its materializations, one per partition (or one in all).

    When every partition carries the same values, they are the run's figures (metadata reported once for
    the range); otherwise each partition has its own, and count-like figures are summed over them.
    """
    values = list(per_partition.values())
    if len(values) == 1 or all(v == values[0] for v in values[1:]):
        return dict(values[0])
    merged = dict(values[-1])
    for name in ADDITIVE_KEYS & merged.keys():
        figures = [v.get(name) for v in values]
        if all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in figures):
            merged[name] = sum(figures)  # type: ignore[arg-type]
    return merged


def _collect(report: DemoReport, result: JobExecutionResult) -> None:
    """Materialization metadata per asset (see ``_merge_partitions``) and check results."""
    by_asset: dict[str, dict[str | None, dict[str, Any]]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        by_asset.setdefault(mat.asset_key.to_user_string(), {})[mat.partition] = _values(mat.metadata)
    for key, per_partition in by_asset.items():
        report.metadata.setdefault(key, {}).update(_merge_partitions(per_partition))
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        # Per-partition checks: the stage passed a check only if every partition did.
        report.checks[name] = report.checks.get(name, True) and evaluation.passed


def _create_stage_run(stage: Stage, instance: dg.DagsterInstance, location: Any, tags: dict[str, str],
                      run_config: dict[str, Any] | None, write: Callable[[str], None], number: int) -> dg.DagsterRun:
    # Dagster's own console logger would print every event over several lines: the progress lines
    # (run_progress) say what matters; the event log keeps everything for the UI.
    config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}, **(run_config or {})}
    run = create_job_run(location, instance, stage.job, assets=[dg.AssetKey(a) for a in stage.assets] or None,
                         tags={LAUNCHED_BY_TAG: "smspark run", **tags}, run_config=config)
    days = f", days {tags[RANGE_START]} .. {tags[RANGE_END]}" if RANGE_START in tags else ""
    alongside = " (in the background, alongside the next stages)" if stage.background else ""
    write(f"[{number}/{len(STAGES)}] {stage.name}: job {stage.job}{days} (run {run.run_id[:8]}){alongside}")
    return run


def launch_stage(stage: Stage, instance: dg.DagsterInstance, location: Any, tags: dict[str, str] | None = None,
                 run_config: dict[str, Any] | None = None, write: Callable[[str], None] | None = None,
                 number: int = 1) -> JobExecutionResult:
    """Run one stage as a named run of its job on ``instance``, writing progress lines to ``write``."""
    write = write or (lambda line: None)
    run = _create_stage_run(stage, instance, location, tags or {}, run_config, write, number)
    return execute_job_run(run, instance, ProgressPrinter(write, label=str(number)))


def start_stage(stage: Stage, instance: dg.DagsterInstance, location: Any, tags: dict[str, str] | None = None,
                run_config: dict[str, Any] | None = None, write: Callable[[str], None] | None = None,
                number: int = 1) -> RunProcess:
    """Start one stage as a named run of its job in a process of its own; its lines go to ``write``."""
    write = write or (lambda line: None)
    run = _create_stage_run(stage, instance, location, tags or {}, run_config, write, number)
    logs = os.path.join(instance.root_directory, "logs")
    os.makedirs(logs, exist_ok=True)
    return RunProcess(run, instance, os.path.join(logs, f"{run.run_id}.log"),
                      ProgressPrinter(write, label=str(number)))


def _record_stage(report: DemoReport, stage: Stage, result: JobExecutionResult, seconds: float) -> None:
    report.seconds[stage.name] = seconds
    report.results[stage.name] = result
    report.runs[stage.name] = (stage.job, result.run_id)
    _collect(report, result)
    if not result.success:
        failures = [f"{e.step_key}: {one_line(e.step_failure_data.error.message if e.step_failure_data.error else e.message)}"
                    for e in result.get_step_failure_events()]
        raise RuntimeError(f"stage '{stage.name}' (job {stage.job}, run {result.run_id}) failed: "
                           + (" | ".join(failures) or "see the run in the Dagster UI"))


def _run_stages(report: DemoReport, instance: dg.DagsterInstance, location: Any, day_range: dict[str, str],
                run_configs: dict[str, dict[str, Any]], write: Callable[[str], None]) -> None:
    """Each stage in order; a background stage is started, and waited for when a later stage needs it or
    at the end. If anything fails or is interrupted, a running background stage is interrupted too."""
    running: dict[str, tuple[Stage, RunProcess, float]] = {}
    lock = threading.Lock()

    def write_whole_lines(line: str) -> None:  # two runs report at once: a line is never split
        with lock:
            write(line)

    def finish(name: str) -> None:
        stage, process, started = running[name]
        result = process.wait()
        del running[name]  # only now: an interrupt while waiting still stops it below
        _record_stage(report, stage, result, (process.ended_at or time.monotonic()) - started)

    try:
        for number, stage in enumerate(STAGES, start=1):
            # Needed now, or already ended (a failed background run stops the demo at the next stage).
            for name in [n for n, (_, process, _) in running.items() if n in stage.after or process.ended()]:
                finish(name)
            tags = day_range if stage.partitioned else {}
            started = time.monotonic()
            if stage.background:
                process = start_stage(stage, instance, location, tags, run_configs.get(stage.name),
                                      write_whole_lines, number)
                running[stage.name] = (stage, process, started)
            else:
                result = launch_stage(stage, instance, location, tags, run_configs.get(stage.name),
                                      write_whole_lines, number)
                _record_stage(report, stage, result, time.monotonic() - started)
        for name in list(running):
            finish(name)
    finally:
        for _, process, _ in running.values():
            process.stop()


def run_demo(days: int = 14, rows: int = 20_000, start: dt.date = dt.date(2026, 11, 1), seed: int = 7,
             instance: dg.DagsterInstance | None = None,
             run_configs: dict[str, dict[str, Any]] | None = None,
             write: Callable[[str], None] | None = None) -> DemoReport:
    """Land the demo data and run each stage's job end to end; return what each stage produced.

    ``run_configs`` maps a stage name ("features", "training + endpoint", "algorithms",
    "scores + dynamodb", "performance") to the run config of that stage's run. ``write`` receives the
    progress lines (default: none are written).
    """
    run_configs = run_configs or {}
    write = write or (lambda line: None)
    instance = instance or dagster_instance()
    bucket = default_bucket()
    started = time.monotonic()
    write(f"[0/{len(STAGES)}] demo data: {days} day(s) x {rows:,} rows from {start.isoformat()}")
    landed, written = land_demo_data(start, days, rows, seed, bucket)
    report = DemoReport(days=landed, raw_written=written)
    report.seconds["demo data"] = time.monotonic() - started
    write(f"  {report.seconds['demo data']:6.1f}s  {written:,} raw rows newly landed"
          + ("" if written else " (the days were already there)"))
    for day in landed:  # the raw asset is external: record what landed, as the sensor does
        instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition=day))
    day_range = {RANGE_START: landed[0], RANGE_END: landed[-1]}
    with code_location(instance) as location:
        _run_stages(report, instance, location, day_range, run_configs, write)
    report.wall_seconds = time.monotonic() - started

    resources = resources_for()
    stack = resources["store"].stack()
    report.services = ("AWS resources (S3, EMR Serverless, SageMaker, DynamoDB, Glue, Athena) against the "
                       f"embedded stack at {stack.url}" if stack is not None else "AWS resources against AWS")
    report.query = resources["catalog"].query(
        f"SELECT dt, COUNT(*) AS applications, ROUND(AVG(prediction), 4) AS mean_score, "
        f"COUNT_IF(prediction >= 0.5) AS flagged "
        f"FROM {SCORES_TABLE} GROUP BY dt ORDER BY dt")
    sample = resources["catalog"].query(f"SELECT application_id FROM {SCORES_TABLE} ORDER BY application_id LIMIT 1")
    if len(sample):
        item = resources["dynamodb"].dynamodb.get_item(
            TableName=LATEST_SCORES_TABLE, Key={"application_id": {"S": str(sample.iloc[0, 0])}}).get("Item")
        report.lookup = {k: next(iter(v.values())) for k, v in (item or {}).items()}
        api = resources["scores_api"]
        application_id = str(sample.iloc[0, 0])
        report.api_call = f"GET {api.endpoint()[0]}/scores/{application_id}"
        report.api_answer = api.get_score(application_id)
    return report


def format_report(report: DemoReport) -> str:
    """The short plain-text summary ``make run`` prints: rounded figures, then what to try next."""
    md = report.metadata
    features = md.get("credit_features", {})
    channels = md.get("credit_training_channels", {})
    model = md.get("credit_default_model", {})
    endpoint = md.get("credit_default_endpoint", {})
    custom = md.get("credit_default_sklearn_model", {})
    scores = md.get("credit_scores", {})
    dynamo = md.get("credit_scores_dynamodb", {})
    perf = md.get("credit_model_performance", {})
    channel_rows = channels.get("rows_by_channel") or {}

    def get(d: dict[str, Any], *keys: str) -> str:
        """The first of ``keys`` that ``d`` has (a run total before the sum of per-day figures), rounded."""
        return next((rounded(d[k]) for k in keys if d.get(k) is not None), "n/a")

    def passed(check: str) -> str:
        return {True: "passed", False: "FAILED"}.get(report.checks.get(check), "not run")  # type: ignore[arg-type]

    algorithms = markdown_to_plain(str(md.get("algorithm_endpoint_scores", {}).get("summary", "n/a")))
    indent = "\n" + " " * 21
    lines = [
        "",
        "=== smspark_assets: end-to-end run ===",
        f"services             {report.services}",
        f"days                 {report.days[0]} .. {report.days[-1]} ({len(report.days)} days; "
        f"{report.raw_written:,} raw rows newly landed)",
        f"raw rows read        {get(features, 'run_rows_read', 'rows_read')}  (malformed, quarantined: {get(features, 'run_malformed_rows', 'malformed_rows')})",
        f"feature rows         {get(features, 'run_rows_written', 'rows_written')}",
        f"training channels    train {get(channel_rows, 'train')}, validation {get(channel_rows, 'validation')}",
        f"model                {get(model, 'model_name')}  (adopted existing job: {get(model, 'adopted_existing_job')}; "
        f"{get(model, 'training_seconds')} s)",
        f"validation AUC       {get(model, 'validation_auc')}  gate {passed('credit_default_model:validation_auc_gate')}",
        f"custom algorithm     {get(custom, 'model_name')}  validation AUC {get(custom, 'validation_auc')}  "
        f"(scikit-learn, script mode; endpoint {get(md.get('credit_default_sklearn_endpoint', {}), 'endpoint_name')})",
        f"endpoint             {get(endpoint, 'endpoint_name')}  status {get(endpoint, 'status')}  "
        f"({get(endpoint, 'action')})",
        f"scored rows          {get(scores, 'run_rows_scored', 'rows_scored')}  ({get(scores, 'rows_per_s')} rows/s, "
        f"{get(scores, 'run_requests', 'requests')} requests)",
        f"dynamodb items       {get(dynamo, 'run_items_written', 'items_written')}  (table {get(dynamo, 'dynamodb/table')})",
        f"test AUC             {get(perf, 'test_auc')}",
        "other algorithms     " + algorithms.replace("\n", indent),
        "stage seconds        " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())
        + f"; {report.wall_seconds:.1f} in all ("
        + ", ".join(s.name for s in STAGES if s.background) + " ran alongside the others)",
        "dagster runs         " + (indent.join(f"{job} {run_id[:8]} ({stage})"
                                              for stage, (job, run_id) in report.runs.items()) or "none"),
        "",
        f"SQL> SELECT dt, COUNT(*), AVG(prediction), ... FROM {SCORES_TABLE} GROUP BY dt",
        report.query.to_string(index=False) if report.query is not None else "(no result)",
        "",
        f"DynamoDB {LATEST_SCORES_TABLE} lookup: "
        + (", ".join(f"{k}={rounded(v)}" for k, v in sorted(report.lookup.items())) if report.lookup else "none"),
        "",
        f"Scores API  {report.api_call}  (x-api-key from `smspark local env`)",
        f"  -> {report.api_answer}",
        "",
        "next:",
        "  make dev                                   the Dagster UI: these runs, lineage, metadata, checks",
        f"  .venv/bin/smspark query \"SELECT * FROM {SCORES_TABLE} LIMIT 5\"   Athena SQL on the outputs",
        f"  .venv/bin/smspark query \"SHOW PARTITIONS {SCORES_TABLE}\"",
    ]
    return "\n".join(lines)
