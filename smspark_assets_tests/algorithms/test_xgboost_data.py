"""Channel and request parsing for the local XGBoost algorithm: CSV and libsvm, round trips and refusals."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smspark_assets.local.algorithms.base import ChannelError
from smspark_assets.local.algorithms.data import (
    DataFormatError,
    channel_files,
    normalize_content_type,
    parse_csv,
    parse_libsvm,
    read_csv_channel,
    read_libsvm_channel,
)
from smspark_assets.local.algorithms.xgboost_serving import format_rows


def to_libsvm(matrix: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> bytes:
    out = []
    for i, row in enumerate(matrix):
        head = repr(float(labels[i])) + (f":{float(weights[i])!r}" if weights is not None else "")
        out.append(" ".join([head] + [f"{j + 1}:{float(row[j])!r}" for j in np.flatnonzero(row)]))
    return ("\n".join(out) + "\n").encode()


matrices = st.integers(1, 12).flatmap(
    lambda d: st.lists(
        st.lists(
            st.one_of(st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False, width=32)), min_size=d, max_size=d
        ),
        min_size=1,
        max_size=25,
    )
)


@settings(max_examples=60, deadline=None)
@given(matrices, st.booleans())
def test_libsvm_round_trip(rows: list[list[float]], with_weights: bool) -> None:
    matrix = np.array(rows, dtype=np.float32)
    labels = np.arange(len(rows), dtype=np.float32) % 3
    weights = np.linspace(0.5, 2.0, len(rows)).astype(np.float32) if with_weights else None
    parsed = parse_libsvm(to_libsvm(matrix, labels, weights), labeled=True, num_features=matrix.shape[1])
    np.testing.assert_array_equal(parsed.features.toarray(), matrix)
    np.testing.assert_array_equal(parsed.labels, labels)
    if with_weights:
        np.testing.assert_array_equal(parsed.weights, weights)
    else:
        assert parsed.weights is None


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_csv_round_trip_and_response_formatting(rows: list[list[float]]) -> None:
    matrix = np.array(rows, dtype=np.float32)
    text = "".join(",".join(repr(float(v)) for v in row) + "\r\n" for row in matrix).encode()
    np.testing.assert_array_equal(parse_csv(text), matrix)
    # The vectorized response writer gives back the same numbers, one row per line.
    rendered = format_rows(matrix, trailer=b"\n")
    assert rendered.count(b"\n") == len(matrix)
    np.testing.assert_array_equal(parse_csv(rendered), matrix)
    column = matrix[:, 0]
    items = format_rows(column, row_prefix=b"[", row_suffix=b"]", row_sep=b"|").split(b"|")
    assert len(items) == len(column)
    assert all(item[:1] == b"[" and item[-1:] == b"]" for item in items)
    assert [np.float32(float(item[1:-1])) for item in items] == column.tolist()


def test_csv_missing_values_are_nan_and_spark_markers_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    (folder / "dt=2024-01-01").mkdir(parents=True)
    (folder / "part-00001.csv").write_text("1,4,,6\n")
    (folder / "part-00000.csv").write_text("0,1,2,3\n")
    (folder / "dt=2024-01-01" / "part-00000.csv.gz").write_bytes(gzip.compress(b"1,7,8,9\n"))
    for marker in ("_SUCCESS", ".part-00000.csv.crc", "_committed_123"):
        (folder / marker).write_text("not data")
    assert [p.name for p in channel_files(folder)] == [
        "part-00000.csv.gz",
        "part-00000.csv",
        "part-00001.csv",
    ]
    data = read_csv_channel(folder)
    np.testing.assert_array_equal(data.labels, [1, 0, 1])
    np.testing.assert_array_equal(data.features, [[7, 8, 9], [1, 2, 3], [4, np.nan, 6]])


def test_libsvm_qid_and_unlabeled_requests() -> None:
    ranked = parse_libsvm(b"2 qid:1 1:0.5\n0 qid:1 3:1\n1 qid:4 2:2\n", labeled=True)
    np.testing.assert_array_equal(ranked.qid, [1, 1, 4])
    np.testing.assert_array_equal(ranked.features.toarray(), [[0.5, 0, 0], [0, 0, 1], [0, 2, 0]])
    request = parse_libsvm(b"1:1 2:2\n0.0 3:3\n\n", labeled=False, num_features=4)
    np.testing.assert_array_equal(request.features.toarray(), [[1, 2, 0, 0], [0, 0, 3, 0]])
    with pytest.raises(DataFormatError, match="non-decreasing"):
        parse_libsvm(b"1 qid:2 1:1\n1 qid:1 1:1\n", labeled=True)
    with pytest.raises(DataFormatError, match="every line needs exactly one qid"):
        parse_libsvm(b"1 qid:2 1:1\n1 1:1\n", labeled=True)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"1 0:1\n", "1-based"),
        (b"1 2.5:1\n", "integers >= 1"),
        (b"1 1:abc\n", "numbers only"),
        (b"1 1::2\n", "must join two numbers"),
        (b"1 :2\n", "must join two numbers"),
        (b"1 1:2 3:\n", "must join two numbers"),
        (b"1 1:2:3\n", "two ':'"),
        (b"1 1:2 7\n", "not index:value"),
        (b"1 1,2:3\n", "numbers only"),
    ],
)
def test_libsvm_refusals_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        parse_libsvm(body, labeled=True)


def test_libsvm_request_wider_than_the_model_is_refused() -> None:
    with pytest.raises(DataFormatError, match="beyond the model's 3 features"):
        parse_libsvm(b"0 4:1\n", labeled=False, num_features=3)


def test_libsvm_channel_of_several_files(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "part-0").write_bytes(b"1 1:1\n")
    (folder / "part-1").write_bytes(b"0:3 4:2\n")
    data = read_libsvm_channel(folder)
    assert data.features.shape == (2, 4)
    np.testing.assert_array_equal(data.weights, [1, 3])
    (folder / "part-2").write_bytes(b"1 x:1\n")
    with pytest.raises(ChannelError, match="part-2"):
        read_libsvm_channel(folder)


def test_content_type_names() -> None:
    assert normalize_content_type("text/csv; label_size=1", "text/libsvm") == "text/csv"
    assert normalize_content_type(None, "text/libsvm") == "text/libsvm"
    assert normalize_content_type("text/x-libsvm", "x") == "text/libsvm"
    assert normalize_content_type("application/x-recordio-protobuf", "x") == "application/x-recordio-protobuf"
    assert normalize_content_type("parquet", "x") == "application/x-parquet"
    assert normalize_content_type("image/png", "text/csv") is None
