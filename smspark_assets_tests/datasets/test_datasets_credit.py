"""The demo credit-application generator: determinism, distributions, missing values, malformed rows, files."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moto import mock_aws

from smspark_assets.datasets import credit
from smspark_assets.resources.storage import S3ObjectStoreResource

DAY = dt.date(2026, 11, 1)


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The platform's store on moto's S3, with the demo bucket."""
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path))
    with mock_aws():
        resource = S3ObjectStoreResource(region_name="us-east-1")
        resource.client("s3").create_bucket(Bucket="smspark-demo")
        yield resource


@pytest.fixture(scope="module")
def big_clean() -> pd.DataFrame:
    return credit.generate_clean(DAY, 100_000, seed=11)


def _binomial_ok(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * np.sqrt(p * (1 - p) / n) + 1e-12


def test_same_seed_and_day_give_identical_data() -> None:
    a = credit.generate_day(DAY, 5000, seed=3)
    b = credit.generate_day(DAY, 5000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    other_seed = credit.generate_day(DAY, 5000, seed=4)
    other_day = credit.generate_day(DAY + dt.timedelta(days=1), 5000, seed=3)
    assert not a["annual_income"].equals(other_seed["annual_income"])
    assert not a["annual_income"].equals(other_day["annual_income"])


def test_ids_unique_stable_and_day_specific() -> None:
    df = credit.generate_day(DAY, 20_000, seed=7)
    assert df["application_id"].is_unique
    assert df["application_id"].iloc[0] == "CA-20261101-000001"
    assert df["application_id"].str.match(r"^CA-20261101-\d{6}$").all()
    next_day = credit.generate_day(DAY + dt.timedelta(days=1), 10, seed=7)
    assert not set(next_day["application_id"]) & set(df["application_id"])
    assert (df["application_date"] == "2026-11-01").all()


def test_distributions_are_realistic(big_clean: pd.DataFrame) -> None:
    df = big_clean
    assert df["age"].between(18, 85).all() and 38 < df["age"].mean() < 44
    log_income = np.log(df["annual_income"])
    # Lognormal: log income is roughly symmetric, income itself strongly right-skewed.
    assert abs(log_income.skew()) < 0.3 and df["annual_income"].skew() > 1.5
    assert 55_000 < df["annual_income"].median() < 75_000
    assert set(df["loan_term_months"].unique()) <= set(credit.LOAN_TERMS)
    assert df["credit_score"].between(300, 850).all()
    assert df["interest_rate"].between(5, 31).all()
    assert (df["employment_years"] <= df["age"] - 16).all()
    for column, table in (("home_ownership", credit.HOME_OWNERSHIP), ("purpose", credit.PURPOSE)):
        freq = df[column].value_counts(normalize=True)
        for value, p in table.items():
            assert _binomial_ok(freq.get(value, 0.0), p / sum(table.values()), len(df)), (column, value)
    # Structural relations that make the data credible (and learnable).
    assert np.corrcoef(df["credit_score"], df["interest_rate"])[0, 1] < -0.6
    assert np.corrcoef(df["num_delinquencies"], df["credit_score"])[0, 1] < -0.2


def test_label_follows_the_documented_hidden_model(big_clean: pd.DataFrame) -> None:
    from sklearn.metrics import roc_auc_score

    df = big_clean
    rate = df[credit.LABEL].mean()
    assert 0.09 < rate < 0.16
    p = 1 / (1 + np.exp(-credit.default_logit(df)))
    np.testing.assert_allclose(p, df["default_probability"])
    # The label is drawn from p: calibration by decile holds, and p ranks well.
    deciles = pd.qcut(p, 10, labels=False)
    observed = df.groupby(deciles)[credit.LABEL].mean().to_numpy()
    expected = pd.Series(p).groupby(deciles).mean().to_numpy()
    assert np.all(np.abs(observed - expected) < 0.03)
    assert roc_auc_score(df[credit.LABEL], p) > 0.75
    # Documented directions: higher score -> fewer defaults; small business > car.
    assert df.loc[df.credit_score > 740, credit.LABEL].mean() < df.loc[df.credit_score < 620, credit.LABEL].mean()
    by_purpose = df.groupby("purpose")[credit.LABEL].mean()
    assert by_purpose["small_business"] > by_purpose["car"]


def test_missing_and_impossible_values_at_documented_rates() -> None:
    n = 50_000
    df = credit.generate_day(DAY, n, seed=5)
    for column, rate in credit.MISSING_RATES.items():
        assert _binomial_ok(df[column].isna().mean(), rate, n), column
    assert (df["months_since_last_delinquency"].isna() == (df["num_delinquencies"] == 0)).all()
    impossible_age = ((df["age"] > 100) | (df["age"] < 18)).fillna(False).mean()
    assert 0 < impossible_age < 0.004
    assert (df["employment_years"] < 0).fillna(False).sum() > 0
    assert (df["debt_to_income"] > 100).sum() > 0


def _read_rows(store: S3ObjectStoreResource, uri: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(store.read_bytes(uri).decode())))
    return rows[0], rows[1:]


def _names(store: S3ObjectStoreResource, dir_uri: str) -> list[str]:
    return sorted(o.uri.rsplit("/", 1)[-1] for o in store.list_objects(dir_uri + "/"))


def test_write_day_layout_and_deterministic(store: S3ObjectStoreResource) -> None:
    uris = credit.write_day(store, "s3://smspark-demo", DAY, 3000, seed=9)
    assert uris == ["s3://smspark-demo/raw/credit_applications/dt=2026-11-01/part-00000.csv"]
    day_dir = uris[0].rsplit("/", 1)[0]
    assert _names(store, day_dir) == ["_SUCCESS", "part-00000.csv"]
    first = store.read_bytes(uris[0])
    credit.write_day(store, "smspark-demo", DAY, 3000, seed=9)  # bare bucket name works too
    assert store.read_bytes(uris[0]) == first
    header, rows = _read_rows(store, uris[0])
    assert header == list(credit.COLUMNS)
    assert len(rows) == 3000


def test_large_days_are_split_into_parts_and_stale_parts_removed(store: S3ObjectStoreResource) -> None:
    uris = credit.write_day(store, "s3://smspark-demo", DAY, 2500, seed=1, rows_per_part=1000)
    assert [u.rsplit("/", 1)[-1] for u in uris] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    total = 0
    for uri in uris:
        header, rows = _read_rows(store, uri)
        assert header == list(credit.COLUMNS)  # every part has its header
        total += len(rows)
    assert total == 2500
    credit.write_day(store, "s3://smspark-demo", DAY, 500, seed=1, rows_per_part=1000)
    assert _names(store, uris[0].rsplit("/", 1)[0]) == ["_SUCCESS", "part-00000.csv"]


def test_malformed_rows_are_injected_and_countable(store: S3ObjectStoreResource) -> None:
    rows_per_day = 20_000
    (uri,) = credit.write_day(store, "s3://smspark-demo", DAY, rows_per_day, seed=7)
    header, rows = _read_rows(store, uri)
    wrong_width = [r for r in rows if len(r) != len(header)]
    income_pos = header.index("annual_income")
    bad_number = []
    for r in rows:
        if len(r) == len(header) and r[income_pos] != "":
            try:
                float(r[income_pos])
            except ValueError:
                bad_number.append(r)
    expected = credit.expected_malformed(DAY, rows_per_day, seed=7)
    assert len(wrong_width) + len(bad_number) == expected
    assert wrong_width and bad_number
    assert expected == round(rows_per_day * credit.MALFORMED_RATE)


def test_bad_input_is_refused_clearly(store: S3ObjectStoreResource) -> None:
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        credit.generate_day(DAY, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        credit.generate_day(DAY, 10, seed=-1)
    with pytest.raises(ValueError, match="not an S3 URI"):
        credit.write_day(store, "http://example.com/x", DAY, 10)
    with pytest.raises(ValueError, match="rows_per_part"):
        credit.write_day(store, "s3://b", DAY, 10, rows_per_part=0)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_cli_writes_the_requested_days(local_stack, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root, _url = local_stack
    monkeypatch.setenv("SMSPARK_ROOT", str(root))
    monkeypatch.setenv("SMSPARK_ENV", "local")
    S3ObjectStoreResource(local_stack_root=str(root)).client("s3").create_bucket(Bucket="demo-bkt")
    assert credit.main(["--days", "3", "--rows", "200", "--start", "2026-11-01", "--bucket", "demo-bkt"]) == 0
    store = S3ObjectStoreResource(local_stack_root=str(root))
    assert store.list_prefixes("s3://demo-bkt/raw/credit_applications") == [
        "dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03"]
    assert "600 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        credit.main(["--start", "2026-13-45"])
