"""Request parsing and response encoding shared by the first-party algorithms' predictors.

Requests (DG "Common data formats for inference"):

* ``text/csv`` (``label_size=N`` drops N leading columns): one dense record per line;
* ``application/json``: ``{"instances": [{"features": [...]}, ...]}``, or instances of the form
  ``{"data": {"features": {"values": [...]}}}`` and sparse ``{"data": {"features": {"keys": [...],
  "shape": [d], "values": [...]}}}``; a single instance without ``instances`` is accepted too;
* ``application/jsonlines``: one such instance per line;
* ``application/x-recordio-protobuf``: Records with ``features["values"]`` (dense or sparse).

Responses carry one answer per input record, in order: ``application/json``
``{"<top_key>": [{...}, ...]}`` (``predictions``, or ``projections`` for PCA), ``application/jsonlines``
(one object per line), ``text/csv`` (one line per record, fields in the documented order, vector
fields expanded) and recordIO-protobuf (each output under ``Record.label[<name>]``, Float32).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import BadRequest, UnsupportedContentType
from smspark_assets.local.algorithms.common_io import CSV, JSON, JSONLINES, RECORDIO, parse_content_type

Features = np.ndarray | sp.csr_matrix


def _csv_matrix(body: bytes, label_size: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = body.strip()
    if not text:
        raise BadRequest("empty text/csv request: send one record per line")
    first = text.split(b"\n", 1)[0]
    ncols = first.count(b",") + 1
    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text),
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in names}),
        )
    except pa.ArrowInvalid as exc:
        raise BadRequest(f"text/csv request is not numeric rows of equal length: {exc}") from None
    if any(col.null_count for col in table.columns):
        raise BadRequest("text/csv request has an empty value; every value must be a number")
    matrix = np.column_stack([col.to_numpy() for col in table.columns]).astype(np.float32)
    if label_size >= matrix.shape[1]:
        raise BadRequest(f"text/csv request has {matrix.shape[1]} column(s) and label_size={label_size}; no features left")
    return np.ascontiguousarray(matrix[:, label_size:])


def _instance_features(instance: Any, position: int) -> tuple[str, Any]:
    """``("dense", values)`` or ``("sparse", (keys, values, dim))`` for one JSON instance."""
    if isinstance(instance, list):
        return "dense", instance
    if not isinstance(instance, dict):
        raise BadRequest(f"JSON instance {position} is not an object with 'features' or 'data'")
    if "features" in instance and not isinstance(instance["features"], dict):
        return "dense", instance["features"]
    feats = instance.get("features")
    if feats is None and isinstance(instance.get("data"), dict):
        feats = instance["data"].get("features")
    if not isinstance(feats, dict) or "values" not in feats:
        raise BadRequest(f"JSON instance {position} has no features: expected {{\"features\": [...]}} or "
                         "{\"data\": {\"features\": {\"values\": [...]}}}")
    if feats.get("keys"):
        shape = feats.get("shape")
        if not shape:
            raise BadRequest(f"JSON instance {position} is sparse (has 'keys') but has no 'shape'")
        return "sparse", (feats["keys"], feats["values"], int(shape[0]))
    return "dense", feats["values"]


def _instances_to_matrix(instances: Sequence[Any], feature_dim: int | None) -> Features:
    if not instances:
        raise BadRequest("the request has no instances")
    parsed = [_instance_features(inst, i) for i, inst in enumerate(instances)]
    if all(kind == "dense" for kind, _ in parsed):
        rows = [v for _, v in parsed]
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError):
            raise BadRequest("JSON instances must be lists of numbers of the same length") from None
        if matrix.ndim != 2:
            raise BadRequest("JSON instances must be lists of numbers of the same length")
        return matrix
    dims = {v[2] for kind, v in parsed if kind == "sparse"}
    dense_lengths = {len(v) for kind, v in parsed if kind == "dense"}
    dim = feature_dim or max(dims | dense_lengths)
    if any(d != dim for d in dims | dense_lengths):
        raise BadRequest(f"JSON instances disagree on the number of features ({sorted(dims | dense_lengths)})")
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for kind, v in parsed:
        if kind == "sparse":
            keys, vals, _ = v
            if len(keys) != len(vals):
                raise BadRequest("a sparse JSON instance has different numbers of keys and values")
            indices.extend(int(k) for k in keys)
            values.extend(float(x) for x in vals)
        else:
            row = np.asarray(v, dtype=np.float32)
            nz = np.flatnonzero(row)
            indices.extend(nz.tolist())
            values.extend(row[nz].tolist())
        indptr.append(len(indices))
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= dim):
        raise BadRequest(f"a sparse JSON instance has a key outside [0, {dim})")
    return sp.csr_matrix((np.asarray(values, dtype=np.float32), idx, np.asarray(indptr)), shape=(len(parsed), dim))


def parse_request(body: bytes, content_type: str | None, *, accepted: Sequence[str] = (CSV, JSON, JSONLINES, RECORDIO),
                  feature_dim: int | None = None, allow_sparse: bool = True) -> Features:
    """The request's records as a float32 matrix (dense ndarray, or CSR for sparse input)."""
    mime, params = parse_content_type(content_type or CSV)
    if mime not in accepted:
        raise UnsupportedContentType(f"Content-Type {content_type!r} is not supported by this model; "
                                     f"send one of {', '.join(accepted)}", status=415)
    if mime == CSV:
        try:
            label_size = int(params.get("label_size", 0))
        except ValueError:
            raise BadRequest(f"label_size={params.get('label_size')!r} is not an integer") from None
        features: Features = _csv_matrix(body, label_size)
    elif mime == JSON:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"application/json request is not valid JSON: {exc}") from None
        if isinstance(doc, dict) and "instances" in doc:
            instances = doc["instances"]
        elif isinstance(doc, list):
            instances = doc
        else:
            instances = [doc]
        if not isinstance(instances, list):
            raise BadRequest("'instances' must be a list")
        features = _instances_to_matrix(instances, feature_dim)
    elif mime == JSONLINES:
        try:
            instances = [json.loads(line) for line in body.splitlines() if line.strip()]
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"application/jsonlines request has a line that is not JSON: {exc}") from None
        features = _instances_to_matrix(instances, feature_dim)
    else:
        from smspark_assets.local.algorithms import common_recordio

        features = common_recordio.decode_request(body, feature_dim)
    if features.shape[0] == 0:
        raise BadRequest("the request has no records")
    if feature_dim is not None and features.shape[1] != feature_dim:
        raise BadRequest(f"records have {features.shape[1]} feature(s); this model expects {feature_dim}")
    values = features.data if sp.issparse(features) else features
    if not np.isfinite(values).all():
        raise BadRequest("a feature value is NaN or infinite")
    if sp.issparse(features) and not allow_sparse:
        features = features.toarray()
    return features


