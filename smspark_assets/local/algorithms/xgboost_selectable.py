"""The XGBoost container's *selectable inference content*: ``SAGEMAKER_INFERENCE_OUTPUT`` in the model's
``Environment`` (e.g. ``predicted_label,probabilities``) replaces ``score`` with the named keys.

Keys and their meaning per objective follow the container:

=================== ================================ ============================================
key                 binary:logistic / hinge           multi:softprob (softmax: like binary)
=================== ================================ ============================================
``predicted_label`` ``int(p > 0.5)`` (logitraw: > 0)  ``argmax``
``labels``          ``[0, 1]``                        ``[0, ..., num_class-1]``
``probability``     ``p``                             ``max``
``probabilities``   ``[1-p, p]``                      the class probabilities
``raw_score``       ``p``                             ``max``
``raw_scores``      ``[1-p, p]``                      the class scores
``predicted_score`` the prediction (meant for the regression objectives)
=================== ================================ ============================================

A key that does not apply to the objective gives ``NaN`` (the container logs a warning and does the same).
Bodies: JSON ``{"predictions": [{key: value, ...}, ...]}``, JSON lines, CSV (one row per record, keys in the
order given; list values quoted as ``"[a, b]"`` like Python's csv writer) and recordIO-protobuf (one float32
tensor per key in the record's label map). Built with Arrow string kernels: no per-record Python.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ALL_KEYS", "VALID_KEYS", "selected_keys", "selected_content", "encode_selected"]

ENV_VAR = "SAGEMAKER_INFERENCE_OUTPUT"
ALL_KEYS = (
    "predicted_label",
    "labels",
    "probability",
    "probabilities",
    "raw_score",
    "raw_scores",
    "predicted_score",
)
_CLASSIFY = ["predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"]
VALID_KEYS: dict[str, list[str]] = {
    "reg:squarederror": ["predicted_score"],
    "reg:logistic": ["predicted_score"],
    "reg:gamma": ["predicted_score"],
    "reg:tweedie": ["predicted_score"],
    "binary:logistic": _CLASSIFY,
    "binary:logitraw": ["predicted_label", "labels", "raw_score", "raw_scores"],
    "binary:hinge": _CLASSIFY,
    "multi:softmax": _CLASSIFY,
    "multi:softprob": _CLASSIFY,
}


def selected_keys(environment: Mapping[str, str]) -> list[str] | None:
    """The keys named by ``SAGEMAKER_INFERENCE_OUTPUT``, or ``None`` when selectable content is off."""
    raw = environment.get(ENV_VAR)
    if raw is None:
        return None
    keys = [k for k in raw.replace(" ", "").lower().split(",") if k]
    unknown = [k for k in keys if k not in ALL_KEYS]
    if unknown or not keys:
        raise ValueError(
            f"{ENV_VAR}={raw!r}: unknown key(s) {unknown or '(none given)'}; allowed: {', '.join(ALL_KEYS)}"
        )
    return keys


def selected_content(
    objective: str, num_class: int, predictions: np.ndarray, keys: list[str]
) -> dict[str, np.ndarray]:
    """Per key, an ``(n,)`` or ``(n, k)`` float64 array (NaN where the key does not apply)."""
    n = predictions.shape[0]
    p = predictions.astype(np.float64)
    nan = np.full(n, np.nan)
    two = np.column_stack([1.0 - p, p]) if p.ndim == 1 else p
    out: dict[str, np.ndarray] = {}
    for key in keys:
        if key == "predicted_label":
            if objective in ("binary:hinge", "multi:softmax"):
                value = p
            elif objective == "binary:logistic":
                value = (p > 0.5).astype(np.float64)
            elif objective == "binary:logitraw":
                value = (p > 0).astype(np.float64)
            elif objective == "multi:softprob":
                value = p.argmax(axis=1).astype(np.float64)
            else:
                value = nan
        elif key == "labels":
            if objective.startswith("binary:"):
                value = np.tile([0.0, 1.0], (n, 1))
            elif objective.startswith("multi:") and num_class:
                value = np.tile(np.arange(num_class, dtype=np.float64), (n, 1))
            else:
                value = nan
        elif key in ("probability", "raw_score"):
            allowed = ("binary:hinge", "binary:logistic", "multi:softmax") + (
                ("binary:logitraw",) if key == "raw_score" else ()
            )
            value = p.max(axis=1) if objective == "multi:softprob" else (p if objective in allowed else nan)
        elif key in ("probabilities", "raw_scores"):
            allowed = ("binary:hinge", "binary:logistic", "multi:softmax") + (
                ("binary:logitraw",) if key == "raw_scores" else ()
            )
            value = p if objective == "multi:softprob" else (two if objective in allowed else nan)
        else:  # predicted_score: the prediction itself, whatever the objective (as the container does)
            value = p
        out[key] = value
    return out


def _scalar_strings(values: np.ndarray, integral: bool) -> pa.Array:
    if integral and not np.isnan(values).any():
        return pc.cast(pa.array(values.astype(np.int64)), pa.string())
    # Arrow prints NaN as "nan"; the container's json.dumps writes NaN (keys that do not apply).
    return pc.replace_substring(pc.cast(pa.array(values), pa.string()), "nan", "NaN")


def _vector_strings(matrix: np.ndarray, integral: bool) -> pa.Array:
    n, k = matrix.shape
    flat = _scalar_strings(matrix.ravel(), integral)
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), flat)
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ", "), "]", "")


def _strings(key: str, value: np.ndarray) -> pa.Array:
    integral = key in ("predicted_label", "labels")
    return _vector_strings(value, integral) if value.ndim == 2 else _scalar_strings(value, integral)


def _join_all(strings: pa.Array, sep: str) -> bytes:
    whole = pa.ListArray.from_arrays(pa.array([0, len(strings)], type=pa.int32()), strings)
    return pc.binary_join(whole, sep)[0].as_py().encode()


def encode_selected(content: dict[str, np.ndarray], keys: list[str], accept: str) -> bytes:
    """Encode selected content in ``accept`` (json, jsonlines, csv or recordio-protobuf)."""
    if accept == "application/x-recordio-protobuf":
        from smspark_assets.sagemaker import recordio

        n = next(iter(content.values())).shape[0]
        return recordio.encode_records(
            n,
            label={k: recordio.Dense(np.asarray(v, dtype=np.float32), "float32") for k, v in content.items()},
        )
    if accept == "text/csv":
        columns = []
        for key in keys:
            text = _strings(key, content[key])
            columns.append(
                pc.binary_join_element_wise('"', text, '"', "") if content[key].ndim == 2 else text
            )
        rows = pc.binary_join_element_wise(*columns, ",") if len(columns) > 1 else columns[0]
        return _join_all(rows, "\n") + b"\n"
    pieces: list[pa.Array | str] = []
    for i, key in enumerate(keys):
        pieces += [("{" if i == 0 else ", ") + f'"{key}": ', _strings(key, content[key])]
    records = pc.binary_join_element_wise(*pieces, "}", "")
    if accept == "application/json":
        return b'{"predictions": [' + _join_all(records, ", ") + b"]}"
    if accept == "application/jsonlines":
        return _join_all(records, "\n") + b"\n"
    raise ValueError(f"cannot encode selected content as {accept}")
