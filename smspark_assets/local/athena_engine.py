"""Runs one Athena (Trino) query on DuckDB over the Glue tables it names, locked inside the store.

1. sqlglot parses the query (Athena dialect). Only queries (SELECT, WITH, VALUES, set operations) are
   accepted; anything else ends the query with ``NOT_SUPPORTED``.
2. Every table reference is resolved in the Glue catalog (``[awsdatacatalog.][db.]table``, the context
   database for unqualified names, CTE names left alone): a missing one fails the query with Athena's
   ``TABLE_NOT_FOUND`` / ``SCHEMA_NOT_FOUND`` message and position.
3. Each referenced table becomes a DuckDB view over exactly the Parquet files of its registered
   partitions (or of its location when unpartitioned), columns cast to the Glue types and partition
   values taken from the Glue partition (not the folder name); an empty table is an empty typed view.
4. The connection is locked before anything runs: no external access except the listed files
   (``allowed_paths``), no extension installs or loads, configuration locked. So neither a table
   function (``read_csv('/etc/...')``) nor ``COPY ... TO`` can touch anything outside the store.
5. The query, translated to DuckDB by sqlglot, runs; the result comes back as text columns rendered as
   Athena prints them, with Athena-typed column info.

``SHOW PARTITIONS [[awsdatacatalog.]db.]table`` (Athena's one DDL statement users query most) answers
from the Glue partitions alone: one ``partition`` column, ``key=value[/key=value]`` per partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from smspark_assets.local.athena_storage import LocationError, data_files
from smspark_assets.local.athena_types import (
    UnsupportedType,
    column_info,
    duckdb_type,
    format_expression,
    quote,
)

CATALOG = "awsdatacatalog"
_QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
_FILE_COLUMN = "__smspark_source_file"
# Per query: DuckDB may use this much memory and this many threads (the machine is shared).
MEMORY_LIMIT = "2GB"
THREADS = 2


class QueryFailed(Exception):
    """The query ends FAILED; ``reason`` is the ``StateChangeReason`` (``ERROR_NAME: message``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class QueryResult:
    """Text columns (Athena's rendering, NULL as null) with their ColumnInfo; bytes of data scanned."""

    columns: list[dict[str, Any]]
    table: pa.Table
    scanned_bytes: int = 0


@dataclass
class _Scan:
    """What the views of one query read."""

    files: list[str] = field(default_factory=list)
    bytes: int = 0


# SHOW PARTITIONS <table>: a table name of one to three parts, each plain, "quoted" or `quoted`.
_NAME_PART = r'(?:[A-Za-z_][\w$]*|"(?:[^"]|"")+"|`[^`]+`)'
_SHOW_PARTITIONS = re.compile(
    rf"^\s*SHOW\s+PARTITIONS\s+(?P<name>{_NAME_PART}(?:\s*\.\s*{_NAME_PART}){{0,2}})\s*;?\s*$",
    re.IGNORECASE)

# (db, table) -> (table doc, partition docs) or None; the Glue store's snapshot reader.
TableReader = Callable[[str, str], "tuple[dict[str, Any], list[dict[str, Any]]] | None"]
DatabaseExists = Callable[[str], bool]


def locked_connection(allowed_files: list[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read ``allowed_files`` and nothing else, with its settings locked."""
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
        }
    )
    con.execute("SET allowed_paths = ?", [allowed_files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(
    sql: str,
    database: str,
    read_table: TableReader,
    database_exists: DatabaseExists,
    s3_root: Path,
    on_connection: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> QueryResult:
    """Plan and run ``sql`` in ``database``; raises :class:`QueryFailed` with Athena's reason."""
    show = _SHOW_PARTITIONS.match(sql) if isinstance(sql, str) else None
    if show is not None:
        return _show_partitions(sql, show, database, read_table, database_exists)
    tree = _parse(sql)
    tables = _resolve_tables(tree, sql, database, database_exists, read_table)
    _name_expression_columns(tree)
    scan = _Scan()
    views = [
        _view_sql(db, name, table, parts, s3_root, scan) for (db, name), (table, parts) in tables.items()
    ]
    con = locked_connection(scan.files)
    try:
        if on_connection is not None:
            on_connection(con)
        for db in {db for db, _ in tables}:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(db)}")
        try:
            for view in views:
                con.execute(view)
            duck_sql = tree.sql(dialect="duckdb")
            relation = con.sql(duck_sql)
            if relation is None:
                raise QueryFailed("NOT_SUPPORTED: the statement returns no rows")
            types = [str(t) for t in relation.types]
            names = list(relation.columns)
            rendered = relation.project(", ".join(format_expression(i + 1, t) for i, t in enumerate(types)))
            table = rendered.to_arrow_table()
        except duckdb.Error as exc:
            raise QueryFailed(_reason(exc)) from None
        return QueryResult([column_info(n, t) for n, t in zip(names, types)], table, scan.bytes)
    finally:
        con.close()


def _show_partitions(
    sql: str, match: re.Match[str], database: str, read_table: TableReader, database_exists: DatabaseExists
) -> QueryResult:
    """The Glue partitions of one table as Athena lists them, sorted; a table without partition keys fails."""
    start = match.start("name")
    where = f"line {sql.count(chr(10), 0, start) + 1}:{start - (sql.rfind(chr(10), 0, start) + 1) + 1}"
    try:
        # DDL statements are Hive's: `quoted` parts mean what "quoted" parts mean in queries.
        name_text = re.sub(r"`([^`]+)`", lambda m: '"' + m.group(1).replace('"', '""') + '"', match.group("name"))
        node = exp.to_table(name_text, dialect="athena")
    except sqlglot.errors.ParseError:
        raise QueryFailed(f"SYNTAX_ERROR: {where}: not a table name: {match.group('name')!r}") from None
    catalog, db, name = node.catalog.lower(), (node.db or database).lower(), node.name.lower()
    if catalog and catalog != CATALOG:
        raise QueryFailed(f"CATALOG_NOT_FOUND: {where}: Catalog '{catalog}' does not exist")
    if not database_exists(db):
        raise QueryFailed(f"SCHEMA_NOT_FOUND: {where}: Schema '{db}' does not exist")
    entry = read_table(db, name)
    if entry is None:
        raise QueryFailed(f"TABLE_NOT_FOUND: {where}: Table '{CATALOG}.{db}.{name}' does not exist")
    table, parts = entry
    keys = [k["Name"].lower() for k in table.get("PartitionKeys", [])]
    if not keys:
        raise QueryFailed(f"NOT_SUPPORTED: {where}: Table '{CATALOG}.{db}.{name}' is not partitioned")
    listed = sorted("/".join(f"{k}={v}" for k, v in zip(keys, part.get("Values", []))) for part in parts)
    return QueryResult([column_info("partition", "VARCHAR")], pa.table({"partition": pa.array(listed, pa.string())}))


def _parse(sql: str) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        raise QueryFailed("SYNTAX_ERROR: line 1:1: the query is empty")
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = first.get("description", str(exc).splitlines()[0])
        highlight = first.get("highlight")
        near = f" at or near {highlight!r}" if highlight else ""
        raise QueryFailed(
            f"SYNTAX_ERROR: line {first.get('line', 1)}:{first.get('col', 1)}: " f"{description}{near}"
        ) from None
    except sqlglot.errors.TokenError as exc:
        raise QueryFailed(f"SYNTAX_ERROR: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryFailed(
            "SYNTAX_ERROR: line 1:1: only one statement can be run per query " f"(got {len(statements)})"
        )
    tree = statements[0]
    query = tree.this if isinstance(tree, exp.With) else tree
    if not isinstance(query, _QUERY_TYPES) and not isinstance(tree, exp.Subquery):
        kind = type(query).__name__.upper()
        raise QueryFailed(
            f"NOT_SUPPORTED: the local Athena runs queries (SELECT, WITH, VALUES); {kind} "
            "statements are not supported"
        )
    return tree


def _name_expression_columns(tree: exp.Expression) -> None:
    """Unnamed expression columns are called ``_col<position>``, as Athena names them (not ``sum(x)``)."""
    query = tree.this if isinstance(tree, exp.With) else tree
    if not isinstance(query, exp.Select):
        return
    named = []
    for position, item in enumerate(query.expressions):
        if not isinstance(item, (exp.Alias, exp.Column, exp.Star)):
            item = exp.alias_(item, f"_col{position}", quoted=True)
        named.append(item)
    query.set("expressions", named)


def _position(sql_node: exp.Expression, text: str) -> str:
    """``line L:C`` of a node in the query (1-based), as Trino reports positions."""
    ident = sql_node.args.get("catalog") or sql_node.args.get("db") or sql_node.this
    meta = getattr(ident, "meta", None) or {}
    start = meta.get("start")
    if start is None:
        return "line 1:1"
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return f"line {line}:{col}"


def _resolve_tables(
    tree: exp.Expression,
    original: str,
    database: str,
    database_exists: DatabaseExists,
    read_table: TableReader,
) -> dict[tuple[str, str], tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Resolve and qualify every table reference in place; returns the Glue tables the query reads.

    Positions in error messages are those of ``original`` (the query text as submitted).
    """
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: dict[tuple[str, str], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for node in list(tree.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier):
            continue  # a table function: DuckDB's lock-down decides what it may read
        name = node.name.lower()
        catalog, db = node.catalog.lower(), node.db.lower()
        if not db and not catalog and name in cte_names:
            continue
        where = _position(node, original)
        if catalog and catalog != CATALOG:
            raise QueryFailed(f"CATALOG_NOT_FOUND: {where}: Catalog '{catalog}' does not exist")
        db = db or database
        if not database_exists(db):
            raise QueryFailed(f"SCHEMA_NOT_FOUND: {where}: Schema '{db}' does not exist")
        if (db, name) not in found:
            entry = read_table(db, name)
            if entry is None:
                raise QueryFailed(f"TABLE_NOT_FOUND: {where}: Table '{CATALOG}.{db}.{name}' does not exist")
            found[(db, name)] = entry
        node.set("catalog", None)
        node.set("db", exp.to_identifier(db, quoted=True))
        node.set("this", exp.to_identifier(name, quoted=True))
    return found


def _view_sql(
    db: str, name: str, table: dict[str, Any], parts: list[dict[str, Any]], s3_root: Path, scan: _Scan
) -> str:
    """``CREATE VIEW db.name`` over the table's files, typed per its Glue columns."""
    sd = table.get("StorageDescriptor") or {}
    _check_format(db, name, table, sd)
    try:
        columns = [(c["Name"].lower(), duckdb_type(c.get("Type", "string"))) for c in sd.get("Columns", [])]
        keys = [
            (k["Name"].lower(), duckdb_type(k.get("Type", "string"))) for k in table.get("PartitionKeys", [])
        ]
    except UnsupportedType as exc:
        raise QueryFailed(f"NOT_SUPPORTED: {exc} (table {db}.{name})") from None
    if not columns and not keys:
        raise QueryFailed(f"HIVE_INVALID_METADATA: Table {db}.{name} has no columns")
    # file -> partition values ("" row for an unpartitioned table)
    sources: list[tuple[str, list[str]]] = []
    try:
        if keys:
            for part in parts:
                location = (part.get("StorageDescriptor") or {}).get("Location")
                if location:
                    sources += [(str(f), part["Values"]) for f in data_files(s3_root, location)]
        elif sd.get("Location"):
            sources = [(str(f), []) for f in data_files(s3_root, sd["Location"])]
    except LocationError as exc:
        raise QueryFailed(f"HIVE_INVALID_METADATA: invalid location of table {db}.{name}: {exc}") from None
    target = f"{quote(db)}.{quote(name)}"
    if not sources:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {quote(c)}" for c, t in [*columns, *keys])
        return f"CREATE VIEW {target} AS SELECT {cols} WHERE false"
    files = sorted({f for f, _ in sources})
    scan.files += files
    scan.bytes += sum(Path(f).stat().st_size for f in files)
    listing = "[" + ", ".join(_literal(f) for f in files) + "]"
    reader = (
        f"read_parquet({listing}, union_by_name = true, hive_partitioning = false, "
        f"filename = {_literal(_FILE_COLUMN)})"
    )
    key_names = {k for k, _ in keys}
    present = _file_columns(files)
    select = [
        f"CAST(d.{quote(c)} AS {t}) AS {quote(c)}" if c in present else f"CAST(NULL AS {t}) AS {quote(c)}"
        for c, t in columns
        if c not in key_names
    ]
    if not keys:
        return f"CREATE VIEW {target} AS SELECT {', '.join(select)} FROM {reader} AS d"
    select += [f"CAST(p.{quote(k)} AS {t}) AS {quote(k)}" for k, t in keys]
    rows = ", ".join("(" + ", ".join(_literal(v) for v in [f, *values]) + ")" for f, values in sources)
    names = ", ".join(quote(n) for n in [_FILE_COLUMN, *[k for k, _ in keys]])
    return (
        f"CREATE VIEW {target} AS SELECT {', '.join(select)} FROM {reader} AS d "
        f"JOIN (VALUES {rows}) AS p({names}) ON d.{quote(_FILE_COLUMN)} = p.{quote(_FILE_COLUMN)}"
    )


def _file_columns(files: list[str]) -> set[str]:
    """The column names the Parquet files hold (read from their footers only)."""
    import pyarrow.parquet as pq

    names: set[str] = set()
    for file in files:
        try:
            names.update(n.lower() for n in pq.read_schema(file).names)
        except (OSError, pa.ArrowException) as exc:
            raise QueryFailed(
                f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {Path(file).name}: {exc}"
            ) from None
    return names


def _check_format(db: str, name: str, table: dict[str, Any], sd: dict[str, Any]) -> None:
    """Only Parquet tables are read; say so for any other storage format."""
    described = " ".join(
        str(v)
        for v in (
            sd.get("InputFormat"),
            (sd.get("SerdeInfo") or {}).get("SerializationLibrary"),
            (table.get("Parameters") or {}).get("classification"),
        )
        if v
    ).lower()
    if described and "parquet" not in described:
        raise QueryFailed(
            f"NOT_SUPPORTED: table {db}.{name} is stored as {described!r}; the local Athena "
            "reads Parquet tables"
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ERROR_NAMES = (
    (duckdb.PermissionException, "PERMISSION_DENIED"),
    (duckdb.ConversionException, "INVALID_CAST_ARGUMENT"),
    (duckdb.OutOfMemoryException, "EXCEEDED_LOCAL_MEMORY_LIMIT"),
    (duckdb.ParserException, "SYNTAX_ERROR"),
    (duckdb.CatalogException, "FUNCTION_NOT_FOUND"),
    (duckdb.BinderException, "SYNTAX_ERROR"),
    (duckdb.InvalidInputException, "INVALID_FUNCTION_ARGUMENT"),
    (duckdb.OutOfRangeException, "NUMERIC_VALUE_OUT_OF_RANGE"),
    (duckdb.IOException, "HIVE_CURSOR_ERROR"),
)


def _reason(exc: duckdb.Error) -> str:
    """An Athena-style ``ERROR_NAME: message`` for a DuckDB error."""
    message = str(exc).split("\n\n")[0].strip()
    message = re.sub(r"^[A-Za-z ]+ Error: ", "", message)
    column = re.search(r'Referenced column "([^"]+)" not found', message)
    if column:
        return f"COLUMN_NOT_FOUND: Column '{column.group(1)}' cannot be resolved"
    if isinstance(exc, duckdb.InterruptException):
        return "USER_CANCELLED: Query was cancelled by user"
    for kind, name in _ERROR_NAMES:
        if isinstance(exc, kind):
            return f"{name}: {message}"
    return f"GENERIC_INTERNAL_ERROR: {message}"
