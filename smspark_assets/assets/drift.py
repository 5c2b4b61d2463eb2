"""Data quality and drift of the credit model: a baseline from the training features, daily drift checks
on every scored day, a drift check on the endpoint's captured traffic, and retraining on drift (optional).

* ``credit_feature_baseline`` — statistics and constraints of the training features (the ``train`` split
  of the days the channels were written from) and of the served model's scores on a sample of them, as
  ``statistics.json`` / ``constraints.json`` under ``s3://<bucket>/monitoring/credit_default/baseline/``
  (in the spirit of SageMaker Model Monitor's baseline; the warn / error bands are in the constraints).
* ``credit_drift_report`` — per day of ``credit_scores``: that day's features and predictions against the
  baseline (``monitoring/credit_default/reports/dt=<day>/report.json``), with three checks **per
  partition**: ``feature_drift`` and ``score_drift`` (failed with severity WARN above the warn band, ERROR
  above the error band; a per-feature PSI table and a plot of the drifting features in the metadata) and
  ``drift_below_error_band`` (ERROR when anything is past its error band; the retraining condition watches
  it). A run over several days evaluates every day's checks on that day's partition.
* ``captured_traffic_drift`` — a check on ``credit_default_endpoint``: the requests and responses data
  capture wrote in the last hours, decoded back into features and scores, against the baseline.
* :func:`retrain_on_drift_condition` — a declarative automation condition (``SMSPARK_RETRAIN_ON_DRIFT=on``)
  that requests the training assets when a day's ``drift_below_error_band`` newly fails.
"""


import datetime as dt
import json
import os
import warnings
from typing import Any, Iterator, Sequence

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pydantic import Field

from smspark_assets.assets.features import credit_features
from smspark_assets.assets.scoring import credit_scores
from smspark_assets.assets.serving import credit_default_endpoint
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.monitoring import Baseline, DriftReport, DriftThresholds, build_baseline, check_day, infer_columns
from smspark_assets.monitoring.capture import decode_capture, hour_prefixes
from smspark_assets.monitoring.checks import Band, FeatureDrift
from smspark_assets.monitoring.plot import drift_markdown
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.batching import MAX_REQUEST_BYTES, transform
from smspark_assets.sagemaker.deserializers import XGBoostCSVDeserializer
from smspark_assets.sagemaker.serializers import CSVSerializer
from smspark_assets.spark_jobs.prepare_features import FEATURE_LIST_FILE

MONITORING_PREFIX = "monitoring/credit_default"
DRIFT_REPORT = "credit_drift_report"
FEATURE_DRIFT = "feature_drift"
SCORE_DRIFT = "score_drift"
RETRAIN_GATE = "drift_below_error_band"
CAPTURE_DRIFT = "captured_traffic_drift"
RETRAIN_ENV = "SMSPARK_RETRAIN_ON_DRIFT"
# The asset retraining on drift starts from: channels from every prepared day, the drifted ones too.
RETRAIN_TRIGGER = "credit_training_channels"
TABLE_ROWS = 60


def monitoring_uri(*parts: str) -> str:
    """``s3://<bucket>/monitoring/credit_default/<parts>``."""
    return s3_uri(layout().bucket, "/".join([MONITORING_PREFIX, *parts]))


def baseline_uris() -> tuple[str, str]:
    return monitoring_uri("baseline", "statistics.json"), monitoring_uri("baseline", "constraints.json")


def report_uri(day: str) -> str:
    return monitoring_uri("reports", f"dt={day}", "report.json")


# -- the baseline -------------------------------------------------------------------------------------------


class BaselineConfig(dg.Config):
    """What the baseline holds and the warn / error bands written into its constraints."""

    score_sample_rows: int = Field(default=5000, description="Training rows scored through the endpoint for "
                                                             "the score distribution: 0..100000 (0: none).")
    psi_warn: float = Field(default=0.1, description="PSI above this warns (0.1: the usual industry band).")
    psi_error: float = Field(default=0.25, description="PSI above this is an error (0.25: the usual band).")
    missing_rate_increase_warn: float = 0.02
    missing_rate_increase_error: float = 0.10
    out_of_range_share_warn: float = 0.01
    out_of_range_share_error: float = 0.05
    new_category_share_warn: float = 0.005
    new_category_share_error: float = 0.05

    def thresholds(self) -> DriftThresholds:
        try:
            return DriftThresholds(
                psi=Band(self.psi_warn, self.psi_error),
                missing_rate_increase=Band(self.missing_rate_increase_warn, self.missing_rate_increase_error),
                out_of_range_share=Band(self.out_of_range_share_warn, self.out_of_range_share_error),
                new_category_share=Band(self.new_category_share_warn, self.new_category_share_error))
        except ValueError as exc:
            raise dg.Failure(f"credit_feature_baseline: invalid drift bands: {exc}") from exc


