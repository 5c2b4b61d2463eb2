"""Which columns of a feature table are monitored, and their values as arrays (vectorized, no per-row Python).

The credit features are all numbers: categoricals arrive one-hot encoded (``purpose__car``,
``purpose__other``, ...) and imputed columns carry a ``<col>_missing`` 0/1 indicator. Monitoring them
column by column would hide what matters, so :func:`infer_columns` folds them back:

* a group of numeric columns ``<name>__<value>`` becomes one categorical feature ``<name>`` whose category
  is the hot column's value (``<none>`` when no column of the row is hot);
* ``<col>_missing`` next to ``<col>`` marks ``<col>``'s imputed rows as missing: they count in its missing
  rate, not in its distribution. The feature job imputes each day's own median, so keeping imputed values
  would make a mostly-missing column (``months_since_last_delinquency``) look drifted every day;
* string (or dictionary) columns are categorical; every other numeric or boolean column is numeric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NO_CATEGORY = "<none>"
GROUP_SEPARATOR = "__"
MISSING_SUFFIX = "_missing"


@dataclass(frozen=True)
class MonitoredColumns:
    """The monitored features of a table, by kind."""

    numeric: tuple[str, ...] = ()
    # String columns of the table, monitored as categories.
    categorical: tuple[str, ...] = ()
    # One-hot groups: feature name -> ((category, column), ...).
    groups: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # Numeric column -> the 0/1 column that flags its imputed (missing) rows.
    missing_indicators: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical),
                "groups": {k: [list(p) for p in v] for k, v in self.groups.items()},
                "missing_indicators": dict(self.missing_indicators)}

    @classmethod
    def from_json(cls, data: dict) -> "MonitoredColumns":
        return cls(tuple(data.get("numeric", ())), tuple(data.get("categorical", ())),
                   {k: tuple((str(a), str(b)) for a, b in v) for k, v in data.get("groups", {}).items()},
                   dict(data.get("missing_indicators", {})))

    def source_columns(self) -> list[str]:
        """Every table column these features read."""
        cols = [*self.numeric, *self.categorical, *self.missing_indicators.values()]
        cols += [c for pairs in self.groups.values() for _, c in pairs]
        return cols


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)


def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or (pa.types.is_dictionary(t) and _is_text(t.value_type)))


def infer_columns(schema: pa.Schema, include: list[str] | None = None,
                  exclude: tuple[str, ...] = ()) -> MonitoredColumns:
    """The monitored features of ``schema``: only ``include`` (e.g. the model's feature columns) when
    given, never ``exclude`` (ids, labels, dates, the split, the partition column)."""
    names = [n for n in (include if include is not None else schema.names) if n not in exclude]
    unknown = [n for n in names if n not in schema.names]
    if unknown:
        raise ValueError(f"column(s) {unknown} are not in the table; it has {schema.names}")
    types = {n: schema.field(n).type for n in names}
    numeric_names = {n for n in names if _is_number(types[n])}
    groups: dict[str, list[tuple[str, str]]] = {}
    indicators: dict[str, str] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    for n in names:
        if n in numeric_names and GROUP_SEPARATOR in n:
            prefix, value = n.split(GROUP_SEPARATOR, 1)
            groups.setdefault(prefix, []).append((value, n))
        elif n in numeric_names and n.endswith(MISSING_SUFFIX) and n[:-len(MISSING_SUFFIX)] in numeric_names:
            indicators[n[:-len(MISSING_SUFFIX)]] = n
        elif n in numeric_names:
            numeric.append(n)
        elif _is_text(types[n]):
            categorical.append(n)
        else:
            raise ValueError(f"column {n!r} has type {types[n]}, which cannot be monitored: numbers, booleans "
                             "and strings can")
    return MonitoredColumns(tuple(numeric), tuple(categorical), {k: tuple(v) for k, v in groups.items()}, indicators)


def numeric_values(table: pa.Table, column: str) -> np.ndarray:
    """``column`` as float64, nulls as NaN."""
    return pc.cast(table.column(column), pa.float64()).to_numpy(zero_copy_only=False)


def observed_values(table: pa.Table, columns: MonitoredColumns, column: str) -> np.ndarray:
    """``column`` as float64 with every missing row as NaN: nulls, and rows its indicator flags as imputed."""
    values = numeric_values(table, column)
    indicator = columns.missing_indicators.get(column)
    if indicator is not None:
        values = np.where(numeric_values(table, indicator) > 0, np.nan, values)  # Arrow's buffer is read-only
    return values


def category_counts(table: pa.Table, columns: MonitoredColumns, feature: str) -> tuple[dict[str, int], int]:
    """``(count per category, missing rows)`` of a categorical feature (a string column or a one-hot group)."""
    if feature in columns.groups:
        pairs = columns.groups[feature]
        hot = np.column_stack([numeric_values(table, c) for _, c in pairs])
        hot = np.nan_to_num(hot, nan=0.0)
        any_hot = hot.max(axis=1) > 0
        counts = np.bincount(hot.argmax(axis=1)[any_hot], minlength=len(pairs))
        out = {value: int(n) for (value, _), n in zip(pairs, counts) if n}
        none = int((~any_hot).sum())
        if none:
            out[NO_CATEGORY] = none
        return out, 0
    col = table.column(feature)
    nulls = int(col.null_count)
    counted = pc.value_counts(col.drop_null() if nulls else col)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy()
    return {str(v): int(n) for v, n in zip(values, counts)}, nulls
