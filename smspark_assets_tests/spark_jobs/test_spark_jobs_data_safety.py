"""Data safety of the feature and scoring jobs (issue 9, items 6, 7, 8, 13, 14) on real local Spark.

One raw folder holds the bad cases a user met: an unparseable date, non-finite incomes, Latin-1 ids,
duplicate ids, a stray ``manifest.json``, a header-only day, a 0-byte day and a day with no CSV at
all. Expected values come from how the files were built here (and from pandas/pyarrow reading the
outputs), never from the job's own metadata alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from smspark_assets.datasets import credit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FULL, HEADER_ONLY, ZERO_BYTES, NO_CSV = "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"
DAYS = [FULL, HEADER_ONLY, ZERO_BYTES, NO_CSV]
ROWS = 300
SEED = 5
HEADER = ",".join(credit.COLUMNS)

# Injected rows: id -> (column to set, raw text) and the reason the job must give.
BAD_VALUES: dict[str, tuple[str, str, str]] = {
    "CA-X-DATE": ("application_date", "not-a-date", "invalid_date"),
    "CA-X-NAN": ("annual_income", "NaN", "non_finite_number"),
    "CA-X-INF": ("annual_income", "Infinity", "non_finite_number"),
    "CA-X-NEGINF": ("loan_amount", "-Infinity", "non_finite_number"),
    "CA-X-1E400": ("annual_income", "1e400", "non_finite_number"),
    "CA-X-BIG": ("annual_income", "9" * 5000, "non_finite_number"),
}
LATIN1_IDS = (b"CA-X-\xe9", b"CA-X-\xe8")  # both would read as "CA-X-\ufffd": distinct ids colliding


def _line(fields: dict[str, str]) -> str:
    return ",".join(fields[c] for c in credit.COLUMNS)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Raw days as described in the module docstring, under a temporary folder (plain paths)."""
    root = tmp_path_factory.mktemp("data_safety")
    raw = root / "raw" / "credit_applications"
    day = dt.date.fromisoformat(FULL)
    lines, malformed = credit.render_csv(credit.generate_day(day, ROWS, SEED), day, SEED)
    bad_number, bad_width = credit.malformed_row_indices(ROWS, day, SEED)
    broken = set(bad_number.tolist()) | set(bad_width.tolist())
    # Well-formed rows whose age is present and in range, so the kept age is checkable as written.
    rows = [dict(zip(credit.COLUMNS, lines[i + 1].split(","), strict=True)) for i in range(ROWS) if i not in broken]
    rows = [r for r in rows if r["age"].isdigit() and 18 <= int(r["age"]) <= 76][:3]
    template = rows[0]

    injected = []
    for new_id, (column, text, _) in BAD_VALUES.items():
        injected.append(_line({**template, "application_id": new_id, column: text}).encode())
    for raw_id in LATIN1_IDS:
        injected.append(_line({**template, "application_id": "@@"}).encode().replace(b"@@", raw_id))
    # Same file, later line: the earlier row of the id must win.
    dup_same_file = _line({**rows[1], "age": "77"})
    # A later file of the day: part-00000 comes first.
    dup_next_file = _line({**rows[2], "age": "78"})

    full = raw / f"dt={FULL}"
    full.mkdir(parents=True)
    body = "\n".join(lines).encode() + b"\n" + b"\n".join(injected) + b"\n" + dup_same_file.encode() + b"\n"
    (full / "part-00000.csv").write_bytes(body)
    (full / "part-00001.csv").write_text(f"{HEADER}\n{dup_next_file}\n")
    (full / "manifest.json").write_text('{"files": 2}\n')
    (full / "_SUCCESS").write_bytes(b"")
    for d, content in ((HEADER_ONLY, f"{HEADER}\n"), (ZERO_BYTES, "")):
        (raw / f"dt={d}").mkdir()
        (raw / f"dt={d}" / "part-00000.csv").write_text(content)
    (raw / f"dt={NO_CSV}").mkdir()
    (raw / f"dt={NO_CSV}" / "manifest.json").write_text("{}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SMSPARK_EMRFS_ROOT", raising=False)
        yield {
            "raw": str(raw),
            "features": str(root / "features" / "credit_applications"),
            "quarantine": str(root / "quarantine" / "credit_applications"),
            "scores": str(root / "scores" / "credit_applications"),
            "malformed": malformed,
            "kept": {rows[1]["application_id"]: int(rows[1]["age"]), rows[2]["application_id"]: int(rows[2]["age"])},
        }