def feature_columns_of(store: ObjectStoreResource, handle: dict[str, Any]) -> list[str]:
    """The model's feature columns: from the handle, else the list the feature job wrote."""
    columns = handle.get("feature_columns")
    if columns:
        return list(columns)
    listed = json.loads(store.read_bytes(f"{layout().features}/{FEATURE_LIST_FILE}"))
    return list(listed["feature_columns"] if isinstance(listed, dict) else listed)


def read_training_features(store: ObjectStoreResource, days: list[str], columns: list[str]) -> pa.Table:
    """The ``train`` split of ``days`` of features, only ``columns`` (the validation and test rows stay
    unseen, as they do for the model)."""
    import pyarrow.dataset as ds

    tables = [store.parquet_dataset(f"{layout().features}/dt={day}").to_table(
        columns=columns, filter=ds.field("split") == "train") for day in days]
    return pa.concat_tables(tables) if tables else pa.table({c: pa.array([], pa.float64()) for c in columns})


def score_sample(sagemaker: SageMakerResource, endpoint_name: str, table: pa.Table, columns: list[str],
                 rows: int) -> np.ndarray:
    """The endpoint's predictions for a fixed random sample of ``rows`` rows of ``table``: the same wire
    format as the scoring job (CSV of float32 features, at most 5 MiB per request, matched by position)."""
    if rows <= 0 or table.num_rows == 0:
        return np.empty(0)
    take = np.sort(np.random.default_rng(0).choice(table.num_rows, min(rows, table.num_rows), replace=False))
    records = CSVSerializer().serialize_table(table.take(pa.array(take)), columns)
    runtime = sagemaker.runtime

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        return runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType=content_type, Accept=accept,
                                       Body=body)["Body"].read()

    return transform(records, invoke, XGBoostCSVDeserializer(), max_bytes=MAX_REQUEST_BYTES)["prediction"]


def _baseline_table(baseline: Baseline) -> dg.MetadataValue:
    rows = []
    for entry in baseline.statistics["features"]:
        if entry["inferred_type"] == "String":
            stats = entry["string_statistics"]
            top = stats["distribution"]["categorical"]["buckets"][:3]
            shown = ", ".join(f"{b['value']} {b['proportion']:.1%}" for b in top)
        else:
            stats = entry["numerical_statistics"]
            shown = (f"{stats['min']:.4g} .. {stats['max']:.4g}, mean {stats['mean']:.4g}"
                     if stats["mean"] is not None else "no values")
        common = stats["common"]
        total = common["num_present"] + common["num_missing"]
        rows.append(dg.TableRecord({"feature": entry["name"], "type": entry["inferred_type"],
                                    "missing_rate": round(common["num_missing"] / total, 5) if total else 0.0,
                                    "summary": shown}))
    schema = dg.TableSchema(columns=[dg.TableColumn("feature", "string"), dg.TableColumn("type", "string"),
                                     dg.TableColumn("missing_rate", "float"), dg.TableColumn("summary", "string")])
    return dg.MetadataValue.table(rows, schema)


