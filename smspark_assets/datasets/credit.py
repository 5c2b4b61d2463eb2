"""Demo data: realistic consumer-credit applications, one CSV partition per day.

Layout written by :func:`write_day`::

    s3://<bucket>/raw/credit_applications/dt=YYYY-MM-DD/part-00000.csv   (header row; more parts when large)
    s3://<bucket>/raw/credit_applications/dt=YYYY-MM-DD/_SUCCESS         (written last: the day is complete)

Every file is written atomically (a hidden temporary file, then a rename), so a sensor listing the
prefix never sees half a file; ``_SUCCESS`` lands after all parts. Spark ignores names starting with
``_`` and ``.``, so neither the marker nor an interrupted temporary file is ever read as data.

Columns (:data:`COLUMNS`, in file order)
----------------------------------------
``application_id`` (``CA-YYYYMMDD-NNNNNN``, unique per day, identical for the same (seed, day)),
``application_date``, ``age``, ``annual_income`` (lognormal, rounded to 100), ``employment_years``,
``home_ownership``, ``purpose``, ``state``, ``loan_amount`` (lognormal, rounded to 25),
``loan_term_months`` (one of 12/24/36/48/60), ``interest_rate`` (priced from the credit score and the
term), ``credit_score`` (300-850), ``debt_to_income`` (percent), ``revolving_utilization`` (ratio, can
exceed 1 as on real bureau files), ``num_open_accounts``, ``num_delinquencies``,
``months_since_last_delinquency`` (empty when there was none), ``num_credit_inquiries_6m``,
``defaulted_12m`` (0/1, the label).

Missing values (empty fields), drawn independently per row: annual_income 2 %, employment_years 5 %,
credit_score 1 %, debt_to_income 1.5 %, revolving_utilization 3 %, home_ownership 0.5 %, state 0.2 %
(:data:`MISSING_RATES`). ``months_since_last_delinquency`` is structurally empty when
``num_delinquencies`` is 0.

Impossible values (data-entry errors the feature job must clip), each at 0.1 %: age 999 or -1,
negative employment_years, debt_to_income 999 (:data:`IMPOSSIBLE_RATE`).

Malformed rows (:data:`MALFORMED_RATE` = 0.2 % of rows): half carry a non-numeric ``annual_income``
(``45k``, ``N/A``, ``unknown``), half have the wrong number of fields (the last two fields cut off, or an
extra field appended). The pipeline must count and quarantine them.

The hidden default model
------------------------
``defaulted_12m ~ Bernoulli(sigmoid(z))`` with the true (pre-missingness, pre-corruption) values::

    z = -2.70
        - 0.011 * (credit_score - 680)
        + 0.035 * (debt_to_income - 18)
        + 0.45  * num_delinquencies
        - 0.45  * ln(annual_income / 60000)
        + 0.07  * (interest_rate - 12)
        + 1.2   * (loan_amount / annual_income - 0.2)
        + 0.9   * (revolving_utilization - 0.45)
        + 0.18  * num_credit_inquiries_6m
        - 0.035 * min(employment_years, 15)
        + 0.30  * [loan_term_months == 60]
        + 0.20  * [home_ownership == RENT]
        + PURPOSE_EFFECT[purpose]      (small_business +0.60, medical +0.30, moving +0.20,
                                        vacation +0.15, debt_consolidation +0.10, credit_card -0.10,
                                        home_improvement -0.15, car -0.20, others 0)

which gives a default rate of roughly 12 % and a ceiling AUC (the true probabilities) of about 0.8.

Determinism: everything is drawn from ``numpy.random.default_rng((seed, day.toordinal()))`` in a fixed
order, so the same (seed, day, rows) writes the same bytes on every run.

CLI::

    python -m smspark_assets.datasets.credit --days 14 --rows 20000 --start 2026-11-01 --bucket smspark-demo
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from smspark_assets.environment import default_bucket, split_s3_uri

RAW_TABLE = "credit_applications"
LABEL = "defaulted_12m"
ID_COLUMN = "application_id"
SUCCESS_MARKER = "_SUCCESS"

COLUMNS: tuple[str, ...] = (
    "application_id",
    "application_date",
    "age",
    "annual_income",
    "employment_years",
    "home_ownership",
    "purpose",
    "state",
    "loan_amount",
    "loan_term_months",
    "interest_rate",
    "credit_score",
    "debt_to_income",
    "revolving_utilization",
    "num_open_accounts",
    "num_delinquencies",
    "months_since_last_delinquency",
    "num_credit_inquiries_6m",
    "defaulted_12m",
)

HOME_OWNERSHIP: dict[str, float] = {"RENT": 0.40, "MORTGAGE": 0.42, "OWN": 0.15, "OTHER": 0.03}
PURPOSE: dict[str, float] = {
    "debt_consolidation": 0.45,
    "credit_card": 0.20,
    "home_improvement": 0.08,
    "other": 0.07,
    "major_purchase": 0.05,
    "car": 0.04,
    "medical": 0.03,
    "small_business": 0.03,
    "moving": 0.02,
    "vacation": 0.02,
    "wedding": 0.01,
}
# Roughly proportional to population; the tail states share what is left.
STATE: dict[str, float] = {
    "CA": 0.13, "TX": 0.09, "NY": 0.08, "FL": 0.07, "IL": 0.04, "PA": 0.04, "OH": 0.035, "GA": 0.033,
    "NC": 0.031, "MI": 0.03, "NJ": 0.028, "VA": 0.026, "WA": 0.024, "AZ": 0.022, "MA": 0.021,
    "TN": 0.021, "IN": 0.02, "MO": 0.019, "MD": 0.019, "CO": 0.018, "WI": 0.018, "MN": 0.017,
    "SC": 0.016, "AL": 0.015, "LA": 0.014, "KY": 0.013, "OR": 0.013, "OK": 0.012, "CT": 0.011,
    "UT": 0.01, "NV": 0.01, "IA": 0.01, "AR": 0.009, "MS": 0.009, "KS": 0.009, "NM": 0.006,
    "NE": 0.006, "ID": 0.006, "WV": 0.005, "HI": 0.004, "NH": 0.004, "ME": 0.004, "MT": 0.003,
    "RI": 0.003, "DE": 0.003, "SD": 0.003, "ND": 0.002, "AK": 0.002, "VT": 0.002, "WY": 0.002,
    "DC": 0.002,
}
LOAN_TERMS: dict[int, float] = {12: 0.05, 24: 0.10, 36: 0.55, 48: 0.10, 60: 0.20}

PURPOSE_EFFECT: dict[str, float] = {
    "small_business": 0.60, "medical": 0.30, "moving": 0.20, "vacation": 0.15,
    "debt_consolidation": 0.10, "credit_card": -0.10, "home_improvement": -0.15, "car": -0.20,
}

MISSING_RATES: dict[str, float] = {
    "annual_income": 0.02,
    "employment_years": 0.05,
    "credit_score": 0.01,
    "debt_to_income": 0.015,
    "revolving_utilization": 0.03,
    "home_ownership": 0.005,
    "state": 0.002,
}
IMPOSSIBLE_RATE = 0.001
MALFORMED_RATE = 0.002
DEFAULT_ROWS_PER_PART = 100_000


def _choice(rng: np.random.Generator, table: dict, size: int) -> np.ndarray:
    keys = np.array(list(table))
    p = np.array(list(table.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=p / p.sum())]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def default_logit(df: pd.DataFrame) -> np.ndarray:
    """The hidden model's log-odds (module docstring) for clean, complete applicant values."""
    purpose_effect = df["purpose"].map(PURPOSE_EFFECT).fillna(0.0).to_numpy(dtype=float)
    return (
        -2.70
        - 0.011 * (df["credit_score"].to_numpy(dtype=float) - 680)
        + 0.035 * (df["debt_to_income"].to_numpy(dtype=float) - 18)
        + 0.45 * df["num_delinquencies"].to_numpy(dtype=float)
        - 0.45 * np.log(df["annual_income"].to_numpy(dtype=float) / 60000)
        + 0.07 * (df["interest_rate"].to_numpy(dtype=float) - 12)
        + 1.2 * (df["loan_amount"].to_numpy(dtype=float) / df["annual_income"].to_numpy(dtype=float) - 0.2)
        + 0.9 * (df["revolving_utilization"].to_numpy(dtype=float) - 0.45)
        + 0.18 * df["num_credit_inquiries_6m"].to_numpy(dtype=float)
        - 0.035 * np.minimum(df["employment_years"].to_numpy(dtype=float), 15)
        + 0.30 * (df["loan_term_months"].to_numpy() == 60)
        + 0.20 * (df["home_ownership"].to_numpy() == "RENT")
        + purpose_effect
    )


