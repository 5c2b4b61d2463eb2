"""A day's features and scores against the baseline: missing rates, out-of-range values, new categories,
and the population stability index per feature and of the scores, each judged by warn / error bands."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from smspark_assets.monitoring import psi as psi_mod
from smspark_assets.monitoring.baseline import Baseline
from smspark_assets.monitoring.columns import category_counts, observed_values

SEVERITIES = ("ok", "warn", "error")


@dataclass(frozen=True)
class Band:
    """A measure is a warning above ``warn`` and an error above ``error``."""

    warn: float
    error: float

    def __post_init__(self) -> None:
        if not (0 <= self.warn <= self.error):
            raise ValueError(f"a band needs 0 <= warn <= error; got warn={self.warn}, error={self.error}")

    def judge(self, value: float) -> str:
        if not np.isfinite(value):
            return "ok"
        return "error" if value > self.error else "warn" if value > self.warn else "ok"


@dataclass(frozen=True)
class DriftThresholds:
    """Warn / error bands of the drift checks.

    PSI 0.1 / 0.25 are the usual industry bands (below 0.1 no significant shift, 0.1-0.25 moderate, above
    0.25 significant). The others are this project's choices: a column's missing rate may rise by 2
    percentage points before a warning (10 for an error); 1 % of a day's values outside the baseline's
    [min, max] warns (5 % errs) — a baseline of many rows has wide extremes, so a few such values are
    normal; 0.5 % of rows in categories the baseline never saw warns (5 % errs).
    """

    psi: Band = Band(0.1, 0.25)
    missing_rate_increase: Band = Band(0.02, 0.10)
    out_of_range_share: Band = Band(0.01, 0.05)
    new_category_share: Band = Band(0.005, 0.05)

    def to_json(self) -> dict[str, Any]:
        return {"evaluate_constraints": "Enabled",
                "distribution_constraints": {"perform_comparison": "Enabled", "comparison_method": "PSI",
                                             "warn_threshold": self.psi.warn, "error_threshold": self.psi.error},
                **{name: asdict(getattr(self, name))
                   for name in ("missing_rate_increase", "out_of_range_share", "new_category_share")}}

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> "DriftThresholds":
        dist = config.get("distribution_constraints", {})
        default = cls()
        return cls(
            psi=Band(float(dist.get("warn_threshold", default.psi.warn)),
                     float(dist.get("error_threshold", default.psi.error))),
            **{name: Band(**config[name]) if name in config else getattr(default, name)
               for name in ("missing_rate_increase", "out_of_range_share", "new_category_share")})


@dataclass
class FeatureDrift:
    """One feature (or the scores) of a day against the baseline."""

    name: str
    kind: str  # numeric | categorical | score
    psi: float
    missing_rate: float
    baseline_missing_rate: float
    out_of_range_share: float = 0.0
    new_categories: list[str] = field(default_factory=list)
    new_category_share: float = 0.0
    severity: str = "ok"
    reasons: list[str] = field(default_factory=list)
    # For the plot: bin (or category) labels with the baseline's and the day's shares.
    labels: list[str] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)

    def judge(self, thresholds: DriftThresholds) -> "FeatureDrift":
        checks = [("PSI", self.psi, thresholds.psi),
                  ("missing-rate increase", self.missing_rate - self.baseline_missing_rate,
                   thresholds.missing_rate_increase),
                  ("share out of the baseline's range", self.out_of_range_share, thresholds.out_of_range_share),
                  ("share in new categories", self.new_category_share, thresholds.new_category_share)]
        worst = 0
        for label, value, band in checks:
            level = band.judge(value)
            if level != "ok":
                limit = band.error if level == "error" else band.warn
                self.reasons.append(f"{label} {value:.4g} > {limit:g} ({level})")
                worst = max(worst, SEVERITIES.index(level))
        self.severity = SEVERITIES[worst]
        return self

    def row(self) -> dict[str, Any]:
        """The figures of a metadata table row (no plot data)."""
        return {"feature": self.name, "kind": self.kind, "psi": _round(self.psi),
                "missing_rate": _round(self.missing_rate), "baseline_missing_rate": _round(self.baseline_missing_rate),
                "out_of_range_share": _round(self.out_of_range_share),
                "new_categories": ", ".join(self.new_categories[:5]),
                "severity": self.severity, "reasons": "; ".join(self.reasons)}


def _round(x: float) -> float | None:
    return round(float(x), 5) if np.isfinite(x) else None


@dataclass
class DriftReport:
    """Every monitored feature and the scores of one day, with the worst severity."""

    rows_checked: int
    features: list[FeatureDrift]
    score: FeatureDrift | None

    @property
    def feature_severity(self) -> str:
        return _worst(f.severity for f in self.features)

    @property
    def score_severity(self) -> str:
        return self.score.severity if self.score is not None else "ok"

    @property
    def severity(self) -> str:
        return _worst([self.feature_severity, self.score_severity])

    def drifting(self) -> list[FeatureDrift]:
        """Features not ``ok``, worst PSI first."""
        bad = [f for f in self.features if f.severity != "ok"]
        return sorted(bad, key=lambda f: (-SEVERITIES.index(f.severity), -np.nan_to_num(f.psi)))

    def to_json(self) -> dict[str, Any]:
        return {"rows_checked": self.rows_checked, "severity": self.severity,
                "feature_severity": self.feature_severity, "score_severity": self.score_severity,
                "features": [f.row() for f in self.features],
                "score": self.score.row() if self.score is not None else None}


def _worst(levels: Any) -> str:
    return SEVERITIES[max((SEVERITIES.index(s) for s in levels), default=0)]


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    cuts = [f"{e:.4g}" for e in edges]
    return [f"≤{cuts[0]}", *[f"{a}–{b}" for a, b in zip(cuts[:-1], cuts[1:])], f">{cuts[-1]}"]


def numeric_drift(name: str, kind: str, entry: dict[str, Any], values: np.ndarray) -> FeatureDrift:
    """A numeric column (or the scores) of the day, NaN where missing, against its baseline ``entry``."""
    stats = entry["numerical_statistics"]
    edges = np.asarray(stats["distribution"]["bins"]["edges"], dtype=np.float64)
    expected = np.asarray(stats["distribution"]["bins"]["proportions"], dtype=np.float64)
    finite = values[np.isfinite(values)]
    actual = psi_mod.proportions(psi_mod.bin_counts(finite, edges))
    base_total = stats["common"]["num_present"] + stats["common"]["num_missing"]
    lo, hi = stats["min"], stats["max"]
    outside = int(np.count_nonzero((finite < lo) | (finite > hi))) if lo is not None else 0
    return FeatureDrift(
        name=name, kind=kind, psi=psi_mod.psi(expected, actual) if finite.size else float("nan"),
        missing_rate=(values.size - finite.size) / values.size if values.size else 0.0,
        baseline_missing_rate=stats["common"]["num_missing"] / base_total if base_total else 0.0,
        out_of_range_share=outside / finite.size if finite.size else 0.0,
        labels=_bin_labels(edges.tolist()), expected=expected.tolist(), actual=actual.tolist())


def categorical_drift(name: str, entry: dict[str, Any], counts: dict[str, int], missing: int) -> FeatureDrift:
    """A categorical feature of the day against its baseline ``entry``; unseen categories count as new."""
    stats = entry["string_statistics"]
    base = {b["value"]: float(b["proportion"]) for b in stats["distribution"]["categorical"]["buckets"]}
    present = sum(counts.values())
    new = sorted((c for c in counts if c not in base), key=lambda c: -counts[c])
    labels = list(base) + new
    expected = np.array([base.get(c, 0.0) for c in labels])
    actual = np.array([counts.get(c, 0) for c in labels], dtype=np.float64)
    actual = actual / present if present else actual
    base_total = stats["common"]["num_present"] + stats["common"]["num_missing"]
    return FeatureDrift(
        name=name, kind="categorical", psi=psi_mod.psi(expected, actual) if present else float("nan"),
        missing_rate=missing / (present + missing) if present + missing else 0.0,
        baseline_missing_rate=stats["common"]["num_missing"] / base_total if base_total else 0.0,
        new_categories=new, new_category_share=sum(counts[c] for c in new) / present if present else 0.0,
        labels=labels, expected=expected.tolist(), actual=actual.tolist())


def check_day(baseline: Baseline, table: pa.Table, scores: np.ndarray | None = None,
              thresholds: DriftThresholds | None = None) -> DriftReport:
    """Every baseline feature of ``table`` (one day) and its ``scores``, judged by ``thresholds``
    (default: the baseline's ``monitoring_config``). A feature the day lacks is an error."""
    thresholds = thresholds or DriftThresholds.from_json(baseline.constraints["monitoring_config"])
    columns = baseline.columns
    present = set(table.column_names)
    results: list[FeatureDrift] = []
    for entry in baseline.statistics["features"]:
        name = entry["name"]
        needed = entry.get("source_columns") or [name]
        absent = [c for c in needed if c not in present]
        if absent:
            results.append(FeatureDrift(name, "missing", float("nan"), 1.0, 0.0, severity="error",
                                        reasons=[f"column(s) {absent} missing from the day"]))
            continue
        if entry["inferred_type"] == "String":
            counts, missing = category_counts(table, columns, name)
            drift = categorical_drift(name, entry, counts, missing)
        else:
            drift = numeric_drift(name, "numeric", entry, observed_values(table, columns, name))
        results.append(drift.judge(thresholds))
    score = None
    if scores is not None and baseline.scores is not None:
        values = np.asarray(scores, dtype=np.float64)
        score = numeric_drift(baseline.scores["name"], "score", baseline.scores, values).judge(thresholds)
    return DriftReport(table.num_rows, results, score)
