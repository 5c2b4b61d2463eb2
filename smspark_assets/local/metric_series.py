"""CloudWatch metric data of the local stack, in memory: per metric, one statistic set per second.

A metric is ``(namespace, name, dimensions)``; each second holds ``[count, sum, min, max]`` plus, for
published raw values, the values themselves (for percentiles). Queries aggregate the seconds of each
period. Two kinds of sources answer queries:

* :class:`MetricStore` itself, for what PutMetricData sends;
* sources registered with :meth:`MetricStore.add_source` (the endpoints' invocation metrics), which
  aggregate in their own memory and are read only when someone asks, so the invoke path writes nothing.

AWS stores SageMaker's endpoint metrics at 1-minute resolution; here every metric keeps 1-second buckets,
so local alarms with 10-second periods react within seconds (tests stay short). Data older than
:data:`RETENTION_SECONDS` is dropped; :meth:`MetricStore.save` / :meth:`MetricStore.load` keep the
published series across restarts (a JSON snapshot written on shutdown, not per request).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

# 24 hours of 1-second buckets: enough for the alarms, dashboards and checks the platform runs locally.
RETENTION_SECONDS = 24 * 3600
# Raw values kept per second and metric for percentiles; beyond that percentiles are estimated from the
# values kept (the statistic set itself stays exact).
MAX_VALUES_PER_SECOND = 2000

Dimensions = tuple[tuple[str, str], ...]
MetricKey = tuple[str, str, Dimensions]
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def dimensions_key(dimensions: Iterable[dict[str, str]] | None) -> Dimensions:
    """CloudWatch dimension lists are sets: order does not matter, so the key is sorted by name."""
    return tuple(sorted((str(d["Name"]), str(d["Value"])) for d in (dimensions or [])))


@dataclass
class Stat:
    """A statistic set over some datapoints (and, when known, the values themselves)."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: list[float] = field(default_factory=list)

    def merge(self, count: float, total: float, minimum: float, maximum: float,
              values: list[float] | None = None) -> None:
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        if values:
            self.values.extend(values)

    def statistic(self, name: str) -> float | None:
        """``SampleCount``, ``Average``, ``Sum``, ``Minimum``, ``Maximum`` or ``pNN(.NN)``; ``None`` if
        the statistic cannot be computed (no values for a percentile)."""
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Average":
            return self.total / self.count if self.count else None
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        percent = percentile_of(name)
        if percent is None or not self.values:
            return None
        ordered = sorted(self.values)
        # nearest-rank percentile, as CloudWatch documents for pNN
        rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
        return ordered[rank - 1]


def percentile_of(name: str) -> float | None:
    """``p99`` -> 99.0, ``p99.9`` -> 99.9; anything else -> ``None``."""
    if not name.startswith("p"):
        return None
    try:
        value = float(name[1:])
    except ValueError:
        return None
    return value if 0.0 <= value <= 100.0 else None


class MetricSource(Protocol):
    """Metrics kept elsewhere (the endpoints' invocation counters), read only when queried."""

    def metric_keys(self) -> list[MetricKey]: ...

    def seconds(self, key: MetricKey, start: int, end: int) -> Iterable[tuple[int, Stat]]: ...


class MetricStore:
    """The published series (PutMetricData) and the registered sources, queried per period."""

    def __init__(self, snapshot: Path | None = None) -> None:
        self.snapshot = snapshot
        self._series: dict[MetricKey, dict[int, list]] = {}
        self._units: dict[MetricKey, str] = {}
        self._lock = threading.Lock()
        self._sources: list[MetricSource] = []

    def add_source(self, source: MetricSource) -> None:
        self._sources.append(source)

    # -- writing ----------------------------------------------------------------------------------------

    def put(self, key: MetricKey, second: int, count: float, total: float, minimum: float, maximum: float,
            values: list[float] | None = None, unit: str | None = None) -> None:
        """Add a statistic set (or raw values) at ``second`` (epoch seconds)."""
        with self._lock:
            bucket = self._series.setdefault(key, {}).get(second)
            if bucket is None:
                self._series[key][second] = [count, total, minimum, maximum, list(values or [])]
            else:
                bucket[0] += count
                bucket[1] += total
                bucket[2] = min(bucket[2], minimum)
                bucket[3] = max(bucket[3], maximum)
                if values and len(bucket[4]) < MAX_VALUES_PER_SECOND:
                    bucket[4].extend(values[: MAX_VALUES_PER_SECOND - len(bucket[4])])
            if unit:
                self._units[key] = unit

    def prune(self, now: float | None = None) -> None:
        oldest = int((now if now is not None else time.time()) - RETENTION_SECONDS)
        with self._lock:
            for key, buckets in list(self._series.items()):
                for second in [s for s in buckets if s < oldest]:
                    del buckets[second]
                if not buckets:
                    del self._series[key]

    # -- reading ----------------------------------------------------------------------------------------

    def keys(self) -> list[MetricKey]:
        with self._lock:
            keys = set(self._series)
        for source in self._sources:
            keys.update(source.metric_keys())
        return sorted(keys)

    def unit(self, key: MetricKey) -> str | None:
        return self._units.get(key)

    def periods(self, key: MetricKey, start: float, end: float, period: int) -> dict[int, Stat]:
        """Period start (epoch seconds, aligned to ``period``) -> the statistic set of the seconds in it.

        Only periods with data appear; a period is ``[p, p + period)``, clipped to ``[start, end)``.
        """
        first, last = int(math.floor(start)), int(math.ceil(end))
        out: dict[int, Stat] = {}

        def add(second: int, count: float, total: float, minimum: float, maximum: float,
                values: list[float] | None) -> None:
            if not first <= second < last or count <= 0:
                return
            slot = second - second % period
            stat = out.get(slot)
            if stat is None:
                stat = out[slot] = Stat()
            stat.merge(count, total, minimum, maximum, values)

        with self._lock:
            buckets = self._series.get(key)
            items = [(s, list(b[:4]), list(b[4])) for s, b in buckets.items()] if buckets else []
        for second, (count, total, minimum, maximum), values in items:
            add(second, count, total, minimum, maximum, values)
        for source in self._sources:
            for second, stat in source.seconds(key, first, last):
                add(second, stat.count, stat.total, stat.minimum, stat.maximum, stat.values)
        return out

    # -- persistence ------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the published series (statistic sets only) to the snapshot, atomically."""
        if self.snapshot is None:
            return
        with self._lock:
            doc = [
                {"key": [k[0], k[1], [list(d) for d in k[2]]], "unit": self._units.get(k),
                 "seconds": {str(s): b[:4] for s, b in buckets.items()}}
                for k, buckets in self._series.items()
            ]
        tmp = self.snapshot.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.snapshot)

    def load(self) -> None:
        if self.snapshot is None or not self.snapshot.exists():
            return
        try:
            doc = json.loads(self.snapshot.read_text())
        except (OSError, ValueError):
            return  # a damaged snapshot loses old metric data, never the service
        with self._lock:
            for item in doc:
                namespace, name, dims = item["key"]
                key: MetricKey = (namespace, name, tuple((str(a), str(b)) for a, b in dims))
                self._series[key] = {int(s): [*b, []] for s, b in item["seconds"].items()}
                if item.get("unit"):
                    self._units[key] = item["unit"]
        self.prune()
