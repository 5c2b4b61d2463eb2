"""The model file the first-party algorithms write: ``model_algo-1``, in SageMaker's own formats.

SageMaker's containers write one file named ``model_algo-1`` into the model directory, and so do
ours, with the same bytes layout (the layouts live in the contract:
:mod:`smspark_assets.sagemaker.artifacts` for K-means, PCA and LDA's MXNet NDArray files,
:mod:`smspark_assets.sagemaker.algorithms.module_artifacts` for Linear Learner's and FM's zip of an
MXNet checkpoint). A model trained on SageMaker is therefore served here, and one trained here can
be hosted by SageMaker (K-means, PCA, LDA; see the README, "Model artifacts and SageMaker").

This module only moves the bytes: written atomically (a model server never sees half a file) and
read with a clear error naming what the model directory holds instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

from smspark_assets.local.algorithms.base import AlgorithmError
from smspark_assets.sagemaker.artifacts import MODEL_FILE, ArtifactError

T = TypeVar("T")


def write_model_file(model_dir: Path, payload: bytes) -> Path:
    """Write ``model_dir/model_algo-1`` atomically (a temporary file renamed into place)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{MODEL_FILE}.", dir=model_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model_file(model_dir: Path, reader: Callable[[bytes], T]) -> T:
    """Parse ``model_dir/model_algo-1`` with the algorithm's layout ``reader`` (an ``artifacts.read_*``).

    A missing file or a file of another layout (another algorithm's model, a corrupt file) raises
    :class:`AlgorithmError` saying so.
    """
    path = model_dir / MODEL_FILE
    if not path.is_file():
        files = ", ".join(sorted(p.name for p in model_dir.iterdir())) if model_dir.is_dir() else "none"
        raise AlgorithmError(f"model directory has no {MODEL_FILE} (files: {files or 'none'})")
    try:
        return reader(path.read_bytes())
    except ArtifactError as exc:
        raise AlgorithmError(str(exc)) from exc
