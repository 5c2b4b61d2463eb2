"""Spark channel writers: a DataFrame with a features column -> a SageMaker training channel in storage.

``write_recordio_channel`` writes ``application/x-recordio-protobuf`` part files (the SageMaker-Spark SDK's
``sagemaker`` data source format: one Record per row, ``features["values"]`` as a float32 tensor, dense
for dense vectors and sparse with ``keys``/``shape`` for sparse vectors, ``label["values"]`` as float32
when there is a label column). ``write_libsvm_channel`` and ``write_csv_channel`` write the text formats
(libsvm with 1-based indices by default, the same base :class:`~.serializers.LibSVMSerializer` uses for
inference; CSV with the label in the first column and no header, as Linear Learner and XGBoost read it).

The features column may be a Spark ML ``Vector`` (dense or sparse) or an ``array<double|float>``.
Partitions are processed with ``mapInArrow`` (Spark 3.3+, so EMR's 3.5 and Spark 4.x alike): each
task converts its Arrow record batches to NumPy at once, encodes them with the vectorized codec and
streams the bytes into part files of about ``target_file_bytes`` (cut at record boundaries). Files are
written through ``pyarrow.fs`` straight from the executors, to the path that
:func:`smspark_assets.spark_jobs.storage.location` gives for the ``s3://`` URI: a local directory in the local
environment, S3 on AWS. An optional manifest (the ``ManifestFile`` S3 data type) lists the files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from smspark_assets.environment import split_s3_uri
from smspark_assets.spark_jobs.storage import location
from smspark_assets.sagemaker import recordio
from smspark_assets.sagemaker.serializers import (
    CSVSerializer, LibSVMSerializer, SerializedRecords, densify, features_from_arrow, labels_from_arrow,
)

__all__ = ["ChannelWriteResult", "write_recordio_channel", "write_libsvm_channel", "write_csv_channel",
           "encode_arrow_batch", "read_recordio_channel", "DEFAULT_TARGET_FILE_BYTES"]

DEFAULT_TARGET_FILE_BYTES = 64 * 1024 * 1024
_RESULT_SCHEMA = "file string, records long, bytes long"


@dataclass
class ChannelWriteResult:
    """What a channel writer wrote: the channel prefix, its files (``s3://`` URIs), counts and timing."""

    uri: str
    content_type: str
    files: list[str] = field(default_factory=list)
    records: int = 0
    bytes: int = 0
    manifest_uri: str | None = None
    seconds: float = 0.0

    @property
    def s3_data_type(self) -> str:
        return "ManifestFile" if self.manifest_uri else "S3Prefix"

    def metadata(self) -> dict[str, Any]:
        """Materialization metadata for the asset that wrote the channel."""
        return {"uri": self.manifest_uri or self.uri, "content_type": self.content_type,
                "files": len(self.files),
                "records": self.records, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.records / self.seconds, 1) if self.seconds else None}


# --------------------------------------------------------------------------------------------------
# Arrow batch -> serialized records (runs inside the Spark tasks)
# --------------------------------------------------------------------------------------------------


def _merge_frames(n: int, parts: list[tuple[np.ndarray, SerializedRecords]]) -> tuple[np.ndarray, np.ndarray]:
    """Interleave separately encoded row subsets back into row order (frames are independent)."""
    sizes = np.zeros(n, dtype=np.int64)
    for rows, enc in parts:
        sizes[rows] = np.diff(enc.offsets)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    for rows, enc in parts:
        out[recordio._segment_positions(offsets[rows], sizes[rows])] = enc.data
    return out, offsets