@dataclass(frozen=True)
class Output:
    """One output field: ``values`` has shape (n,) (a scalar per record) or (n, m) (a vector per record)."""

    name: str
    values: np.ndarray


def negotiate(accept: str | None, offered: Sequence[str], default: str = JSON) -> str:
    """The response type for ``Accept``: the first offered type it lists; ``*/*`` or none gives ``default``."""
    if not accept or not accept.strip():
        return default
    for part in accept.split(","):
        mime, _ = parse_content_type(part)
        if mime in ("*/*", "application/*") or mime == "":
            return default
        if mime in offered:
            return mime
    raise UnsupportedContentType(f"Accept {accept!r} is not supported by this model; "
                                 f"ask for one of {', '.join(offered)}", status=406)


def _python_rows(outputs: Sequence[Output]) -> list[dict[str, Any]]:
    columns = [(o.name, o.values.tolist()) for o in outputs]
    n = len(columns[0][1])
    return [{name: vals[i] for name, vals in columns} for i in range(n)]


def encode_response(outputs: Sequence[Output], accept: str | None, *, top_key: str = "predictions",
                    offered: Sequence[str] = (JSON, JSONLINES, CSV, RECORDIO)) -> tuple[bytes, str]:
    """Encode one answer per record in the negotiated type."""
    mime = negotiate(accept, offered)
    if mime == JSON:
        return json.dumps({top_key: _python_rows(outputs)}).encode(), JSON
    if mime == JSONLINES:
        rows = _python_rows(outputs)
        return ("\n".join(json.dumps(r) for r in rows) + "\n").encode(), JSONLINES
    if mime == CSV:
        blocks = [o.values.reshape(len(o.values), -1) for o in outputs]
        fmts: list[str] = []
        for b in blocks:
            fmts.extend(["%d" if np.issubdtype(b.dtype, np.integer) else "%.9g"] * b.shape[1])
        matrix = np.hstack([b.astype(np.float64) for b in blocks])
        buffer = io.StringIO()
        np.savetxt(buffer, matrix, fmt=fmts, delimiter=",")
        return buffer.getvalue().encode(), CSV
    from smspark_assets.local.algorithms import common_recordio

    return common_recordio.encode_response(outputs), RECORDIO
