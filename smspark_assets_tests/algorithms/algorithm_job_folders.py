"""Test and benchmark helper: a training-job folder built from arrays.

Writes the container layout of :mod:`smspark_assets.local.algorithms.base` (``input/config/*.json``, ``input/data/<channel>/``) with
channels as CSV (label first, written by Arrow's CSV writer) or recordIO-protobuf, so an algorithm
can be trained exactly as the local service would train it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import TrainingEnvironment
from smspark_assets.local.algorithms.common_io import CSV, RECORDIO


def write_csv(path: Path, features: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Headerless CSV, label (if any) in the first column."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [] if labels is None else [pa.array(np.asarray(labels, dtype=np.float64))]
    features = np.asarray(features)
    columns += [pa.array(features[:, j]) for j in range(features.shape[1])]
    table = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=False))
    return path


def write_recordio(path: Path, features: np.ndarray | sp.csr_matrix, labels: np.ndarray | None = None) -> Path:
    """RecordIO-protobuf records (Float32 ``values``; sparse input gives sparse tensors)."""
    from smspark_assets.local.algorithms import common_recordio

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(common_recordio.encode_records(features, labels))
    return path


def make_job(job_dir: Path, hyperparameters: Mapping[str, object],
             channels: Mapping[str, tuple[np.ndarray | sp.csr_matrix, np.ndarray | None]],
             content_type: str = CSV, algorithm: str = "") -> TrainingEnvironment:
    """A job folder with one file per channel; returns its :class:`TrainingEnvironment`."""
    config = job_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    data_config = {}
    for name, (x, y) in channels.items():
        folder = job_dir / "input" / "data" / name
        if content_type == RECORDIO:
            write_recordio(folder / "part-00000.pbr", x, y)
            data_config[name] = {"ContentType": RECORDIO}
        else:
            dense = x.toarray() if sp.issparse(x) else x
            write_csv(folder / "part-00000.csv", dense, y)
            data_config[name] = {"ContentType": CSV if y is None else f"{CSV};label_size=1"}
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    if algorithm:
        (config / "algorithm.json").write_text(json.dumps({"algorithm": algorithm, "image": ""}))
    return TrainingEnvironment.from_job_dir(job_dir)
