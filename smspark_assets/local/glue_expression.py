"""Glue's partition ``Expression`` (GetPartitions): parsed with sqlglot, evaluated in Python.

The expression is a SQL-like predicate over the table's partition keys (``dt >= '2024-01-09' AND
region IN ('eu', 'us')``). It is never handed to a SQL engine: sqlglot parses it into a tree, only the
node kinds Glue documents are accepted (comparisons, AND, OR, NOT, IN, BETWEEN, LIKE, parentheses,
string and number literals, partition-key names), and :func:`compile_expression` turns the tree into a
Python predicate over one partition's values. Anything else is an ``InvalidInputException``, as Glue
answers for an expression it cannot parse.

Comparisons follow the key's Glue type: integer keys compare as numbers, every other type (string,
date, timestamp, ...) compares the stored text, which orders ISO dates correctly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Callable, Sequence

import sqlglot
from sqlglot import exp

from smspark_assets.local.api_errors import ApiError

# Longer expressions are refused before parsing (Glue's own limit is 2048 characters).
MAX_EXPRESSION_CHARS = 2048
_INTEGER_TYPES = ("tinyint", "smallint", "int", "integer", "bigint")
_NUMERIC_TYPES = (*_INTEGER_TYPES, "float", "double", "decimal")

Predicate = Callable[[Sequence[str]], bool]


def invalid(message: str) -> ApiError:
    return ApiError("InvalidInputException", message)


def compile_expression(expression: str, keys: Sequence[tuple[str, str]]) -> Predicate:
    """A predicate over a partition's ``Values`` (in key order) for ``expression``.

    ``keys`` are the table's partition keys as ``(name, glue type)``. Raises ``InvalidInputException``
    for syntax Glue does not accept or names that are not partition keys.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise invalid(f"Expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = sqlglot.parse_one(expression, read="hive")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise invalid(f"Unsupported expression '{expression}': {_first_line(exc)}") from None
    if tree is None:
        raise invalid(f"Unsupported expression '{expression}'")
    index = {name.lower(): (position, glue_type.lower()) for position, (name, glue_type) in enumerate(keys)}
    return _Compiler(index, expression).node(tree)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Compiler:
    """Turns an accepted sqlglot tree into nested closures (evaluated once per partition)."""

    def __init__(self, keys: dict[str, tuple[int, str]], text: str) -> None:
        self.keys = keys
        self.text = text

    def fail(self, what: str) -> ApiError:
        return invalid(f"Unsupported expression '{self.text}': {what}")

    def node(self, node: exp.Expression) -> Predicate:
        if isinstance(node, exp.Paren):
            return self.node(node.this)
        if isinstance(node, exp.And):
            left, right = self.node(node.this), self.node(node.expression)
            return lambda values: left(values) and right(values)
        if isinstance(node, exp.Or):
            left, right = self.node(node.this), self.node(node.expression)
            return lambda values: left(values) or right(values)
        if isinstance(node, exp.Not):
            inner = self.node(node.this)
            return lambda values: not inner(values)
        if isinstance(node, (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)):
            return self.comparison(node)
        if isinstance(node, exp.In):
            if node.args.get("query") is not None or node.args.get("unnest") is not None:
                raise self.fail("IN takes a list of literals")
            position, convert = self.column(node.this)
            members = {convert(self.literal(item)) for item in node.expressions}
            return lambda values: convert(values[position]) in members
        if isinstance(node, exp.Between):
            position, convert = self.column(node.this)
            low, high = convert(self.literal(node.args["low"])), convert(self.literal(node.args["high"]))
            return lambda values: _compare(low, convert(values[position]), "<=") and _compare(
                convert(values[position]), high, "<="
            )
        if isinstance(node, exp.Like):
            if node.args.get("escape") is not None:
                raise self.fail("LIKE ... ESCAPE is not supported")
            position, _ = self.column(node.this)
            pattern = _like_regex(self.literal(node.expression))
            return lambda values: pattern.fullmatch(values[position]) is not None
        raise self.fail(f"{type(node).__name__.upper()} is not supported")

    def comparison(self, node: exp.Expression) -> Predicate:
        op = {exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}[type(node)]
        left, right = node.this, node.expression
        if isinstance(left, exp.Column):
            position, convert = self.column(left)
            constant = convert(self.literal(right))
            return lambda values: _compare(convert(values[position]), constant, op)
        if isinstance(right, exp.Column):  # '2024-01-01' < dt
            position, convert = self.column(right)
            constant = convert(self.literal(left))
            return lambda values: _compare(constant, convert(values[position]), op)
        raise self.fail("a comparison needs a partition key on one side")

    def column(self, node: exp.Expression) -> tuple[int, Callable[[str], object]]:
        if not isinstance(node, exp.Column) or node.table:
            raise self.fail(f"expected a partition key, got {node.sql()!r}")
        name = node.name.lower()
        if name not in self.keys:
            raise invalid(
                f"Unknown column '{node.name}' in expression '{self.text}': the partition keys are "
                f"{', '.join(self.keys) or '(none)'}"
            )
        position, glue_type = self.keys[name]
        base = glue_type.split("(")[0].strip()
        if base in _NUMERIC_TYPES:
            return position, self.number
        return position, str

    def number(self, text: str) -> Decimal:
        try:
            return Decimal(text.strip())
        except InvalidOperation:
            raise self.fail(f"{text!r} is not a number") from None

    def literal(self, node: exp.Expression) -> str:
        """The text of a string or number literal (negative numbers included)."""
        if isinstance(node, exp.Paren):
            return self.literal(node.this)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
            return "-" + node.this.name
        if isinstance(node, exp.Literal):
            return node.name
        raise self.fail(f"expected a string or number literal, got {node.sql()!r}")


def _compare(left: object, right: object, op: str) -> bool:
    if op == "=":
        return left == right
    if op == "<>":
        return left != right
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _like_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE: ``%`` any run, ``_`` one character, everything else literal."""
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)
