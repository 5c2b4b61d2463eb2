"""Credit feature tables without Spark, for the drift tests and benchmark: the demo generator's raw day,
featured the way ``spark_jobs/prepare_features.py`` does (clip, impute the day's median, ``_missing``
indicators, one-hot over the fixed vocabulary plus ``other``, ``loan_to_income``). A faithful-enough
stand-in for volume; the real-Parquet tests use the real Spark job."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from smspark_assets.datasets import credit
from smspark_assets.spark_jobs.prepare_features import (
    CLIP_RANGES,
    FEATURE_COLUMNS,
    MISSING_INDICATORS,
    NUMERIC_COLUMNS,
    VOCABULARY,
)


def featurize(raw: pd.DataFrame) -> pd.DataFrame:
    """Features of a raw day (``credit.generate_day``'s columns), vectorized."""
    out: dict[str, np.ndarray] = {}
    for c in NUMERIC_COLUMNS:
        values = pd.to_numeric(raw[c], errors="coerce").to_numpy(dtype=np.float64)
        lo, hi = CLIP_RANGES[c]
        values = np.clip(values, lo, hi)
        missing = np.isnan(values)
        out[c] = np.where(missing, np.nanmedian(values) if (~missing).any() else 0.0, values)
        if c in MISSING_INDICATORS:
            out[f"{c}_missing"] = missing.astype(np.int32)
    out["loan_to_income"] = out["loan_amount"] / np.maximum(out["annual_income"], 1000.0)
    for column, vocabulary in VOCABULARY.items():
        values = raw[column].astype("string").str.strip()
        values = values.str.upper() if column != "purpose" else values.str.lower()
        known = values.isin(vocabulary).fillna(False).to_numpy()
        for v in vocabulary:
            out[f"{column}__{v.lower()}"] = (values == v).fillna(False).to_numpy().astype(np.int32)
        out[f"{column}__other"] = (~known).astype(np.int32)
    frame = pd.DataFrame(out)[FEATURE_COLUMNS]
    frame.insert(0, "application_id", raw["application_id"].to_numpy())
    return frame


def feature_day(day: dt.date, rows: int, seed: int = 7) -> pd.DataFrame:
    """The featured demo day (with its missing and impossible values; malformed numbers count as missing)."""
    return featurize(credit.generate_day(day, rows, seed))


def as_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)