@dg.asset(
    group_name="monitoring",
    kinds={"s3", "numpy", "sagemaker"},
    io_manager_key="json_io_manager",
    metadata={"uri": dg.MetadataValue.path(monitoring_uri("baseline"))},
)
def credit_feature_baseline(context: dg.AssetExecutionContext, config: BaselineConfig,
                            credit_training_channels: dict[str, Any], credit_default_endpoint: dict[str, Any],
                            store: ObjectStoreResource, sagemaker: SageMakerResource) -> dg.Output[dict[str, Any]]:
    """The baseline the drift checks compare with, in the spirit of SageMaker Model Monitor: per feature its
    type, missing rate, min / max, decile bins with their shares, category shares (one-hot groups folded back
    into one categorical), and the served model's score distribution on a sample of the training rows;
    `statistics.json` and `constraints.json` (with the warn / error bands) under
    `monitoring/credit_default/baseline/`."""
    if not 0 <= config.score_sample_rows <= 100_000:
        raise dg.Failure(f"score_sample_rows={config.score_sample_rows} is not allowed: 0..100000")
    thresholds = config.thresholds()
    days = list(credit_training_channels["days"])
    columns = feature_columns_of(store, credit_training_channels)
    table = read_training_features(store, days, columns)
    if table.num_rows == 0:
        raise dg.Failure(f"the train split of the channel days {days[0]}..{days[-1]} has no rows")
    endpoint_name = credit_default_endpoint.get("endpoint_name")
    if endpoint_name is None:  # endpoint mode "none": scores come from batch transform, nothing to call here
        context.log.warning("credit_default_endpoint serves no endpoint: the baseline has no score distribution")
    scores = (score_sample(sagemaker, endpoint_name, table, columns, config.score_sample_rows)
              if endpoint_name else np.empty(0))
    model_name = credit_default_endpoint.get("model_name")
    baseline = build_baseline(table, infer_columns(table.schema), scores=scores if scores.size else None,
                              thresholds=thresholds,
                              source={"days": days, "split": "train", "model_name": model_name,
                                      "endpoint_name": endpoint_name,
                                      "score_rows": int(scores.size)})
    statistics_uri, constraints_uri = baseline_uris()
    store.write_bytes(statistics_uri, json.dumps(baseline.statistics, indent=1).encode())
    store.write_bytes(constraints_uri, json.dumps(baseline.constraints, indent=1).encode())
    handle = {"statistics_uri": statistics_uri, "constraints_uri": constraints_uri, "days": days,
              "rows": table.num_rows, "score_rows": int(scores.size), "model_name": model_name}
    return dg.Output(handle, metadata={
        "rows": table.num_rows, "days": len(days), "first_day": days[0], "last_day": days[-1],
        "features": len(baseline.statistics["features"]), "score_rows": int(scores.size),
        "model_name": model_name or "", "statistics": dg.MetadataValue.path(statistics_uri),
        "constraints": dg.MetadataValue.path(constraints_uri),
        "psi_bands": f"warn > {thresholds.psi.warn}, error > {thresholds.psi.error}",
        "baseline": _baseline_table(baseline)})


def load_baseline(store: ObjectStoreResource) -> Baseline | None:
    """The stored baseline, or ``None`` when ``credit_feature_baseline`` was never materialized."""
    statistics_uri, constraints_uri = baseline_uris()
    if not (store.exists(statistics_uri) and store.exists(constraints_uri)):
        return None
    return Baseline.from_json(json.loads(store.read_bytes(statistics_uri)),
                              json.loads(store.read_bytes(constraints_uri)))


# -- check results ------------------------------------------------------------------------------------------


def _drift_table(rows: list[FeatureDrift]) -> dg.MetadataValue:
    """The per-feature figures, worst first."""
    columns = [("feature", "string"), ("kind", "string"), ("psi", "float"), ("missing_rate", "float"),
               ("baseline_missing_rate", "float"), ("out_of_range_share", "float"),
               ("new_categories", "string"), ("severity", "string"), ("reasons", "string")]
    ordered = sorted(rows, key=lambda f: (f.severity != "error", f.severity != "warn", -np.nan_to_num(f.psi)))
    records = [dg.TableRecord({k: v for k, v in f.row().items() if v is not None}) for f in ordered[:TABLE_ROWS]]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns]))


def _verdict(severity: str) -> tuple[bool, dg.AssetCheckSeverity]:
    if severity == "error":
        return False, dg.AssetCheckSeverity.ERROR
    return severity != "warn", dg.AssetCheckSeverity.WARN


def _summary(rows: list[FeatureDrift]) -> str:
    bad = [f for f in rows if f.severity != "ok"]
    if not bad:
        return "within the warning bands"
    return "; ".join(f"{f.name}: {', '.join(f.reasons)}" for f in bad[:5]) + (
        f"; and {len(bad) - 5} more" if len(bad) > 5 else "")


