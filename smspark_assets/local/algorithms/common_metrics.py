"""Evaluation metrics of the first-party algorithms, vectorised with NumPy.

Names follow SageMaker's metric names (``binary_f_beta``, ``roc_auc_score``, ...); the callers add the
``test:`` / ``validation:`` prefix. ``log_quality`` prints the container's ``#quality_metric`` line
that tuning regexes match.
"""

from __future__ import annotations

import numpy as np

from smspark_assets.local.algorithms.base import TrainingEnvironment


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores averaged); NaN when one class is absent."""
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [s.size]))
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_counts(labels: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(true positives, false positives, true negatives, false negatives)."""
    y = np.asarray(labels) > 0.5
    p = np.asarray(predicted) > 0.5
    tp = int(np.count_nonzero(y & p))
    fp = int(np.count_nonzero(~y & p))
    tn = int(np.count_nonzero(~y & ~p))
    fn = int(np.count_nonzero(y & ~p))
    return tp, fp, tn, fn


def precision_recall_fbeta(tp: float, fp: float, fn: float, beta: float = 1.0) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    b2 = beta * beta
    denom = b2 * precision + recall
    fbeta = (1 + b2) * precision * recall / denom if denom else 0.0
    return precision, recall, fbeta


def threshold_sweep(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion counts for every candidate threshold "predict 1 when score >= t", t over the distinct scores.

    Returns arrays ``thresholds, tp, fp, tn, fn`` (one entry per candidate, plus +inf = predict all 0).
    """
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    tp_cum = np.cumsum(y_sorted)
    fp_cum = np.cumsum(~y_sorted)
    # Only the last position of each run of equal scores is a valid cut.
    last = np.concatenate((np.flatnonzero(np.diff(s_sorted)), [s.size - 1]))
    thresholds = np.concatenate(([np.inf], s_sorted[last]))
    tp = np.concatenate(([0], tp_cum[last])).astype(np.float64)
    fp = np.concatenate(([0], fp_cum[last])).astype(np.float64)
    pos = float(y.sum())
    neg = float(y.size - pos)
    return {"thresholds": thresholds, "tp": tp, "fp": fp, "fn": pos - tp, "tn": neg - fp}


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


_LOSS_WORDS = ("loss", "msd", "ssd", "mse", "rmse", "cross_entropy")


def log_metric(env: TrainingEnvironment, channel: str, name: str, value: float) -> None:
    """Record ``<channel>:<name>`` and print the container's ``#quality_metric`` line for it.

    The containers tag losses (minimised) ``<loss>`` and scores (maximised) ``<score>``, e.g.
    ``#quality_metric: host=algo-1, test msd <loss>=1.5``; tuning jobs parse these lines.
    """
    tag = "loss" if any(word in name for word in _LOSS_WORDS) else "score"
    env.log(f"#quality_metric: host=algo-1, {channel} {name} <{tag}>={float(value)}")
    env.log_metric(f"{channel}:{name}", value)
