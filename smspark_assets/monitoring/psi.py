"""Decile bins and the population stability index (PSI).

PSI compares the share of a day's values in each bin with the share the baseline had there::

    PSI = sum_i (actual_i - expected_i) * ln(actual_i / expected_i)

Shares are floored at :data:`EPSILON` first, so an empty bin on either side gives a large but finite
term instead of an infinity (the usual practice). The usual industry reading, used for the default bands
of :class:`~smspark_assets.monitoring.checks.DriftThresholds`: below 0.1 no significant shift, 0.1-0.25 a
moderate shift worth a look, above 0.25 a significant shift.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)


def decile_edges(values: np.ndarray) -> np.ndarray:
    """The distinct deciles (10 %..90 %) of the finite ``values``: the inner edges of at most 10 bins.

    Discrete columns (a term of 12/24/36/48/60 months, a 0/1 flag) have repeated deciles; keeping the
    distinct ones gives one bin per value range actually present.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(finite, DECILES))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many finite ``values`` fall in each bin ``(-inf, e1], (e1, e2], ..., (ek, inf)``."""
    finite = values[np.isfinite(values)]
    index = np.searchsorted(edges, finite, side="left")
    return np.bincount(index, minlength=edges.size + 1)


def proportions(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their total (all zeros when there is nothing to share)."""
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(counts.shape, dtype=np.float64)


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """PSI of ``actual`` shares against ``expected`` shares (same bins); ``nan`` when either is empty."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"PSI needs the same bins on both sides; got {expected.shape} and {actual.shape}")
    if expected.sum() <= 0 or actual.sum() <= 0:
        return float("nan")
    e = np.maximum(expected, epsilon)
    a = np.maximum(actual, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))
