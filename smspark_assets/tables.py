"""Small reads of Parquet tables by ``s3://`` URI (footers only where possible)."""

from smspark_assets.resources.storage import S3ObjectStoreResource


def parquet_rows(store: S3ObjectStoreResource, uri: str) -> int:
    """Rows in the Parquet files under ``uri``, read from the footers (no data pages)."""
    return store.parquet_dataset(uri).count_rows()
