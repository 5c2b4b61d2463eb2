"""The scale benchmark's smallest size runs end to end: train, then the daily job at 1x and 2x.

It runs ``benchmarks/scale.py`` as a user would (its own state root and stack), with no targets
enforced: the point is that the script works and prints its table. Expected item counts come from the
data generator (rows minus the malformed rows it injects), not from the flow.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from smspark_assets.datasets.credit import malformed_row_indices

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"
BASE_ROWS = 300
START = dt.date(2026, 11, 1)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_scale_benchmark_runs_at_a_small_size(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--base-rows", str(BASE_ROWS), "--factors", "1,2", "--no-targets", "--json",
         "--root", str(tmp_path / "smspark")],
        capture_output=True, text=True, timeout=230)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "features s" in line)
    for column in ("scores s", "scores_dynamodb s", "us/row", "dagster MiB", "stack MiB", "spark jvm MiB"):
        assert column in header
    assert any(line.split()[:1] == ["1x"] for line in lines) and any(line.split()[:1] == ["2x"] for line in lines)
    assert any(line.startswith("time per row  2x / 1x:") for line in lines)
    figures = json.loads(next(line for line in lines if line.startswith("{")))
    for offset, result in enumerate(figures["results"], start=1):
        day = START + dt.timedelta(days=offset)
        rows = BASE_ROWS * result["factor"]
        malformed = sum(len(part) for part in malformed_row_indices(rows, day, 7))
        assert result["rows"] == rows and result["day"] == day.isoformat()
        assert result["items_written"] == result["rows_scored"] == rows - malformed
        assert result["peak_mib"]["dagster"] > 50 and result["peak_mib"]["spark jvm"] > 50
        assert set(result["seconds"]) >= {"credit_features", "credit_scores", "credit_scores_dynamodb"}