def encode_arrow_batch(batch: pa.RecordBatch, fmt: str, features_col: str, label_col: str | None,
                       index_base: int = 1) -> SerializedRecords:
    """One Arrow record batch -> serialized training records in ``fmt`` (recordio | libsvm | csv)."""
    column = batch.column(batch.schema.get_field_index(features_col))
    labels = None
    if label_col is not None:
        labels = labels_from_arrow(batch.column(batch.schema.get_field_index(label_col)))
    if fmt == "recordio":
        label_map = {"values": labels.astype(np.float32)} if labels is not None else None
        n = len(column)
        if pa.types.is_struct(column.type):
            kinds = column.field("type").to_numpy(zero_copy_only=False)
            if n and (kinds == 0).any() and (kinds == 1).any():
                # Spark's writer keeps dense rows dense and sparse rows sparse: encode each kind, then
                # put the frames back in row order.
                parts = []
                for kind in (0, 1):
                    rows = np.flatnonzero(kinds == kind)
                    sub_labels = {"values": label_map["values"][rows]} if label_map else None
                    feats = features_from_arrow(column.take(pa.array(rows)), "float32")
                    tensor = feats if isinstance(feats, recordio.Sparse) else recordio.Dense(feats)
                    enc = recordio.encode_frames(rows.size, {"values": tensor}, sub_labels)
                    parts.append((rows, enc))
                data, offsets = _merge_frames(n, parts)
                return SerializedRecords(data, offsets, recordio.CONTENT_TYPE)
        feats = features_from_arrow(column, "float32")
        tensor = feats if isinstance(feats, recordio.Sparse) else recordio.Dense(feats)
        enc = recordio.encode_frames(n, {"values": tensor}, label_map)
        return SerializedRecords(enc.data, enc.offsets, recordio.CONTENT_TYPE)
    feats = features_from_arrow(column)
    if fmt == "libsvm":
        return LibSVMSerializer(index_base).serialize(feats, labels)
    if fmt == "csv":
        if isinstance(feats, recordio.Sparse):
            feats = densify(feats)
        if labels is not None:
            feats = np.hstack([labels.reshape(-1, 1).astype(np.float64), feats.astype(np.float64)])
        return CSVSerializer().serialize(feats)
    raise ValueError(f"unknown channel format {fmt!r}; allowed: recordio, libsvm, csv")


class _PartFiles:
    """Streams serialized records into ``part-<partition>-<seq>.<ext>`` files cut near a target size."""

    def __init__(self, fs: pafs.FileSystem, base: str, partition: int, ext: str, target: int) -> None:
        self.fs, self.base, self.partition, self.ext, self.target = fs, base, partition, ext, target
        self.seq = 0
        self.stream = None
        self.name = ""
        self.size = 0
        self.records = 0
        self.done: list[tuple[str, int, int]] = []

    def _open(self) -> None:
        self.name = f"part-{self.partition:05d}-{self.seq:04d}.{self.ext}"
        self.seq += 1
        self.stream = self.fs.open_output_stream(f"{self.base}/{self.name}")
        self.size = self.records = 0

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.done.append((self.name, self.records, self.size))
            self.stream = None

    def write(self, recs: SerializedRecords) -> None:
        offsets = recs.offsets
        start, n = 0, len(recs)
        while start < n:
            if self.stream is None:
                self._open()
            room = self.target - self.size
            stop = int(np.searchsorted(offsets, offsets[start] + room, side="right")) - 1
            if stop <= start:
                if self.size:  # the next record does not fit: start a new file
                    self.close()
                    continue
                stop = start + 1  # a record larger than the target goes alone
            stop = min(stop, n)
            self.stream.write(memoryview(recs.data[int(offsets[start]):int(offsets[stop])]))
            self.size += int(offsets[stop] - offsets[start])
            self.records += stop - start
            start = stop
            if self.size >= self.target:
                self.close()


PartitionFn = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def _partition_writer(base: str, fmt: str, ext: str, features_col: str, label_col: str | None,
                      target: int, index_base: int) -> PartitionFn:
    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        partition = ctx.partitionId() if ctx is not None else 0
        fs, root = pafs.FileSystem.from_uri(base)
        files = _PartFiles(fs, root, partition, ext, target)
        try:
            for batch in batches:
                if batch.num_rows:
                    files.write(encode_arrow_batch(batch, fmt, features_col, label_col, index_base))
        finally:
            files.close()
        yield pa.RecordBatch.from_pydict(
            {"file": [d[0] for d in files.done], "records": [d[1] for d in files.done],
             "bytes": [d[2] for d in files.done]},
            schema=pa.schema([("file", pa.string()), ("records", pa.int64()), ("bytes", pa.int64())]))

    return write_partition


def _filesystem_target(output_uri: str) -> str:
    target = location(output_uri.rstrip("/"))
    if "://" not in target:
        target = "file://" + target if target.startswith("/") else target
    return target


