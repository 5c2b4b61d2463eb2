"""The scale benchmark runs end to end at its smallest size: a quick model, then the daily job at 1x.

It runs ``benchmarks/scale.py`` as a user would (its own state root and stack), with no targets
enforced: the point is that the script works and prints its table. The model comes from
``--quick-model`` (a Booster trained in-process and deployed on the stack's endpoint), since training
is not what the benchmark measures and training through the assets costs minutes; the daily flow it
measures (features -> scores -> DynamoDB) is the project's own job. One size, because every size is
two Spark applications (about 25 s each here) whatever its rows; the ratios between sizes are checked
on hand-made figures instead. Expected item counts come from the data generator (rows minus the
malformed rows it injects), not from the flow.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from smspark_assets.datasets.credit import malformed_row_indices

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"
BASE_ROWS = 300
START = dt.date(2026, 11, 1)
STAGES = ("credit_features", "credit_scores", "credit_scores_dynamodb")


def _scale_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_scale_benchmark_runs_at_a_small_size(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--base-rows", str(BASE_ROWS), "--factors", "1", "--no-targets", "--json",
         "--quick-model", "--root", str(tmp_path / "smspark")],
        capture_output=True, text=True, timeout=190)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()

    # The quick model is a real model of the generated data (the generator's default risk is learnable).
    quick = next(line for line in lines if line.startswith("[scale] quick model:"))
    assert "300 trees" in quick and float(quick.split("held-out AUC ")[1].split(")")[0]) > 0.6
    assert "served on credit-default" in quick

    day = START + dt.timedelta(days=1)
    malformed = sum(len(part) for part in malformed_row_indices(BASE_ROWS, day, 7))
    figures = json.loads(next(line for line in lines if line.startswith("{")))
    assert figures["model"] == "quick" and figures["base_rows"] == BASE_ROWS and figures["missed"] == []
    [result] = figures["results"]
    assert result["factor"] == 1 and result["rows"] == BASE_ROWS and result["day"] == day.isoformat()
    # Every well-formed row of the day is scored, and every scored row becomes one DynamoDB item.
    assert result["items_written"] == result["rows_scored"] == BASE_ROWS - malformed
    assert set(result["seconds"]) >= set(STAGES) and all(result["seconds"][s] > 0 for s in STAGES)
    assert result["total_seconds"] >= sum(result["seconds"][s] for s in STAGES)
    assert result["peak_mib"]["dagster"] > 50 and result["peak_mib"]["spark jvm"] > 50
    assert result["peak_mib"]["model server"] > 0  # the quick model's endpoint answered the scoring job

    # The printed table: the stages' columns, and the 1x row holding the JSON's figures.
    header = next(line for line in lines if "features s" in line).split()
    for column in ("scores", "scores_dynamodb", "checks", "total", "rows/s", "us/row", "dagster", "stack", "jvm"):
        assert column in header
    [row] = [line.split() for line in lines if line.split()[:1] == ["1x"]]
    assert row[1] == f"{BASE_ROWS:,}"
    assert [float(cell) for cell in row[2:5]] == [round(result["seconds"][s], 1) for s in STAGES]
    assert float(row[6]) == round(result["total_seconds"], 1)
    assert any(line.startswith("time per row  1x / 1x: 1.00") for line in lines)
    assert lines[-1] == "targets not enforced"


def test_scale_ratios_are_against_the_1x_baseline() -> None:
    scale = _scale_module()

    def size(factor: int, total: float, dagster_mib: float) -> object:
        rows = 1000 * factor
        return scale.SizeResult(factor=factor, rows=rows, day="2026-11-02", total_seconds=total,
                                seconds={"credit_features": total / 2, "credit_scores": total / 4,
                                         "credit_scores_dynamodb": total / 4},
                                peak_mib={"dagster": dagster_mib}, items_written=rows, rows_scored=rows)

    # 1x: 100 s for 1,000 rows; 4x: 200 s for 4,000 rows -> time per row 0.5 of 1x; 16x: 1,000 s for
    # 16,000 rows -> 0.625. Dagster peak 400 -> 520 MiB = 1.3.
    results = [size(1, 100.0, 400.0), size(4, 200.0, 410.0), size(16, 1000.0, 520.0)]
    lines, missed = scale.evaluate(results, time_target=1.1, memory_target=1.25)
    assert lines[0].startswith("time per row  16x / 1x: 0.62")
    assert lines[1].startswith("dagster peak  16x / 1x: 1.30")
    # Marginal seconds per added row: (1000-200)/12000 against (200-100)/3000 = 2.0.
    assert any("marginal time per added row, 4x->16x vs 1x->4x: 2.00" in line for line in lines)
    assert missed == ["Dagster peak memory grew 1.30x (> 1.25)"]
    _, missed = scale.evaluate(results, time_target=0.6, memory_target=1.5)
    assert missed == ["time per row grew 0.62x (> 0.6)"]
