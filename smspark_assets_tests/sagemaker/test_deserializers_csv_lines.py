"""XGBoost's one-line-per-record CSV answers: the vectorized reader agrees with the general one."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smspark_assets.sagemaker import deserializers
from smspark_assets.sagemaker.deserializers import ResponseMismatch, XGBoostCSVDeserializer


def _general(d: XGBoostCSVDeserializer, body: bytes, n: int):
    """The same deserializer with the vectorized path switched off (the line-by-line reader only)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(deserializers, "_csv_lines_vectorized", lambda body, n: None)
        return d.deserialize(body, n)


def _outcome(fn):
    try:
        return "ok", fn()
    except ResponseMismatch as exc:
        return "error", str(exc)


def _same(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
    else:
        assert a[1].keys() == b[1].keys()
        for k in a[1]:
            np.testing.assert_array_equal(a[1][k], b[1][k])
            assert a[1][k].shape == b[1][k].shape


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    width=st.integers(1, 4),
    newline=st.sampled_from(["\n", "\r\n"]),
    trailing=st.booleans(),
    blank_line=st.booleans(),
    output_dim=st.sampled_from([None, 1, 2]),
    seed=st.integers(0, 2**16),
)
def test_vectorized_reader_matches_the_general_one(n, width, newline, trailing, blank_line, output_dim, seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, width)) * 10.0 ** rng.integers(-5, 5, (n, width))
    values[rng.random((n, width)) < 0.05] = np.nan
    lines = [",".join(f"{v:.9g}" for v in row) for row in values]
    if blank_line and n > 1:
        lines.insert(1, "")
    body = (newline.join(lines) + (newline if trailing else "")).encode()
    d = XGBoostCSVDeserializer(output_dim=output_dim)
    fast = _outcome(lambda: d.deserialize(body, n))
    _same(fast, _outcome(lambda: _general(d, body, n)))
    if fast[0] == "ok" and output_dim in (None, 1) and width == 1:
        np.testing.assert_array_equal(fast[1]["prediction"], [float(f"{v:.9g}") for v in values[:, 0]])


@pytest.mark.parametrize("body,n", [
    (b"1\n2\n", 3),            # fewer lines than records
    (b"1\n2\n3\n4\n", 3),      # more lines than records
    (b"1,2\n3\n", 2),          # ragged
    (b"1\nx\n", 2),            # not a number
    (b"1\n\n", 2),             # one value for two records
    (b'"1"\n2\n', 2),          # quoted cell
    (b"1\n,\n", 2),            # empty cells
    (b"1\n \n2", 2),           # whitespace-only line (ignored by the general reader)
    (b" 1\n2 \n", 2),          # spaces around numbers
    (b"nan\ninf\n", 2),
    (b"0.5,0.5\n0.25,0.75\n", 2),
    (b"", 0),
    (b"", 2),
])
@pytest.mark.parametrize("output_dim", [None, 1])
def test_edge_cases_answer_as_the_general_reader(body, n, output_dim) -> None:
    d = XGBoostCSVDeserializer(output_dim=output_dim)
    _same(_outcome(lambda: d.deserialize(body, n)), _outcome(lambda: _general(d, body, n)))


def test_line_per_record_answers_are_read_without_a_loop_over_records() -> None:
    """10,000 predictions a line each: the vectorized reader is far faster than line by line."""
    n = 10_000
    values = np.random.default_rng(1).random(n)
    body = ("\n".join(f"{v:.9g}" for v in values) + "\n").encode()
    d = XGBoostCSVDeserializer(output_dim=1)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    fast = best(lambda: d.deserialize(body, n))
    slow = best(lambda: _general(d, body, n))
    np.testing.assert_array_equal(d.deserialize(body, n)["prediction"], [float(f"{v:.9g}") for v in values])
    assert fast * 3 < slow, (fast, slow)
