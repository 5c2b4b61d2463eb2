"""How ``smspark query`` prints a result: an aligned table, CSV or JSON, cut at ``--max-rows`` with a note.

The table form ends with the row count. CSV and JSON stay machine-readable on stdout (header + rows, or
one JSON array of objects with numbers as numbers and NULL as null); their row count and any note about
rows left out go to stderr.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class RenderedResult:
    """What goes to stdout, and the notes (row count, rows left out) for the person reading it."""

    text: str
    notes: list[str]


def _plain(value: Any) -> Any:
    """A JSON value: NumPy scalars as Python numbers, NaN/NULL as None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def render(frame: pd.DataFrame, fmt: str = "table", max_rows: int = 50) -> RenderedResult:
    """``frame`` in ``fmt``, at most ``max_rows`` rows (0: all of them)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if max_rows < 0:
        raise ValueError(f"--max-rows must be 0 (all rows) or more, got {max_rows}")
    total = len(frame)
    shown = frame if max_rows == 0 or total <= max_rows else frame.head(max_rows)
    notes = [f"{total:,} row{'s' if total != 1 else ''}"]
    if len(shown) < total:
        notes.append(f"showing the first {len(shown):,} of {total:,} rows; --max-rows N shows more "
                     "(0 shows all)")
    if fmt == "csv":
        text = shown.to_csv(index=False, lineterminator="\n").rstrip("\n")
    elif fmt == "json":
        records = [{str(k): _plain(v) for k, v in row.items()} for row in shown.to_dict(orient="records")]
        text = json.dumps(records, indent=2, default=str)
    elif len(shown.columns) == 0:
        text = "(no columns)"
    elif total == 0:
        text = "  ".join(map(str, shown.columns)) + "\n(no rows)"
    else:
        with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
            text = shown.to_string(index=False)
    return RenderedResult(text, notes)
