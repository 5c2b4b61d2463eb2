"""The model page: what an ML engineer looks at on a model asset's materialization.

Dagster has no image metadata type, so every plot is a small PNG (matplotlib's Agg backend, no display)
embedded in markdown as ``![name](data:image/png;base64,...)``; each stays well under 100 KB. The page holds

* ROC and precision-recall curves of the challenger (and the champion) on the test split;
* calibration by score decile (predicted against observed default rate);
* feature importance (total gain per feature, from the Booster);
* the learning curve: the metric per boosting round, parsed from the training job's log in CloudWatch
  Logs (``/aws/sagemaker/TrainingJobs``), where the container prints ``[12]#011train-auc:0.91#011...``;
* the score histogram of both models;
* tables: champion against challenger, and the trials of a tuning job when one produced the model.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from smspark_assets import model_quality as mq

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# One boosting round as the XGBoost container logs it; the tab is shown as #011 by CloudWatch.
_ROUND = re.compile(r"^\[(\d+)\]((?:(?:#011|\t)[\w.@-]+-[\w@.-]+:[-+\deE.naif]+)+)\s*$")
_PAIR = re.compile(r"^([\w.@]+?)-([\w@.-]+):([-+\deE.naif]+)$")
_SEPARATOR = re.compile(r"#011|\t")
MAX_LOG_EVENTS = 20_000
FIGSIZE = (5.0, 3.2)
DPI = 80


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: a server process draws into memory
    import matplotlib.pyplot as plt

    return plt


def png_markdown(fig: Any, name: str) -> str:
    """``fig`` as an embedded PNG in markdown (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return f"![{name}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def roc_pr_plot(labels: np.ndarray, sides: Mapping[str, np.ndarray]) -> str:
    """ROC and precision-recall curves, one line per model."""
    plt = _pyplot()
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(FIGSIZE[0] * 1.6, FIGSIZE[1]))
    for name, scores in sides.items():
        fpr, tpr, _ = mq.roc_curve(labels, scores)
        roc.plot(fpr, tpr, label=f"{name} (AUC {mq.auc(labels, scores):.3f})")
        precision, recall = mq.precision_recall_curve(labels, scores)
        pr.plot(recall, precision, label=f"{name} (AP {mq.average_precision(labels, scores):.3f})")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
    pr.axhline(float(np.mean(labels)), color="grey", linestyle=":", linewidth=1)
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall (test split)")
    roc.legend(fontsize=7, loc="lower right")
    pr.legend(fontsize=7, loc="upper right")
    return png_markdown(fig, "roc and precision-recall")


def calibration_plot(labels: np.ndarray, sides: Mapping[str, np.ndarray]) -> str:
    """Mean predicted against observed rate per score decile."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    top = 0.0
    for name, scores in sides.items():
        table = mq.calibration_by_quantile(labels, scores)
        ax.plot(table.mean_score, table.observed_rate, marker="o", markersize=3, label=name)
        top = max(top, float(table.mean_score.max()), float(table.observed_rate.max()))
    ax.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="mean predicted default (decile)", ylabel="observed default rate", title="calibration by decile")
    ax.legend(fontsize=7)
    return png_markdown(fig, "calibration")


def importance_plot(importance: Mapping[str, float], top: int = 15) -> str:
    """The ``top`` features by total gain, largest at the top."""
    plt = _pyplot()
    ranked = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    if ranked:
        ax.barh([k for k, _ in ranked], [v for _, v in ranked])
    ax.set(xlabel="total gain", title="feature importance")
    ax.tick_params(axis="y", labelsize=7)
    return png_markdown(fig, "feature importance")


def learning_curve_plot(curves: Mapping[str, Sequence[float]], best_round: int | None = None) -> str:
    """Each ``<channel>-<metric>`` per boosting round."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=name)
    if best_round is not None:
        ax.axvline(best_round, color="grey", linestyle=":", linewidth=1, label=f"best round {best_round}")
    ax.set(xlabel="boosting round", ylabel="metric", title="learning curve (training log)")
    ax.legend(fontsize=7)
    return png_markdown(fig, "learning curve")


def score_histogram(sides: Mapping[str, np.ndarray]) -> str:
    """The test scores' distribution of each model, on common bins."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    bins = np.linspace(0.0, 1.0, 41)
    for name, scores in sides.items():
        ax.hist(scores, bins=bins, alpha=0.55, label=name)
    ax.set(xlabel="predicted probability of default", ylabel="test rows", title="score histogram")
    ax.legend(fontsize=7)
    return png_markdown(fig, "score histogram")


def parse_learning_curve(lines: Iterable[str]) -> dict[str, list[float]]:
    """``{"train-auc": [...], "validation-auc": [...]}`` from the container's per-round log lines.

    A round logged twice (a retried or re-attached log) keeps its last value; rounds are in order.
    """
    by_round: dict[int, dict[str, float]] = {}
    for line in lines:
        match = _ROUND.match(line.strip())
        if match is None:
            continue
        pairs = (_PAIR.match(part) for part in _SEPARATOR.split(match.group(2)) if part)
        by_round[int(match.group(1))] = {f"{p.group(1)}-{p.group(2)}": float(p.group(3)) for p in pairs if p}
    curves: dict[str, list[float]] = {}
    for number in sorted(by_round):
        for name, value in by_round[number].items():
            curves.setdefault(name, []).append(value)
    return curves


def training_log_lines(logs: Any, job_name: str) -> list[str]:
    """The messages of training job ``job_name``'s log streams (``<job>/algo-1-...``), oldest first;
    [] when the log group or the streams do not exist (yet)."""
    from botocore.exceptions import ClientError

    lines: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job_name}/"}
    try:
        while len(lines) < MAX_LOG_EVENTS:
            page = logs.filter_log_events(**kwargs)
            lines.extend(event["message"] for event in page.get("events", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if np.isfinite(value) else "n/a"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of ``rows`` (columns: the first row's keys)."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def tuning_trials_table(trials: Sequence[Mapping[str, Any]]) -> str:
    """One row per trial of a tuning job: name, status, objective, hyperparameters (the tuning hook)."""
    return markdown_table([{"trial": t.get("TrainingJobName"), "status": t.get("TrainingJobStatus"),
                            "objective": (t.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
                            "hyperparameters": ", ".join(f"{k}={v}" for k, v in
                                                         sorted((t.get("TunedHyperParameters") or {}).items()))}
                           for t in trials])


def model_page(labels: np.ndarray, sides: Mapping[str, np.ndarray], importance: Mapping[str, float],
               curves: Mapping[str, Sequence[float]], best_round: int | None,
               comparison: Sequence[Mapping[str, Any]], header: Mapping[str, Any],
               tuning_trials: Sequence[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """The page as markdown sections, one metadata entry each: ``summary`` (``header``: registry version,
    approval, decision...; and the champion/challenger table), then one plot per entry."""
    summary = "\n".join([markdown_table([{"": k, "value": v} for k, v in header.items()]), "",
                         "**Champion against challenger (test split)**", "", markdown_table(comparison)])
    page = {
        "summary": summary,
        "roc_and_precision_recall": roc_pr_plot(labels, sides),
        "calibration_by_decile": calibration_plot(labels, sides),
        "score_histogram": score_histogram(sides),
        "feature_importance": importance_plot(importance),
        "learning_curve": learning_curve_plot(curves, best_round) if curves else
        f"_No learning curve: the training log is not in CloudWatch Logs ({TRAINING_LOG_GROUP})._",
    }
    if tuning_trials:
        page["tuning_trials"] = tuning_trials_table(tuning_trials)
    return page
