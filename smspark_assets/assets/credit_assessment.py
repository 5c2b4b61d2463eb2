"""The credit model's assessment: champion against challenger on the test split, and its model page.

Called by ``credit_default_model`` once its training job completed (see
:func:`smspark_assets.assets.training.train_register_and_gate`). The champion is the version the
endpoint serves: the latest ``Approved`` version of the model package group.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping, Sequence

import dagster as dg

from smspark_assets.assets.champion_challenger import (
    Evaluation, Margins, Side, TestSplit, comparison_rows, judge, load_test_split, side,
)
from smspark_assets.assets.model_lifecycle import Assessment, Lifecycle, get_json
from smspark_assets.assets.model_page import markdown_table, model_page, parse_learning_curve, training_log_lines
from smspark_assets.sagemaker import registry
from smspark_assets.sagemaker.training import TrainingResult
from smspark_assets.sagemaker.xgboost_model import XGBoostModel


def _champion(sm: Any, s3: Any, store: Any, group: str, challenger_job: str, split: TestSplit,
              load_split: Callable[[Sequence[str]], TestSplit], log: Callable[[str], None]) -> Side | None:
    """The serving version's scores of the test rows (its own feature columns), or None without one."""
    version = registry.latest_approved(sm, group)
    if version is None:
        log(f"no approved version in {group}: the challenger is judged by the absolute threshold")
        return None
    described = sm.describe_model_package(ModelPackageName=version.arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise dg.Failure(f"champion {group} v{version.version} has no ModelDataUrl to score the test split with")
    lineage_uri = (described.get("CustomerMetadataProperties") or {}).get("lineage_report")
    columns = (get_json(s3, lineage_uri).get("feature_columns") if lineage_uri else None) or split.feature_columns
    champion_split = split if tuple(columns) == split.feature_columns else load_split(columns)
    try:
        model = XGBoostModel.from_tar(store.read_bytes(containers[0]["ModelDataUrl"]))
    except ValueError as exc:
        raise dg.Failure(f"champion {group} v{version.version} cannot be scored in process ({exc}); reject it "
                         "with approve_model_version or fix its artifact") from exc
    itself = " (this training job)" if version.training_job_name == challenger_job else ""
    return side(f"champion v{version.version}{itself}", champion_split.labels,
                model.predict(champion_split.features))


def quality_report(evaluation: Evaluation) -> dict[str, Any]:
    """The registry's ModelQuality statistics: SageMaker Model Monitor's model-quality layout."""
    q = evaluation.challenger.quality

    def figure(value: float) -> dict[str, Any]:
        return {"value": float(value), "standard_deviation": "NaN"}

    return {"version": 0.0,
            "dataset": {"item_count": q.rows, "evaluation_time": dt.datetime.now(dt.timezone.utc).isoformat(),
                        "split": "test", "positive_rate": q.positive_rate},
            "binary_classification_metrics": {"auc": figure(q.auc), "expected_calibration_error": figure(q.ece),
                                              "average_precision": figure(q.average_precision)},
            "champion": ({"name": evaluation.champion.name, **evaluation.champion.quality.as_dict()}
                         if evaluation.champion else None),
            "test_score_psi": evaluation.psi}


def assess_credit_model(*, sm: Any, s3: Any, logs: Any, store: Any, group: str, features_prefix: str,
                        days: Sequence[str], feature_columns: Sequence[str], label: str, margins: Margins,
                        result: TrainingResult, metrics: Mapping[str, float], log: Callable[[str], None],
                        tuning_trials: Sequence[Mapping[str, Any]] | None = None) -> Assessment:
    """Score the test split with the challenger (``result``) and the serving champion, judge, and prepare
    the model page."""

    def load_split(columns: Sequence[str]) -> TestSplit:
        try:
            return load_test_split(store, features_prefix, days, columns, label)
        except ValueError as exc:
            raise dg.Failure(f"credit_default_model: cannot read the test split: {exc}") from exc

    split = load_split(feature_columns)
    model = XGBoostModel.from_tar(store.read_bytes(result.model_artifacts))
    challenger = side(f"challenger ({result.job_name})", split.labels, model.predict(split.features))
    champion = _champion(sm, s3, store, group, result.job_name, split, load_split, log)
    if champion is not None and champion.scores.shape != challenger.scores.shape:
        raise dg.Failure("champion and challenger scored different test rows; both must read the same split")
    evaluation = Evaluation(split, challenger, champion, judge(challenger, champion, margins),
                            importance=model.gain_importance(feature_columns))
    rows = comparison_rows(challenger, champion, evaluation.psi)
    best = model.booster.attr("best_iteration")

    def page(lifecycle: Lifecycle) -> dict[str, Any]:
        sides = {"challenger": challenger.scores, **({"champion": champion.scores} if champion else {})}
        header = {"registry version": lifecycle.version.version if lifecycle.version else "not registered",
                  "approval status": lifecycle.version.approval_status if lifecycle.version else "-",
                  "serving": lifecycle.serving, "decision": lifecycle.decision,
                  "champion": champion.name if champion else "none (first model)",
                  "training job": result.job_name, "test rows": challenger.quality.rows}
        try:
            curves = parse_learning_curve(training_log_lines(logs, result.job_name))
            sections = model_page(split.labels, sides, evaluation.importance, curves,
                                  int(best) if best is not None else None, rows, header, tuning_trials)
        except Exception as exc:  # noqa: BLE001 - the page is a view: a plotting error must not fail training
            log(f"the model page could not be drawn: {exc!r}")
            sections = {"summary": markdown_table([{"": k, "value": v} for k, v in header.items()])
                        + f"\n\n_model page not drawn: {exc!r}_"}
        return {"validation_auc": float(metrics.get("validation:auc", float("nan"))),
                **{k: dg.MetadataValue.md(v) for k, v in sections.items()}}

    return Assessment(
        outcome=evaluation.outcome,
        metrics={f"test:{k}": v for k, v in challenger.quality.as_dict().items() if k in ("auc", "ece")},
        check_metadata={"champion": champion.name if champion else "none (first model)",
                        "comparison": dg.MetadataValue.md(markdown_table(rows))},
        quality_report=quality_report(evaluation),
        page=page,
        lineage={"feature_columns": list(feature_columns), "test_auc": challenger.quality.auc,
                 "test_ece": challenger.quality.ece, "test_rows": challenger.quality.rows},
    )