@pytest.fixture(scope="module")
def spark(layout: dict[str, Any]):  # noqa: ANN201 (pyspark type)
    from smspark_assets.spark_jobs.session import local_session

    session = local_session("smspark-data-safety", cores="2")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def meta(spark, layout: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import prepare_features

    return prepare_features(spark, layout["raw"], DAYS, layout["features"], layout["quarantine"])


def _quarantined(layout: dict[str, Any], day: str) -> list[dict[str, Any]]:
    folder = Path(layout["quarantine"]) / f"dt={day}"
    return [json.loads(x) for f in sorted(folder.glob("part-*.json")) for x in f.read_text().splitlines()]


def _features(layout: dict[str, Any], day: str) -> pd.DataFrame:
    return pq.read_table(Path(layout["features"]) / f"dt={day}").to_pandas()


def _snapshot(*folders: str) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_bad_dates_and_non_finite_numbers_are_quarantined_not_fatal_or_clipped(meta: dict, layout: dict) -> None:
    expected = {r: sum(1 for *_, reason in BAD_VALUES.values() if reason == r)
                for r in ("invalid_date", "non_finite_number")}
    assert {r: meta["rejected_by_dt"][FULL].get(r) for r in expected} == expected == {
        "invalid_date": 1, "non_finite_number": 5}
    lines = {x["application_id"]: x for x in _quarantined(layout, FULL)}
    for new_id, (column, _, reason) in BAD_VALUES.items():
        assert lines[new_id]["reason"] == reason
        assert lines[new_id]["detail"] == column
    features = _features(layout, FULL)
    assert not set(BAD_VALUES) & set(features["application_id"])
    # Nothing was clipped into the maximum income: every value is a finite income below the clip bound.
    assert np.isfinite(features["annual_income"]).all() and (features["annual_income"] < 10_000_000).all()
    assert features["application_date"].notna().all()


def test_undecodable_ids_are_quarantined_and_duplicates_keep_the_first_row(meta: dict, layout: dict) -> None:
    assert meta["rejected_by_dt"][FULL]["invalid_utf8"] == len(LATIN1_IDS)
    utf8 = [x for x in _quarantined(layout, FULL) if x["reason"] == "invalid_utf8"]
    assert len(utf8) == 2 and all(x["detail"] == "application_id" for x in utf8)
    features = _features(layout, FULL)
    assert not features["application_id"].str.contains("\ufffd").any()
    assert features["application_id"].is_unique
    ages = features.set_index("application_id")["age"]
    assert {k: int(ages[k]) for k in layout["kept"]} == layout["kept"]  # the first rows' ages, not 77/78
    assert meta["duplicate_ids_by_dt"][FULL] == meta["duplicate_ids_dropped"] == 2
    dups = [x for x in _quarantined(layout, FULL) if x["reason"] == "duplicate_id"]
    assert sorted(x["application_id"] for x in dups) == sorted(layout["kept"])
    # Every read row is either a feature row or quarantined exactly once.
    n_injected = len(BAD_VALUES) + len(LATIN1_IDS) + 2
    assert meta["rows_read_by_dt"][FULL] == ROWS + n_injected
    assert meta["rejected_by_dt"][FULL]["malformed_csv"] == layout["malformed"] == credit.expected_malformed(
        dt.date.fromisoformat(FULL), ROWS, SEED)
    assert len(features) == meta["rows_written_by_dt"][FULL] == ROWS - layout["malformed"]
    assert sum(meta["rejected_by_reason"].values()) == len(_quarantined(layout, FULL)) == n_injected + layout["malformed"]


def test_empty_days_flow_through_and_stray_files_are_ignored_with_a_warning(meta: dict, layout: dict) -> None:
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS

    assert meta["partitions"] == DAYS
    assert meta["empty_days"] == [HEADER_ONLY, ZERO_BYTES, NO_CSV]
    assert meta["ignored_files_by_dt"] == {FULL: ["manifest.json"], NO_CSV: ["manifest.json"]}
    warnings = "\n".join(meta["warnings"])
    assert f"dt={FULL}: ignored 1 file(s) that are not CSV data: manifest.json" in warnings
    for day in meta["empty_days"]:
        assert f"dt={day}: no data rows" in warnings
        empty = _features(layout, day)
        assert len(empty) == 0 and FEATURE_COLUMNS[0] in empty.columns  # a readable, 0-row partition
    assert meta["rows_written_by_dt"][HEADER_ONLY] == 0
    json.dumps(meta)


class _AgeBooster:
    """A stand-in model: the prediction is the first feature (age) / 1000, checkable from the features."""

    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[:, 0] / 1000.0


class _ShortBooster:
    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros(max(matrix.shape[0] - 1, 0))


@pytest.fixture(scope="module")
def scores_meta(spark, meta: dict, layout: dict) -> dict[str, Any]:  # noqa: ANN001
    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    with BoosterEndpointServer(_AgeBooster(), "age-ep") as server:
        return score_endpoint(spark, layout["features"], DAYS, "age-ep", layout["scores"],
                              endpoint_url=server.url, region="us-east-1")


def test_a_zero_row_day_is_scored_as_zero_rows(scores_meta: dict, layout: dict) -> None:
    features = _features(layout, FULL)
    assert scores_meta["rows_scored_by_dt"] == {FULL: len(features), HEADER_ONLY: 0, ZERO_BYTES: 0, NO_CSV: 0}
    assert scores_meta["empty_days"] == [HEADER_ONLY, ZERO_BYTES, NO_CSV]
    scores = pq.read_table(Path(layout["scores"]) / f"dt={FULL}").to_pandas()
    merged = features.merge(scores[["application_id", "prediction"]], on="application_id", validate="1:1")
    np.testing.assert_allclose(merged["prediction"], merged["age"] / 1000.0, rtol=1e-6)
    for day in scores_meta["empty_days"]:
        empty = pq.read_table(Path(layout["scores"]) / f"dt={day}")
        assert empty.num_rows == 0 and "prediction" in empty.column_names  # the catalog can register it


@pytest.mark.filterwarnings("ignore:Cannot infer the eval type")
def test_a_failed_feature_rerun_leaves_every_day_byte_identical(spark, meta: dict, layout: dict,  # noqa: ANN001
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import functions as F

    from smspark_assets.spark_jobs import prepare_features as job

    before = _snapshot(layout["features"], layout["quarantine"])
    before_full = _features(layout, FULL)
    assert any(k.startswith(f"dt={FULL}/part-") for k in before)
    original = job.build_features

    @F.udf("int")
    def explode_on_full_day(day: str) -> int:
        if day == FULL:
            raise RuntimeError("injected failure while writing the features")
        return 0

    monkeypatch.setattr(job, "build_features",
                        lambda valid, medians: original(valid, medians).withColumn("boom", explode_on_full_day("dt")))
    with pytest.raises(Exception, match="injected failure"):
        job.prepare_features(spark, layout["raw"], DAYS, layout["features"], layout["quarantine"])
    assert _snapshot(layout["features"], layout["quarantine"]) == before
    assert not (Path(layout["features"]) / "_staging").exists()
    assert not (Path(layout["quarantine"]) / "_staging").exists()

    # A successful re-run swaps the day in: same rows, new files, no staging left behind.
    monkeypatch.setattr(job, "build_features", original)
    again = job.prepare_features(spark, layout["raw"], [FULL], layout["features"], layout["quarantine"])
    assert again["rows_written_by_dt"] == {FULL: meta["rows_written_by_dt"][FULL]}
    def by_id(df: pd.DataFrame) -> pd.DataFrame:  # files hold rows by task, so compare in id order
        return df.sort_values("application_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(by_id(_features(layout, FULL)), by_id(before_full))
    assert not (Path(layout["features"]) / "_staging").exists()
    assert _snapshot(str(Path(layout["features"]) / f"dt={HEADER_ONLY}")) == {
        k.removeprefix(f"dt={HEADER_ONLY}/"): v for k, v in before.items() if k.startswith(f"dt={HEADER_ONLY}/")}


def test_a_failed_scoring_rerun_leaves_every_day_byte_identical(spark, scores_meta: dict, layout: dict) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    before = _snapshot(layout["scores"])
    assert any(k.startswith(f"dt={FULL}/part-") for k in before)
    with BoosterEndpointServer(_ShortBooster(), "short-ep") as server:
        with pytest.raises(Exception, match="refusing to match predictions to rows"):
            score_endpoint(spark, layout["features"], DAYS, "short-ep", layout["scores"],
                           endpoint_url=server.url, region="us-east-1")
    assert _snapshot(layout["scores"]) == before
    assert not (Path(layout["scores"]) / "_staging").exists()
