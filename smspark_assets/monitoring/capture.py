"""Captured endpoint traffic back into features and scores.

SageMaker data capture writes JSON lines under ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/``, one line
per invocation (``captureData.endpointInput`` / ``endpointOutput`` with ``observedContentType``, ``data``
and ``encoding`` = ``CSV`` | ``JSON`` | ``BASE64``). This module decodes the requests into the model's
feature columns and the responses into scores, so the drift checks can judge live traffic like a day of
the table. All CSV bodies are parsed in one pass by Arrow's CSV reader; JSON bodies are parsed once each.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


@dataclass
class CapturedTraffic:
    """The decoded requests (``features``, one row per record sent) and responses (``scores``)."""

    features: pa.Table
    scores: np.ndarray
    invocations: int
    skipped: dict[str, int] = field(default_factory=dict)


def hour_prefixes(prefix: str, endpoint: str, variant: str, end: dt.datetime, hours: int) -> list[str]:
    """The capture folders of the ``hours`` UTC hours up to and including ``end``'s hour."""
    if hours < 1:
        raise ValueError(f"hours must be at least 1; got {hours}")
    end = end.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    base = f"{prefix.rstrip('/')}/{endpoint}/{variant}"
    return [f"{base}/{end - dt.timedelta(hours=h):%Y/%m/%d/%H}/" for h in range(hours - 1, -1, -1)]


def _body(part: dict[str, Any]) -> tuple[str, bytes]:
    """``(base content type, body bytes)`` of a captured ``endpointInput`` / ``endpointOutput``."""
    data = part.get("data", "")
    encoding = part.get("encoding", "BASE64")
    raw = base64.b64decode(data) if encoding == "BASE64" else data.encode("utf-8")
    return str(part.get("observedContentType", "")).split(";", 1)[0].strip().lower(), raw


def _json_rows(body: bytes) -> list[list[float]]:
    """Rows of a JSON request: ``{"instances": [{"features": [...]}, ...]}`` (SageMaker's dense JSON),
    ``{"instances": [[...], ...]}``, ``[[...], ...]`` or a single ``[...]``."""
    doc = json.loads(body)
    items = doc.get("instances", doc.get("inputs")) if isinstance(doc, dict) else doc
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ValueError("a JSON request must hold a list of instances")
    if items and not isinstance(items[0], (list, dict)):
        items = [items]
    return [item["features"] if isinstance(item, dict) else item for item in items]


def _json_scores(body: bytes) -> list[float]:
    doc = json.loads(body)
    items = doc.get("predictions", doc) if isinstance(doc, dict) else doc
    items = items if isinstance(items, list) else [items]
    return [float(p["score"]) if isinstance(p, dict) else float(p) for p in items]


def decode_capture(files: Iterable[bytes], feature_columns: list[str]) -> CapturedTraffic:
    """The requests and responses of the capture ``files`` (JSON lines), as ``feature_columns`` and scores.

    Requests in content types other than CSV and JSON (e.g. recordIO-protobuf) are counted in
    ``skipped``, as are responses that cannot be read; a request whose width is not the number of feature
    columns is refused with a clear error.
    """
    width = len(feature_columns)
    csv_parts: list[bytes] = []
    json_rows: list[list[float]] = []
    score_parts: list[bytes] = []
    json_scores: list[float] = []
    skipped: dict[str, int] = {}
    invocations = 0
    for content in files:
        for line in content.splitlines():
            if not line.strip():
                continue
            event = json.loads(line)
            invocations += 1
            capture = event.get("captureData", {})
            if "endpointInput" in capture:
                kind, body = _body(capture["endpointInput"])
                if kind == "text/csv":
                    csv_parts.append(body if body.endswith(b"\n") else body + b"\n")
                elif kind in ("application/json", "application/jsonlines"):
                    json_rows.extend(_json_rows(body))
                else:
                    reason = f"input {kind or 'without content type'}"
                    skipped[reason] = skipped.get(reason, 0) + 1
            if "endpointOutput" in capture:
                kind, body = _body(capture["endpointOutput"])
                if kind == "text/csv":
                    score_parts.append(body.replace(b",", b"\n").strip() + b"\n")
                elif kind == "application/json":
                    json_scores.extend(_json_scores(body))
                else:
                    reason = f"output {kind or 'without content type'}"
                    skipped[reason] = skipped.get(reason, 0) + 1
    blocks: list[np.ndarray] = []
    if csv_parts:
        text = b"".join(csv_parts)
        first = text[:text.index(b"\n")]
        if first.count(b",") + 1 != width:
            raise ValueError(f"captured CSV requests have {first.count(b',') + 1} values per row; the model has "
                             f"{width} feature columns")
        names = [f"f{i}" for i in range(width)]
        table = pacsv.read_csv(io.BytesIO(text), read_options=pacsv.ReadOptions(column_names=names),
                               convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in names}))
        blocks.append(np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in names]))
    if json_rows:
        rows = np.asarray(json_rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != width:
            raise ValueError(f"captured JSON requests have shape {rows.shape}; the model has {width} feature columns")
        blocks.append(rows)
    matrix = np.vstack(blocks) if blocks else np.empty((0, width))
    scores = [np.loadtxt(io.BytesIO(b"".join(score_parts)), dtype=np.float64, ndmin=1)] if score_parts else []
    scores.append(np.asarray(json_scores, dtype=np.float64))
    features = pa.table({c: matrix[:, i] for i, c in enumerate(feature_columns)})
    return CapturedTraffic(features, np.concatenate(scores), invocations, skipped)
