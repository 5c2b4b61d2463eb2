"""``application/x-recordio-protobuf`` for the local XGBoost container: channels, requests, responses.

Uses the project's vectorized codec (:mod:`smspark_assets.sagemaker.recordio`). As in the container:

* features are the record's ``features["values"]`` tensor: dense rows become a dense matrix, sparse tensors
  (``keys`` + ``shape``, 0-based keys) a CSR matrix whose absent entries are *missing* values;
* the label is ``label["values"]`` (one value per record; required in training channels);
* responses carry one record per prediction with a float32 tensor under the label key ``score`` (a vector for
  multi-output objectives such as ``multi:softprob``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import ChannelError
from smspark_assets.local.algorithms.data import DataFormatError, Dataset, channel_files, read_bytes
from smspark_assets.sagemaker import recordio

__all__ = ["read_recordio_channel", "read_recordio_features", "encode_scores", "decode_features"]

FEATURE_KEY = "values"
LABEL_KEY = "values"


def decode_features(
    data: bytes, *, num_features: int | None, source: str
) -> tuple[np.ndarray | sp.csr_matrix, recordio.DecodedRecords]:
    """Decode a stream's ``features["values"]`` into a dense matrix or CSR (sparse tensors)."""
    try:
        decoded = recordio.decode(data)
    except recordio.RecordIOError as exc:
        raise DataFormatError(f"{source}: not a valid recordIO-protobuf stream: {exc}") from None
    column = decoded.features.get(FEATURE_KEY)
    if column is None:
        raise DataFormatError(
            f"{source}: records have no features[{FEATURE_KEY!r}] tensor "
            f"(feature keys: {sorted(decoded.features) or 'none'})"
        )
    if not column.present.all():
        raise DataFormatError(f"{source}: record {int(np.flatnonzero(~column.present)[0])} has no features")
    width = column.width()
    if num_features is not None:
        if width > num_features:
            raise DataFormatError(f"{source}: records have {width} features; this model has {num_features}")
        if not column.is_sparse and width != num_features:
            raise DataFormatError(
                f"{source}: dense records have {width} values; this model expects {num_features}"
            )
        width = num_features
    try:
        if column.is_sparse:
            values, indices, indptr, n_cols = column.to_csr(width)
            matrix = sp.csr_matrix(
                (values.astype(np.float32, copy=False), indices, indptr), shape=(decoded.n_records, n_cols)
            )
        else:
            matrix = column.to_dense(width).astype(np.float32, copy=False)
    except ValueError as exc:
        raise DataFormatError(f"{source}: {exc}") from None
    return matrix, decoded


def read_recordio_features(body: bytes, num_features: int) -> np.ndarray | sp.csr_matrix:
    """A request body -> the model's feature matrix (raises :class:`DataFormatError`)."""
    return decode_features(body, num_features=num_features, source="recordio-protobuf request")[0]


def _dense_as_csr(matrix: np.ndarray) -> sp.csr_matrix:
    """Every entry kept, zeros included (``csr_matrix(dense)`` drops zeros, which would become missing)."""
    n, k = matrix.shape
    return sp.csr_matrix((matrix.ravel(), np.tile(np.arange(k), n), np.arange(0, n * k + 1, k)), shape=(n, k))


def read_recordio_channel(folder: Path, *, channel: str = "train") -> Dataset:
    """All recordIO-protobuf files of a channel (sorted by path) as one dataset with labels."""
    files = channel_files(folder)
    if not files:
        raise ChannelError(f"channel {channel!r} has no data files in {folder.name}/")
    parts: list[tuple[np.ndarray | sp.csr_matrix, np.ndarray]] = []
    for path in files:
        source = f"channel {channel!r} file {path.name}"
        data = read_bytes(path)
        if not data:
            continue
        try:
            matrix, decoded = decode_features(data, num_features=None, source=source)
        except DataFormatError as exc:
            raise ChannelError(str(exc)) from None
        label = decoded.label.get(LABEL_KEY)
        if label is None:
            raise ChannelError(
                f"{source}: records have no label[{LABEL_KEY!r}] (training needs a label per record)"
            )
        try:
            labels = label.scalars().astype(np.float32)
        except ValueError as exc:
            raise ChannelError(f"{source}: {exc}") from None
        if np.isnan(labels).any():
            raise ChannelError(f"{source}: record {int(np.flatnonzero(np.isnan(labels))[0])} has no label")
        parts.append((matrix, labels))
    if not parts:
        raise ChannelError(f"channel {channel!r} has no records (its {len(files)} file(s) are empty)")
    width = max(m.shape[1] for m, _ in parts)
    if any(sp.issparse(m) for m, _ in parts):
        matrices = [m if sp.issparse(m) else _dense_as_csr(m) for m, _ in parts]
        matrices = [
            m
            if m.shape[1] == width
            else sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))
            for m in matrices
        ]
        features: np.ndarray | sp.csr_matrix = sp.vstack(matrices, format="csr")
    else:
        if any(m.shape[1] != width for m, _ in parts):
            raise ChannelError(f"channel {channel!r}: dense records of different widths across files")
        features = np.concatenate([m for m, _ in parts]) if len(parts) > 1 else parts[0][0]
    return Dataset(features=features, labels=np.concatenate([y for _, y in parts]))


def encode_scores(predictions: np.ndarray) -> bytes:
    """One record per prediction: ``label["score"]`` = float32 tensor (1 value, or one per class)."""
    scores = np.ascontiguousarray(predictions, dtype=np.float32)
    return recordio.encode_records(int(scores.shape[0]), label={"score": recordio.Dense(scores, "float32")})
