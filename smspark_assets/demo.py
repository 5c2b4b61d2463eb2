"""The end-to-end demo behind ``make run``: land demo data, materialize the whole graph, summarise.

It materializes on the persistent Dagster instance (``DAGSTER_HOME``), so ``make dev`` shows the same
runs, lineage and metadata in the UI.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from smspark_assets.assets.outputs import LATEST_SCORES_TABLE
from smspark_assets.assets.raw import RAW_APPLICATIONS
from smspark_assets.assets.scoring import SCORES_TABLE
from smspark_assets.datasets.credit import partition_uri, write_day
from smspark_assets.assets.scores_api_check import credit_scores_api_consistency
from smspark_assets.definitions import ASSETS
from smspark_assets.environment import default_bucket, project_root
from smspark_assets.resources.by_environment import resources_for

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


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
    results: dict[str, dg.ExecuteInProcessResult] = field(default_factory=dict)
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


def _materialize(report: DemoReport, step: str, selection: list[Any], instance: dg.DagsterInstance,
                 tags: dict[str, str] | None = None, run_config: dict[str, Any] | None = None
                 ) -> dg.ExecuteInProcessResult:
    started = time.monotonic()
    # INFO shows what each asset does (jobs created or adopted, endpoints updated) without DEBUG events.
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    result = dg.materialize([*ASSETS, credit_scores_api_consistency], selection=selection, instance=instance, resources=resources_for(),
                            tags=tags or {}, raise_on_error=False, run_config=config)
    report.seconds[step] = time.monotonic() - started
    report.results[step] = result
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        report.metadata.setdefault(mat.asset_key.to_user_string(), {}).update(_values(mat.metadata))
    for evaluation in result.get_asset_check_evaluations():
        report.checks[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = evaluation.passed
    if not result.success:
        failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        raise RuntimeError(f"step '{step}' failed: " + " | ".join(str(f) for f in failures))
    return result


def run_demo(days: int = 14, rows: int = 20_000, start: dt.date = dt.date(2026, 11, 1), seed: int = 7,
             instance: dg.DagsterInstance | None = None,
             run_configs: dict[str, dict[str, Any]] | None = None) -> DemoReport:
    """Land the demo data and materialize every asset end to end; return what each stage produced.

    ``run_configs`` maps a step name ("features", "training + endpoint", "algorithms",
    "scores + dynamodb", "performance") to the run config of that step's materialization.
    """
    run_configs = run_configs or {}
    from smspark_assets.assets.algorithm_models import ALGORITHM_ASSETS
    from smspark_assets.assets.custom_algorithm import credit_default_sklearn_endpoint, credit_default_sklearn_model
    from smspark_assets.assets.features import credit_features
    from smspark_assets.assets.outputs import credit_model_performance, credit_scores_dynamodb
    from smspark_assets.assets.scoring import credit_scores
    from smspark_assets.assets.serving import credit_default_endpoint
    from smspark_assets.assets.training import credit_default_model, credit_training_channels

    instance = instance or dagster_instance()
    bucket = default_bucket()
    started = time.monotonic()
    landed, written = land_demo_data(start, days, rows, seed, bucket)
    report = DemoReport(days=landed, raw_written=written)
    report.seconds["demo data"] = time.monotonic() - started
    for day in landed:  # the raw asset is external: record what landed, as the sensor does
        instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition=day))
    day_range = {RANGE_START: landed[0], RANGE_END: landed[-1]}
    _materialize(report, "features", [credit_features], instance, day_range, run_configs.get("features"))
    _materialize(report, "training + endpoint",
                 [credit_training_channels, credit_default_model, credit_default_endpoint,
                  credit_default_sklearn_model, credit_default_sklearn_endpoint], instance,
                 run_config=run_configs.get("training + endpoint"))
    _materialize(report, "algorithms", list(ALGORITHM_ASSETS), instance, run_config=run_configs.get("algorithms"))
    _materialize(report, "scores + dynamodb", [credit_scores, credit_scores_dynamodb], instance, day_range,
                 run_configs.get("scores + dynamodb"))
    _materialize(report, "performance", [credit_model_performance], instance,
                 run_config=run_configs.get("performance"))

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
    """The short summary ``make run`` prints."""
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

    def get(d: dict[str, Any], *keys: str) -> Any:
        return next((d[k] for k in keys if k in d), "n/a")

    lines = [
        "",
        "=== smspark_assets: end-to-end run ===",
        f"services             {report.services}",
        f"days                 {report.days[0]} .. {report.days[-1]} ({len(report.days)} days; "
        f"{report.raw_written} raw rows newly landed)",
        f"raw rows read        {get(features, 'rows_read')}  (malformed, quarantined: {get(features, 'malformed_rows')})",
        f"feature rows         {get(features, 'rows_written')}",
        f"training channels    train {get(channel_rows, 'train')}, validation {get(channel_rows, 'validation')}",
        f"model                {get(model, 'model_name')}  (adopted existing job: {get(model, 'adopted_existing_job')}; "
        f"{get(model, 'training_seconds')} s)",
        f"validation AUC       {get(model, 'validation_auc')}  gate passed: "
        f"{report.checks.get('credit_default_model:validation_auc_gate')}",
        f"custom algorithm     {get(custom, 'model_name')}  validation AUC {get(custom, 'validation_auc')}  "
        f"(scikit-learn, script mode; endpoint {get(md.get('credit_default_sklearn_endpoint', {}), 'endpoint_name')})",
        f"endpoint             {get(endpoint, 'endpoint_name')}  status {get(endpoint, 'status')}  "
        f"({get(endpoint, 'action')})",
        f"scored rows          {get(scores, 'rows_scored')}  ({get(scores, 'rows_per_s')} rows/s, "
        f"{get(scores, 'requests')} requests)",
        f"dynamodb items       {get(dynamo, 'items_written')}  (table {get(dynamo, 'dynamodb/table')})",
        f"test AUC             {get(perf, 'test_auc')}",
        "other algorithms     " + str(md.get("algorithm_endpoint_scores", {}).get("summary", "n/a")).replace(
            "\n", "\n                     "),
        "stage seconds        " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()),
        "",
        f"SQL> SELECT dt, COUNT(*), AVG(prediction), ... FROM {SCORES_TABLE} GROUP BY dt",
        report.query.to_string(index=False) if report.query is not None else "(no result)",
        "",
        f"DynamoDB {LATEST_SCORES_TABLE} lookup: {report.lookup}",
        "",
        f"Scores API  {report.api_call}  (x-api-key from `smspark local env`)",
        f"  -> {report.api_answer}",
    ]
    return "\n".join(lines)
