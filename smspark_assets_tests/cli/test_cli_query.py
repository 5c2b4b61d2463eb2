"""``smspark query`` against the embedded stack: its formats (parsed back with the csv and json modules and
compared with the data written), the row count and the note when rows are cut, Athena's table names and
SHOW PARTITIONS, and one-line errors with a traceback only under ``--debug``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smspark_assets_tests.stack_access import stack_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BUCKET = "cli-lake"
DB = "smspark"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
ROWS_PER_DAY = 40
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def _day(day: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"application_id": [f"CA-{day}-{i:03d}" for i in range(ROWS_PER_DAY)],
                         "prediction": rng.random(ROWS_PER_DAY).round(6),
                         "amount": rng.integers(100, 10_000, ROWS_PER_DAY)})


def _storage(location: str) -> dict[str, Any]:
    columns = [("application_id", "string"), ("prediction", "double"), ("amount", "bigint")]
    return {**PARQUET, "Columns": [{"Name": c, "Type": t} for c, t in columns], "Location": location}


@pytest.fixture(scope="module")
def catalog(local_stack: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    """A partitioned table ``cli_scores`` (three days) and an unpartitioned ``cli_flat`` in the stack."""
    root, url = local_stack
    s3, glue = stack_client(root, url, "s3"), stack_client(root, url, "glue")
    s3.create_bucket(Bucket=BUCKET)
    frames = {}
    for seed, day in enumerate(DAYS):
        frames[day] = _day(day, seed)
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frames[day], preserve_index=False), sink)
        s3.put_object(Bucket=BUCKET, Key=f"scores/dt={day}/part-0.parquet", Body=sink.getvalue())
    try:
        glue.create_database(DatabaseInput={"Name": DB})
    except glue.exceptions.AlreadyExistsException:
        pass
    glue.create_table(DatabaseName=DB, TableInput={
        "Name": "cli_scores", "StorageDescriptor": _storage(f"s3://{BUCKET}/scores/"),
        "PartitionKeys": [{"Name": "dt", "Type": "string"}], "Parameters": {"classification": "parquet"}})
    glue.batch_create_partition(DatabaseName=DB, TableName="cli_scores", PartitionInputList=[
        {"Values": [day], "StorageDescriptor": _storage(f"s3://{BUCKET}/scores/dt={day}/")} for day in DAYS])
    glue.create_table(DatabaseName=DB, TableInput={
        "Name": "cli_flat", "StorageDescriptor": _storage(f"s3://{BUCKET}/scores/dt={DAYS[0]}/")})
    data = pd.concat([frames[d].assign(dt=d) for d in DAYS], ignore_index=True)
    yield {"root": root, "data": data}


@pytest.fixture
def smspark(catalog: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Runs ``smspark <args>`` in this process against the module's stack: (exit code, stdout, stderr)."""
    from smspark_assets.cli import main

    monkeypatch.setenv("SMSPARK_ROOT", str(catalog["root"]))
    monkeypatch.setenv("SMSPARK_ENV", "local")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_csv_parses_back_to_the_data(smspark, catalog: dict[str, Any]) -> None:
    code, out, err = smspark("query", "SELECT application_id, prediction, amount, dt FROM cli_scores "
                                      "ORDER BY application_id", "--format", "csv", "--max-rows", "0")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = catalog["data"].sort_values("application_id").reset_index(drop=True)
    assert [r["application_id"] for r in rows] == expected["application_id"].tolist()
    assert np.allclose([float(r["prediction"]) for r in rows], expected["prediction"])
    assert [int(r["amount"]) for r in rows] == expected["amount"].tolist()
    assert [r["dt"] for r in rows] == expected["dt"].tolist()
    # The count is a note for the reader, on stderr: stdout stays parseable.
    assert err.strip() == f"({len(expected)} rows)"


def test_json_parses_back_with_numbers_as_numbers(smspark, catalog: dict[str, Any]) -> None:
    code, out, err = smspark("query", "SELECT dt, COUNT(*) AS n, SUM(amount) AS total FROM cli_scores "
                                      "GROUP BY dt ORDER BY dt", "--format", "json")
    assert code == 0, err
    expected = catalog["data"].groupby("dt")["amount"].agg(["count", "sum"])
    assert json.loads(out) == [{"dt": d, "n": int(expected.loc[d, "count"]), "total": int(expected.loc[d, "sum"])}
                               for d in DAYS]


