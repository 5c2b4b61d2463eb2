"""Parquet training channels (``application/x-parquet``) for the local XGBoost container.

As in the container, the **first column is the label** and every other column is a feature, in schema order;
nulls are missing values. One extension for Spark users: a table of exactly ``label`` + one list/array column
of equal-length numeric lists (an ML vector written as ``array<double>``) is expanded into that many feature
columns. Columns are converted with Arrow (no per-row Python).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smspark_assets.local.algorithms.base import ChannelError
from smspark_assets.local.algorithms.data import Dataset, channel_files

__all__ = ["read_parquet_channel", "table_to_dataset"]


def _numeric(column: pa.ChunkedArray, name: str, channel: str) -> np.ndarray:
    if not (
        pa.types.is_integer(column.type)
        or pa.types.is_floating(column.type)
        or pa.types.is_boolean(column.type)
        or pa.types.is_decimal(column.type)
    ):
        raise ChannelError(
            f"channel {channel!r}: Parquet column {name!r} has type {column.type}; XGBoost needs "
            "numeric columns (label first, then features)"
        )
    return column.cast(pa.float32()).to_numpy()  # nulls -> NaN


def _list_matrix(column: pa.ChunkedArray, name: str, channel: str) -> np.ndarray:
    array = column.combine_chunks()
    if array.null_count:
        raise ChannelError(f"channel {channel!r}: Parquet column {name!r} has null vectors")
    lengths = np.asarray(
        array.value_lengths() if hasattr(array, "value_lengths") else [len(v) for v in array.to_pylist()],
        dtype=np.int64,
    )
    if lengths.size and (lengths != lengths[0]).any():
        raise ChannelError(
            f"channel {channel!r}: Parquet column {name!r} holds vectors of different lengths "
            f"({lengths.min()}..{lengths.max()}); every row needs the same number of features"
        )
    width = int(lengths[0]) if lengths.size else 0
    values = array.flatten().cast(pa.float32()).to_numpy()
    return values.reshape(len(array), width)


def table_to_dataset(table: pa.Table, channel: str) -> Dataset:
    """Label = first column; features = the other numeric columns (or one vector column)."""
    if table.num_columns < 2:
        raise ChannelError(
            f"channel {channel!r}: Parquet data needs a label column and at least one feature; "
            f"found columns {table.column_names}"
        )
    labels = _numeric(table.column(0), table.column_names[0], channel)
    if np.isnan(labels).any():
        raise ChannelError(f"channel {channel!r}: the label column {table.column_names[0]!r} has nulls")
    rest = table.columns[1:]
    names = table.column_names[1:]
    if len(rest) == 1 and (
        pa.types.is_list(rest[0].type)
        or pa.types.is_large_list(rest[0].type)
        or pa.types.is_fixed_size_list(rest[0].type)
    ):
        features = _list_matrix(rest[0], names[0], channel)
    else:
        features = np.empty((table.num_rows, len(rest)), dtype=np.float32)
        for i, (name, column) in enumerate(zip(names, rest, strict=True)):
            features[:, i] = _numeric(column, name, channel)
    return Dataset(features=features, labels=labels)


def read_parquet_channel(folder: Path, *, channel: str = "train") -> Dataset:
    """All Parquet files of a channel (sorted by path) as one dataset; their schemas must agree."""
    files = channel_files(folder)
    if not files:
        raise ChannelError(f"channel {channel!r} has no data files in {folder.name}/")
    tables = []
    for path in files:
        try:
            tables.append(pq.read_table(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ChannelError(f"channel {channel!r} file {path.name} is not a Parquet file: {exc}") from None
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ChannelError(f"channel {channel!r}: the Parquet files have different schemas: {exc}") from None
    if table.num_rows == 0:
        raise ChannelError(f"channel {channel!r} has no rows")
    return table_to_dataset(table, channel)
