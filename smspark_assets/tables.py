"""Small reads of Parquet tables by ``s3://`` URI (footers only where possible)."""

import pyarrow.dataset as ds

from smspark_assets.environment import resolve_uri


def parquet_rows(uri: str) -> int:
    """Rows in the Parquet files under ``uri``, read from the footers (no data pages)."""
    return ds.dataset(resolve_uri(uri), format="parquet").count_rows()