def _validate(day: dt.date, rows: int, seed: int) -> None:
    if not isinstance(day, dt.date):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def generate_clean(day: dt.date, rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` complete, correct applications for ``day`` with their label (no missing values yet).

    Returned with true values so that tests can check distributions and the hidden model; the
    returned ``default_probability`` column is the hidden model's probability (not written to files).
    """
    _validate(day, rows, seed)
    rng = np.random.default_rng((int(seed), day.toordinal()))
    n = int(rows)
    ymd = day.strftime("%Y%m%d")

    ids = np.char.add(f"CA-{ymd}-", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    age = np.clip(np.rint(rng.normal(41, 12, n)), 18, 85).astype(np.int64)
    # Employment tenure grows with age and cannot exceed the working life so far.
    employment_years = np.minimum(np.rint(rng.exponential(4 + 0.12 * (age - 18))), age - 16).astype(np.int64)
    employment_years = np.maximum(employment_years, 0)
    income_mu = np.log(58000) + 0.012 * (age - 41) + 0.02 * np.minimum(employment_years, 20)
    annual_income = np.clip(np.round(rng.lognormal(income_mu, 0.55) / 100) * 100, 8000, None)
    home_ownership = _choice(rng, HOME_OWNERSHIP, n)
    purpose = _choice(rng, PURPOSE, n)
    state = _choice(rng, STATE, n)
    loan_amount = np.clip(np.round(rng.lognormal(np.log(12000), 0.6, n) / 25) * 25, 1000, 40000)
    loan_term = _choice(rng, LOAN_TERMS, n).astype(np.int64)
    num_delinquencies = rng.negative_binomial(1, 0.8, n).astype(np.int64)
    months_since = np.where(num_delinquencies > 0, rng.integers(1, 121, n), -1)
    revolving_utilization = np.round(np.clip(rng.beta(2.0, 2.6, n) * 1.1, 0, 1.6), 3)
    num_open_accounts = (rng.poisson(8, n) + 1).astype(np.int64)
    inquiries = rng.poisson(0.8, n).astype(np.int64)
    credit_score = np.clip(
        np.rint(712 - 38 * num_delinquencies - 70 * (revolving_utilization - 0.45) + 0.9 * (age - 41)
                - 12 * inquiries + rng.normal(0, 48, n)),
        300, 850,
    ).astype(np.int64)
    interest_rate = np.round(
        np.clip(5 + 0.045 * (850 - credit_score) + 1.5 * (loan_term == 60) + rng.normal(0, 1.5, n), 5, 30.99), 2
    )
    debt_to_income = np.round(np.clip(rng.gamma(4.0, 4.6, n), 0, 60), 2)

    df = pd.DataFrame(
        {
            "application_id": ids,
            "application_date": day.isoformat(),
            "age": age,
            "annual_income": annual_income,
            "employment_years": employment_years,
            "home_ownership": home_ownership,
            "purpose": purpose,
            "state": state,
            "loan_amount": loan_amount,
            "loan_term_months": loan_term,
            "interest_rate": interest_rate,
            "credit_score": credit_score,
            "debt_to_income": debt_to_income,
            "revolving_utilization": revolving_utilization,
            "num_open_accounts": num_open_accounts,
            "num_delinquencies": num_delinquencies,
            "months_since_last_delinquency": months_since,
            "num_credit_inquiries_6m": inquiries,
        }
    )
    p = _sigmoid(default_logit(df))
    df[LABEL] = (rng.random(n) < p).astype(np.int64)
    df["default_probability"] = p
    return df


def generate_day(day: dt.date, rows: int, seed: int = 7) -> pd.DataFrame:
    """The applications of ``day`` as they land: with missing and impossible values (not yet malformed)."""
    df = generate_clean(day, rows, seed).drop(columns=["default_probability"])
    # A generator of its own (same (seed, day) entropy, a different stream) so that changing the
    # corruption rates never changes the clean values drawn above.
    rng = np.random.default_rng((int(seed), day.toordinal(), 1))
    n = len(df)

    int_cols = ["age", "employment_years", "credit_score", "months_since_last_delinquency"]
    for col in int_cols:
        df[col] = df[col].astype("Int64")
    df.loc[df["months_since_last_delinquency"] < 0, "months_since_last_delinquency"] = pd.NA

    bad_age = rng.random(n) < IMPOSSIBLE_RATE
    df.loc[bad_age, "age"] = np.where(rng.random(int(bad_age.sum())) < 0.5, 999, -1)
    bad_emp = rng.random(n) < IMPOSSIBLE_RATE
    df.loc[bad_emp, "employment_years"] = -rng.integers(1, 10, int(bad_emp.sum()))
    bad_dti = rng.random(n) < IMPOSSIBLE_RATE
    df.loc[bad_dti, "debt_to_income"] = 999.0

    for col, rate in MISSING_RATES.items():
        mask = rng.random(n) < rate
        if df[col].dtype == object:
            df.loc[mask, col] = None
        else:
            df.loc[mask, col] = pd.NA if str(df[col].dtype) == "Int64" else np.nan
    return df


def malformed_row_indices(n: int, day: dt.date, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows with a non-numeric income, rows with a wrong field count) for a day of ``n`` rows."""
    rng = np.random.default_rng((int(seed), day.toordinal(), 2))
    count = int(round(n * MALFORMED_RATE))
    chosen = np.sort(rng.choice(n, size=min(count, n), replace=False))
    kinds = rng.random(chosen.size) < 0.5
    return chosen[kinds], chosen[~kinds]


def render_csv(df: pd.DataFrame, day: dt.date, seed: int) -> tuple[list[str], int]:
    """CSV lines (header first) with the malformed rows injected; also the number of malformed rows."""
    # Arrow's CSV writer is several times faster than pandas'; no value needs quoting (no commas, quotes
    # or newlines in ids and categories), and empty cells stand for missing values.
    table = pa.Table.from_pandas(df[list(COLUMNS)], preserve_index=False)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    lines = [",".join(COLUMNS), *sink.getvalue().decode("utf-8").split("\n")[:-1]]
    bad_number, bad_width = malformed_row_indices(len(df), day, seed)
    income_pos = COLUMNS.index("annual_income")
    junk = ("45k", "N/A", "unknown", "$52,000")
    # Only a handful of rows (0.2 %) are touched, so a loop over them is not a hot path.
    for k, i in enumerate(bad_number):
        fields = lines[i + 1].split(",")
        fields[income_pos] = f'"{junk[k % len(junk)]}"' if "," in junk[k % len(junk)] else junk[k % len(junk)]
        lines[i + 1] = ",".join(fields)
    for k, i in enumerate(bad_width):
        fields = lines[i + 1].split(",")
        lines[i + 1] = ",".join(fields[:-2]) if k % 2 == 0 else ",".join([*fields, "EXTRA"])
    return lines, int(bad_number.size + bad_width.size)


class ObjectWriter(Protocol):
    """What the generator needs of an object store (``S3ObjectStoreResource`` has it)."""

    def write_bytes(self, uri: str, data: bytes) -> None: ...

    def list_objects(self, prefix_uri: str) -> list[Any]: ...

    def delete(self, uri: str) -> None: ...


def _remove_stale_parts(store: ObjectWriter, dir_uri: str, keep: set[str]) -> None:
    """Delete part files of an earlier, larger write of the same day."""
    for info in store.list_objects(dir_uri.rstrip("/") + "/"):
        name = info.uri.rsplit("/", 1)[-1]
        if name.startswith("part-") and name not in keep:
            store.delete(info.uri)


def partition_uri(bucket_uri_prefix: str, day: dt.date) -> str:
    """``s3://<bucket>/raw/credit_applications/dt=YYYY-MM-DD``."""
    base = _normalize_prefix(bucket_uri_prefix)
    return f"{base}/raw/{RAW_TABLE}/dt={day.isoformat()}"


def _normalize_prefix(bucket_uri_prefix: str) -> str:
    prefix = bucket_uri_prefix.strip()
    if "://" not in prefix:  # a bare bucket name
        prefix = f"s3://{prefix}"
    split_s3_uri(prefix)  # a clear error for anything that is not s3://bucket[/prefix]
    return prefix.rstrip("/")


def write_day(
    store: ObjectWriter,
    bucket_uri_prefix: str,
    day: dt.date,
    rows: int,
    seed: int = 7,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
) -> list[str]:
    """Write one day of applications; return the S3 URIs of the part files written.

    ``bucket_uri_prefix`` is ``s3://<bucket>`` (or a bare bucket name, or ``s3://<bucket>/<prefix>``).
    Parts hold at most ``rows_per_part`` data rows each, every part with its own header.
    """
    if rows_per_part < 1:
        raise ValueError(f"rows_per_part must be >= 1, got {rows_per_part}")
    dir_uri = partition_uri(bucket_uri_prefix, day)
    df = generate_day(day, rows, seed)
    lines, _ = render_csv(df, day, seed)
    header, body = lines[0], lines[1:]
    written: list[str] = []
    for part, start in enumerate(range(0, len(body), rows_per_part)):
        name = f"part-{part:05d}.csv"
        chunk = "\n".join([header, *body[start : start + rows_per_part]]) + "\n"
        uri = f"{dir_uri}/{name}"
        store.write_bytes(uri, chunk.encode("utf-8"))  # one PUT: atomic
        written.append(uri)
    _remove_stale_parts(store, dir_uri, {u.rsplit("/", 1)[-1] for u in written})
    # The marker goes last: a reader (the sensor) sees a day only once every part is there.
    store.write_bytes(f"{dir_uri}/{SUCCESS_MARKER}", b"")
    return written


def expected_malformed(day: dt.date, rows: int, seed: int = 7) -> int:
    """How many malformed rows :func:`write_day` injects for (day, rows, seed)."""
    bad_number, bad_width = malformed_row_indices(rows, day, seed)
    return int(bad_number.size + bad_width.size)


def write_days(
    store: ObjectWriter, bucket_uri_prefix: str, start: dt.date, days: int, rows: int, seed: int = 7
) -> dict[str, list[str]]:
    """Write ``days`` consecutive days from ``start``; ``{dt: [part URIs]}``."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    out: dict[str, list[str]] = {}
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        out[day.isoformat()] = write_day(store, bucket_uri_prefix, day, rows, seed)
    return out


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smspark_assets.datasets.credit",
        description="Write daily partitions of demo credit applications to s3://<bucket>/raw/credit_applications/.",
    )
    parser.add_argument("--days", type=int, default=14, help="number of consecutive days (default 14)")
    parser.add_argument("--rows", type=int, default=20000, help="rows per day (default 20000)")
    parser.add_argument("--start", type=_parse_date, default=dt.date(2026, 11, 1), help="first day, YYYY-MM-DD")
    parser.add_argument("--bucket", default=default_bucket(), help="bucket name or s3://bucket[/prefix]")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows < 1:
        parser.error("--days and --rows must be positive")
    t0 = time.perf_counter()
    from smspark_assets.resources.by_environment import resources_for

    written = write_days(resources_for()["store"], args.bucket, args.start, args.days, args.rows, args.seed)
    elapsed = time.perf_counter() - t0
    total_rows = args.days * args.rows
    print(
        f"wrote {args.days} day(s) x {args.rows} rows = {total_rows} rows "
        f"({sum(len(v) for v in written.values())} files) under "
        f"{partition_uri(args.bucket, args.start).rsplit('/', 1)[0]} in {elapsed:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
