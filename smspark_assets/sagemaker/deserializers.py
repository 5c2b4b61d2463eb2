"""Response deserializers: an endpoint's answer for ``n`` records -> the columns the SageMaker-Spark SDK adds.

Every deserializer takes the whole response body and the number of records that were sent, and returns
``{column: array}`` with one entry per record, in request order. Scalar columns are float64 arrays of
shape ``(n,)``; vector columns are float64 arrays of shape ``(n, k)``. A body with a different number of
records than were sent raises :class:`ResponseMismatch` (never a silent misalignment).

Columns (``reference/sagemaker_contracts.md`` §1.9, §3.1):

=====================================  ===========================================================
K-means                                ``closest_cluster``, ``distance_to_cluster``
Linear Learner / FM, binary            ``score``, ``predicted_label``
Linear Learner, multiclass             ``score`` (vector, one value per class), ``predicted_label``
Linear Learner / FM, regressor         ``score``
PCA                                    ``projection`` (vector)
LDA                                    ``topic_mixture`` (vector)
XGBoost                                ``prediction`` (scalar; a vector for multi-output objectives
                                       such as ``multi:softprob``)
=====================================  ===========================================================

Unlike the Spark SDK, a one-element tensor stays a one-element vector where the column is a vector
(PCA with one component, LDA with one topic), and the XGBoost CSV reader understands multi-output rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from smspark_assets.sagemaker import recordio

__all__ = [
    "ResponseMismatch", "ResponseDeserializer", "ProtobufResponseDeserializer", "JSONResponseDeserializer",
    "JSONLinesResponseDeserializer", "XGBoostCSVDeserializer", "LibSVMResponseDeserializer",
    "deserializer_for",
    "algorithm_columns", "to_arrow_columns",
]

ColumnKind = Literal["scalar", "vector"]
Columns = dict[str, np.ndarray]


class ResponseMismatch(ValueError):
    """A response cannot be matched to its request (wrong number of records, missing field, bad body)."""


def _count_check(got: int, expected: int, what: str) -> None:
    if got != expected:
        raise ResponseMismatch(
            f"the endpoint answered {got} records in {what} for {expected} records sent; results are matched "
            "to inputs by position, so the batch cannot be used")


class ResponseDeserializer:
    """Base: ``accept`` content type, declared ``columns`` and ``deserialize(body, n_records)``."""

    accept: str = ""

    def __init__(self, columns: Mapping[str, ColumnKind]) -> None:
        for name, kind in columns.items():
            if kind not in ("scalar", "vector"):
                raise ValueError(f"column {name!r}: kind must be 'scalar' or 'vector', got {kind!r}")
        self.columns = dict(columns)

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        raise NotImplementedError


class ProtobufResponseDeserializer(ResponseDeserializer):
    """``application/x-recordio-protobuf`` answers: each column is read from ``Record.label[key]``.

    ``keys`` maps column names to label keys (default: the same name). Any tensor type is accepted (the
    Spark SDK only read float32); sparse tensors are densified with their shape.
    """

    accept = recordio.CONTENT_TYPE

    def __init__(self, columns: Mapping[str, ColumnKind], keys: Mapping[str, str] | None = None) -> None:
        super().__init__(columns)
        self.keys = {c: (keys or {}).get(c, c) for c in self.columns}

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        dec = recordio.decode(body)
        _count_check(dec.n_records, n_records, "recordIO-protobuf")
        out: Columns = {}
        for column, kind in self.columns.items():
            key = self.keys[column]
            if key not in dec.label:
                raise ResponseMismatch(f"the response records have no label {key!r} (for column {column!r}); "
                                       f"label keys present: {sorted(dec.label)}")
            tensor = dec.label[key]
            missing = ~tensor.present
            if missing.any():
                first = int(np.flatnonzero(missing)[0])
                raise ResponseMismatch(f"response record {first} has no label {key!r}")
            if kind == "scalar":
                out[column] = tensor.scalars()
            else:
                out[column] = tensor.to_dense().astype(np.float64, copy=False)
        return out


def _column_from_objects(objs: list, field: str, kind: ColumnKind, where: str) -> np.ndarray:
    try:
        values = [o[field] for o in objs]
    except (KeyError, TypeError):
        bad = next(i for i, o in enumerate(objs) if not isinstance(o, dict) or field not in o)
        raise ResponseMismatch(f"{where}: prediction {bad} has no field {field!r}") from None
    if kind == "scalar":
        if any(isinstance(v, list) for v in values):
            # A one-element list is still one value (some containers always answer lists).
            if all(isinstance(v, list) and len(v) == 1 for v in values):
                values = [v[0] for v in values]
            else:
                raise ResponseMismatch(f"{where}: field {field!r} holds lists where one value was expected")
        return np.asarray(values, dtype=np.float64)
    rows = [v if isinstance(v, list) else [v] for v in values]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ResponseMismatch(f"{where}: field {field!r} has vectors of different lengths {sorted(widths)}")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), widths.pop() if rows else 0)


class JSONResponseDeserializer(ResponseDeserializer):
    """``application/json`` answers: ``{"predictions": [{...}, ...]}`` (PCA: ``{"projections": [...]}``)."""

    accept = "application/json"

    def __init__(self, columns: Mapping[str, ColumnKind], top_key: str = "predictions",
                 fields: Mapping[str, str] | None = None) -> None:
        super().__init__(columns)
        self.top_key = top_key
        self.fields = {c: (fields or {}).get(c, c) for c in self.columns}

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ResponseMismatch(f"the response is not JSON: {exc}") from None
        if not isinstance(doc, dict) or self.top_key not in doc or not isinstance(doc[self.top_key], list):
            raise ResponseMismatch(f"the JSON response has no list under {self.top_key!r}")
        objs = doc[self.top_key]
        _count_check(len(objs), n_records, "JSON")
        return {c: _column_from_objects(objs, self.fields[c], k, "JSON response")
                for c, k in self.columns.items()}


class JSONLinesResponseDeserializer(JSONResponseDeserializer):
    """``application/jsonlines`` answers: one prediction object per line."""

    accept = "application/jsonlines"

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        lines = [ln for ln in bytes(body).decode("utf-8").splitlines() if ln.strip()]
        try:
            objs = [json.loads(ln) for ln in lines]
        except ValueError as exc:
            raise ResponseMismatch(f"a response line is not JSON: {exc}") from None
        _count_check(len(objs), n_records, "JSON lines")
        return {c: _column_from_objects(objs, self.fields[c], k, "JSON lines response")
                for c, k in self.columns.items()}


class XGBoostCSVDeserializer(ResponseDeserializer):
    """``text/csv`` answers of XGBoost: one prediction per record, or ``output_dim`` values per record.

    Both layouts the containers use are read: one line per record (values of a multi-output record
    comma-separated on its line), or everything comma-joined on one line (the legacy real-time answer),
    in which case the values are split evenly across the records. With ``output_dim`` unset, a record's
    width is inferred; the ``prediction`` column is a vector as soon as a record has more than one value
    (``multi:softprob``), otherwise a scalar.
    """

    accept = "text/csv"

    def __init__(self, column: str = "prediction", output_dim: int | None = None) -> None:
        super().__init__({column: "scalar" if output_dim in (None, 1) else "vector"})
        self.column = column
        self.output_dim = output_dim

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        values = _csv_lines_vectorized(bytes(body), n_records)
        if values is not None:
            return self._columns(values)
        text = bytes(body).decode("utf-8").strip()
        lines = [ln for ln in text.splitlines() if ln.strip()] if text else []
        try:
            if len(lines) == n_records:
                rows = [np.asarray(ln.split(","), dtype=np.float64) for ln in lines]
                widths = {r.size for r in rows}
                if len(widths) > 1:
                    raise ResponseMismatch(
                        f"CSV response lines have different numbers of values {sorted(widths)}")
                width = widths.pop() if rows else 1
                values = np.vstack(rows) if rows else np.empty((0, 1))
            elif len(lines) == 1:
                flat = np.asarray(lines[0].split(","), dtype=np.float64)
                if n_records == 0 or flat.size % n_records:
                    raise ResponseMismatch(f"the CSV response holds {flat.size} values, which cannot be "
                                           "split "
                                           f"evenly across {n_records} records")
                width = flat.size // n_records
                values = flat.reshape(n_records, width)
            else:
                _count_check(len(lines), n_records, "CSV lines")
                raise AssertionError("unreachable")
        except ValueError as exc:
            if isinstance(exc, ResponseMismatch):
                raise
            raise ResponseMismatch(f"the CSV response holds something that is not a number: {exc}") from None
        return self._columns(values)

    def _columns(self, values: np.ndarray) -> Columns:
        width = values.shape[1]
        if self.output_dim is not None and width != self.output_dim:
            raise ResponseMismatch(f"expected {self.output_dim} values per record, the response has {width}")
        if width == 1 and self.output_dim in (None, 1):
            return {self.column: values[:, 0].copy()}
        return {self.column: values}


def _csv_lines_vectorized(body: bytes, n_records: int) -> np.ndarray | None:
    """The ``(n_records, width)`` values of a well-formed one-record-per-line CSV answer, or ``None``.

    The one-line-per-record layout is what the local XGBoost server (and the container's batch answers)
    send; parsing it line by line in Python costs microseconds per record, more than the rest of the
    scoring path, so it is read by Arrow's CSV reader in one call. Anything this fast path does not take
    cleanly (one line, a different line count, ragged or non-numeric lines, odd whitespace) returns
    ``None`` and goes through the general reader, which gives the precise error.
    """
    raw = body.strip()
    if n_records < 2 or (b"\n" not in raw and b"\r" not in raw):
        return None
    # The width of every line is the width of the first; Arrow refuses lines with another width.
    first = raw.split(b"\n", 1)[0].split(b"\r", 1)[0]
    width = first.count(b",") + 1
    names = [f"v{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(raw),
            read_options=pacsv.ReadOptions(column_names=names),
            # No quoting and no null spellings: a cell is a number or the answer is not well-formed.
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in names}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows != n_records or table.num_columns != width:
        return None
    if width == 1:
        return table.column(0).to_numpy().reshape(n_records, 1)
    return np.column_stack([c.to_numpy() for c in table.columns])


class LibSVMResponseDeserializer(ResponseDeserializer):
    """``text/x-libsvm`` answers (``LibSVMResponseRowDeserializer``): ``label``, ``features`` of ``dim``."""

    accept = "text/x-libsvm"

    def __init__(self, dim: int, label_column: str = "label", features_column: str = "features",
                 index_base: int = 1) -> None:
        super().__init__({label_column: "scalar", features_column: "vector"})
        self.dim, self.index_base = dim, index_base
        self.label_column, self.features_column = label_column, features_column

    def deserialize(self, body: bytes, n_records: int) -> Columns:
        lines = [ln.split() for ln in bytes(body).decode("utf-8").splitlines() if ln.strip()]
        _count_check(len(lines), n_records, "libsvm lines")
        labels = np.asarray([float(t[0]) for t in lines], dtype=np.float64)
        feats = np.zeros((len(lines), self.dim), dtype=np.float64)
        for i, toks in enumerate(lines):
            for tok in toks[1:]:
                idx, _, val = tok.partition(":")
                j = int(idx) - self.index_base
                if not 0 <= j < self.dim:
                    raise ResponseMismatch(f"libsvm line {i}: index {idx} outside 1..{self.dim}")
                feats[i, j] = float(val)
        return {self.label_column: labels, self.features_column: feats}


# --------------------------------------------------------------------------------------------------
# Per-algorithm choices
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    columns: dict[str, ColumnKind]
    json_top_key: str = "predictions"


def algorithm_columns(algorithm: str, predictor_type: str | None = None) -> dict[str, ColumnKind]:
    """The output columns of a built-in algorithm (see the module docstring)."""
    return _spec(algorithm, predictor_type).columns


def _spec(algorithm: str, predictor_type: str | None) -> _Spec:
    algo = algorithm.lower()
    if algo == "kmeans":
        return _Spec({"closest_cluster": "scalar", "distance_to_cluster": "scalar"})
    if algo in ("linear-learner", "factorization-machines"):
        ptype = predictor_type or "binary_classifier"
        allowed = ("binary_classifier", "regressor")
        if algo == "linear-learner":
            allowed += ("multiclass_classifier",)
        if ptype not in allowed:
            raise ValueError(f"{algo}: predictor_type {ptype!r} is not one of {', '.join(allowed)}")
        if ptype == "regressor":
            return _Spec({"score": "scalar"})
        if ptype == "multiclass_classifier":
            return _Spec({"score": "vector", "predicted_label": "scalar"})
        return _Spec({"score": "scalar", "predicted_label": "scalar"})
    if algo == "pca":
        return _Spec({"projection": "vector"}, json_top_key="projections")
    if algo == "lda":
        return _Spec({"topic_mixture": "vector"})
    if algo == "xgboost":
        return _Spec({"prediction": "scalar"})
    raise ValueError(f"unknown built-in algorithm {algorithm!r}; allowed: kmeans, linear-learner, "
                     "factorization-machines, pca, lda, xgboost")


def deserializer_for(algorithm: str, accept: str | None = None, predictor_type: str | None = None,
                     output_dim: int | None = None) -> ResponseDeserializer:
    """The deserializer for a built-in algorithm's answers in ``accept`` (default: recordIO; XGBoost: CSV)."""
    spec = _spec(algorithm, predictor_type)
    algo = algorithm.lower()
    if accept is None:
        accept = "text/csv" if algo == "xgboost" else recordio.CONTENT_TYPE
    base = accept.split(";")[0].strip().lower()
    if algo == "xgboost":
        if base == "text/csv":
            return XGBoostCSVDeserializer("prediction", output_dim)
        kind: ColumnKind = "vector" if output_dim not in (None, 1) else "scalar"
        if base == "application/json":
            return JSONResponseDeserializer({"prediction": kind}, fields={"prediction": "score"})
        if base in ("application/jsonlines", "application/jsonl"):
            return JSONLinesResponseDeserializer({"prediction": kind}, fields={"prediction": "score"})
        if base == recordio.CONTENT_TYPE:
            return ProtobufResponseDeserializer({"prediction": kind}, keys={"prediction": "score"})
        raise ValueError(f"xgboost answers in text/csv, application/json, application/jsonlines or "
                         f"{recordio.CONTENT_TYPE}; got {accept!r}")
    if base == recordio.CONTENT_TYPE:
        return ProtobufResponseDeserializer(spec.columns)
    if base == "application/json":
        return JSONResponseDeserializer(spec.columns, top_key=spec.json_top_key)
    if base in ("application/jsonlines", "application/jsonl"):
        return JSONLinesResponseDeserializer(spec.columns)
    raise ValueError(f"{algo} answers in {recordio.CONTENT_TYPE}, application/json or application/jsonlines; "
                     f"got {accept!r}")


def to_arrow_columns(columns: Columns) -> dict[str, pa.Array]:
    """Result columns -> Arrow arrays for a ``mapInArrow`` output batch: scalars as ``double``, vectors as
    ``list<double>`` (Spark ``array<double>``), built from the flat values without a loop over rows."""
    out: dict[str, pa.Array] = {}
    for name, values in columns.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            out[name] = pa.array(values, type=pa.float64())
        else:
            n, k = values.shape
            offsets = pa.array(np.arange(n + 1, dtype=np.int32) * k)
            out[name] = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), type=pa.float64()))
    return out
