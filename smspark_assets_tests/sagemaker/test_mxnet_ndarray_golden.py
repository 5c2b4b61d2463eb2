"""The MXNet NDArray file codec against byte fixtures written by hand from the format's tables.

Every fixture below is spelled out byte by byte from ``reference/sagemaker_artifacts.md`` Part 1
(list header, V2/V1/V0/V3 records, sparse records and the zero-size storage-shape trap); the
96-byte file is the reference's worked example, which MXNet 1.9.1 wrote for
``mx.nd.save(f, [mx.nd.array(np.arange(6).reshape(2, 3))])``. None of them comes from the writer
under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from smspark_assets.sagemaker import mxnet_ndarray
from smspark_assets.sagemaker.mxnet_ndarray import NDArrayFormatError

pytestmark = pytest.mark.timeout(30)


def hexbytes(text: str) -> bytes:
    """Bytes from a hex dump with spaces, ``|`` separators and ``#`` comments."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex(" ".join(lines).replace("|", " "))


U64 = {n: f"{n:02x} 00 00 00 00 00 00 00" for n in range(8)}
CTX_CPU_F32 = "01 00 00 00 | 00 00 00 00 | 00 00 00 00"  # dev_type 1, dev_id 0, type flag 0 (float32)

WORKED_EXAMPLE = hexbytes(f"""
12 01 00 00 00 00 00 00 | {U64[0]} | {U64[1]}      # list magic, reserved, N = 1
c9 fa 93 f9 | 00 00 00 00 | 02 00 00 00 | {U64[2]} | {U64[3]}   # V2, dense, ndim 2, (2, 3)
{CTX_CPU_F32}
00 00 00 00 00 00 80 3f 00 00 00 40 00 00 40 40 00 00 80 40 00 00 a0 40   # 0..5 as float32
{U64[0]}                                            # M = 0 names
""")

# {"w": float64 [[1.5, -2.0]], "b": int32 [7]}: two V2 records, then M = 2 names "w", "b".
NAMED = hexbytes(f"""
12 01 00 00 00 00 00 00 | {U64[0]} | {U64[2]}
c9 fa 93 f9 | 00 00 00 00 | 02 00 00 00 | {U64[1]} | {U64[2]} | 01 00 00 00 | 00 00 00 00 | 01 00 00 00
00 00 00 00 00 00 f8 3f | 00 00 00 00 00 00 00 c0
c9 fa 93 f9 | 00 00 00 00 | 01 00 00 00 | {U64[1]} | 01 00 00 00 | 00 00 00 00 | 04 00 00 00
07 00 00 00
{U64[2]} | {U64[1]} 77 | {U64[1]} 62
""")


def test_worked_example_reads_and_writes_byte_for_byte() -> None:
    assert len(WORKED_EXAMPLE) == 96
    (array,) = mxnet_ndarray.loads(WORKED_EXAMPLE)
    np.testing.assert_array_equal(array, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert array.dtype == np.float32
    assert mxnet_ndarray.dumps([np.arange(6, dtype=np.float32).reshape(2, 3)]) == WORKED_EXAMPLE
    assert mxnet_ndarray.is_ndarray_file(WORKED_EXAMPLE)


def test_named_arrays_read_as_a_dict_in_file_order_and_write_identically() -> None:
    loaded = mxnet_ndarray.loads(NAMED)
    assert isinstance(loaded, dict) and list(loaded) == ["w", "b"]
    assert loaded["w"].dtype == np.float64 and loaded["w"].tolist() == [[1.5, -2.0]]
    assert loaded["b"].dtype == np.int32 and loaded["b"].tolist() == [7]
    out = mxnet_ndarray.dumps({"w": np.array([[1.5, -2.0]]), "b": np.array([7], dtype=np.int32)})
    assert out == NAMED


def test_reserved_field_is_ignored() -> None:
    patched = WORKED_EXAMPLE[:8] + bytes([7]) + WORKED_EXAMPLE[9:]
    (array,) = mxnet_ndarray.loads(patched)
    assert array.shape == (2, 3)


@pytest.mark.parametrize(("record", "expected"), [
    # V1: magic, uint32 ndim, int64 dims, ctx, type flag, data.
    (f"c8 fa 93 f9 | 01 00 00 00 | {U64[2]} | {CTX_CPU_F32} | 00 00 80 3f 00 00 00 40", [1.0, 2.0]),
    # Legacy V0: no magic, uint32 ndim, uint32 dims.
    (f"01 00 00 00 | 02 00 00 00 | {CTX_CPU_F32} | 00 00 80 3f 00 00 00 40", [1.0, 2.0]),
    # V3 0-d scalar (npx.save): ndim 0 holds one element.
    (f"ca fa 93 f9 | 00 00 00 00 | 00 00 00 00 | {CTX_CPU_F32} | 00 00 60 40", 3.5),
    # GPU context (dev_type 2) reads the same.
    (f"c9 fa 93 f9 | 00 00 00 00 | 01 00 00 00 | {U64[1]} | 02 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 80 bf",
     [-1.0]),
])
def test_older_and_newer_record_versions_are_read(record: str, expected: object) -> None:
    data = hexbytes(f"12 01 00 00 00 00 00 00 | {U64[0]} | {U64[1]} | {record} | {U64[0]}")
    (array,) = mxnet_ndarray.loads(data)
    assert array.tolist() == expected


def test_row_sparse_with_zero_size_storage_shape_is_densified() -> None:
    # [[0, 1.5], [0, 0], [2, 3]].tostype("row_sparse"): storage shape written as (0, 2), rows 0 and 2.
    data = hexbytes(f"""
    12 01 00 00 00 00 00 00 | {U64[0]} | {U64[1]}
    c9 fa 93 f9 | 01 00 00 00 | 02 00 00 00 | {U64[0]} | {U64[2]}    # row_sparse, storage shape (0, 2)
    02 00 00 00 | {U64[3]} | {U64[2]} | {CTX_CPU_F32}                  # shape (3, 2), cpu, float32
    06 00 00 00 | 01 00 00 00 | {U64[2]}                               # aux idx: int64, shape (2,)
    00 00 00 00 00 00 c0 3f 00 00 00 40 00 00 40 40                    # data rows (0, 1.5), (2, 3)
    {U64[0]} | {U64[2]}                                                # idx 0, 2
    {U64[0]}
    """)
    (array,) = mxnet_ndarray.loads(data)
    assert array.tolist() == [[0.0, 1.5], [0.0, 0.0], [2.0, 3.0]]


def test_csr_with_zero_size_storage_shape_is_densified() -> None:
    data = hexbytes(f"""
    12 01 00 00 00 00 00 00 | {U64[0]} | {U64[1]}
    c9 fa 93 f9 | 02 00 00 00 | 01 00 00 00 | {U64[0]}                 # csr, storage shape (0,)
    02 00 00 00 | {U64[3]} | {U64[2]} | {CTX_CPU_F32}
    06 00 00 00 | 01 00 00 00 | {U64[4]}                               # indptr int64 (4,)
    06 00 00 00 | 01 00 00 00 | {U64[3]}                               # indices int64 (3,)
    00 00 c0 3f 00 00 00 40 00 00 40 40                                # 1.5, 2, 3
    {U64[0]} {U64[1]} {U64[1]} {U64[3]}                                # indptr
    {U64[1]} {U64[0]} {U64[1]}                                         # indices
    {U64[0]}
    """)
    (array,) = mxnet_ndarray.loads(data)
    assert array.tolist() == [[0.0, 1.5], [0.0, 0.0], [2.0, 3.0]]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool",
                                   "int16", "uint16", "uint32", "uint64"])
