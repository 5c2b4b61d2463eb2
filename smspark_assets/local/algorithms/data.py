"""Reading training channels and request bodies: CSV (label first) and libsvm, parsed without per-row Python.

Conventions, the same for training and for inference:

* **CSV** (``text/csv``): no header; in a training channel the first column is the label (and, with
  ``csv_weights``, the second column the instance weight); an empty field is a missing value (NaN). Request
  bodies carry features only.
* **libsvm** (``text/libsvm``, ``text/x-libsvm``): ``<label>[:<weight>] <index>:<value> ...`` with **1-based**
  indices, as Spark's libsvm writer and the SageMaker-Spark ``LibSVMRequestRowSerializer`` write them. Index
  ``k`` is feature column ``k - 1``, so a model trained on libsvm answers CSV requests whose ``k``-th column
  is that feature, and vice versa. Index 0 is refused (it would mean a 0-based file). Absent entries are
  *missing* (not zero), as in xgboost's own libsvm reader. In request bodies the label token is optional and
  ignored: every ``index:value`` token is a feature. ``qid:<n>`` after the label gives the query id of a
  ranking row (rows of one query adjacent, ids non-decreasing), as in xgboost's libsvm reader.

A channel is every regular file under its folder (recursively, sorted by path), skipping Spark's markers
(``_SUCCESS``, ``_committed_*``, ``.crc`` files: names starting with ``_`` or ``.``); ``.gz`` files are
decompressed.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import ChannelError
# The container's content-type spellings are part of its contract; re-exported for the readers here.
from smspark_assets.sagemaker.algorithms.xgboost import normalize_content_type

__all__ = [
    "Dataset",
    "channel_files",
    "normalize_content_type",
    "parse_csv",
    "parse_libsvm",
    "read_csv_channel",
    "read_libsvm_channel",
    "read_bytes",
    "DataFormatError",
]


class DataFormatError(ValueError):
    """Bytes that are not valid CSV / libsvm; the message says where and what is allowed."""


@dataclass
class Dataset:
    """Features (dense float32 matrix with NaN for missing, or CSR), labels and optional weights."""

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None
    qid: np.ndarray | None = None  # query ids (libsvm "qid:<n>"), for the rank:* objectives

    @property
    def num_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])


def channel_files(folder: Path) -> list[Path]:
    """The data files of a channel folder, sorted; Spark's marker files are skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


# ---------------------------------------------------------------------------------------------- CSV


def _first_line(data: bytes) -> bytes:
    for line in data.split(b"\n", 64)[:64]:
        if line.strip():
            return line
    return b""


def parse_csv(data: bytes, *, source: str = "body") -> np.ndarray:
    """All columns of headerless numeric CSV as a float32 matrix (empty fields -> NaN).

    Uses Arrow's multi-threaded C++ reader; a row with a different number of fields, or a field that is not
    a number, raises :class:`DataFormatError` naming the problem.
    """
    first = _first_line(data)
    if not first:
        return np.empty((0, 0), dtype=np.float32)
    num_columns = first.count(b",") + 1
    names = [f"c{i}" for i in range(num_columns)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.float32() for n in names}, null_values=[""], strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFormatError(
            f"{source}: not numeric CSV with {num_columns} columns per row (as in its first row): {exc}. "
            "Expected comma-separated numbers, no header, empty field = missing"
        ) from None
    out = np.empty((table.num_rows, num_columns), dtype=np.float32)
    for i, column in enumerate(table.columns):
        out[:, i] = column.to_numpy()  # nulls become NaN for floating-point columns
    return out


def read_csv_channel(folder: Path, *, csv_weights: bool = False, channel: str = "train") -> Dataset:
    """A training channel of label-first CSV files (optionally label, weight, features)."""
    files = channel_files(folder)
    if not files:
        raise ChannelError(f"channel {channel!r} has no data files in {folder.name}/")
    parts: list[np.ndarray] = []
    for path in files:
        try:
            matrix = parse_csv(read_bytes(path), source=f"channel {channel!r} file {path.name}")
        except DataFormatError as exc:
            raise ChannelError(str(exc)) from None
        if matrix.size == 0:
            continue
        if parts and matrix.shape[1] != parts[0].shape[1]:
            raise ChannelError(
                f"channel {channel!r} file {path.name} has {matrix.shape[1]} columns, the files before it "
                f"{parts[0].shape[1]}; all files of a channel must have the same columns"
            )
        parts.append(matrix)
    if not parts:
        raise ChannelError(f"channel {channel!r} has no rows (its {len(files)} file(s) are empty)")
    data = np.concatenate(parts) if len(parts) > 1 else parts[0]
    needed = 3 if csv_weights else 2
    if data.shape[1] < needed:
        what = "label, weight and at least one feature" if csv_weights else "label and at least one feature"
        raise ChannelError(f"channel {channel!r}: CSV rows have {data.shape[1]} column(s); expected {what}")
    labels = data[:, 0]
    if np.isnan(labels).any():
        row = int(np.flatnonzero(np.isnan(labels))[0])
        raise ChannelError(
            f"channel {channel!r}: row {row} has no label (the first CSV column must be a number)"
        )
    weights = data[:, 1].copy() if csv_weights else None
    if weights is not None and (np.isnan(weights).any() or (weights < 0).any()):
        raise ChannelError(f"channel {channel!r}: with csv_weights=1 the second column must be a weight >= 0")
    start = 2 if csv_weights else 1
    return Dataset(features=np.ascontiguousarray(data[:, start:]), labels=labels.copy(), weights=weights)


