"""How good a binary classifier's scores are: discrimination, calibration and stability, in NumPy.

Every function takes labels (0/1 or bool) and scores (probabilities) as 1-D arrays and is vectorized:
one sort per call, no per-row Python. The champion/challenger gate and the model page use them.

* :func:`auc` -- area under the ROC curve (Mann-Whitney rank sum, ties averaged: scikit-learn's value).
* :func:`roc_curve`, :func:`precision_recall_curve` -- the curves at every distinct score.
* :func:`expected_calibration_error` -- the weighted mean gap between predicted and observed rates over
  equal-width score bins (Naeini et al. 2015; 10 bins as usual).
* :func:`calibration_by_quantile` -- predicted vs observed rate per score decile (the model page's table).
* :func:`population_stability_index` -- PSI of one score distribution against a reference, over the
  reference's quantile bins: ``sum((a - e) * ln(a / e))``; below 0.1 stable, above 0.25 a major shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# PSI's logarithm needs non-empty bins: an empty bin counts as this share (a common convention).
PSI_FLOOR = 1e-4


def _inputs(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D arrays of one length, got shapes {y.shape} and {s.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 (or booleans)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers")
    return y.astype(bool), s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _inputs(labels, scores)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    from scipy.stats import rankdata  # here: scipy.stats costs ~0.9 s to import, and most processes never rank

    ranks = rankdata(s)  # ties get their average rank, which counts a tied pair as half right
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when flagging every score >= each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # The last index of each run of equal scores: all tied rows are flagged together.
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last].astype(np.float64)
    fps = (last + 1) - tps
    return tps, fps, s_sorted[last]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold), starting at (0, 0) with threshold +inf."""
    y, s = _inputs(labels, scores)
    tps, fps, thresholds = _cumulative_counts(y, s)
    positives, negatives = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return (np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives], np.r_[np.inf, thresholds])


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) at every distinct threshold, from the highest score down."""
    y, s = _inputs(labels, scores)
    tps, fps, _ = _cumulative_counts(y, s)
    return tps / (tps + fps), tps / max(int(y.sum()), 1)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as a step function (scikit-learn's average precision)."""
    precision, recall = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Sum over ``bins`` equal-width bins of [0, 1] of (bin share) x |mean score - observed rate|."""
    y, s = _inputs(labels, scores)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if y.size == 0:
        return float("nan")
    # Bin b holds scores in [b/bins, (b+1)/bins); a score of exactly 1 goes to the last bin.
    index = np.clip((s * bins).astype(np.int64), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, weights=s, minlength=bins) - np.bincount(index, weights=y, minlength=bins))
    return float(gap.sum() / y.size)  # |sum s - sum y| / n_b weighted by n_b / n


@dataclass(frozen=True)
class CalibrationTable:
    """Predicted against observed positive rate per score quantile (1 = lowest scores)."""

    bucket: np.ndarray
    count: np.ndarray
    mean_score: np.ndarray
    observed_rate: np.ndarray


def calibration_by_quantile(labels: np.ndarray, scores: np.ndarray, buckets: int = 10) -> CalibrationTable:
    """Rows ranked by score and cut into ``buckets`` groups of (nearly) equal size, as SQL's NTILE does."""
    y, s = _inputs(labels, scores)
    order = np.argsort(s, kind="mergesort")
    n = y.size
    # NTILE: the first n % buckets groups get one row more.
    sizes = np.full(buckets, n // buckets) + (np.arange(buckets) < n % buckets)
    group = np.repeat(np.arange(buckets), sizes)
    count = np.bincount(group, minlength=buckets)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(group, weights=s[order], minlength=buckets) / count
        observed = np.bincount(group, weights=y[order], minlength=buckets) / count
    keep = count > 0
    return CalibrationTable(np.arange(1, buckets + 1)[keep], count[keep], mean_score[keep], observed[keep])


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` scores against ``expected`` ones over ``bins`` quantile bins of ``expected``.

    Bin edges are the reference's quantiles (duplicates merged, outer edges open), so each reference bin
    holds about 1/bins of it; identical distributions give 0.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.size == 0 or a.size == 0:
        raise ValueError("population_stability_index needs scores on both sides")
    if not (np.isfinite(e).all() and np.isfinite(a).all()):
        raise ValueError("scores must be finite numbers")
    inner = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(inner, e, side="right"), minlength=inner.size + 1) / e.size
    a_share = np.bincount(np.searchsorted(inner, a, side="right"), minlength=inner.size + 1) / a.size
    e_share, a_share = np.maximum(e_share, PSI_FLOOR), np.maximum(a_share, PSI_FLOOR)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


@dataclass(frozen=True)
class ScoreQuality:
    """The figures the gate compares, for one model's scores of one labelled set."""

    rows: int
    positive_rate: float
    auc: float
    ece: float
    average_precision: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in self.__dict__.items()}


def score_quality(labels: np.ndarray, scores: np.ndarray) -> ScoreQuality:
    y, _ = _inputs(labels, scores)
    return ScoreQuality(rows=int(y.size), positive_rate=float(y.mean()) if y.size else float("nan"),
                        auc=auc(labels, scores), ece=expected_calibration_error(labels, scores),
                        average_precision=average_precision(labels, scores))
