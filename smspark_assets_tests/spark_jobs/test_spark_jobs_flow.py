"""The three Spark jobs on real local Spark, on a temporary root: features, channels, scoring through HTTP."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smspark_assets.datasets import credit
from smspark_assets_tests.file_store import FileStore
from smspark_assets.environment import local_path

pytestmark = pytest.mark.integration

BUCKET = "s3://test-bkt"
RAW = f"{BUCKET}/raw/credit_applications"
FEATURES = f"{BUCKET}/features/credit_applications"
QUARANTINE = f"{BUCKET}/quarantine/credit_applications"
CHANNELS = f"{BUCKET}/channels/credit_default/v1"
SCORES = f"{BUCKET}/scores/credit_applications"
DAYS = ["2026-11-01", "2026-11-02"]
ROWS = 4000
SEED = 21


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("smspark_root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(path))
        mp.setenv("SMSPARK_ENV", "local")
        mp.setenv("SMSPARK_EMRFS_ROOT", str(path / "s3"))
        for day in DAYS:
            credit.write_day(FileStore(path / "s3"), BUCKET, dt.date.fromisoformat(day), ROWS, seed=SEED)
        yield path


@pytest.fixture(scope="module")
def spark(root: Path):  # noqa: ANN201 (pyspark type)
    from smspark_assets.spark_jobs.session import local_session

    session = local_session("smspark-tests", cores="2")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def features_meta(spark, root: Path) -> dict:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import prepare_features

    return prepare_features(spark, RAW, DAYS, FEATURES)


@pytest.fixture(scope="module")
def features_pd(features_meta: dict) -> pd.DataFrame:
    return pd.read_parquet(local_path(FEATURES))


def test_malformed_rows_are_counted_per_dt_and_quarantined(features_meta: dict, root: Path) -> None:
    expected = {d: credit.expected_malformed(dt.date.fromisoformat(d), ROWS, SEED) for d in DAYS}
    assert features_meta["malformed_by_dt"] == expected
    assert all(v > 0 for v in expected.values())
    assert features_meta["rows_read_by_dt"] == {d: ROWS for d in DAYS}
    assert features_meta["rows_written_by_dt"] == {d: ROWS - expected[d] for d in DAYS}
    for d in DAYS:
        lines = [json.loads(x) for f in local_path(f"{QUARANTINE}/dt={d}").glob("part-*.json")
                 for x in f.read_text().splitlines()]
        assert len(lines) == expected[d]
        assert {x["reason"] for x in lines} == {"malformed_csv"}
        assert all(x["raw_record"].startswith(f"CA-{d.replace('-', '')}-") for x in lines)
    json.dumps(features_meta)  # metadata is plain JSON


def test_feature_schema_values_and_feature_list(features_meta: dict, features_pd: pd.DataFrame) -> None:
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS, MISSING_INDICATORS, VOCABULARY

    df = features_pd
    assert list(df.columns)[:4] == ["application_id", "application_date", "split", "defaulted_12m"]
    assert list(df.columns)[4:-1] == FEATURE_COLUMNS and features_meta["feature_columns"] == FEATURE_COLUMNS
    assert df[FEATURE_COLUMNS].notna().all().all()
    assert df["application_id"].is_unique
    assert df["age"].between(18, 100).all() and df["debt_to_income"].between(0, 100).all()
    assert (df["employment_years"] >= 0).all()
    for column, values in VOCABULARY.items():
        onehot = [f"{column}__{v.lower()}" for v in values] + [f"{column}__other"]
        assert (df[onehot].sum(axis=1) == 1).all(), column
    # Indicators mark exactly the values that were empty in the raw files (malformed rows excluded).
    raw = pd.concat(
        [pd.read_csv(local_path(f"{RAW}/dt={d}/part-00000.csv"), dtype=str, on_bad_lines="skip") for d in DAYS]
    ).set_index("application_id")
    raw = raw.loc[df["application_id"]]
    for column in MISSING_INDICATORS:
        np.testing.assert_array_equal(df[f"{column}_missing"].to_numpy(), raw[column].isna().to_numpy().astype(int))
    # Missing values are imputed with the median of their own dt partition.
    for d, part in df.groupby("dt", observed=True):
        for column in ("annual_income", "credit_score", "employment_years"):
            present = part.loc[part[f"{column}_missing"] == 0, column]
            imputed = part.loc[part[f"{column}_missing"] == 1, column]
            assert len(imputed) > 0 and (imputed == present.median()).all(), (d, column)
            assert features_meta["medians_by_dt"][d][column] == present.median()
    saved = json.loads(local_path(f"{FEATURES}/_feature_columns.json").read_text())
    assert saved["feature_columns"] == FEATURE_COLUMNS and saved["label"] == "defaulted_12m"


def test_split_is_a_stable_hash_of_the_id(spark, features_meta: dict, features_pd: pd.DataFrame) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import split_column

    # Golden values: Spark's xxhash64 (seed 42) must give these on every run and Spark version.
    golden = {
        "CA-20261101-000001": "test",
        "CA-20261101-000002": "validation",
        "CA-20261101-000003": "validation",
        "CA-20261102-004242": "train",
        "x": "train",
    }
    got = spark.createDataFrame([(k,) for k in golden], ["application_id"]).select(
        "application_id", split_column().alias("split")
    )
    assert {r["application_id"]: r["split"] for r in got.collect()} == golden
    fractions = features_pd["split"].value_counts(normalize=True)
    assert abs(fractions["train"] - 0.70) < 0.03
    assert abs(fractions["validation"] - 0.15) < 0.03 and abs(fractions["test"] - 0.15) < 0.03
    assert sum(features_meta["split_counts"].values()) == len(features_pd)


def test_rerun_overwrites_only_the_given_partition(spark, features_meta: dict, root: Path) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import prepare_features

    other = sorted(local_path(f"{FEATURES}/dt={DAYS[1]}").glob("*.parquet"))
    before = pd.read_parquet(local_path(f"{FEATURES}/dt={DAYS[0]}"))
    meta = prepare_features(spark, RAW, [DAYS[0]], FEATURES)
    assert meta["partitions"] == [DAYS[0]]
    assert sorted(local_path(f"{FEATURES}/dt={DAYS[1]}").glob("*.parquet")) == other  # untouched
    after = pd.read_parquet(local_path(f"{FEATURES}/dt={DAYS[0]}"))
    pd.testing.assert_frame_equal(before, after)  # idempotent, no duplicates


def test_bad_parameters_are_refused(spark, root: Path) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import prepare_features
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    with pytest.raises(FileNotFoundError, match="2026-10-31"):
        prepare_features(spark, RAW, ["2026-10-31"], FEATURES)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        prepare_features(spark, RAW, ["Nov 1"], FEATURES)
    with pytest.raises(ValueError, match="5 MiB"):
        score_endpoint(spark, FEATURES, DAYS, "ep", SCORES, max_payload_bytes=6 * 1024 * 1024)


@pytest.fixture(scope="module")
def channels_meta(spark, features_meta: dict) -> dict:  # noqa: ANN001
    from smspark_assets.spark_jobs.write_channels import write_channels

    return write_channels(spark, FEATURES, DAYS, CHANNELS, rows_per_file=2000)


def _channel_files(name: str) -> list[Path]:
    return sorted(local_path(f"{CHANNELS}/{name}").iterdir())


def test_channels_are_xgboost_csv(channels_meta: dict, features_pd: pd.DataFrame) -> None:
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS

    for channel in ("train", "validation"):
        files = _channel_files(channel)
        assert [f.name for f in files] == [f"part-{i:05d}.csv" for i in range(len(files))]  # nothing else
        rows = [r for f in files for r in csv.reader(f.read_text().splitlines())]
        assert len(rows) == channels_meta["rows_by_channel"][channel] == int((features_pd["split"] == channel).sum())
        matrix = np.array(rows, dtype=np.float64)  # numeric only, no header
        assert matrix.shape[1] == 1 + len(FEATURE_COLUMNS)
        assert set(np.unique(matrix[:, 0])) == {0.0, 1.0}  # label first
        expected = features_pd.loc[features_pd["split"] == channel, "defaulted_12m"].mean()
        assert abs(matrix[:, 0].mean() - expected) < 1e-12
    assert len(_channel_files("train")) > 1
    assert channels_meta["feature_columns"] == FEATURE_COLUMNS


def test_channels_are_byte_for_byte_deterministic(spark, channels_meta: dict) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.write_channels import write_channels

    before = {f.name: f.read_bytes() for ch in ("train", "validation") for f in _channel_files(ch)}
    write_channels(spark, FEATURES, DAYS, CHANNELS, rows_per_file=2000)
    after = {f.name: f.read_bytes() for ch in ("train", "validation") for f in _channel_files(ch)}
    assert before == after


@pytest.fixture(scope="module")
def booster(channels_meta: dict):  # noqa: ANN201
    import xgboost as xgb

    rows = np.array([r for f in _channel_files("train") for r in csv.reader(f.read_text().splitlines())], dtype=float)
    dtrain = xgb.DMatrix(rows[:, 1:], label=rows[:, 0])
    return xgb.train({"max_depth": 4, "eta": 0.3, "objective": "binary:logistic", "nthread": 1}, dtrain, 30)


def test_scoring_through_an_http_endpoint_matches_the_booster(spark, booster, features_pd: pd.DataFrame) -> None:  # noqa: ANN001
    from sklearn.metrics import roc_auc_score

    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    with BoosterEndpointServer(booster, "credit-ep") as server:
        meta = score_endpoint(
            spark, FEATURES, DAYS, "credit-ep", SCORES, endpoint_url=server.url, region="us-east-1",
            max_payload_bytes=100_000, model_name="credit-model-1", model_version=3,
        )
        served_requests = server.requests
    json.dumps(meta)
    assert meta["rows_scored_by_dt"] == features_pd.groupby("dt").size().to_dict()
    assert meta["requests"] == served_requests > 4  # 100 kB requests: several per partition
    assert meta["rows_per_s"] > 0
    scores = pd.read_parquet(local_path(SCORES))
    assert list(scores.columns) == [
        "application_id", "application_date", "split", "defaulted_12m", "prediction", "model_name", "model_version", "scored_at", "dt",
    ]
    assert (scores["model_version"] == "3").all() and meta["model_version"] == "3"
    assert (scores["model_name"] == "credit-model-1").all() and scores["scored_at"].nunique() == 1
    merged = features_pd.merge(scores[["application_id", "prediction"]], on="application_id", validate="1:1")
    expected = booster.inplace_predict(merged[FEATURE_COLUMNS].to_numpy(dtype=np.float32))
    np.testing.assert_allclose(merged["prediction"].to_numpy(), expected, rtol=1e-6, atol=1e-7)
    test = scores[scores["split"] == "test"]
    assert roc_auc_score(test["defaulted_12m"], test["prediction"]) > 0.7


def test_scoring_refuses_a_row_larger_than_a_request(spark, booster) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    with BoosterEndpointServer(booster, "credit-ep") as server:
        with pytest.raises(Exception, match=r"row 'CA-2026110\d-\d{6}' serializes to \d+ bytes, more than max_payload_bytes=64"):
            score_endpoint(spark, FEATURES, [DAYS[0]], "credit-ep", f"{BUCKET}/scores_tiny", endpoint_url=server.url,
                           max_payload_bytes=64)


class _ShortBooster:
    def inplace_predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros(max(matrix.shape[0] - 1, 0))


def test_scoring_refuses_a_prediction_count_mismatch(spark, features_meta: dict) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint

    with BoosterEndpointServer(_ShortBooster(), "bad-ep") as server:
        with pytest.raises(Exception, match="refusing to match predictions to rows"):
            score_endpoint(spark, FEATURES, [DAYS[0]], "bad-ep", f"{BUCKET}/scores_bad", endpoint_url=server.url)
    assert not local_path(f"{BUCKET}/scores_bad/dt={DAYS[0]}").exists()


def test_a_reordered_raw_header_is_refused_clearly(spark, root: Path) -> None:  # noqa: ANN001
    from smspark_assets.spark_jobs.prepare_features import RawHeaderError, prepare_features

    raw = f"{BUCKET}/raw_swapped/raw/credit_applications"
    credit.write_day(FileStore(root / "s3"), f"{BUCKET}/raw_swapped", dt.date(2026, 11, 5), 50, seed=1)
    path = local_path(f"{raw}/dt=2026-11-05/part-00000.csv")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    header[2], header[3] = header[3], header[2]
    path.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    with pytest.raises(RawHeaderError, match=r"found \[application_id, application_date, annual_income, age"):
        prepare_features(spark, raw, ["2026-11-05"], f"{BUCKET}/features_swapped")