# ---------------------------------------------------------------------------------------------- libsvm

_SPACE, _TAB, _CR, _NL, _COLON = 32, 9, 13, 10, 58


_SEPARATOR = np.zeros(256, dtype=bool)
_SEPARATOR[[_SPACE, _TAB, _CR, _NL, _COLON]] = True


def _parse_numbers(chars: np.ndarray, lengths: np.ndarray, source: str) -> np.ndarray:
    """Parse tokens stored back to back in ``chars`` (token ``i`` is ``lengths[i]`` bytes) as float64.

    The bytes become an Arrow string array without copying per token; Arrow's string-to-double cast
    (fast_float) parses them all in C++.
    """
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    strings = pa.LargeStringArray.from_buffers(lengths.size, pa.py_buffer(offsets), pa.py_buffer(chars))
    try:
        return pc.cast(strings, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFormatError(
            f"{source}: not libsvm (<label>[:<weight>] <index>:<value> ... with numbers only): {exc}"
        ) from None


def _line_number(raw: np.ndarray, position: int) -> int:
    return int(np.count_nonzero(raw[:position] == _NL)) + 1


def parse_libsvm(
    data: bytes, *, labeled: bool, num_features: int | None = None, source: str = "body"
) -> Dataset:
    """Parse libsvm text (1-based indices) into a CSR matrix; labels/weights when ``labeled``.

    Fully vectorized: token boundaries come from NumPy passes over the bytes (a lookup table, one diff),
    and all numbers are parsed in one Arrow cast. ``num_features`` widens the matrix (requests narrower
    than the model).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0 or raw[-1] != _NL:
        raw = np.concatenate([raw, np.array([_NL], dtype=np.uint8)])
    is_tok = ~_SEPARATOR[raw]
    # +1 where a token starts, -1 just after it ends (raw ends with "\n", so every token ends inside).
    edges = np.diff(is_tok.view(np.int8), prepend=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    empty = Dataset(
        features=sp.csr_matrix((0, num_features or 0), dtype=np.float32),
        labels=np.empty(0, np.float32) if labeled else None,
    )
    if starts.size == 0:
        if np.any(raw == _COLON):
            raise DataFormatError(f"{source}: a ':' must join two numbers (index:value)")
        return empty
    followed = raw[ends] == _COLON
    preceded = np.zeros(starts.size, dtype=bool)
    preceded[starts > 0] = raw[starts[starts > 0] - 1] == _COLON
    # Every ':' must sit between two tokens: count them against the tokens that touch one.
    colons = int(np.count_nonzero(raw == _COLON))
    bound = followed[:-1] & preceded[1:] & (ends[:-1] + 1 == starts[1:])
    if colons != int(np.count_nonzero(bound)):
        dangling = np.flatnonzero(followed[:-1] & ~bound)
        at = int(ends[dangling[0]]) if dangling.size else int(np.flatnonzero(raw == _COLON)[0])
        raise DataFormatError(
            f"{source}: line {_line_number(raw, at)}: a ':' must join two numbers (index:value)"
        )
    if (followed & preceded).any():
        bad = int(np.flatnonzero(followed & preceded)[0])
        raise DataFormatError(
            f"{source}: line {_line_number(raw, int(starts[bad]))}: "
            "a token with two ':' (expected index:value)"
        )
    newlines = np.flatnonzero(raw == _NL)
    line_of = np.searchsorted(newlines, starts)  # newlines before each token = its line number
    first = np.concatenate([[True], line_of[1:] != line_of[:-1]])
    record = np.cumsum(first) - 1
    num_records = int(record[-1]) + 1

    # Ranking files carry "qid:<n>" after the label; the key is the only non-numeric token allowed.
    short = (ends - starts == 3) & followed
    is_qid_key = np.zeros(starts.size, dtype=bool)
    if short.any():
        at = starts[short]
        is_qid_key[short] = (raw[at] == ord("q")) & (raw[at + 1] == ord("i")) & (raw[at + 2] == ord("d"))
    is_qid_value = np.concatenate([[False], is_qid_key[:-1]]) & preceded

    # All tokens back to back, parsed at once; the "qid" keys become "000" (same length) to stay numeric.
    if is_qid_key.any():
        raw = raw.copy()
        at = starts[is_qid_key]
        raw[at] = raw[at + 1] = raw[at + 2] = ord("0")
    values = _parse_numbers(raw[is_tok], ends - starts, source)

    labels = weights = None
    if labeled:
        if (first & preceded).any():
            raise DataFormatError(f"{source}: a line starts with ':'")
        is_weight = np.concatenate([[False], first[:-1] & followed[:-1]]) & preceded
        is_index = followed & ~first
        loose = ~first & ~is_index & ~preceded
        labels = values[first].astype(np.float32)
        if is_weight.any():
            weights = np.ones(num_records, dtype=np.float32)
            weights[record[is_weight]] = values[is_weight]
        is_value = preceded & ~is_weight
    else:
        is_index = followed
        is_value = preceded
        loose = ~followed & ~preceded & ~first
    qid = None
    if is_qid_key.any():
        is_index = is_index & ~is_qid_key
        is_value = is_value & ~is_qid_value
        if (
            np.count_nonzero(is_qid_value) != num_records
            or (record[is_qid_value] != np.arange(num_records)).any()
        ):
            raise DataFormatError(f"{source}: when one line has qid:<n>, every line needs exactly one qid")
        qid = values[is_qid_value].astype(np.int64)
        if (np.diff(qid) < 0).any():
            raise DataFormatError(f"{source}: qid values must be grouped in non-decreasing order")
    if loose.any():
        bad = int(np.flatnonzero(loose)[0])
        raise DataFormatError(
            f"{source}: line {int(line_of[bad]) + 1}: "
            f"token {data[starts[bad] : ends[bad]][:40]!r} is not index:value"
        )
    raw_index = values[is_index]
    index = raw_index.astype(np.int64)
    if index.size and ((index != raw_index).any() or index.min() < 1):
        bad = int(np.flatnonzero((index != raw_index) | (index < 1))[0])
        raise DataFormatError(
            f"{source}: libsvm index {float(raw_index[bad]):g} is not allowed: "
            "indices are integers >= 1 (1-based)"
        )
    rows = record[is_index]
    counts = np.bincount(rows, minlength=num_records)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    width = int(index.max()) if index.size else 0
    if num_features is not None:
        if width > num_features:
            raise DataFormatError(
                f"{source}: libsvm index {width} is beyond the model's "
                f"{num_features} features (1..{num_features})"
            )
        width = num_features
    matrix = sp.csr_matrix(
        (values[is_value].astype(np.float32), index - 1, indptr), shape=(num_records, width)
    )
    return Dataset(features=matrix, labels=labels, weights=weights, qid=qid)


def _widen(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    if matrix.shape[1] == width:
        return matrix
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width))


def read_libsvm_channel(folder: Path, *, channel: str = "train") -> Dataset:
    """A training channel of libsvm files (all parts, in path order) as one CSR dataset."""
    files = channel_files(folder)
    if not files:
        raise ChannelError(f"channel {channel!r} has no data files in {folder.name}/")
    parts: list[Dataset] = []
    for path in files:
        try:
            part = parse_libsvm(
                read_bytes(path), labeled=True, source=f"channel {channel!r} file {path.name}"
            )
        except DataFormatError as exc:
            raise ChannelError(str(exc)) from None
        if part.num_rows:
            parts.append(part)
    if not parts:
        raise ChannelError(f"channel {channel!r} has no rows (its {len(files)} file(s) are empty)")
    width = max(p.num_features for p in parts)
    features = sp.vstack([_widen(p.features, width) for p in parts], format="csr")
    labels = np.concatenate([p.labels for p in parts])  # type: ignore[misc]
    qid = None
    if any(p.qid is not None for p in parts):
        if not all(p.qid is not None for p in parts):
            raise ChannelError(f"channel {channel!r}: some files have qid:<n> tokens and others do not")
        qid = np.concatenate([p.qid for p in parts])  # type: ignore[misc]
        if (np.diff(qid) < 0).any():
            raise ChannelError(
                f"channel {channel!r}: qid values must be non-decreasing across the files, in name order"
            )
    weights = None
    if any(p.weights is not None for p in parts):
        weights = np.concatenate(
            [p.weights if p.weights is not None else np.ones(p.num_rows, np.float32) for p in parts]
        )
    return Dataset(features=features, labels=labels, weights=weights, qid=qid)