def drift_check_results(report: DriftReport | None, label: str, note: str = "",
                        scores_expected: bool = False) -> dict[str, dict[str, Any]]:
    """The results of the three drift checks for one report, as keyword arguments of a check result
    (``passed``, ``severity``, ``description``, ``metadata``) by check name.

    ``note`` says why there is no report, or no score comparison; a missing score comparison fails (WARN)
    when ``scores_expected`` (the baseline has scores but the day has none), else it passes with the note.
    """
    if report is None:
        missing = {"passed": False, "severity": dg.AssetCheckSeverity.WARN, "description": note,
                   "metadata": {"note": note}}
        return {FEATURE_DRIFT: missing, SCORE_DRIFT: missing, RETRAIN_GATE: missing}
    common = {"rows_checked": report.rows_checked}
    passed, severity = _verdict(report.feature_severity)
    results = {FEATURE_DRIFT: {
        "passed": passed, "severity": severity,
        "description": f"{label}: features {_summary(report.features)}",
        "metadata": {**common, "severity": report.feature_severity,
                     "max_psi": max((f.psi for f in report.features if np.isfinite(f.psi)), default=0.0),
                     "drifting_features": len(report.drifting()), "psi_by_feature": _drift_table(report.features),
                     "plot": dg.MetadataValue.md(drift_markdown(report, label))}}}
    if report.score is None:
        results[SCORE_DRIFT] = {"passed": not scores_expected, "severity": dg.AssetCheckSeverity.WARN,
                                "description": f"{label}: {note or 'no scores to compare'}",
                                "metadata": {**common, "note": note or "no scores to compare"}}
    else:
        passed, severity = _verdict(report.score_severity)
        results[SCORE_DRIFT] = {
            "passed": passed, "severity": severity,
            "description": f"{label}: scores {_summary([report.score])}",
            "metadata": {**common, "severity": report.score_severity, "psi": float(report.score.psi),
                         "score_bins": _drift_table([report.score])}}
    in_error = [f.name for f in [*report.features, *([report.score] if report.score else [])] if f.severity == "error"]
    results[RETRAIN_GATE] = {
        "passed": not in_error, "severity": dg.AssetCheckSeverity.ERROR,
        "description": (f"{label}: past the error band: {', '.join(in_error)}" if in_error
                        else f"{label}: nothing past its error band"),
        "metadata": {**common, "in_error": ", ".join(in_error) or "none",
                     "retraining_condition": f"{RETRAIN_ENV}={os.environ.get(RETRAIN_ENV, 'off')}"}}
    return results


# -- the daily drift report ---------------------------------------------------------------------------------

with warnings.catch_warnings():
    # Partitioned asset checks are a preview API in Dagster 1.13; they are what records a result per day.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    DRIFT_CHECKS = [
        dg.AssetCheckSpec(FEATURE_DRIFT, asset=DRIFT_REPORT, partitions_def=daily_partitions,
                          description="The day's features against the baseline: PSI per feature, missing rates, "
                                      "values out of the baseline's range, new categories (WARN / ERROR bands)."),
        dg.AssetCheckSpec(SCORE_DRIFT, asset=DRIFT_REPORT, partitions_def=daily_partitions,
                          description="PSI of the day's predictions against the baseline's score distribution."),
        dg.AssetCheckSpec(RETRAIN_GATE, asset=DRIFT_REPORT, partitions_def=daily_partitions,
                          description="Nothing drifts past its error band; the retraining condition "
                                      f"({RETRAIN_ENV}) watches this check."),
    ]


def read_day(store: ObjectStoreResource, day: str, columns: list[str]) -> tuple[pa.Table, np.ndarray | None]:
    """The day's feature ``columns`` and its predictions (``None`` when the day has no scores)."""
    paths = layout()
    features = store.parquet_dataset(f"{paths.features}/dt={day}").to_table(columns=columns)
    scored = [o for o in store.list_objects(f"{paths.scores}/dt={day}/") if o.uri.endswith(".parquet")]
    if not scored:
        return features, None
    scores = store.parquet_dataset(f"{paths.scores}/dt={day}").to_table(columns=["prediction"])
    return features, pc.cast(scores.column("prediction"), pa.float64()).to_numpy(zero_copy_only=False)


def _target(context: dg.AssetExecutionContext, day: str) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization of ``day`` just recorded: a check evaluated against it is current, which is what
    the automation condition ``check_failed`` looks at."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[day]), limit=1).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(storage_id=records[0].storage_id,
                                                         run_id=records[0].run_id, timestamp=records[0].timestamp)


