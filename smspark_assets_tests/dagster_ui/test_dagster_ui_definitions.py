"""The code location as a user meets it: `dg check defs`, owners, tags, schemas, automation, partition start."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
TABULAR = ["raw_credit_applications", "credit_features", "credit_training_channels", "credit_scores",
           "credit_scores_dynamodb", "credit_model_performance"]


@pytest.fixture(scope="module")
def graph() -> dg.AssetGraph:
    from smspark_assets.definitions import defs

    return defs.resolve_asset_graph()


@pytest.mark.timeout(240)
def test_dg_check_defs_loads_the_code_location() -> None:
    venv = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(venv.parent), "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(venv / "dg"), "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=220)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_every_asset_has_an_owner_tags_and_a_link_to_its_code(graph: dg.AssetGraph) -> None:
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        assert {"domain", "layer", "tier"} <= set(node.tags), key
        if graph.get(key).is_materializable:  # the raw data is external: no code computes it
            assert "dagster/code_references" in node.metadata, key


def test_tabular_assets_declare_or_record_their_columns(graph: dg.AssetGraph) -> None:
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS

    declared = {name for name in TABULAR if "dagster/column_schema" in graph.get(dg.AssetKey(name)).metadata}
    # Features and scores record the schema they wrote on each run (their columns follow the data).
    assert declared == set(TABULAR) - {"credit_features", "credit_scores"}
    channels = graph.get(dg.AssetKey("credit_training_channels")).metadata["dagster/column_schema"]
    assert [c.name for c in channels.columns] == ["defaulted_12m", *FEATURE_COLUMNS]


def test_the_flow_is_declarative_but_nothing_runs_until_the_automation_sensor_is_on(graph: dg.AssetGraph) -> None:
    from smspark_assets.definitions import defs

    daily = {name: graph.get(dg.AssetKey(name)).automation_condition
             for name in ("credit_features", "credit_scores", "credit_scores_dynamodb")}
    assert all(c is not None and c.get_label() == "eager" for c in daily.values())
    retrain = graph.get(dg.AssetKey("credit_training_channels"))
    assert retrain.automation_condition is not None and retrain.code_version
    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs}
    assert sensors["default_automation_condition_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    # The sensor and the schedule are still there and unchanged.
    assert sensors["raw_applications_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert [s.name for s in defs.schedules] == ["weekly_training_schedule"]


def test_partitions_start_on_the_demos_first_day_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from smspark_assets.environment import partitions_start
    from smspark_assets.partitions import daily_partitions, require_partition_days

    monkeypatch.delenv("SMSPARK_PARTITIONS_START", raising=False)
    assert partitions_start() == "2026-11-01"
    # The demo's default --start (cli) is the first partition: a new user sees no empty month before it.
    from smspark_assets import cli

    run_start = cli.build_parser().parse_args(["run"]).start
    assert run_start.isoformat() == daily_partitions.start.date().isoformat() == partitions_start()
    monkeypatch.setenv("SMSPARK_PARTITIONS_START", "2025-01-15")
    assert partitions_start() == "2025-01-15"
    for bad in ("2025-13-01", "yesterday", "20250115"):
        monkeypatch.setenv("SMSPARK_PARTITIONS_START", bad)
        with pytest.raises(ValueError, match="SMSPARK_PARTITIONS_START"):
            partitions_start()
    with pytest.raises(ValueError, match="before the first daily partition 2026-11-01"):
        require_partition_days(["2026-10-31", "2026-11-01"])
    require_partition_days(["2026-11-01", "2026-11-02"])


def test_a_configured_start_moves_the_partitions(tmp_path: Path) -> None:
    code = ("from smspark_assets.partitions import daily_partitions as p; "
            "print(p.get_first_partition_key())")
    env = {**os.environ, "SMSPARK_PARTITIONS_START": "2026-11-20"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "2026-11-20", out.stderr[-1000:]


def test_algorithm_figures_become_rows_numbers_only() -> None:
    import pyarrow as pa

    from smspark_assets.assets.algorithm_tables import figures_table

    at = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    table = figures_table({"kmeans": {"endpoint_name": "kmeans-ep", "figures": {"msd": 1.5, "rows": 10,
                                                                                  "note": "x", "nan": float("nan")}}},
                          at)
    assert table.column("figure").to_pylist() == ["msd", "rows"]
    assert table.column("value").to_pylist() == [1.5, 10.0]
    assert table.column("algorithm").to_pylist() == ["kmeans", "kmeans"]
    assert table.schema.field("scored_at").type == pa.timestamp("us", tz="UTC")
