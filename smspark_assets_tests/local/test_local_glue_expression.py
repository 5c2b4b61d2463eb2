"""Glue's partition Expression language, evaluated in Python: each expression is checked against the same
predicate written by hand in Python over the same partitions (the expected sets never come from the
code under test)."""

from __future__ import annotations

import itertools
from typing import Callable

import pytest

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.glue_expression import compile_expression

pytestmark = pytest.mark.timeout(30)

KEYS = [("dt", "string"), ("region", "string"), ("hour", "int")]
PARTITIONS = [
    [f"2024-01-{day:02d}", region, str(hour)]
    for day, region, hour in itertools.product(range(1, 11), ["eu", "us", "ap-south"], [0, 5, 12, 23])
]

CASES: list[tuple[str, Callable[[str, str, int], bool]]] = [
    ("dt = '2024-01-03'", lambda dt, r, h: dt == "2024-01-03"),
    ("dt <> '2024-01-03'", lambda dt, r, h: dt != "2024-01-03"),
    ("dt >= '2024-01-09' AND region = 'eu'", lambda dt, r, h: dt >= "2024-01-09" and r == "eu"),
    ("dt < '2024-01-02' OR hour > 12", lambda dt, r, h: dt < "2024-01-02" or h > 12),
    ("NOT (region = 'us')", lambda dt, r, h: r != "us"),
    ("region IN ('eu', 'ap-south') AND hour <= 5", lambda dt, r, h: r in ("eu", "ap-south") and h <= 5),
    ("dt BETWEEN '2024-01-04' AND '2024-01-06'", lambda dt, r, h: "2024-01-04" <= dt <= "2024-01-06"),
    ("region LIKE 'a%'", lambda dt, r, h: r.startswith("a")),
    ("region LIKE '_s'", lambda dt, r, h: len(r) == 2 and r[1] == "s"),
    # hour is an int key: 12 > 5 numerically although '12' < '5' as text.
    ("hour > 5", lambda dt, r, h: h > 5),
    (
        "hour IN (0, 23) AND (dt = '2024-01-01' OR dt = '2024-01-10')",
        lambda dt, r, h: h in (0, 23) and dt in ("2024-01-01", "2024-01-10"),
    ),
    ("hour BETWEEN -1 AND 5", lambda dt, r, h: -1 <= h <= 5),
    ("'2024-01-05' < dt", lambda dt, r, h: dt > "2024-01-05"),
    ("DT = '2024-01-02' and Region = 'eu'", lambda dt, r, h: dt == "2024-01-02" and r == "eu"),
]


@pytest.mark.parametrize("expression,expected", CASES, ids=[c[0] for c in CASES])
def test_expression_selects_what_the_python_predicate_selects(expression: str, expected: Callable) -> None:
    predicate = compile_expression(expression, KEYS)
    got = [p for p in PARTITIONS if predicate(p)]
    want = [p for p in PARTITIONS if expected(p[0], p[1], int(p[2]))]
    assert got == want
    assert want, "each case should select something"


@pytest.mark.parametrize(
    "expression",
    [
        "dt = ",  # syntax error
        "nope = 'x'",  # not a partition key
        "dt = upper('x')",  # functions are not part of the language
        "dt IN (SELECT 1)",  # subqueries neither
        "dt = region",  # two columns
        "1 = 1; DROP TABLE x",  # two statements
        "hour > 'abc'",  # not a number for an int key
        "x" * 3000,  # longer than Glue's limit
    ],
)
def test_bad_expressions_are_invalid_input(expression: str) -> None:
    with pytest.raises(ApiError) as info:
        compile_expression(expression, KEYS)
    assert info.value.code == "InvalidInputException"
    assert info.value.status == 400
