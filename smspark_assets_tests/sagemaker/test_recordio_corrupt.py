"""Corrupt streams: every failure is a RecordIOError that names the byte offset where it was found."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smspark_assets.sagemaker import recordio
from smspark_assets.sagemaker.recordio import RecordIOError


def _frame(payload: bytes, pad: bool = True) -> bytes:
    head = recordio.MAGIC.to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    return head + payload + (b"\0" * ((-len(payload)) % 4) if pad else b"")


def _good(n: int = 3) -> bytes:
    return recordio.encode_dense(np.arange(n * 3, dtype=np.float32).reshape(n, 3), np.ones(n, np.float32))


def _raises(data: bytes, match: str, offset: int) -> RecordIOError:
    with pytest.raises(RecordIOError, match=match) as info:
        recordio.decode(data)
    assert info.value.offset == offset
    assert f"at byte {offset}" in str(info.value)
    return info.value


def test_bad_magic_in_first_and_later_frames() -> None:
    good = _good()
    stride = len(good) // 3
    _raises(b"\x00" + good[1:], "bad magic number", 0)
    broken = bytearray(good)
    broken[2 * stride] ^= 0xFF
    _raises(bytes(broken), "bad magic number", 2 * stride)


def test_truncated_header_and_truncated_frame() -> None:
    good = _good()
    stride = len(good) // 3
    _raises(good + b"\x0a\x23", "truncated frame header", len(good))
    _raises(good[:-7], "truncated frame", 2 * stride)
    _raises(good[:5], "truncated frame header", 0)


def test_length_with_continuation_bits_is_a_truncated_frame() -> None:
    data = recordio.MAGIC.to_bytes(4, "little") + (0xE0000004).to_bytes(4, "little") + b"\0" * 4
    _raises(data, "truncated frame", 0)


def test_wrong_wire_type_for_features() -> None:
    # features (field 1) sent as a varint (wire type 0): tag 0x08
    _raises(_frame(b"\x08\x01"), "wrong wire type 0 for a features/label map entry", 8)


def test_wrong_wire_type_for_tensor_values() -> None:
    # Float32Tensor.values as a 64-bit field (wire type 1) is not float32's encoding
    tensor = b"\x09" + b"\0" * 8
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x01k\x12" + bytes([len(value)]) + value
    err = _raises(_frame(b"\x0a" + bytes([len(entry)]) + entry), "wrong wire type 1 for float32 values", 17)
    assert "expected 2" in str(err)


def test_group_and_invalid_wire_types_and_field_zero() -> None:
    _raises(_frame(b"\x0b\x0c"), "wire type 3", 8)
    _raises(_frame(b"\x0e"), "invalid wire type 6", 8)
    _raises(_frame(b"\x02\x00"), "field number 0", 8)


def test_truncated_varint_and_overlong_varint() -> None:
    _raises(_frame(b"\x0a\x80"), "truncated varint", 9)
    _raises(_frame(b"\x28" + b"\xff" * 10 + b"\x01"), "longer than 10 bytes", 9)


def test_field_running_past_its_message() -> None:
    # an entry announcing 9 bytes inside a record of 4
    _raises(_frame(b"\x0a\x09\x0a\x01"), "truncated field 1", 8)


def test_packed_floats_not_a_multiple_of_four() -> None:
    tensor = b"\x0a\x03abc"
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x01k\x12" + bytes([len(value)]) + value
    _raises(_frame(b"\x0a" + bytes([len(entry)]) + entry), "not a multiple of 4", 17)


def test_truncated_packed_varint() -> None:
    tensor = b"\x0a\x04\0\0\x80\x3f" + b"\x12\x01\x85" + b"\x1a\x01\x05"
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x01k\x12" + bytes([len(value)]) + value
    data = _frame(b"\x0a" + bytes([len(entry)]) + entry)
    _raises(data, "truncated varint at the end of the packed field", 23)  # the keys field's tag


def test_corruption_inside_a_long_uniform_stream_is_found() -> None:
    """The uniform fast path must not hide a broken record in the middle of many good ones."""
    x = np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32)
    good = bytearray(recordio.encode_dense(x))
    stride = len(good) // 1000
    good[stride * 600 + 8] = 0x08  # record 600: features tag becomes a varint field
    _raises(bytes(good), "wrong wire type 0", stride * 600 + 8)


def test_magic_bytes_inside_a_payload_do_not_confuse_the_frame_scan() -> None:
    magic_as_float = np.frombuffer(recordio.MAGIC.to_bytes(4, "little"), dtype="<f4")[0]
    x = np.array([[magic_as_float, 1.0], [2.0, magic_as_float]], np.float32)
    data = recordio.encode_csr(x.reshape(-1), np.array([0, 1, 0, 1]), np.array([0, 2, 4]), 2)
    csr, _ = recordio.read_csr(data)
    np.testing.assert_array_equal(csr[0].view(np.uint32), x.reshape(-1).view(np.uint32))


def test_missing_padding_after_the_last_frame_is_accepted() -> None:
    data = recordio.encode_csr(np.array([1.0, 2.0], np.float32), np.array([1, 3]), np.array([0, 2]), 4)
    x, _ = recordio.read_dense(data[:-1])
    np.testing.assert_array_equal(x, [[0, 1, 0, 2]])


def test_empty_stream_decodes_to_no_records() -> None:
    assert recordio.decode(b"").n_records == 0


_FUZZ_STREAMS = [
    recordio.encode_dense(np.arange(40, dtype=np.float32).reshape(8, 5), np.ones(8, np.float32)),
    recordio.encode_csr(np.arange(1, 13, dtype=np.float32),
                        np.array([3, 200, 1, 2, 5, 9, 17, 250, 0, 4, 8, 299]),
                        np.array([0, 2, 2, 7, 12]), 300, np.zeros(4, np.float32)),
    recordio.encode_dense(np.array([[-5, 300, 7], [0, -1, 2**20]])),
    recordio.encode_records(3, label={"a": np.ones((3, 2)), "b": np.arange(3)}),
]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_FUZZ_STREAMS) - 1), st.sampled_from(["flip", "cut", "insert"]),
       st.integers(0, 10_000), st.binary(min_size=1, max_size=4))
def test_random_corruption_decodes_or_raises_record_io_error(which, how, at, junk) -> None:
    """Whatever the damage, decoding either succeeds or raises RecordIOError (never IndexError etc.)."""
    data = bytearray(_FUZZ_STREAMS[which])
    at %= len(data)
    if how == "flip":
        data[at] ^= junk[0] or 0xFF
    elif how == "cut":
        data = data[:at]
    else:
        data = data[:at] + junk + data[at:]
    try:
        decoded = recordio.decode(bytes(data))
    except RecordIOError as err:
        assert 0 <= err.offset <= len(data)
        return
    for column in list(decoded.features.values()) + list(decoded.label.values()):
        assert column.value_offsets[-1] == column.values.size
