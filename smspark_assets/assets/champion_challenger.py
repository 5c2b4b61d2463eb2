"""Champion against challenger on the held-out test split: the credit model's quality gate.

The test rows (``split = 'test'`` of the features: never in the training or validation channels, so
early stopping never saw them) are scored in process by both models' artifacts with the XGBoost
library, exactly as their endpoints would score them. The challenger passes when

* its test AUC reaches the absolute minimum (the only rule for the first model, which has no champion);
* its test AUC is at most ``max_auc_drop`` below the champion's;
* its expected calibration error is at most ``max_ece_increase`` above the champion's;
* the PSI of its test scores against the champion's is at most ``max_score_psi`` (score stability:
  the decisions taken on the scores must not move wholesale without someone looking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from smspark_assets import model_quality as mq
from smspark_assets.assets.algorithm_catalog import GateOutcome

GATE_METRIC = "test:auc"


@dataclass(frozen=True)
class Margins:
    """How much worse than the champion a challenger may be, and the floor for every model."""

    min_test_auc: float = 0.7
    max_auc_drop: float = 0.01
    max_ece_increase: float = 0.02
    max_score_psi: float = 0.25

    def __post_init__(self) -> None:
        for name in ("max_auc_drop", "max_ece_increase", "max_score_psi"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_test_auc <= 1:
            raise ValueError(f"min_test_auc must be in [0, 1], got {self.min_test_auc}")


@dataclass(frozen=True)
class TestSplit:
    """The labelled test rows, features in the model's column order."""

    features: np.ndarray
    labels: np.ndarray
    feature_columns: tuple[str, ...]


def load_test_split(store: Any, features_prefix: str, days: Sequence[str], feature_columns: Sequence[str],
                    label: str, max_rows: int = 500_000) -> TestSplit:
    """The ``split = 'test'`` rows of ``days`` from the feature table (Parquet, ``dt=`` partitions); at
    most ``max_rows``, taken evenly across the rows when there are more."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not feature_columns:
        raise ValueError("the model handle names no feature_columns; re-materialize credit_training_channels")
    dataset = store.parquet_dataset(features_prefix)
    missing = [c for c in [*feature_columns, label, "split"] if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"the features under {features_prefix} lack column(s) {missing}")
    table = dataset.to_table(columns=[*feature_columns, label],
                             filter=(ds.field("split") == "test") & ds.field("dt").isin(list(days)))
    if table.num_rows == 0:
        raise ValueError(f"no test rows (split = 'test') among the features of days {list(days)}")
    if table.num_rows > max_rows:
        table = table.take(pa.array(np.linspace(0, table.num_rows - 1, max_rows).astype(np.int64)))
    # One float64 matrix, nulls as NaN (the container's "missing"), built column by column in Arrow.
    features = np.column_stack([
        pc.cast(table.column(c), pa.float64()).to_numpy(zero_copy_only=False) for c in feature_columns])
    labels = pc.cast(table.column(label), pa.int64()).to_numpy(zero_copy_only=False)
    return TestSplit(features, labels, tuple(feature_columns))


@dataclass(frozen=True)
class Side:
    """One model's scores of the test rows and what they are worth."""

    name: str  # e.g. "challenger (job ...)" or "champion v3"
    scores: np.ndarray
    quality: mq.ScoreQuality


def side(name: str, labels: np.ndarray, scores: np.ndarray) -> Side:
    return Side(name, scores, mq.score_quality(labels, scores))


@dataclass(frozen=True)
class ChampionOutcome(GateOutcome):
    """A gate outcome that lists every rule the challenger broke."""

    failures: tuple[str, ...] = ()
    champion: str | None = None

    def describe(self) -> str:
        against = f"against {self.champion}" if self.champion else "no champion yet: absolute threshold only"
        if self.passed:
            return f"challenger passes on the test split ({against}; test AUC {self.value:.4f})"
        return f"challenger rejected on the test split ({against}): " + "; ".join(self.failures)


def judge(challenger: Side, champion: Side | None, margins: Margins) -> ChampionOutcome:
    """The gate's decision for ``challenger`` against ``champion`` (None for the first model)."""
    c = challenger.quality
    failures: list[str] = []
    threshold = margins.min_test_auc
    if not np.isfinite(c.auc) or c.auc < margins.min_test_auc:
        failures.append(f"test AUC {c.auc:.4f} is below the minimum {margins.min_test_auc:.4f}")
    details: dict[str, float] = {**c.as_dict("challenger_test_"), "min_test_auc": margins.min_test_auc}
    if champion is not None:
        k = champion.quality
        psi = mq.population_stability_index(champion.scores, challenger.scores)
        threshold = max(threshold, k.auc - margins.max_auc_drop)
        if c.auc < k.auc - margins.max_auc_drop:
            failures.append(f"test AUC {c.auc:.4f} is {k.auc - c.auc:.4f} below the champion's {k.auc:.4f} "
                            f"(allowed: {margins.max_auc_drop:.4f})")
        if c.ece > k.ece + margins.max_ece_increase:
            failures.append(f"calibration error {c.ece:.4f} is {c.ece - k.ece:.4f} above the champion's "
                            f"{k.ece:.4f} (allowed: {margins.max_ece_increase:.4f})")
        if psi > margins.max_score_psi:
            failures.append(f"score PSI against the champion {psi:.4f} exceeds {margins.max_score_psi:.4f}")
        details.update({**k.as_dict("champion_test_"), "test_score_psi": psi,
                        "max_auc_drop": margins.max_auc_drop, "max_ece_increase": margins.max_ece_increase,
                        "max_score_psi": margins.max_score_psi})
    return ChampionOutcome(passed=not failures, metric=GATE_METRIC, value=c.auc, threshold=threshold,
                           comparison=">=", details=details, failures=tuple(failures),
                           champion=champion.name if champion else None)


def comparison_rows(challenger: Side, champion: Side | None, psi: float | None) -> list[dict[str, Any]]:
    """Figure by figure, both sides: the table of the check and of the model page."""
    rows = []
    for label, key in (("test AUC", "auc"), ("expected calibration error", "ece"),
                       ("average precision", "average_precision"), ("test rows", "rows"),
                       ("positive rate", "positive_rate")):
        rows.append({"figure": label, "challenger": getattr(challenger.quality, key),
                     "champion": getattr(champion.quality, key) if champion else None})
    if psi is not None:
        rows.append({"figure": "score PSI (challenger vs champion)", "challenger": psi, "champion": None})
    return rows


@dataclass
class Evaluation:
    """Everything the gate and the model page need from one assessment."""

    split: TestSplit
    challenger: Side
    champion: Side | None
    outcome: ChampionOutcome
    importance: dict[str, float] = field(default_factory=dict)

    @property
    def psi(self) -> float | None:
        return self.outcome.details.get("test_score_psi")
