"""Drift checks benchmark: one 20,000-row day of credit features (and its scores) against the baseline.

Run: ``.venv/bin/python benchmarks/drift.py`` (``--rows``, ``--baseline-rows``, ``--repeats``).

The day and the baseline (three days of the demo generator, ``smspark_assets/datasets/credit.py``,
featured as the Spark feature job does; the same 46 columns) are built first, outside the timing; the
day's credit score is shifted by -60 points so the report has a drifting feature and a plot to draw.

Timed (best of ``--repeats``, wall clock):

* **ours**: the day's Parquet file read with Arrow (a local file here; S3 in the asset), then
  :func:`smspark_assets.monitoring.check_day` over every monitored feature and the scores (NumPy/Arrow:
  decile bins with ``searchsorted`` + ``bincount``, one-hot groups decoded with ``argmax``), then the plot
  of the drifting features (matplotlib Agg PNG in markdown), as the drift asset does;
* **baseline** ``pandas-per-column``: the same report the straightforward way, column by column in pandas:
  ``pd.cut`` on the baseline's edges + ``value_counts``, one-hot groups decoded with ``DataFrame.idxmax``,
  the PSI summed in a Python loop over bins. It is checked to give the same PSIs (so both do the same work).

Target (issue 12): the drift checks of a 20,000-row day take under 5 s on this machine's 2 cores. Exits
non-zero when missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smspark_assets.monitoring import Baseline, build_baseline, check_day, infer_columns  # noqa: E402
from smspark_assets.monitoring.plot import drift_markdown  # noqa: E402
from smspark_assets_tests.monitoring.credit_feature_frames import as_table, feature_day  # noqa: E402

TARGET_SECONDS = 5.0
EPSILON = 1e-4


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def pandas_per_column(baseline: Baseline, day: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """The reference: PSI per feature and of the scores, column by column in pandas."""
    columns = baseline.columns
    out: dict[str, float] = {}

    def psi_loop(expected: list[float], actual: list[float]) -> float:
        total = 0.0
        for e, a in zip(expected, actual):
            e, a = max(e, EPSILON), max(a, EPSILON)
            total += (a - e) * math.log(a / e)
        return total

    def numeric(entry: dict[str, Any], series: pd.Series) -> float:
        bins = entry["numerical_statistics"]["distribution"]["bins"]
        cut = pd.cut(series.dropna(), [-np.inf, *bins["edges"], np.inf])
        actual = pd.Series(cut).value_counts(normalize=True, sort=False).tolist()
        return psi_loop(bins["proportions"], actual)

    for entry in baseline.statistics["features"]:
        name = entry["name"]
        if name in columns.groups:
            group = day[[c for _, c in columns.groups[name]]]
            values = group.idxmax(axis=1).str.split("__", n=1).str[1]
            shares = values.value_counts(normalize=True)
            buckets = entry["string_statistics"]["distribution"]["categorical"]["buckets"]
            out[name] = psi_loop([b["proportion"] for b in buckets],
                                 [float(shares.get(b["value"], 0.0)) for b in buckets])
        else:
            series = day[name].astype(float)
            indicator = columns.missing_indicators.get(name)
            if indicator is not None:
                series = series.where(day[indicator] == 0)
            out[name] = numeric(entry, series)
    out["prediction"] = numeric(baseline.scores, pd.Series(scores))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000, help="rows per baseline day (3 days)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    start = dt.date(2026, 11, 1)
    frames = [feature_day(start + dt.timedelta(days=i), args.baseline_rows) for i in range(3)]
    train = as_table(pd.concat(frames, ignore_index=True))
    rng = np.random.default_rng(11)
    baseline = build_baseline(train, infer_columns(train.schema, exclude=("application_id",)),
                              scores=rng.beta(2, 12, train.num_rows))
    day = feature_day(start + dt.timedelta(days=9), args.rows)
    day["credit_score"] = np.clip(day["credit_score"] - 60, 300, 850)  # drift on purpose: a plot to draw
    day_table = as_table(day)
    scores = rng.beta(2, 11, len(day))

    folder = tempfile.TemporaryDirectory()
    day_file = str(Path(folder.name) / "day.parquet")
    pq.write_table(day_table, day_file)
    wanted = baseline.columns.source_columns()

    def ours() -> tuple[Any, str]:
        report = check_day(baseline, pq.read_table(day_file, columns=wanted), scores=scores)
        return report, drift_markdown(report, "benchmark day")

    ours()  # warm-up: imports matplotlib, first-call costs
    ours_s, (report, markdown) = best_of(ours, args.repeats)
    ref_s, ref = best_of(lambda: pandas_per_column(baseline, day, scores), args.repeats)
    check_s, _ = best_of(lambda: check_day(baseline, day_table, scores=scores), args.repeats)

    got = {f.name: f.psi for f in report.features} | {"prediction": report.score.psi}
    worst = max(abs(got[k] - ref[k]) for k in ref)
    if worst > 1e-9:
        print(f"FAIL: the two implementations disagree (largest PSI difference {worst:.3g})")
        return 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"day: {args.rows:,} rows x {len(day.columns) - 1} feature columns "
          f"({len(report.features)} monitored features + scores); baseline {train.num_rows:,} rows; "
          f"load average {load:.2f}")
    print(f"ours (read + check_day + plot)  {ours_s * 1000:8.1f} ms   (check_day alone {check_s * 1000:.1f} ms)")
    print(f"baseline pandas-per-column      {ref_s * 1000:8.1f} ms   (PSI only, no plot)")
    print(f"ratio check_day vs pandas-per-column: {ref_s / check_s:.1f}x faster; "
          f"with the plot: {ref_s / ours_s:.2f}x")
    print(f"report: severity {report.severity}, drifting "
          f"{[f.name for f in report.drifting()]}, plot markdown {len(markdown) / 1024:.0f} KiB")
    passed = ours_s < TARGET_SECONDS
    print(f"target: under {TARGET_SECONDS:.0f} s -> {'met' if passed else 'MISSED'} ({ours_s:.3f} s)")
    folder.cleanup()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
