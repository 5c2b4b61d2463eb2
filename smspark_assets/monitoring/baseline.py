"""The baseline of a model's inputs and outputs: ``statistics.json`` and ``constraints.json``.

Shaped after SageMaker Model Monitor's baseline files (``version``, ``dataset.item_count``, per feature
``name`` / ``inferred_type`` (``Integral`` / ``Fractional`` / ``String``), ``numerical_statistics`` or
``string_statistics`` with ``common.num_present`` / ``num_missing``; constraints with ``completeness``,
``num_constraints`` and ``string_constraints.domains``), extended with what the drift checks need:
decile bin edges with the baseline's share in each bin, category shares, the score distribution, and the
warn / error bands (``monitoring_config``), which can be edited in the file like Model Monitor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from smspark_assets.monitoring import psi as psi_mod
from smspark_assets.monitoring.columns import (
    MonitoredColumns,
    category_counts,
    infer_columns,
    observed_values,
)

VERSION = 0.0
SCORE_FEATURE = "prediction"


def numeric_statistics(values: np.ndarray) -> dict[str, Any]:
    """Statistics and the decile distribution of one numeric column (NaN = missing)."""
    finite = values[np.isfinite(values)]
    n_missing = int(values.size - finite.size)
    edges = psi_mod.decile_edges(finite)
    shares = psi_mod.proportions(psi_mod.bin_counts(finite, edges))
    some = finite.size > 0
    integral = some and bool(np.all(finite == np.round(finite)))
    stats: dict[str, Any] = {
        "common": {"num_present": int(values.size - n_missing), "num_missing": n_missing},
        "mean": float(finite.mean()) if some else None,
        "sum": float(finite.sum()),
        "std_dev": float(finite.std()) if some else None,
        "min": float(finite.min()) if some else None,
        "max": float(finite.max()) if some else None,
        "distribution": {"bins": {"edges": edges.tolist(), "proportions": shares.tolist()}},
    }
    return {"inferred_type": "Integral" if integral else "Fractional", "numerical_statistics": stats}


def categorical_statistics(counts: dict[str, int], missing: int) -> dict[str, Any]:
    total = sum(counts.values())
    buckets = [{"value": v, "count": int(n), "proportion": n / total if total else 0.0}
               for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"inferred_type": "String", "string_statistics": {
        "common": {"num_present": int(total), "num_missing": int(missing)},
        "distinct_count": len(counts),
        "distribution": {"categorical": {"buckets": buckets}}}}


@dataclass(frozen=True)
class Baseline:
    """``statistics`` and ``constraints`` as JSON-ready dicts, with lookups by feature name."""

    statistics: dict[str, Any]
    constraints: dict[str, Any]

    @property
    def columns(self) -> MonitoredColumns:
        return MonitoredColumns.from_json(self.statistics["monitored_columns"])

    @property
    def item_count(self) -> int:
        return int(self.statistics["dataset"]["item_count"])

    def feature(self, name: str) -> dict[str, Any]:
        for entry in self.statistics["features"]:
            if entry["name"] == name:
                return entry
        raise KeyError(f"feature {name!r} is not in the baseline")

    @property
    def scores(self) -> dict[str, Any] | None:
        return self.statistics.get("scores")

    @classmethod
    def from_json(cls, statistics: dict[str, Any], constraints: dict[str, Any]) -> "Baseline":
        for what, doc, keys in (("statistics", statistics, ("features", "dataset", "monitored_columns")),
                                ("constraints", constraints, ("features", "monitoring_config"))):
            if not isinstance(doc, dict) or any(k not in doc for k in keys):
                raise ValueError(f"not a baseline {what} document: it needs the keys {list(keys)}")
        return cls(statistics, constraints)


def _constraint(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["inferred_type"] == "String":
        common = entry["string_statistics"]["common"]
        total = common["num_present"] + common["num_missing"]
        domains = [b["value"] for b in entry["string_statistics"]["distribution"]["categorical"]["buckets"]]
        return {"name": entry["name"], "inferred_type": "String",
                "completeness": common["num_present"] / total if total else 1.0,
                "string_constraints": {"domains": domains}}
    stats = entry["numerical_statistics"]
    common = stats["common"]
    total = common["num_present"] + common["num_missing"]
    return {"name": entry["name"], "inferred_type": entry["inferred_type"],
            "completeness": common["num_present"] / total if total else 1.0,
            "num_constraints": {"is_non_negative": stats["min"] is not None and stats["min"] >= 0,
                                "min": stats["min"], "max": stats["max"]}}


def build_baseline(table: pa.Table, columns: MonitoredColumns | None = None, scores: np.ndarray | None = None,
                   thresholds: Any = None, source: dict[str, Any] | None = None) -> Baseline:
    """The baseline of ``table`` (the training features) and of the model's ``scores`` on such rows.

    ``columns`` defaults to :func:`~smspark_assets.monitoring.columns.infer_columns` over the whole table;
    ``thresholds`` (a :class:`~smspark_assets.monitoring.checks.DriftThresholds`) are written into the
    constraints; ``source`` (which data, which model) is recorded as it is.
    """
    from smspark_assets.monitoring.checks import DriftThresholds

    if table.num_rows == 0:
        raise ValueError("a baseline needs at least one row of training features; the table is empty")
    columns = columns or infer_columns(table.schema)
    features: list[dict[str, Any]] = []
    for name in columns.numeric:
        features.append({"name": name, **numeric_statistics(observed_values(table, columns, name))})
    for name in (*columns.categorical, *columns.groups):
        counts, missing = category_counts(table, columns, name)
        entry = {"name": name, **categorical_statistics(counts, missing)}
        if name in columns.groups:
            entry["source_columns"] = [c for _, c in columns.groups[name]]
        features.append(entry)
    score_entry = None
    if scores is not None and np.asarray(scores).size:
        score_entry = {"name": SCORE_FEATURE, **numeric_statistics(np.asarray(scores, dtype=np.float64))}
    statistics = {"version": VERSION, "dataset": {"item_count": int(table.num_rows)},
                  "monitored_columns": columns.to_json(), "features": features, "scores": score_entry,
                  "source": source or {}}
    constraints = {"version": VERSION, "features": [_constraint(f) for f in features],
                   "monitoring_config": (thresholds or DriftThresholds()).to_json()}
    if score_entry is not None:
        constraints["scores"] = _constraint(score_entry)
    return Baseline(statistics, constraints)
