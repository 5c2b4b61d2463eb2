"""Serving an XGBoost model the way the SageMaker XGBoost container (algorithm mode) answers ``/invocations``.

Requests (``Content-Type``, parameters after ``;`` ignored):

* ``text/csv`` -- rows of features, no label, no header; empty field = missing.
* ``text/libsvm`` / ``text/x-libsvm`` -- ``[<label>] <index>:<value> ...``, 1-based indices (the label token,
  if any, is ignored); see :mod:`.data` for the convention shared with training.
* ``application/x-recordio-protobuf`` -- ``features["values"]`` dense or sparse (:mod:`.xgboost_recordio`).

Responses (``Accept``; default ``text/csv``), exactly one answer per input record, in order:

* ``text/csv`` -- one record per line, each line ending in ``\\n``. Single-output objectives give one number
  per line; multi-output ones (``multi:softprob``) give the record's class probabilities comma-separated.
  *Choice, documented:* the real container answers a real-time CSV request with all predictions on **one**
  comma-joined line (its code calls this "invalid CSV kept for backwards compatibility"), and one per line
  only under batch transform (``SAGEMAKER_BATCH``). We always answer one per line -- valid CSV, and the only
  form that can carry multi-output rows. A client that must work against both should split on ``,`` *and*
  newlines for single-output models (which is what SageMaker-Spark's ``XGBoostCSVRowDeserializer`` tolerates
  once newlines are treated as separators).
* ``application/json`` -- ``{"predictions": [{"score": 0.43}, ...]}`` (``score`` is a list for multi-output).
* ``application/jsonlines`` -- one ``{"score": ...}`` object per line.
* ``application/x-recordio-protobuf`` -- one Record per prediction with a float32 tensor under label key
  ``score``.
* ``SAGEMAKER_INFERENCE_OUTPUT`` in the model's Environment switches every type above to the container's
  selectable content (``predicted_label``, ``probabilities``, ...): see :mod:`.xgboost_selectable`.

``Accept`` may list several types (the first supported wins); none or ``*/*`` means
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` from the model's Environment, else ``text/csv``.

Prediction uses the trees up to the best iteration when training stopped early (as the container does with
``best_iteration``/``best_ntree_limit``), through ``Booster.inplace_predict`` in one call per request.
Output bytes are assembled with NumPy from Arrow's vectorized float-to-string cast: no per-record Python.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

# See xgboost.py: passive OpenMP waiting, effective when set before the process first imports xgboost.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import xgboost as xgb  # noqa: E402

from smspark_assets.local.algorithms import xgboost_selectable as selectable
from smspark_assets.local.algorithms.base import BadRequest, UnsupportedContentType
from smspark_assets.local.algorithms.data import DataFormatError, parse_csv, parse_libsvm
from smspark_assets.sagemaker.algorithms.xgboost import REQUEST_TYPES, RESPONSE_TYPES

__all__ = ["MODEL_FILE", "XGBoostPredictor", "load_booster", "format_rows", "REQUEST_TYPES", "RESPONSE_TYPES"]

MODEL_FILE = "xgboost-model"
_RESPONSE_ALIASES = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonlines": "application/jsonlines",
    "application/x-jsonlines": "application/jsonlines",
}


def load_booster(model_dir: Path) -> xgb.Booster:
    """Load ``xgboost-model`` (any format ``Booster.load_model`` reads: UBJSON, JSON)."""
    path = model_dir / MODEL_FILE
    if not path.is_file():
        found = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
        raise FileNotFoundError(
            f"{MODEL_FILE} not found in the model directory (it holds: {found or 'nothing'})"
        )
    booster = xgb.Booster()
    # The file name has no extension, so hand xgboost the bytes: it detects UBJSON vs JSON from the content.
    booster.load_model(bytearray(path.read_bytes()))
    return booster


def _strings(values: np.ndarray) -> pa.StringArray:
    # float32 -> float64 first so a value prints as the container's str(float(x)) would (same double).
    return pc.cast(pa.array(values.astype(np.float64, copy=False).ravel()), pa.string())


def format_rows(
    values: np.ndarray,
    *,
    row_prefix: bytes = b"",
    sep: bytes = b",",
    row_suffix: bytes = b"",
    row_sep: bytes = b"\n",
    trailer: bytes = b"",
) -> bytes:
    """Render an ``(n,)`` or ``(n, k)`` float array as ``row_prefix v0 sep v1 ... row_suffix`` rows joined by
    ``row_sep`` (then ``trailer``), building the output with computed offsets instead of a Python loop."""
    matrix = values.reshape(values.shape[0], -1)
    n, k = matrix.shape
    if n == 0:
        return b""
    strings = _strings(matrix)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=n * k + 1, offset=strings.offset * 4)
    chars = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    value_len = np.diff(offsets).astype(np.int64)
    column = np.tile(np.arange(k), n)
    lead_kinds = [row_prefix, row_sep + row_prefix, sep]  # first row's first value, other rows' first, others
    kind = np.where(column > 0, 2, np.where(np.arange(n * k) < k, 0, 1))
    lead_len = np.array([len(b) for b in lead_kinds], dtype=np.int64)[kind]
    tail_len = np.where(column == k - 1, len(row_suffix), 0)
    piece = lead_len + value_len + tail_len
    start = np.concatenate([[0], np.cumsum(piece)[:-1]])
    total = int(piece.sum())
    out = np.empty(total + len(trailer), dtype=np.uint8)
    for code, lead in enumerate(lead_kinds):
        if lead:
            at = start[kind == code]
            out[at[:, None] + np.arange(len(lead))] = np.frombuffer(lead, dtype=np.uint8)
    value_start = start + lead_len
    out[np.repeat(value_start - (offsets[:-1] - offsets[0]), value_len) + np.arange(chars.size)] = chars
    if row_suffix:
        at = (value_start + value_len)[column == k - 1]
        out[at[:, None] + np.arange(len(row_suffix))] = np.frombuffer(row_suffix, dtype=np.uint8)
    if trailer:
        out[total:] = np.frombuffer(trailer, dtype=np.uint8)
    return out.tobytes()


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


class XGBoostPredictor:
    """A loaded ``xgboost-model`` answering ``/invocations`` requests."""

    def __init__(self, booster: xgb.Booster, environment: Mapping[str, str] | None = None) -> None:
        """``environment`` is the model's container ``Environment`` (default: this process's, which the
        local model server fills from CreateModel): ``SAGEMAKER_INFERENCE_OUTPUT`` selects the response keys,
        ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` the response type when a request names none."""
        environment = os.environ if environment is None else environment
        self.booster = booster
        # One thread per model-server worker: the service runs several workers, as the container does.
        self.booster.set_param({"nthread": 1})
        self.num_features = booster.num_features()
        best = booster.attr("best_iteration")
        self.iteration_range = (0, int(best) + 1) if best is not None else (0, 0)
        learner = json.loads(booster.save_config())["learner"]
        self.objective = learner["objective"]["name"]
        self.num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
        self.default_accept = (
            _media_type(environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")) or "text/csv"
        )
        if self.default_accept not in RESPONSE_TYPES:
            raise ValueError(
                f"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT={self.default_accept!r} is not a response type "
                f"of this model; allowed: {', '.join(RESPONSE_TYPES)}"
            )
        self.selected_keys = selectable.selected_keys(environment)
        if self.selected_keys is not None and self.objective not in selectable.VALID_KEYS:
            raise ValueError(
                f"{selectable.ENV_VAR} is not supported for objective {self.objective}; it applies to "
                f"{', '.join(selectable.VALID_KEYS)}"
            )

    @classmethod
    def load(cls, model_dir: Path) -> "XGBoostPredictor":
        predictor = cls(load_booster(model_dir))
        predictor.warm_up()
        return predictor

    def warm_up(self) -> None:
        """Run one tiny request so the first real one does not pay for thread pools and lazy imports."""
        if self.num_features > 0:
            self.invoke(b",".join([b"0"] * self.num_features) + b"\n", "text/csv", "text/csv")

    # -- requests

    def features(self, body: bytes, content_type: str) -> np.ndarray | sp.csr_matrix:
        """Parse a request body into the model's feature matrix; :class:`BadRequest` when it cannot."""
        media = _media_type(content_type) or "text/csv"
        try:
            if media == "text/csv":
                matrix = parse_csv(body, source="text/csv request")
                if matrix.shape[1] != self.num_features:
                    raise BadRequest(
                        f"text/csv request rows have {matrix.shape[1]} columns; this model expects "
                        f"{self.num_features} feature columns (no label column)"
                    )
                return matrix
            if media in ("text/libsvm", "text/x-libsvm"):
                return parse_libsvm(
                    body, labeled=False, num_features=self.num_features, source="libsvm request"
                ).features
            if media == "application/x-recordio-protobuf":
                return self._recordio_features(body)
        except DataFormatError as exc:
            raise BadRequest(str(exc)) from None
        raise UnsupportedContentType(
            f"Content-Type {content_type!r} is not supported; allowed: {', '.join(REQUEST_TYPES)}", status=415
        )

    def _recordio_features(self, body: bytes) -> np.ndarray | sp.csr_matrix:
        from smspark_assets.local.algorithms.xgboost_recordio import read_recordio_features

        return read_recordio_features(body, self.num_features)

    # -- predictions

    def predict(self, features: np.ndarray | sp.csr_matrix) -> np.ndarray:
        if features.shape[0] == 0:
            raise BadRequest("the request holds no records")
        return self.booster.inplace_predict(
            features, iteration_range=self.iteration_range, missing=np.nan, validate_features=False
        )

    # -- responses

    def response_type(self, accept: str | None) -> str:
        """The response type for an ``Accept`` header (a list is allowed: the first supported type wins)."""
        wanted = [_media_type(part) for part in (accept or "").split(",")]
        wanted = [w for w in wanted if w]
        if not wanted or wanted == ["*/*"]:
            return self.default_accept
        for media in wanted:
            media = _RESPONSE_ALIASES.get(media, media)
            if media == "*/*":
                return self.default_accept
            if media in RESPONSE_TYPES:
                return media
        raise UnsupportedContentType(
            f"Accept {accept!r} is not supported; allowed: {', '.join(RESPONSE_TYPES)}", status=406
        )

    def encode(self, predictions: np.ndarray, accept: str | None) -> tuple[bytes, str]:
        media = self.response_type(accept)
        if self.selected_keys is not None:
            content = selectable.selected_content(
                self.objective, self.num_class, predictions, self.selected_keys
            )
            return selectable.encode_selected(content, self.selected_keys, media), media
        multi = predictions.ndim > 1
        if media == "text/csv":
            return format_rows(predictions, trailer=b"\n"), media
        if media in ("application/json", "application/jsonlines"):
            body = format_rows(
                predictions,
                row_prefix=b'{"score": [' if multi else b'{"score": ',
                sep=b", ",
                row_suffix=b"]}" if multi else b"}",
                row_sep=b", " if media == "application/json" else b"\n",
            )
            if media == "application/json":
                return b'{"predictions": [' + body + b"]}", media
            return body + b"\n", media
        from smspark_assets.local.algorithms.xgboost_recordio import encode_scores

        return encode_scores(predictions), media

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        """Answer one request: parse, predict in one call, encode; one answer per input record."""
        if not body or not body.strip():
            raise BadRequest("the request body is empty; send at least one record")
        self.response_type(accept)  # a bad Accept is a 406 before any work
        return self.encode(self.predict(self.features(body, content_type)), accept)


def describe_model(booster: xgb.Booster) -> str:
    """A one-line summary for logs."""
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    return f"objective={objective} features={booster.num_features()} rounds={booster.num_boosted_rounds()}"