def _write_channel(df, output_uri: str, fmt: str, ext: str, content_type: str, features_col: str,
                   label_col: str | None, target_file_bytes: int, manifest: bool | str, index_base: int = 1,
                   overwrite: bool = True) -> ChannelWriteResult:
    _, key = split_s3_uri(output_uri)  # refuses anything but s3:// URIs, naming the expected form
    if not key.strip("/"):
        raise ValueError(f"a channel needs a prefix below the bucket, got {output_uri!r} "
                         "(overwriting would empty the whole bucket)")
    if target_file_bytes < 1:
        raise ValueError(f"target_file_bytes must be positive, got {target_file_bytes}")
    cols = [features_col] + ([label_col] if label_col else [])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the DataFrame; it has {df.columns}")
    started = time.perf_counter()
    target = _filesystem_target(output_uri)
    fs, root = pafs.FileSystem.from_uri(target)
    if overwrite:
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.Directory:
            fs.delete_dir_contents(root)
    fs.create_dir(root, recursive=True)
    writer = _partition_writer(target, fmt, ext, features_col, label_col, int(target_file_bytes), index_base)
    rows = df.select(*cols).mapInArrow(writer, _RESULT_SCHEMA).collect()
    rows = sorted(rows, key=lambda r: r["file"])
    prefix = output_uri.rstrip("/")
    result = ChannelWriteResult(
        uri=prefix + "/", content_type=content_type, files=[f"{prefix}/{r['file']}" for r in rows],
        records=sum(r["records"] for r in rows), bytes=sum(r["bytes"] for r in rows))
    if manifest:
        manifest_uri = manifest if isinstance(manifest, str) else prefix + ".manifest"
        split_s3_uri(manifest_uri)
        body = json.dumps([{"prefix": prefix + "/"}] + [r["file"] for r in rows]).encode()
        mtarget = _filesystem_target(manifest_uri)
        mfs, mpath = pafs.FileSystem.from_uri(mtarget)
        mfs.create_dir(mpath.rsplit("/", 1)[0], recursive=True)
        with mfs.open_output_stream(mpath) as out:
            out.write(body)
        result.manifest_uri = manifest_uri
    result.seconds = time.perf_counter() - started
    return result


def write_recordio_channel(df, output_uri: str, features_col: str = "features", label_col: str | None = None,
                           target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES, manifest: bool | str = False,
                           overwrite: bool = True) -> ChannelWriteResult:
    """Write ``df`` as recordIO-protobuf ``.pbr`` part files under ``output_uri`` (an ``s3://`` prefix).

    ``manifest=True`` also writes ``<output_uri>.manifest`` (or pass the manifest's URI); the channel is then
    used with ``S3DataType=ManifestFile``. ``overwrite`` empties the prefix first, so stale parts of an
    earlier run never join the channel.
    """
    return _write_channel(df, output_uri, "recordio", "pbr", recordio.CONTENT_TYPE, features_col, label_col,
                          target_file_bytes, manifest, overwrite=overwrite)


def write_libsvm_channel(df, output_uri: str, features_col: str = "features", label_col: str | None = "label",
                         target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES, manifest: bool | str = False,
                         index_base: int = 1, overwrite: bool = True) -> ChannelWriteResult:
    """Write ``df`` as libsvm text (``<label> <i>:<v> ...``, ``index_base`` 1 unless told otherwise)."""
    if index_base not in (0, 1):
        raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
    return _write_channel(df, output_uri, "libsvm", "libsvm", "text/libsvm", features_col, label_col,
                          target_file_bytes, manifest, index_base=index_base, overwrite=overwrite)


def write_csv_channel(df, output_uri: str, features_col: str = "features", label_col: str | None = "label",
                      target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES, manifest: bool | str = False,
                      overwrite: bool = True) -> ChannelWriteResult:
    """Write ``df`` as headerless CSV, the label (when given) in the first column."""
    return _write_channel(df, output_uri, "csv", "csv", "text/csv", features_col, label_col,
                          target_file_bytes, manifest, overwrite=overwrite)


def read_recordio_channel(result_or_uri: ChannelWriteResult | str,
                          filesystem: pafs.FileSystem | None = None) -> recordio.DecodedRecords:
    """Decode every ``.pbr`` file of a channel, in file-name order (partition, then sequence).

    ``filesystem``: pyarrow's S3 filesystem of the platform's store (outside a job, e.g. in an asset);
    without it the URI is opened as a job opens it (EMRFS, or the embedded EMR's files).
    """
    uri = result_or_uri.uri if isinstance(result_or_uri, ChannelWriteResult) else result_or_uri
    if filesystem is not None:
        bucket, key = split_s3_uri(uri.rstrip("/"))
        fs, root = filesystem, f"{bucket}/{key}"
    else:
        fs, root = pafs.FileSystem.from_uri(_filesystem_target(uri))
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    paths = sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".pbr"))
    chunks = []
    for path in paths:
        with fs.open_input_stream(path) as f:
            chunks.append(f.read())
    return recordio.decode(b"".join(chunks))
