"""The Glue Data Catalog of the local stack (JSON 1.1, ``X-Amz-Target: AWSGlue.<Operation>``).

Databases, tables and partitions, with the shapes and errors Glue answers (``EntityNotFoundException``,
``AlreadyExistsException``, ``InvalidInputException``; timestamps as epoch seconds), persisted in
``<local_dir>/glue.sqlite`` (:mod:`.glue_store`). GetPartitions filters with Glue's ``Expression``
language, evaluated in Python (:mod:`.glue_expression`). The Athena API reads the same store.

Names are lower-cased, as Glue stores them.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from typing import Any, Callable

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.glue_expression import compile_expression, invalid
from smspark_assets.local.glue_store import GlueStore, values_key

ACCOUNT = "123456789012"
MAX_BATCH_CREATE = 100
MAX_BATCH_DELETE = 25
MAX_BATCH_GET = 1000
_NAME_MAX = 255
# Glue's single-line string pattern: no control characters.
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")
_DEFAULT_PERMISSIONS = [
    {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}
]
# TableInput fields Glue stores as given (others, e.g. Name, are normalized).
_TABLE_FIELDS = (
    "Description",
    "Owner",
    "LastAccessTime",
    "LastAnalyzedTime",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
)
_PARTITION_FIELDS = ("Values", "LastAccessTime", "StorageDescriptor", "Parameters", "LastAnalyzedTime")


def not_found(message: str) -> ApiError:
    return ApiError("EntityNotFoundException", message)


def already_exists(message: str) -> ApiError:
    return ApiError("AlreadyExistsException", message)


class GlueApi:
    """Glue's catalog calls over :class:`~.glue_store.GlueStore`."""

    def __init__(self, service: Any) -> None:
        self.store = GlueStore(service.layout.local_dir / "glue.sqlite")
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            name: getattr(self, "op_" + name)
            for name in (
                "CreateDatabase",
                "GetDatabase",
                "GetDatabases",
                "UpdateDatabase",
                "DeleteDatabase",
                "CreateTable",
                "GetTable",
                "GetTables",
                "UpdateTable",
                "DeleteTable",
                "BatchDeleteTable",
                "CreatePartition",
                "BatchCreatePartition",
                "GetPartition",
                "GetPartitions",
                "BatchGetPartition",
                "UpdatePartition",
                "DeletePartition",
                "BatchDeletePartition",
            )
        }

    def shutdown(self) -> None:
        self.store.close()

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._operations.get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"The local Glue does not implement {operation}; it serves {', '.join(self._operations)}",
            )
        return handler(params)

    # -- databases ------

    def op_CreateDatabase(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - AWS operation names
        db_input = _struct(p, "DatabaseInput", required=True)
        name = _name(db_input, "Name", "DatabaseInput.Name")
        doc = {
            **_pick(db_input, ("Description", "LocationUri", "Parameters", "TargetDatabase")),
            "Name": name,
            "CreateTime": _now(),
            "CreateTableDefaultPermissions": db_input.get(
                "CreateTableDefaultPermissions", _DEFAULT_PERMISSIONS
            ),
            "CatalogId": p.get("CatalogId") or ACCOUNT,
        }
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM databases WHERE name = ?", (name,)).fetchone():
                raise already_exists(f"Database already exists: {name}")
            con.execute("INSERT INTO databases (name, doc) VALUES (?, ?)", (name, json.dumps(doc)))
        return {}

    def op_GetDatabase(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = _name(p, "Name")
        doc = self.store.database(name)
        if doc is None:
            raise not_found(f"Database {name} not found.")
        return {"Database": doc}

    def op_GetDatabases(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        offset, limit = _paging(p, 100)
        with self.store.reading() as con:
            rows = con.execute(
                "SELECT doc FROM databases ORDER BY name LIMIT ? OFFSET ?", (limit + 1, offset)
            ).fetchall()
        return _page("DatabaseList", [json.loads(r[0]) for r in rows], offset, limit)

    def op_UpdateDatabase(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = _name(p, "Name")
        db_input = _struct(p, "DatabaseInput", required=True)
        with self.store.transaction() as con:
            row = con.execute("SELECT doc FROM databases WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise not_found(f"Database {name} not found.")
            old = json.loads(row[0])
            doc = {
                **_pick(db_input, ("Description", "LocationUri", "Parameters", "TargetDatabase")),
                "Name": name,
                "CreateTime": old["CreateTime"],
                "CreateTableDefaultPermissions": db_input.get(
                    "CreateTableDefaultPermissions", old["CreateTableDefaultPermissions"]
                ),
                "CatalogId": old["CatalogId"],
            }
            con.execute("UPDATE databases SET doc = ? WHERE name = ?", (json.dumps(doc), name))
        return {}

    def op_DeleteDatabase(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = _name(p, "Name")
        with self.store.transaction() as con:
            if con.execute("DELETE FROM databases WHERE name = ?", (name,)).rowcount == 0:
                raise not_found(f"Database {name} not found.")
            # Glue deletes the tables (and their partitions) of a deleted database.
            con.execute("DELETE FROM tables WHERE db = ?", (name,))
            con.execute("DELETE FROM partitions WHERE db = ?", (name,))
        return {}

    # -- tables ------

    def _table_doc(self, db: str, table_input: dict[str, Any], catalog_id: str) -> dict[str, Any]:
        name = _name(table_input, "Name", "TableInput.Name")
        keys = table_input.get("PartitionKeys", [])
        if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("Name") for k in keys):
            raise invalid("TableInput.PartitionKeys must be a list of {Name, Type}")
        doc = {
            "Name": name,
            "DatabaseName": db,
            **_pick(table_input, _TABLE_FIELDS),
            "CreatedBy": f"arn:aws:iam::{ACCOUNT}:user/local",
            "IsRegisteredWithLakeFormation": False,
            "CatalogId": catalog_id,
        }
        doc.setdefault("PartitionKeys", [])
        doc.setdefault("Retention", 0)
        return doc

    def _require_db(self, con: Any, db: str) -> None:
        if con.execute("SELECT 1 FROM databases WHERE name = ?", (db,)).fetchone() is None:
            raise not_found(f"Database {db} not found.")

    def _require_table(self, con: Any, db: str, name: str) -> dict[str, Any]:
        row = con.execute("SELECT doc FROM tables WHERE db = ? AND name = ?", (db, name)).fetchone()
        if row is None:
            self._require_db(con, db)
            raise not_found(f"Table {name} not found.")
        return json.loads(row[0])

    def op_CreateTable(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = _name(p, "DatabaseName")
        table_input = _struct(p, "TableInput", required=True)
        doc = self._table_doc(db, table_input, p.get("CatalogId") or ACCOUNT)
        now = _now()
        doc.update(CreateTime=now, UpdateTime=now, VersionId="0")
        with self.store.transaction() as con:
            self._require_db(con, db)
            if con.execute("SELECT 1 FROM tables WHERE db = ? AND name = ?", (db, doc["Name"])).fetchone():
                raise already_exists(f"Table already exists: {doc['Name']}")
            con.execute(
                "INSERT INTO tables (db, name, doc) VALUES (?, ?, ?)", (db, doc["Name"], json.dumps(doc))
            )
        return {}

    def op_GetTable(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "Name")
        with self.store.reading() as con:
            return {"Table": self._require_table(con, db, name)}

    def op_GetTables(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = _name(p, "DatabaseName")
        offset, limit = _paging(p, 100)
        pattern = _name_pattern(p.get("Expression"))
        with self.store.reading() as con:
            self._require_db(con, db)
            rows = con.execute("SELECT name, doc FROM tables WHERE db = ? ORDER BY name", (db,)).fetchall()
        docs = [json.loads(doc) for name, doc in rows if pattern is None or pattern.fullmatch(name)]
        return _page("TableList", docs[offset : offset + limit + 1], offset, limit)

    def op_UpdateTable(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = _name(p, "DatabaseName")
        table_input = _struct(p, "TableInput", required=True)
        with self.store.transaction() as con:
            old = self._require_table(con, db, _name(table_input, "Name", "TableInput.Name"))
            doc = self._table_doc(db, table_input, old["CatalogId"])
            doc.update(
                CreateTime=old["CreateTime"], UpdateTime=_now(), VersionId=str(int(old["VersionId"]) + 1)
            )
            con.execute(
                "UPDATE tables SET doc = ? WHERE db = ? AND name = ?", (json.dumps(doc), db, doc["Name"])
            )
        return {}

    def op_DeleteTable(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "Name")
        with self.store.transaction() as con:
            self._require_table(con, db, name)
            con.execute("DELETE FROM tables WHERE db = ? AND name = ?", (db, name))
            con.execute("DELETE FROM partitions WHERE db = ? AND tbl = ?", (db, name))
        return {}

    def op_BatchDeleteTable(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db = _name(p, "DatabaseName")
        names = _list(p, "TablesToDelete", 100)
        errors = []
        with self.store.transaction() as con:
            self._require_db(con, db)
            for raw in names:
                name = str(raw).lower()
                if con.execute("DELETE FROM tables WHERE db = ? AND name = ?", (db, name)).rowcount == 0:
                    errors.append(
                        {
                            "TableName": raw,
                            "ErrorDetail": {
                                "ErrorCode": "EntityNotFoundException",
                                "ErrorMessage": f"Table {name} not found.",
                            },
                        }
                    )
                con.execute("DELETE FROM partitions WHERE db = ? AND tbl = ?", (db, name))
        return {"Errors": errors} if errors else {}

    # -- partitions ------

    def _partition_doc(self, table: dict[str, Any], part_input: Any, catalog_id: str) -> dict[str, Any]:
        if not isinstance(part_input, dict):
            raise invalid("PartitionInput must be a structure")
        values = _values(part_input.get("Values"), table)
        return {
            **_pick(part_input, _PARTITION_FIELDS),
            "Values": values,
            "DatabaseName": table["DatabaseName"],
            "TableName": table["Name"],
            "CreationTime": _now(),
            "CatalogId": catalog_id,
        }

    def op_CreatePartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        part_input = _struct(p, "PartitionInput", required=True)
        with self.store.transaction() as con:
            table = self._require_table(con, db, name)
            doc = self._partition_doc(table, part_input, p.get("CatalogId") or ACCOUNT)
            try:
                con.execute(
                    "INSERT INTO partitions (db, tbl, vkey, doc) VALUES (?, ?, ?, ?)",
                    (db, name, values_key(doc["Values"]), json.dumps(doc)),
                )
            except sqlite3.IntegrityError:  # the UNIQUE (db, tbl, vkey) constraint
                raise already_exists("Partition already exists.") from None
        return {}

    def op_BatchCreatePartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        inputs = _list(p, "PartitionInputList", MAX_BATCH_CREATE)
        errors = []
        with self.store.transaction() as con:
            table = self._require_table(con, db, name)
            docs = [self._partition_doc(table, item, p.get("CatalogId") or ACCOUNT) for item in inputs]
            for doc in docs:
                # Per-entry errors, as Glue answers: the other entries are still created.
                cursor = con.execute(
                    "INSERT INTO partitions (db, tbl, vkey, doc) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (db, name, values_key(doc["Values"]), json.dumps(doc)),
                )
                if cursor.rowcount == 0:
                    errors.append(
                        {
                            "PartitionValues": doc["Values"],
                            "ErrorDetail": {
                                "ErrorCode": "AlreadyExistsException",
                                "ErrorMessage": "Partition already exists.",
                            },
                        }
                    )
        return {"Errors": errors} if errors else {}

    def op_GetPartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        with self.store.reading() as con:
            table = self._require_table(con, db, name)
            values = _values(p.get("PartitionValues"), table, "PartitionValues")
            row = con.execute(
                "SELECT doc FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?",
                (db, name, values_key(values)),
            ).fetchone()
        if row is None:
            raise not_found("Cannot find partition.")
        return {"Partition": json.loads(row[0])}

    def op_GetPartitions(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        offset, limit = _paging(p, 1000)
        found = self.store.table_with_partitions(db, name)
        if found is None:
            with self.store.reading() as con:
                self._require_table(con, db, name)  # raises the right error
        table, parts = found  # type: ignore[misc]
        expression = p.get("Expression")
        if expression:
            if not isinstance(expression, str):
                raise invalid("Expression must be a string")
            keys = [(k["Name"], k.get("Type", "string")) for k in table.get("PartitionKeys", [])]
            predicate = compile_expression(expression, keys)
            parts = [part for part in parts if predicate(part["Values"])]
        if p.get("ExcludeColumnSchema"):
            for part in parts:
                part.get("StorageDescriptor", {}).pop("Columns", None)
        return _page("Partitions", parts[offset : offset + limit + 1], offset, limit)

    def op_BatchGetPartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        wanted = _list(p, "PartitionsToGet", MAX_BATCH_GET)
        out = []
        with self.store.reading() as con:
            table = self._require_table(con, db, name)
            for item in wanted:
                values = _values(item.get("Values") if isinstance(item, dict) else None, table)
                row = con.execute(
                    "SELECT doc FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?",
                    (db, name, values_key(values)),
                ).fetchone()
                if row is not None:  # missing partitions are left out, as Glue does
                    out.append(json.loads(row[0]))
        return {"Partitions": out, "UnprocessedKeys": []}

    def op_UpdatePartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        part_input = _struct(p, "PartitionInput", required=True)
        with self.store.transaction() as con:
            table = self._require_table(con, db, name)
            old_values = _values(p.get("PartitionValueList"), table, "PartitionValueList")
            row = con.execute(
                "SELECT id, doc FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?",
                (db, name, values_key(old_values)),
            ).fetchone()
            if row is None:
                raise not_found("Cannot find partition.")
            old = json.loads(row[1])
            doc = self._partition_doc(table, {"Values": old_values, **part_input}, old["CatalogId"])
            doc["CreationTime"] = old["CreationTime"]
            new_key = values_key(doc["Values"])
            if (
                new_key != values_key(old_values)
                and con.execute(
                    "SELECT 1 FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?", (db, name, new_key)
                ).fetchone()
            ):
                raise already_exists("Partition already exists.")
            con.execute(
                "UPDATE partitions SET vkey = ?, doc = ? WHERE id = ?", (new_key, json.dumps(doc), row[0])
            )
        return {}

    def op_DeletePartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        with self.store.transaction() as con:
            table = self._require_table(con, db, name)
            values = _values(p.get("PartitionValues"), table, "PartitionValues")
            if (
                con.execute(
                    "DELETE FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?",
                    (db, name, values_key(values)),
                ).rowcount
                == 0
            ):
                raise not_found("Cannot find partition.")
        return {}

    def op_BatchDeletePartition(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        db, name = _name(p, "DatabaseName"), _name(p, "TableName")
        items = _list(p, "PartitionsToDelete", MAX_BATCH_DELETE)
        errors = []
        with self.store.transaction() as con:
            table = self._require_table(con, db, name)
            for item in items:
                values = _values(item.get("Values") if isinstance(item, dict) else None, table)
                if (
                    con.execute(
                        "DELETE FROM partitions WHERE db = ? AND tbl = ? AND vkey = ?",
                        (db, name, values_key(values)),
                    ).rowcount
                    == 0
                ):
                    errors.append(
                        {
                            "PartitionValues": values,
                            "ErrorDetail": {
                                "ErrorCode": "EntityNotFoundException",
                                "ErrorMessage": "Partition not found",
                            },
                        }
                    )
        return {"Errors": errors} if errors else {}


# -- request validation ------


def _now() -> float:
    return round(time.time(), 3)


def _name(params: dict[str, Any], key: str, label: str | None = None) -> str:
    """A database or table name: required, 1-255 characters, single line; stored lower-case as Glue does."""
    value = params.get(key)
    label = label or key
    if not isinstance(value, str) or not value:
        raise invalid(f"{label} is required and must be a non-empty string")
    if len(value) > _NAME_MAX or _BAD_NAME.search(value):
        raise invalid(
            f"1 validation error detected: Value '{value[:80]}' at '{label}' failed to satisfy "
            f"constraint: Member must have length less than or equal to {_NAME_MAX} and be a single line"
        )
    return value.lower()


def _struct(params: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    value = params.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{key} is required and must be a structure")
    return value


def _list(params: dict[str, Any], key: str, maximum: int) -> list[Any]:
    value = params.get(key)
    if not isinstance(value, list):
        raise invalid(f"{key} is required and must be a list")
    if len(value) > maximum:
        raise invalid(
            f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {maximum}"
        )
    return value


def _values(values: Any, table: dict[str, Any], label: str = "Values") -> list[str]:
    """Partition values: one string per partition key of the table."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise invalid(f"{label} must be a list of strings")
    keys = table.get("PartitionKeys", [])
    if len(values) != len(keys):
        raise invalid(
            f"The number of partition keys do not match the number of partition values: table "
            f"{table['Name']} has {len(keys)} partition key(s), got {len(values)} value(s)"
        )
    return values


def _pick(source: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: source[k] for k in fields if source.get(k) is not None}


def _paging(params: dict[str, Any], maximum: int) -> tuple[int, int]:
    """``(offset, limit)`` from NextToken and MaxResults (1..maximum, default maximum)."""
    limit = params.get("MaxResults", maximum)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise invalid(f"MaxResults must be between 1 and {maximum}")
    token = params.get("NextToken")
    if not token:
        return 0, limit
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid("Invalid NextToken") from None
    if offset < 0:
        raise invalid("Invalid NextToken")
    return offset, limit


def _page(key: str, rows: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    """``rows`` holds up to ``limit + 1`` items from ``offset``: the extra one says there is a next page."""
    out: dict[str, Any] = {key: rows[:limit]}
    if len(rows) > limit:
        out["NextToken"] = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return out


def _name_pattern(expression: Any) -> re.Pattern[str] | None:
    """GetTables' ``Expression``: a regular expression on names where a bare ``*`` means "anything"."""
    if not expression:
        return None
    if not isinstance(expression, str) or len(expression) > 2048:
        raise invalid("Expression must be a string of at most 2048 characters")
    # 'ord*' (Glue's documented example) means any name starting with ord; '.*' stays a regex.
    pattern = re.sub(r"(?<!\.)\*", ".*", expression.lower())
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise invalid(f"Invalid Expression {expression!r}: {exc}") from None
