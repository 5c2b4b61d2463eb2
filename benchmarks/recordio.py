"""RecordIO-protobuf codec benchmark: the vectorized codec against record-by-record protobuf (the SDK's way).

Run: ``.venv/bin/python benchmarks/recordio.py`` (``--rows``, ``--baseline-rows``, ``--repeats`` to change the
sizes). In one run, on the same data:

* dense: 1,000,000 x 100 float32 rows with float32 labels;
* sparse: 1,000,000 x 10,000 float32 rows at 0.2 % density (about 20 entries per row), with labels.

Ours: ``recordio.encode_dense_frames`` / ``encode_csr_frames`` (the whole stream in one buffer, as the channel
writer and the request batcher use it; turning it into a ``bytes`` object, one more copy, is printed
separately) and ``recordio.decode`` (whose columns hold values, keys and offsets as NumPy arrays; they are
checked against the input after the timing).

Baseline: the SageMaker Python SDK's method with the official ``protobuf`` runtime (upb), record by
record: ``Record.Clear()``, ``values.extend(row.tolist())``, ``SerializeToString()``, RecordIO framing. This
is a tuned version (plain slices, ``tolist()``) and the ratios use it; the SDK's writers as they are
(``write_numpy_to_dense_tensor`` extends from NumPy rows, ``write_spmatrix_to_sparse_tensor`` calls
``getrow`` per row) are slower and printed for reference. Decoding walks the frames and calls
``ParseFromString`` per record ("parse only", what the SDK's ``read_records`` does), then copies each
record's values into NumPy ("parse + numbers": the same output as ours; the ratios use this one). The
baseline runs on the first ``--baseline-rows`` rows and is extrapolated per row to the full size (printed
as such).

Times are CPU seconds of this process (``time.process_time``; all the code is single-threaded), best of
``--repeats`` rounds in which ours and the baseline alternate. On a shared machine wall-clock figures
swing with the other load, so the wall times of our runs and the load average are printed too.

Targets (issue 3): dense encode >= 20x the baseline and >= 1 GB/s; dense decode >= 10x; sparse encode and
decode >= 10x.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smspark_assets.sagemaker import recordio  # noqa: E402


# Seconds of CPU time of this process (single-threaded code: the time it would take on an idle core).
# Shared machines make wall-clock figures swing with other load; both are printed, ratios use CPU time.
clock = time.process_time
WALL: dict[str, float] = {}


def best_of(fn: Callable[[], object], repeats: int, name: str = "") -> tuple[float, object]:
    best, result, wall = float("inf"), None, float("inf")
    for _ in range(repeats):
        t0, w0 = clock(), time.perf_counter()
        result = fn()
        best = min(best, clock() - t0)
        wall = min(wall, time.perf_counter() - w0)
    if name:
        WALL[name] = min(wall, WALL.get(name, float("inf")))
    return best, result


def make_dense(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((n, k), dtype=np.float32), rng.integers(0, 2, n).astype(np.float32)


def make_sparse(n: int, n_cols: int, density: float, rng: np.random.Generator):
    counts = rng.binomial(n_cols, density, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    # Sorted, distinct column indices per row (as a CSR matrix holds them): draw, sort per row by offsetting.
    raw = rng.integers(0, n_cols, nnz)
    row_of = np.repeat(np.arange(n), counts)
    order = np.lexsort((raw, row_of))
    indices = raw[order]
    data = rng.standard_normal(nnz, dtype=np.float32)
    labels = rng.integers(0, 2, n).astype(np.float32)
    return data, indices, indptr, labels


def _frame_into(f: io.BytesIO, payload: bytes) -> None:
    # _write_recordio of the SDK: magic, length, payload, zero padding to 4 bytes
    f.write(struct.pack("I", recordio.MAGIC))
    f.write(struct.pack("I", len(payload)))
    f.write(payload)
    f.write(b"\0" * ((((len(payload) + 3) >> 2) << 2) - len(payload)))


def sdk_method_dense(record_cls, array: np.ndarray, labels: np.ndarray) -> bytes:
    """``write_numpy_to_dense_tensor`` step for step: ``extend`` from the NumPy row, per-row ``Clear``."""
    f = io.BytesIO()
    record = record_cls()
    for index, vector in enumerate(array):
        record.Clear()
        record.features["values"].float32_tensor.values.extend(vector)
        record.label["values"].float32_tensor.values.extend([labels[index]])
        _frame_into(f, record.SerializeToString())
    return f.getvalue()


def sdk_method_sparse(record_cls, matrix, labels: np.ndarray) -> bytes:
    """``write_spmatrix_to_sparse_tensor`` step for step: ``getrow`` per row, keys as uint64, shape last."""
    f = io.BytesIO()
    csr = matrix.tocsr()
    n_rows, n_cols = csr.shape
    record = record_cls()
    for row_idx in range(n_rows):
        record.Clear()
        row = csr.getrow(row_idx)
        record.features["values"].float32_tensor.values.extend(row.data)
        record.features["values"].float32_tensor.keys.extend(row.indices.astype(np.uint64))
        record.label["values"].float32_tensor.values.extend([labels[row_idx]])
        record.features["values"].float32_tensor.shape.extend([n_cols])
        _frame_into(f, record.SerializeToString())
    return f.getvalue()


def baseline_decode(record_cls, data: bytes, sparse: bool) -> tuple[float, float]:
    """(seconds parse only, seconds parse + values into NumPy) for a stream, record by record."""
    mv = memoryview(data)
    t0 = clock()
    records = []
    pos, size = 0, len(data)
    while pos < size:
        magic, length = struct.unpack_from("<II", data, pos)
        assert magic == recordio.MAGIC
        rec = record_cls()
        rec.ParseFromString(mv[pos + 8:pos + 8 + length])
        records.append(rec)
        pos += 8 + length + (-length) % 4
    parse = clock() - t0
    t1 = clock()
    rows, keys, labels = [], [], []
    for rec in records:
        t = rec.features["values"].float32_tensor
        rows.append(np.array(t.values, dtype=np.float32))
        if sparse:
            keys.append(np.array(t.keys, dtype=np.int64))
        labels.append(rec.label["values"].float32_tensor.values[0])
    if sparse:
        np.concatenate(rows), np.concatenate(keys)
    else:
        np.vstack(rows)
    np.asarray(labels, dtype=np.float32)
    return parse, parse + clock() - t1


def line(name: str, rows: int, seconds: float, nbytes: int, note: str = "") -> None:
    wall = f"(wall {WALL[name]:.3f} s)" if name in WALL else ""
    print(f"  {name:<44} {rows / seconds:>14,.0f} rows/s {nbytes / seconds / 1e6:>10,.1f} MB/s "
          f"{seconds:>9.3f} s cpu {wall}{note}")


def verdict(name: str, ratio: float, target: float, extra: str = "") -> bool:
    ok = ratio >= target
    print(f"  {name:<44} {ratio:>8.1f}x   (target >= {target:g}x) {'MET' if ok else 'NOT MET'} {extra}")
    return ok


def run_case(title: str, rows: int, baseline_rows: int, repeats: int, encode: Callable, encode_base: Callable,
             encode_sdk: Callable, decode_check: Callable, sparse: bool, record_cls,
             targets: dict[str, float],
             min_gbps: float | None = None) -> list[bool]:
    print(f"\n== {title} ==")
    WALL.clear()
    # Ours and the baseline alternate, best of ``repeats`` each: both see the same machine load.
    t_enc = t_dec = t_base_enc = t_sdk_enc = t_base_parse = t_base_dec = float("inf")
    t_bytes = 0.0
    for attempt in range(repeats):
        t, enc = best_of(encode, 1, "ours: encode (stream buffer)")
        t_enc = min(t_enc, t)
        nbytes = enc.nbytes
        if attempt == 0:
            t_bytes, data = best_of(enc.tobytes, 1)
        del enc
        t, decoded = best_of(lambda: recordio.decode(data), 1, "ours: decode + numbers")
        t_dec = min(t_dec, t)
        if attempt == 0:
            decode_check(decoded)
        del decoded
        # Baseline on a prefix, extrapolated per row.
        t0 = clock()
        base_bytes = encode_base()
        t_base_enc = min(t_base_enc, clock() - t0)
        t0 = clock()
        sdk_bytes = encode_sdk()
        t_sdk_enc = min(t_sdk_enc, clock() - t0)
        if attempt == 0:
            assert base_bytes == data[:len(base_bytes)], "baseline and codec bytes differ"
            assert sdk_bytes == base_bytes, "the SDK method and the tuned baseline give different bytes"
        parse, dec = baseline_decode(record_cls, base_bytes, sparse)
        t_base_parse, t_base_dec = min(t_base_parse, parse), min(t_base_dec, dec)
    scale = rows / baseline_rows
    line("ours: encode (stream buffer)", rows, t_enc, nbytes)
    line("ours: encode + bytes() copy", rows, t_enc + t_bytes, nbytes)
    line("ours: decode + numbers", rows, t_dec, nbytes)
    note = f"(measured on {baseline_rows:,} rows, x{scale:g})"
    line("baseline: encode record by record (tuned)", rows, t_base_enc * scale, nbytes, note)
    line("baseline: encode, the SDK's writer as is", rows, t_sdk_enc * scale, nbytes, note)
    line("baseline: decode, parse only", rows, t_base_parse * scale, nbytes, note)
    line("baseline: decode, parse + numbers", rows, t_base_dec * scale, nbytes, note)
    print(f"  stream: {nbytes / 1e6:,.1f} MB for {rows:,} records")
    results = []
    gbps = nbytes / t_enc / 1e9  # per CPU second; the wall figure is printed above
    results.append(verdict("encode vs tuned baseline", t_base_enc * scale / t_enc, targets["encode"],
                           f"[{gbps:.2f} GB/s]"))
    print(f"  {'encode vs the SDK writer as is':<44} {t_sdk_enc * scale / t_enc:>8.1f}x   (for reference)")
    if min_gbps is not None:
        ok = gbps >= min_gbps
        print(f"  {'encode throughput':<44} {gbps:>8.2f} GB/s (target >= {min_gbps:g} GB/s) "
              f"{'MET' if ok else 'NOT MET'}")
        results.append(ok)
    results.append(verdict("decode vs baseline (parse + numbers)", t_base_dec * scale / t_dec,
                           targets["decode"]))
    print(f"  {'decode vs baseline (parse only)':<44} {t_base_parse * scale / t_dec:>8.1f}x   "
          "(for reference)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--sparse-cols", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=0.002)
    args = parser.parse_args()
    base_rows = min(args.baseline_rows, args.rows)
    record_cls = recordio.protobuf_record_class()
    rng = np.random.default_rng(2026)
    print(f"recordio benchmark: numpy {np.__version__}, protobuf runtime "
          f"{__import__('google.protobuf').protobuf.__version__}, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")

    x, y = make_dense(args.rows, args.features, rng)

    def check_dense(dec: recordio.DecodedRecords) -> None:
        assert np.array_equal(dec.features["values"].to_dense(), x)
        assert np.array_equal(dec.label["values"].scalars(), y)

    ok = run_case(
        f"dense: {args.rows:,} x {args.features} float32 + float32 labels", args.rows, base_rows,
        args.repeats,
        encode=lambda: recordio.encode_dense_frames(x, y),
        encode_base=lambda: recordio.sdk_style_encode(record_cls, x[:base_rows], y[:base_rows]),
        encode_sdk=lambda: sdk_method_dense(record_cls, x[:base_rows], y[:base_rows]),
        decode_check=check_dense, sparse=False, record_cls=record_cls,
        targets={"encode": 20, "decode": 10}, min_gbps=1.0)

    data, indices, indptr, labels = make_sparse(args.rows, args.sparse_cols, args.density, rng)
    print(f"\n(sparse: {indptr[-1]:,} non-zeros, {indptr[-1] / args.rows:.1f} per row)")

    def check_sparse(dec: recordio.DecodedRecords) -> None:
        d, i, p, width = dec.features["values"].to_csr(args.sparse_cols)
        assert np.array_equal(p, indptr) and np.array_equal(i, indices) and np.array_equal(d, data)
        assert np.array_equal(dec.label["values"].scalars(), labels)

    sub = base_rows
    ok += run_case(
        f"sparse: {args.rows:,} x {args.sparse_cols:,} float32 at {args.density:.1%} + labels", args.rows,
        base_rows, args.repeats,
        encode=lambda: recordio.encode_csr_frames(data, indices, indptr, args.sparse_cols, labels),
        encode_base=lambda: recordio.sdk_style_encode(
            record_cls, (data, indices, indptr[:sub + 1], args.sparse_cols), labels[:sub], sparse=True),
        encode_sdk=lambda: sdk_method_sparse(
            record_cls, sp.csr_matrix((data[:indptr[sub]], indices[:indptr[sub]], indptr[:sub + 1]),
                                      shape=(sub, args.sparse_cols)), labels[:sub]),
        decode_check=check_sparse, sparse=True, record_cls=record_cls,
        targets={"encode": 10, "decode": 10})
    print(f"\n{sum(ok)} of {len(ok)} targets met")


if __name__ == "__main__":
    main()
