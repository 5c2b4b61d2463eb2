"""Type names across the three languages the local Athena speaks: Glue (Hive) column types, DuckDB
types, and the Athena (Trino) types of ``ResultSetMetadata.ColumnInfo``.

``duckdb_type`` turns a Glue type (``decimal(10,2)``, ``array<struct<a:int,b:string>>``) into the DuckDB
type a table view casts to; ``column_info`` turns a result column's DuckDB type into what Athena answers
(DuckDB's HUGEINT sums become ``bigint``, as Trino's are) and ``format_expression`` renders its values as
Athena prints them.
"""

from __future__ import annotations

import re
from typing import Any

_SCALARS = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "REAL",
    "real": "REAL",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}


class UnsupportedType(ValueError):
    """A Glue column type the local Athena cannot read."""


def quote(identifier: str) -> str:
    """A DuckDB quoted identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type for a Glue (Hive DDL) type; :class:`UnsupportedType` for anything else."""
    text = glue_type.strip()
    out, rest = _parse(text.lower(), text)
    if rest.strip():
        raise UnsupportedType(f"Unsupported Hive type: {glue_type}")
    return out


def _parse(text: str, original: str) -> tuple[str, str]:
    """Parse one type from the front of ``text``; returns (DuckDB type, what is left)."""
    text = text.lstrip()
    match = re.match(r"[a-z_]+", text)
    if not match:
        raise UnsupportedType(f"Unsupported Hive type: {original}")
    name, rest = match.group(0), text[match.end() :].lstrip()
    if name in ("decimal", "numeric"):
        params = re.match(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", rest)
        if params is None:
            return "DECIMAL(10,0)", rest  # Hive's default precision and scale
        precision, scale = int(params.group(1)), int(params.group(2) or 0)
        if not 1 <= precision <= 38 or scale > precision:
            raise UnsupportedType(f"Unsupported Hive type: {original}")
        return f"DECIMAL({precision},{scale})", rest[params.end() :]
    if name in ("varchar", "char"):
        params = re.match(r"\(\s*\d+\s*\)", rest)
        return "VARCHAR", rest[params.end() :] if params else rest
    if name in _SCALARS:
        return _SCALARS[name], rest
    if name == "array":
        inner, rest = _parse(_expect(rest, "<", original), original)
        return f"{inner}[]", _expect(rest, ">", original)
    if name == "map":
        key, rest = _parse(_expect(rest, "<", original), original)
        value, rest = _parse(_expect(rest, ",", original), original)
        return f"MAP({key}, {value})", _expect(rest, ">", original)
    if name == "struct":
        rest = _expect(rest, "<", original)
        fields = []
        while True:
            field = re.match(r"\s*([^:<>,\s]+)\s*:", rest)
            if field is None:
                raise UnsupportedType(f"Unsupported Hive type: {original}")
            ftype, rest = _parse(rest[field.end() :], original)
            fields.append(f"{quote(field.group(1))} {ftype}")
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:]
                continue
            return f"STRUCT({', '.join(fields)})", _expect(rest, ">", original)
    raise UnsupportedType(f"Unsupported Hive type: {original}")


def _expect(text: str, token: str, original: str) -> str:
    text = text.lstrip()
    if not text.startswith(token):
        raise UnsupportedType(f"Unsupported Hive type: {original}")
    return text[len(token) :]


# DuckDB type (without parameters) -> (Athena type, precision)
_ATHENA = {
    "BOOLEAN": ("boolean", 0),
    "TINYINT": ("tinyint", 3),
    "SMALLINT": ("smallint", 5),
    "INTEGER": ("integer", 10),
    "BIGINT": ("bigint", 19),
    "HUGEINT": ("bigint", 19),
    "UHUGEINT": ("bigint", 19),
    "UBIGINT": ("bigint", 19),
    "UINTEGER": ("bigint", 19),
    "USMALLINT": ("integer", 10),
    "UTINYINT": ("smallint", 5),
    "FLOAT": ("real", 9),
    "DOUBLE": ("double", 17),
    "VARCHAR": ("varchar", 2147483647),
    "BLOB": ("varbinary", 0),
    "DATE": ("date", 0),
    "TIME": ("time", 3),
    "TIMESTAMP": ("timestamp", 3),
    "TIMESTAMP_S": ("timestamp", 3),
    "TIMESTAMP_MS": ("timestamp", 3),
    "TIMESTAMP_NS": ("timestamp", 3),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3),
    "INTERVAL": ("interval day to second", 0),
    "UUID": ("uuid", 0),
    "JSON": ("json", 0),
    "BIT": ("varbinary", 0),
}
# Results that DuckDB widens past Trino's types are narrowed back (a SUM of integers is bigint in Athena).
_NARROW_TO_BIGINT = ("HUGEINT", "UHUGEINT", "UBIGINT", "UINTEGER")


def column_info(name: str, duck: str) -> dict[str, Any]:
    """One ``ResultSetMetadata.ColumnInfo`` entry, as Athena answers it."""
    athena, precision, scale = _athena_type(duck)
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena in ("varchar", "char"),
    }


def _athena_type(duck: str) -> tuple[str, int, int]:
    upper = duck.upper()
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if decimal:
        return "decimal", int(decimal.group(1)), int(decimal.group(2))
    if upper.endswith("]"):
        return "array", 0, 0
    if upper.startswith("STRUCT"):
        return "row", 0, 0
    if upper.startswith("MAP"):
        return "map", 0, 0
    if upper.startswith("ENUM"):
        return "varchar", 2147483647, 0
    athena, precision = _ATHENA.get(upper, ("varchar", 2147483647))
    return athena, precision, 0


def format_expression(position: int, duck: str) -> str:
    """SQL rendering result column ``#position`` as the text Athena puts in ``VarCharValue`` and the CSV."""
    ref = f"#{position}"
    upper = duck.upper()
    if upper in _NARROW_TO_BIGINT:
        # Overflow fails the query (Trino's bigint overflows too) rather than printing a wrong number.
        return f"CAST(CAST({ref} AS BIGINT) AS VARCHAR)"
    if upper.startswith("TIMESTAMP") and "TIME ZONE" not in upper:
        return f"strftime(CAST({ref} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%g')"
    return f"CAST({ref} AS VARCHAR)"
