"""Where a job reads and writes ``s3://`` data, and small file operations through Spark's Hadoop FileSystem.

On EMR, EMRFS serves ``s3://`` to Spark. The embedded stack's EMR has no S3 connector for Spark (no
``hadoop-aws`` offline), so it does what EMRFS does in its own way: it runs jobs with
``SMSPARK_EMRFS_ROOT`` set to the folder its S3 API serves, and :func:`location` maps ``s3://b/k`` to
that folder's ``b/k``. The job code never branches on where it runs: it asks :func:`location`.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from smspark_assets.environment import local_path

_DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Set by the embedded stack's EMR for the driver and the executors (see the module docstring).
EMRFS_ROOT_VAR = "SMSPARK_EMRFS_ROOT"


def location(uri: str) -> str:
    """Where Spark should read/write ``uri``: the URI itself (EMRFS), or its file under the stack's store."""
    root = os.environ.get(EMRFS_ROOT_VAR)
    if not root or not uri.startswith(("s3://", "s3a://", "s3n://")):
        return uri.rstrip("/")
    return str(local_path(uri, root=Path(root))).rstrip("/")


def partition_location(prefix_uri: str, dt: str) -> str:
    return f"{location(prefix_uri)}/dt={dt}"


def validate_partitions(partitions: Any) -> list[str]:
    """A non-empty, duplicate-free list of ``YYYY-MM-DD`` strings, sorted; a clear error otherwise."""
    if isinstance(partitions, str):
        partitions = [partitions]
    if not isinstance(partitions, (list, tuple)) or not partitions:
        raise ValueError(f"partitions must be a non-empty list of 'YYYY-MM-DD' strings, got {partitions!r}")
    bad = [p for p in partitions if not isinstance(p, str) or not _DT_RE.match(p)]
    if bad:
        raise ValueError(f"partitions must be 'YYYY-MM-DD' strings; not valid: {bad!r}")
    return sorted(set(partitions))


def _fs_and_path(spark: SparkSession, loc: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(loc)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, path


def exists(spark: SparkSession, loc: str) -> bool:
    fs, path = _fs_and_path(spark, loc)
    return bool(fs.exists(path))


def delete(spark: SparkSession, loc: str) -> None:
    """Delete a file or directory tree if present."""
    fs, path = _fs_and_path(spark, loc)
    if fs.exists(path):
        fs.delete(path, True)


def list_names(spark: SparkSession, loc: str) -> list[str]:
    """Names of the entries directly under directory ``loc`` (empty when it does not exist)."""
    fs, path = _fs_and_path(spark, loc)
    if not fs.exists(path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(path))


def rename(spark: SparkSession, src: str, dst: str) -> None:
    fs, src_path = _fs_and_path(spark, src)
    _, dst_path = _fs_and_path(spark, dst)
    if fs.exists(dst_path):
        fs.delete(dst_path, True)
    if not fs.rename(src_path, dst_path):
        raise OSError(f"could not rename {src} to {dst}")


def write_text(spark: SparkSession, loc: str, text: str) -> None:
    """Write a small text file (overwriting). On S3 an object PUT is atomic; locally Hadoop writes it in place."""
    fs, path = _fs_and_path(spark, loc)
    stream = fs.create(path, True)
    try:
        data = text.encode("utf-8")
        stream.write(bytearray(data))
    finally:
        stream.close()


def read_text(spark: SparkSession, loc: str) -> str:
    fs, path = _fs_and_path(spark, loc)
    if not fs.exists(path):
        raise FileNotFoundError(f"{loc} does not exist")
    jvm = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        out = jvm.java.io.ByteArrayOutputStream()
        jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, out, 65536, False)
        return bytes(out.toByteArray()).decode("utf-8")
    finally:
        stream.close()