@dg.asset(
    name=DRIFT_REPORT,
    deps=[credit_scores, credit_features, credit_feature_baseline],
    partitions_def=daily_partitions,
    # Like the features and the scores: one step for a range of days, each day's checks on its partition.
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="monitoring",
    kinds={"s3", "numpy"},
    check_specs=DRIFT_CHECKS,
    metadata={"uri": dg.MetadataValue.path(monitoring_uri("reports"))},
)
def credit_drift_report(context: dg.AssetExecutionContext, store: ObjectStoreResource
                        ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
    """Each scored day against the baseline: PSI per feature and of the scores, missing rates, values out of
    the baseline's range, new categories; a JSON report per day under `monitoring/credit_default/reports/`,
    and the day's drift checks evaluated on the day's partition (every day of a multi-day run)."""
    days = list(context.partition_keys)
    baseline = load_baseline(store)
    reports: dict[str, DriftReport | None] = {}
    note = ""
    if baseline is None:
        note = (f"no baseline at {baseline_uris()[0]}: materialize credit_feature_baseline (training_job) "
                "before the drift checks can compare anything")
        context.log.warning(note)
        reports = {day: None for day in days}
    else:
        wanted = baseline.columns.source_columns()
        for day in days:
            features, scores = read_day(store, day, wanted)
            report = check_day(baseline, features, scores)
            reports[day] = report
            store.write_bytes(report_uri(day), json.dumps({"day": day, **report.to_json()}, indent=1).encode())
    severity = {day: (r.severity if r else "no baseline") for day, r in reports.items()}
    metadata: dict[str, Any] = {"days": len(days), "severity_by_day": dg.MetadataValue.json(severity)}
    if len(days) == 1 and reports[days[0]] is not None:
        report = reports[days[0]]
        metadata.update(rows_checked=report.rows_checked, severity=report.severity,
                        report=dg.MetadataValue.path(report_uri(days[0])))
    yield dg.MaterializeResult(metadata=metadata)

    selected = context.selected_asset_check_keys
    for day in days:
        target = _target(context, day)
        report = reports[day]
        day_note, expected = note, False
        if report is not None and report.score is None:
            expected = baseline.scores is not None
            day_note = (f"the day has no scores under {layout().scores}/dt={day}/" if expected
                        else "the baseline has no score distribution (score_sample_rows=0, or no endpoint)")
        results = drift_check_results(report, day, day_note, scores_expected=expected)
        for spec in DRIFT_CHECKS:
            if spec.key not in selected:
                continue
            # One evaluation per day on its partition: an AssetCheckResult inside a multi-day run would be
            # recorded without a partition.
            yield dg.AssetCheckEvaluation(asset_key=context.asset_key, check_name=spec.name, partition=day,
                                          target_materialization_data=target, **results[spec.name])
    for spec in DRIFT_CHECKS:
        if spec.key in selected:  # the step's check outputs (the evaluations above carry the results)
            yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(spec.key))


# -- captured traffic ---------------------------------------------------------------------------------------


class CaptureDriftConfig(dg.Config):
    lookback_hours: int = Field(default=24, description="Hours of captured traffic checked, 1..168.")
    min_rows: int = Field(default=200, description="Fewer captured rows than this: nothing to judge yet.")


@dg.asset_check(asset=credit_default_endpoint, additional_deps=[credit_feature_baseline],
                description="The requests and responses data capture recorded in the last hours, decoded back "
                            "into features and scores, against the baseline (WARN / ERROR bands).")
