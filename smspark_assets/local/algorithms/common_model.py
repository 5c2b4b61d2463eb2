"""The model file the first-party algorithms write: ``model_algo-1``.

SageMaker's containers write one file named ``model_algo-1`` into the model directory (an MXNet
object there). Ours keeps the name and stores a NumPy ``.npz`` archive in it: named float arrays
(e.g. K-means ``centroids``, PCA ``mean``/``v``/``s``) plus a JSON ``__meta__`` entry with the
algorithm name, its hyperparameters and anything the predictor needs. No pickle is involved, so a
model file can be loaded safely by a fresh model server.

``model.tar.gz`` therefore holds exactly one member, ``model_algo-1``, with these arrays:

=======================  ==========================================================================
kmeans                   ``centroids`` (k x feature_dim)
linear-learner           ``weights`` (feature_dim x outputs, normalization folded in), ``bias``;
                         meta: ``predictor_type``, ``loss``, ``threshold``, ``y_mu``/``y_sigma``
pca                      ``v`` (feature_dim x num_components), ``s``, ``explained_variance`` (largest
                         last), ``mean`` (only with subtract_mean)
factorization-machines   ``w0`` (1), ``w`` (feature_dim), ``v`` (feature_dim x num_factors)
lda                      ``alpha`` (num_topics), ``beta`` (num_topics x feature_dim, rows sum to 1)
=======================  ==========================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from smspark_assets.local.algorithms.base import AlgorithmError

MODEL_FILE = "model_algo-1"
_META = "__meta__"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def save_model(model_dir: Path, algorithm: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``model_dir/model_algo-1`` holding ``arrays`` and ``meta`` (JSON-serialisable)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILE
    payload = {"algorithm": algorithm, **_jsonable(dict(meta))}
    with open(path, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()}, **{_META: np.array(json.dumps(payload))})
    return path


def load_model(model_dir: Path, algorithm: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`save_model` wrote; refuses a model of another algorithm."""
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise AlgorithmError(f"model directory has no {MODEL_FILE} (files: "
                             f"{', '.join(sorted(p.name for p in model_dir.iterdir())) if model_dir.exists() else 'none'})")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != _META}
        meta = json.loads(str(archive[_META])) if _META in archive.files else {}
    if meta.get("algorithm") != algorithm:
        raise AlgorithmError(f"{MODEL_FILE} holds a {meta.get('algorithm')!r} model, not a {algorithm!r} model")
    return arrays, meta