def write_json(spark: SparkSession, loc: str, obj: Any) -> None:
    write_text(spark, loc, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(spark: SparkSession, loc: str) -> Any:
    return json.loads(read_text(spark, loc))


def remove_local_side_files(loc: str) -> None:
    """Delete the hidden ``.*.crc`` checksum files Hadoop's local filesystem writes next to data files.

    Hadoop hides them from its own listings, so this works on the raw directory; object stores have none.
    """
    if "://" in loc and not loc.startswith("file:"):
        return
    directory = Path(loc.removeprefix("file:"))
    if directory.is_dir():
        for path in directory.glob(".*.crc"):
            path.unlink(missing_ok=True)


def missing_partitions(spark: SparkSession, prefix_uri: str, partitions: list[str]) -> list[str]:
    return [p for p in partitions if not exists(spark, partition_location(prefix_uri, p))]


def require_partitions(spark: SparkSession, prefix_uri: str, partitions: list[str], what: str) -> None:
    """Fail with the list of absent ``dt=`` partitions (Spark's own error names only one path)."""
    missing = missing_partitions(spark, prefix_uri, partitions)
    if missing:
        raise FileNotFoundError(
            f"{what}: no data for partition(s) {', '.join(missing)} under {prefix_uri} "
            f"(looked for {partition_location(prefix_uri, missing[0])})"
        )


def overwrite_partitions(df: DataFrame, prefix_uri: str, partitions: list[str], fmt: str, sort_by: list[str]) -> None:
    """Replace exactly the ``dt`` partitions ``partitions`` under ``prefix_uri`` with ``df``.

    Dynamic overwrite leaves the other partitions alone; a given partition with no rows this time is
    deleted up front, so it does not keep stale rows from an earlier run. There is no shuffle: the
    jobs' inputs are read per ``dt`` (one or a few files each), so every task already holds rows of a
    single ``dt`` and writes one sorted file for it, in parallel across days.
    """
    spark = df.sparkSession
    for dt in partitions:
        delete(spark, partition_location(prefix_uri, dt))
    (
        df.sortWithinPartitions("dt", *sort_by)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("dt")
        .format(fmt)
        .save(location(prefix_uri))
    )


# --- Staged writes: a day's output is swapped in only after the whole run's write succeeded -------------

STAGING_DIR = "_staging"  # under an output prefix; the leading "_" hides it from Spark, pyarrow and Athena
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _move(spark: SparkSession, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``, which must not exist (Hadoop would move ``src`` *into* an existing ``dst``).

    On a local filesystem (and the embedded EMR maps ``s3://`` to local files) a directory rename is one
    atomic ``rename(2)``. On EMRFS/S3A it is a copy of every object then a delete: not atomic, so a
    reader may briefly see a partial day while a day is swapped in (it never sees a mix of two runs'
    files, and a failed write never reaches this step).
    """
    fs, src_path = _fs_and_path(spark, src)
    _, dst_path = _fs_and_path(spark, dst)
    if fs.exists(dst_path):
        raise FileExistsError(f"cannot move {src} to {dst}: the destination exists")
    fs.mkdirs(dst_path.getParent())
    if not fs.rename(src_path, dst_path):
        raise OSError(f"could not rename {src} to {dst}")


def _delete_if_empty(spark: SparkSession, loc: str) -> None:
    """Remove directory ``loc`` only if it is empty (non-recursive: a concurrent run's staging survives)."""
    fs, path = _fs_and_path(spark, loc)
    try:
        if fs.exists(path) and not fs.listStatus(path):
            fs.delete(path, False)
    except Exception:  # noqa: BLE001 - another run created something in between: leave it
        pass


class StagedPartitions:
    """``dt=`` partitions written under ``<prefix>/_staging/<run id>/``, not yet visible to readers.

    :meth:`commit` swaps each day in (the previous folder is moved aside, the staged one renamed into
    place, then the old one deleted); :meth:`discard` drops the staging folder and leaves every
    published day as it was.
    """

    def __init__(self, spark: SparkSession, prefix_uri: str, partitions: list[str], run_dir: str) -> None:
        self.spark = spark
        self.prefix_uri = prefix_uri
        self.partitions = list(partitions)
        self.run_dir = run_dir

    def commit(self) -> None:
        """Publish every staged day; a day with nothing staged is removed (it has no rows this run)."""
        spark = self.spark
        try:
            for dt in self.partitions:
                staged = f"{self.run_dir}/dt={dt}"
                final = partition_location(self.prefix_uri, dt)
                if not exists(spark, staged):
                    delete(spark, final)
                    continue
                aside = f"{self.run_dir}/_replaced/dt={dt}"
                had_previous = exists(spark, final)
                if had_previous:
                    _move(spark, final, aside)
                try:
                    _move(spark, staged, final)
                except Exception:
                    if had_previous:  # put the previous day back rather than leave nothing
                        _move(spark, aside, final)
                    raise
        finally:
            self.discard()

    def discard(self) -> None:
        """Delete this run's staging folder (and ``_staging`` itself when no other run uses it)."""
        delete(self.spark, self.run_dir)
        _delete_if_empty(self.spark, self.run_dir.rsplit("/", 1)[0])


def stage_partitions(
    df: DataFrame,
    prefix_uri: str,
    partitions: list[str],
    fmt: str,
    sort_by: list[str],
    run_id: str | None = None,
    empty_days_as_files: bool = True,
) -> StagedPartitions:
    """Write ``df`` (with a ``dt`` column) under ``<prefix_uri>/_staging/<run_id>/dt=.../``; publish nothing.

    As :func:`overwrite_partitions`, without a shuffle: each task writes one file, sorted by
    ``sort_by``, per day it holds. With ``empty_days_as_files``, a given day without rows gets one 0-row file carrying the schema, so
    readers of that day (the scoring job, the catalog) find a valid, empty partition instead of none.
    Rows of days not in ``partitions`` are staged but never published. On failure the staging folder is
    removed and the exception re-raised.
    """
    spark = df.sparkSession
    run_id = run_id or uuid.uuid4().hex
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id) or ".." in run_id:
        raise ValueError(f"run_id must be letters, digits, '_', '-' or '.', got {run_id!r}")
    run_dir = f"{location(prefix_uri)}/{STAGING_DIR}/{run_id}"
    staged = StagedPartitions(spark, prefix_uri, partitions, run_dir)
    delete(spark, run_dir)  # a crashed attempt with the same run id
    try:
        (
            df.sortWithinPartitions("dt", *sort_by)
            .write.mode("overwrite")
            .partitionBy("dt")
            .format(fmt)
            .save(run_dir)
        )
        delete(spark, f"{run_dir}/_SUCCESS")
        if empty_days_as_files:
            schema = T.StructType([f for f in df.schema.fields if f.name != "dt"])
            for dt in partitions:
                day_dir = f"{run_dir}/dt={dt}"
                if not exists(spark, day_dir):
                    spark.createDataFrame([], schema).coalesce(1).write.format(fmt).save(day_dir)
                    delete(spark, f"{day_dir}/_SUCCESS")
    except BaseException:
        staged.discard()
        raise
    return staged


def replace_partitions(
    df: DataFrame,
    prefix_uri: str,
    partitions: list[str],
    fmt: str,
    sort_by: list[str],
    run_id: str | None = None,
    empty_days_as_files: bool = True,
) -> None:
    """:func:`stage_partitions` then :meth:`StagedPartitions.commit`: a failed write leaves every day as it was."""
    stage_partitions(df, prefix_uri, partitions, fmt, sort_by, run_id, empty_days_as_files).commit()