def test_round_trip_every_dtype(dtype: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    back = mxnet_ndarray.loads(mxnet_ndarray.dumps({"a": array, "ü": array[:1]}))
    assert isinstance(back, dict)
    assert back["a"].dtype == np.dtype(dtype) and np.array_equal(back["a"], array)
    assert np.array_equal(back["ü"], array[:1])


def test_writer_details() -> None:
    # A 0-d array is stored as (1,): V2 reads ndim 0 as an empty handle.
    (scalar,) = mxnet_ndarray.loads(mxnet_ndarray.dumps([np.float32(2.5)]))
    assert scalar.shape == (1,) and scalar[0] == 2.5
    # Non-contiguous and big-endian input is written as C-order little-endian.
    source = np.arange(12, dtype=">f8").reshape(3, 4).T
    (back,) = mxnet_ndarray.loads(mxnet_ndarray.dumps([source]))
    np.testing.assert_array_equal(back, source)
    empty = mxnet_ndarray.loads(mxnet_ndarray.dumps([np.zeros((0, 3), dtype=np.float32)]))
    assert empty[0].shape == (0, 3)
    assert mxnet_ndarray.loads(mxnet_ndarray.dumps([])) == []
    with pytest.raises(TypeError, match="complex"):
        mxnet_ndarray.dumps([np.zeros(2, dtype=np.complex64)])


@pytest.mark.parametrize(("data", "offset", "fragment"), [
    (b"PK\x03\x04" + bytes(20), 0, "zip archive"),
    (WORKED_EXAMPLE[:7], 0, "truncated"),
    (WORKED_EXAMPLE[:70], 64, "truncated: array 0 data"),  # data starts at byte 64, 24 bytes needed
    (WORKED_EXAMPLE[:24] + b"\x00\x00\x00\x80" + WORKED_EXAMPLE[28:], 24, "unknown record magic 0x80000000"),
    (WORKED_EXAMPLE[:28] + b"\x05\x00\x00\x00" + WORKED_EXAMPLE[32:], 28, "unknown storage type 5"),
    (WORKED_EXAMPLE[:32] + b"\x00\x00\x00\x00" + WORKED_EXAMPLE[36:], 32, "is an empty"),
    (WORKED_EXAMPLE[:60] + b"\x0c\x00\x00\x00" + WORKED_EXAMPLE[64:], 60, "bfloat16"),
    (WORKED_EXAMPLE[:60] + b"\x63\x00\x00\x00" + WORKED_EXAMPLE[64:], 60, "type flag 99"),
    (WORKED_EXAMPLE[:88] + bytes.fromhex(U64[3]), 88, "3 names for 1 arrays"),
    (WORKED_EXAMPLE + b"\x00", 96, "unexpected bytes"),
    (WORKED_EXAMPLE[:16] + bytes.fromhex("ff ff ff ff 00 00 00 00") + WORKED_EXAMPLE[24:], 16, "cannot fit"),
])
def test_corrupt_files_name_the_offset(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(NDArrayFormatError, match=fragment) as info:
        mxnet_ndarray.loads(data)
    assert info.value.offset == offset
    assert f"at byte offset {offset}" in str(info.value)
