"""Figures and Markdown made readable on a terminal: rounded numbers, Markdown without its markup.

Asset metadata is written for the Dagster UI (Markdown, full-precision floats); the command line shows
the same values as plain text.
"""

from __future__ import annotations

import re
from typing import Any

_LONG_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d{4,}(?![\w.])")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def rounded(value: Any) -> str:
    """A figure for a person: thousands separated, about three significant digits for fractions.

    ``12345.678 -> "12,346"``, ``12.345 -> "12.3"``, ``0.812345 -> "0.812"``, ``True -> "yes"``;
    anything that is not a number is returned as ``str(value)``.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def round_numbers_in(text: str) -> str:
    """``text`` with every decimal of four or more places rounded as :func:`rounded` does."""
    return _LONG_DECIMAL.sub(lambda m: rounded(float(m.group(0))), text)


def markdown_to_plain(markdown: str) -> str:
    """Markdown as plain text: no emphasis marks or headings, ``- `` bullets, links as ``text (url)``,
    tables as space-aligned columns without their rule line."""
    lines: list[str] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if table:
            widths = [max(len(row[i]) if i < len(row) else 0 for row in table) for i in range(max(map(len, table)))]
            lines.extend("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table)
            table.clear()

    for raw in markdown.splitlines():
        line = _EMPHASIS.sub("", _LINK.sub(r"\1 (\2)", raw)).rstrip()
        if line.lstrip().startswith("|") or (table and "|" in line):
            if not _TABLE_RULE.match(line):
                table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        flush_table()
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("#"):
            line = stripped.lstrip("#").strip()
        elif stripped[:2] in ("* ", "+ "):
            line = f"{indent}- {stripped[2:]}"
        lines.append(line)
    flush_table()
    return round_numbers_in("\n".join(lines)).strip("\n")
