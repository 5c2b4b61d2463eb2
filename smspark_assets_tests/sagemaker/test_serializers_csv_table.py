"""The shared CSV serializer's Arrow-table path (what the scoring job sends): bytes, offsets, errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from smspark_assets.sagemaker.batching import plan_batches
from smspark_assets.sagemaker.serializers import CSV, CSVSerializer

# The table below and the exact bytes the scoring job's own CSV writer sent before it moved into the
# shared serializer (recorded from that writer): the move must not change a byte on the wire.
_GOLDEN_TABLE = pa.table({
    "f64": pa.array([0.1, 1 / 3, -2.5e-8, 1e20, None, float("nan"), 123456789.0, -0.0], pa.float64()),
    "f32": pa.array([0.1, 1.5, None, 3.4028235e38, 1e-45, 7.0, -1.25, 0.2], pa.float32()),
    "i64": pa.array([0, -1, 2**40, None, 7, -9223372036854775808, 42, 3], pa.int64()),
    "i8": pa.array([1, None, -128, 127, 0, 5, 6, 7], pa.int8()),
    "flag": pa.array([True, False, None, True, False, True, True, None], pa.bool_()),
})
_GOLDEN_BODY = (
    b"0.1,0.1,0,1,1\n0.33333334,1.5,-1,,0\n-2.5e-8,,1099511627776,-128,\n1e+20,3.4028235e+38,,127,1\n"
    b",1e-45,7,0,0\nnan,7,-9223372036854775808,5,1\n123456790,-1.25,42,6,1\n-0,0.2,3,7,\n"
)
_GOLDEN_ENDS = [14, 35, 64, 91, 104, 135, 158, 170]


def test_table_path_sends_the_same_bytes_as_the_scoring_jobs_former_writer() -> None:
    records = CSVSerializer().serialize_table(_GOLDEN_TABLE, ["f64", "f32", "i64", "i8", "flag"])
    assert records.content_type == CSV
    assert records.body() == _GOLDEN_BODY
    assert records.offsets.tolist() == [0, *_GOLDEN_ENDS]
    assert records.offsets.dtype == np.int64 and len(records) == _GOLDEN_TABLE.num_rows
    # Floats as float32 shortest form, booleans as 0/1, nulls as empty cells:
    assert records.body(1, 2) == b"0.33333334,1.5,-1,,0\n"
    assert records.body(4, 5) == b",1e-45,7,0,0\n"


def test_table_path_column_order_and_record_batches() -> None:
    batch = _GOLDEN_TABLE.to_batches()[0]
    records = CSVSerializer().serialize_table(batch, ["flag", "i8"])
    assert records.body() == b"1,1\n0,\n,-128\n1,127\n0,0\n1,5\n1,6\n,7\n"


def test_table_path_float32_round_trip_and_missing_values() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=n) * 10.0 ** rng.integers(-6, 8, n)
    y = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    table = pa.table({"x": x, "y": pa.array(y, from_pandas=True), "k": rng.integers(-50, 50, n)})
    records = CSVSerializer().serialize_table(table, ["x", "y", "k"])
    body = records.body()
    # Parsed straight to float32, the shortest forms give back exactly the float32 of every double.
    parsed = pacsv.read_csv(pa.py_buffer(body), read_options=pacsv.ReadOptions(column_names=["x", "y", "k"]),
                            convert_options=pacsv.ConvertOptions(column_types={"x": pa.float32(),
                                                                               "y": pa.float32()}))
    np.testing.assert_array_equal(parsed.column("x").to_numpy(), x.astype(np.float32))
    assert parsed.column("y").null_count == int(np.isnan(y).sum())  # missing stays missing (empty cell)
    y_back = parsed.column("y").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(np.isnan(y_back), np.isnan(y))
    np.testing.assert_array_equal(y_back[~np.isnan(y)], y[~np.isnan(y)].astype(np.float32))
    np.testing.assert_array_equal(parsed.column("k").to_numpy(), table.column("k").to_numpy())
    # Offsets are the record boundaries: every record is one line.
    sizes = records.record_sizes
    lines = body.split(b"\n")[:-1]
    assert sizes.tolist() == [len(ln) + 1 for ln in lines]


def test_table_path_records_feed_the_shared_planner() -> None:
    table = pa.table({"x": np.arange(1000, dtype=np.float64)})
    records = CSVSerializer().serialize_table(table, ["x"])
    bounds = plan_batches(records, 500)
    assert bounds[0] == 0 and bounds[-1] == 1000
    bodies = [records.body(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    assert all(len(b) <= 500 for b in bodies)
    assert b"".join(bodies) == records.body()


def test_table_path_empty_table() -> None:
    records = CSVSerializer().serialize_table(_GOLDEN_TABLE.slice(0, 0), ["f64"])
    assert len(records) == 0 and records.body() == b""


def test_table_path_refuses_bad_columns() -> None:
    with pytest.raises(ValueError, match=r"feature column 's' has type string; text/csv carries numeric"):
        CSVSerializer().serialize_table(pa.table({"s": ["a", "b"]}), ["s"])
    with pytest.raises(ValueError, match=r"feature column\(s\) \['nope'\] not in the table; available: \['f64'"):
        CSVSerializer().serialize_table(_GOLDEN_TABLE, ["f64", "nope"])
    with pytest.raises(ValueError, match="at least one feature column"):
        CSVSerializer().serialize_table(_GOLDEN_TABLE, [])
