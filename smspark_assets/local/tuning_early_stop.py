"""Intermediate objective values of running trials and the median stopping rule (``TrainingJobEarlyStoppingType
= Auto``).

SageMaker's rule (AWS guide, "Stop Training Jobs Early"): after each epoch, compare the trial's objective with
the median of the running averages of the objective of all previous trials up to the same epoch; stop the
trial when it is worse (lower when maximizing, higher when minimizing).

Where the values come from: the trial's training log, read incrementally (only the bytes appended since the
last look, up to the last complete line).

* a metric with a ``MetricDefinitions`` regex (script mode, custom images): each match is one epoch;
* the built-in XGBoost algorithm: the container's round lines ``[12]#011train-auc:0.93#011validation-auc:0.91``
  (its metric regex is ``.*\\[[0-9]+\\].*#011validation-<m>:(\\S+)``), one line per boosting round.

The other built-in algorithms log no per-epoch objective in a known form, so their trials are never
stopped early: with ``Auto`` they run to completion (the tuning job's result is the same, only slower).
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

# Fewest previous trials that reached an epoch before the rule judges a trial at that epoch: a median of one
# or two curves would stop good trials on noise.
MIN_PREVIOUS_TRIALS = 3
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)"


def objective_pattern(metric_name: str, definitions: list[dict[str, str]], algorithm: str) -> re.Pattern[str] | None:
    """The regex whose successive matches are the objective's per-epoch values; None when unknown."""
    for definition in definitions or []:
        if definition.get("Name") == metric_name and definition.get("Regex"):
            try:
                return re.compile(definition["Regex"])
            except re.error:
                return None
    if algorithm == "xgboost" and ":" in metric_name:
        channel, metric = metric_name.split(":", 1)
        return re.compile(r"\[[0-9]+\].*#011" + re.escape(f"{channel}-{metric}") + ":" + _NUMBER)
    return None


@dataclass
class CurveReader:
    """Follows one trial's log and accumulates its objective per epoch."""

    path: Path
    pattern: re.Pattern[str]
    values: list[float] = field(default_factory=list)
    _offset: int = 0

    def read(self) -> list[float]:
        """Values parsed so far (reads what was appended since the previous call)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return self.values
        end = chunk.rfind(b"\n")
        if end < 0:
            return self.values
        self._offset += end + 1
        for line in chunk[: end + 1].decode("utf-8", errors="replace").splitlines():
            match = self.pattern.search(line)
            if not match:
                continue
            text = match.group(1) if match.groups() else match.group(0)
            try:
                value = float(text)
            except ValueError:
                continue
            if math.isfinite(value):
                self.values.append(value)
        return self.values


def running_average(values: list[float], epoch: int) -> float:
    """Mean of the first ``epoch + 1`` values."""
    head = values[: epoch + 1]
    return sum(head) / len(head)


def should_stop(current: list[float], previous: list[list[float]], maximize: bool) -> bool:
    """The median rule at the trial's latest epoch (False while too few previous trials reached it)."""
    if not current:
        return False
    epoch = len(current) - 1
    averages = [running_average(curve, epoch) for curve in previous if len(curve) > epoch]
    if len(averages) < MIN_PREVIOUS_TRIALS:
        return False
    median = statistics.median(averages)
    value = current[-1]
    return value < median if maximize else value > median