def test_table_counts_rows_and_says_when_it_cuts(smspark, catalog: dict[str, Any]) -> None:
    total = len(catalog["data"])
    code, out, _ = smspark("query", "SELECT application_id FROM cli_scores ORDER BY application_id",
                           "--max-rows", "7")
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert lines[0].strip() == "application_id"
    assert [line.strip() for line in lines[1:8]] == sorted(catalog["data"]["application_id"])[:7]
    assert lines[8] == f"({total} rows; showing the first 7 of {total} rows; --max-rows N shows more (0 shows all))"
    _, whole, _ = smspark("query", "SELECT application_id FROM cli_scores", "--max-rows", "0")
    assert whole.rstrip("\n").splitlines()[-1] == f"({total} rows)"


def test_show_partitions_and_athena_table_names(smspark) -> None:
    code, out, err = smspark("query", "SHOW PARTITIONS cli_scores", "--format", "csv")
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [["partition"], *[[f"dt={d}"] for d in DAYS]]
    for name in ("AwsDataCatalog.smspark.cli_scores", 'awsdatacatalog."smspark"."cli_scores"', "smspark.cli_scores"):
        code, out, err = smspark("query", f"SELECT COUNT(*) AS n FROM {name}", "--format", "json")
        assert code == 0, (name, err)
        assert json.loads(out) == [{"n": ROWS_PER_DAY * len(DAYS)}]
    code, out, _ = smspark("query", "SHOW PARTITIONS AwsDataCatalog.smspark.cli_scores", "--format", "json")
    assert [r["partition"] for r in json.loads(out)] == [f"dt={d}" for d in DAYS]
    code, _, err = smspark("query", "SHOW PARTITIONS cli_flat")
    assert code == 1 and err == "error: query failed: NOT_SUPPORTED: line 1:17: Table " \
                                "'awsdatacatalog.smspark.cli_flat' is not partitioned\n"


@pytest.mark.parametrize("sql, message", [
    ("", 'error: the SQL is empty; e.g. smspark query "SELECT * FROM credit_scores LIMIT 5"'),
    ("   ", 'error: the SQL is empty; e.g. smspark query "SELECT * FROM credit_scores LIMIT 5"'),
    ("SELECT * FROM nope", "error: query failed: TABLE_NOT_FOUND: line 1:15: Table "
                           "'awsdatacatalog.smspark.nope' does not exist"),
    ("SHOW PARTITIONS nope", "error: query failed: TABLE_NOT_FOUND: line 1:17: Table "
                             "'awsdatacatalog.smspark.nope' does not exist"),
    ("SELECT nope FROM cli_scores", "error: query failed: COLUMN_NOT_FOUND: Column 'nope' cannot be resolved"),
])
def test_errors_are_one_line_with_exit_code_1(smspark, sql: str, message: str) -> None:
    code, out, err = smspark("query", sql)
    assert (code, out, err) == (1, "", message + "\n")


def test_bad_sql_is_one_line_and_debug_adds_the_traceback(smspark) -> None:
    code, out, err = smspark("query", "SELEC 1")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: query failed: SYNTAX_ERROR: line 1:"), err
    code, _, debug = smspark("--debug", "query", "SELEC 1")
    assert code == 1
    assert debug.startswith("Traceback (most recent call last):")
    assert "AthenaQueryFailed" in debug and debug.endswith(err)


def test_stack_not_running_is_one_line(smspark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path / "never-started"))
    code, out, err = smspark("query", "SELECT 1")
    assert code == 1 and out == ""
    assert err == (f"error: the local stack is not running (state root {tmp_path / 'never-started'}); start it "
                   "with `smspark local start`, or run `make run` to create the tables\n")
    assert not (tmp_path / "never-started" / "local" / "service.json").exists()


def test_a_real_process_exits_non_zero_with_one_line(catalog: dict[str, Any]) -> None:
    """The installed entry point, as a shell runs it: exit status and the streams."""
    env = {**os.environ, "SMSPARK_ROOT": str(catalog["root"]), "SMSPARK_ENV": "local"}
    done = subprocess.run([sys.executable, "-m", "smspark_assets.cli", "query", "SELECT * FROM nope"],
                          capture_output=True, text=True, env=env, timeout=90)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: query failed: TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.smspark.nope' does not exist"]