def captured_traffic_drift(context: dg.AssetCheckExecutionContext, config: CaptureDriftConfig,
                           credit_default_endpoint: dict[str, Any], sagemaker: SageMakerResource,
                           store: ObjectStoreResource) -> dg.AssetCheckResult:
    if not 1 <= config.lookback_hours <= 168:
        raise dg.Failure(f"lookback_hours={config.lookback_hours} is not allowed: 1..168")
    name = credit_default_endpoint.get("endpoint_name")
    if name is None:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="credit_default_endpoint serves no endpoint: no traffic to check",
                                   metadata={"endpoint": "none"})
    described = sagemaker.sagemaker.describe_endpoint(EndpointName=name)
    capture = described.get("DataCaptureConfig") or {}  # DescribeEndpoint's DataCaptureConfigSummary
    if not capture.get("EnableCapture"):
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description=f"data capture is off on {name}: no traffic to check",
                                   metadata={"endpoint": name, "capture": "off"})
    baseline = load_baseline(store)
    if baseline is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description="no baseline yet: materialize credit_feature_baseline",
                                   metadata={"endpoint": name})
    now = dt.datetime.now(dt.timezone.utc)
    files: list[bytes] = []
    for variant in described.get("ProductionVariants", []):
        for prefix in hour_prefixes(capture["DestinationS3Uri"], name, variant["VariantName"], now,
                                    config.lookback_hours):
            files += [store.read_bytes(o.uri) for o in store.list_objects(prefix) if o.uri.endswith(".jsonl")]
    columns = feature_columns_of(store, credit_default_endpoint)
    try:
        traffic = decode_capture(files, columns)
    except ValueError as exc:
        raise dg.Failure(f"captured traffic of {name} cannot be read as the model's features: {exc}") from exc
    base = {"endpoint": name, "capture_files": len(files), "invocations": traffic.invocations,
            "rows": traffic.features.num_rows, "skipped": dg.MetadataValue.json(traffic.skipped),
            "lookback_hours": config.lookback_hours}
    if traffic.features.num_rows < config.min_rows:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN, metadata=base,
                                   description=f"{traffic.features.num_rows} captured rows in the last "
                                               f"{config.lookback_hours} h, fewer than {config.min_rows}: not judged")
    scores = traffic.scores if traffic.scores.size == traffic.features.num_rows else None
    report = check_day(baseline, traffic.features, scores)
    passed, severity = _verdict(report.severity)
    features = drift_check_results(report, f"{name}, last {config.lookback_hours} h")[FEATURE_DRIFT]
    return dg.AssetCheckResult(
        passed=passed, severity=severity,
        description=features["description"] + (f"; scores: {_summary([report.score])}" if report.score else ""),
        metadata={**base, **features["metadata"], "severity": report.severity,
                  "score_psi": float(report.score.psi) if report.score else float("nan")})


# -- retraining on drift ------------------------------------------------------------------------------------


def retrain_on_drift_condition() -> dg.AutomationCondition | None:
    """The condition that retrains on drift, or ``None`` (``SMSPARK_RETRAIN_ON_DRIFT`` off, the default).

    True when a day's ``drift_below_error_band`` check of ``credit_drift_report`` newly fails (the day is in
    ERROR) and the asset it is attached to is not already running: each newly failing day requests one
    retraining. Attached to ``credit_training_channels`` (:func:`with_retraining_on_drift`): the channels
    are rebuilt from every prepared day, the drifted ones included, and the model, the endpoint and the
    baseline follow through their own eager conditions (the model's blocking quality gate still decides
    what serves). The automation sensor ships stopped: switch it on in the UI.
    """
    setting = os.environ.get(RETRAIN_ENV, "off").strip().lower()
    if setting in ("", "0", "off", "false", "no"):
        return None
    if setting not in ("1", "on", "true", "yes"):
        raise ValueError(f"{RETRAIN_ENV}={setting!r} is not allowed: on or off")
    gate = dg.AssetCheckKey(dg.AssetKey(DRIFT_REPORT), RETRAIN_GATE)
    newly_in_error = dg.AutomationCondition.any_checks_match(
        dg.AutomationCondition.check_failed().newly_true()).allow(dg.AssetSelection.checks(gate))
    return (dg.AutomationCondition.asset_matches(DRIFT_REPORT, newly_in_error)
            & ~dg.AutomationCondition.in_progress()).with_label("retrain on drift")


def with_retraining_on_drift(assets: Sequence[Any]) -> list[Any]:
    """``assets`` with :func:`retrain_on_drift_condition` added (``|``) to the condition of
    ``credit_training_channels``; unchanged when the setting is off."""
    condition = retrain_on_drift_condition()
    if condition is None:
        return list(assets)
    trigger = dg.AssetKey(RETRAIN_TRIGGER)

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key != trigger:
            return spec
        current = spec.automation_condition
        return spec.replace_attributes(automation_condition=condition if current is None else current | condition)

    return list(dg.map_asset_specs(add, assets))


MONITORING_ASSETS = [credit_feature_baseline, credit_drift_report]
MONITORING_CHECKS = [captured_traffic_drift]
