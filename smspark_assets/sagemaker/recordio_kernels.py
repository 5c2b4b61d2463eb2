"""Compiled (numba) loops for the per-element parts of sparse recordIO-protobuf encoding and decoding.

Sparse rows hold ~20 values each, so the NumPy path in :mod:`smspark_assets.sagemaker.recordio` spends
most of its time building per-element index arrays (byte gathers, two-byte varint keys). These loops do
the same work in one pass without intermediates. They are optional: ``recordio`` imports this module only
when numba is importable (and ``SMSPARK_RECORDIO_NUMBA`` is not ``0``) and otherwise keeps its NumPy path;
both produce the same bytes (checked by ``smspark_assets_tests/sagemaker/test_recordio_kernels.py``).

Every loop here is a plain bounds-checked walk: the caller validates offsets before calling (encode) or
receives a status code and lets the NumPy path raise the precise :class:`RecordIOError` (decode).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ragged_copy", "write_keys2", "decode_varint_segments", "VARINT_OK", "VARINT_CORRUPT",
           "VARINT_OVERFLOW"]

# Status codes of decode_varint_segments.
VARINT_OK, VARINT_CORRUPT, VARINT_OVERFLOW = 0, 1, 2


@njit(cache=True, nogil=True)
def ragged_copy(dst: np.ndarray, dst_off: np.ndarray, src: np.ndarray, src_off: np.ndarray,
                lengths: np.ndarray) -> None:
    """``dst[dst_off[i]:+lengths[i]] = src[src_off[i]:+lengths[i]]`` for every ``i`` (uint8 arrays)."""
    for i in range(lengths.size):
        n = lengths[i]
        if n > 0:
            a = dst_off[i]
            b = src_off[i]
            dst[a:a + n] = src[b:b + n]


@njit(cache=True, nogil=True)
def write_keys2(out: np.ndarray, pos: np.ndarray, keys: np.ndarray, indptr: np.ndarray) -> None:
    """Write row ``i``'s keys (each < 2**14, so one or two varint bytes) from ``out[pos[i]]`` on."""
    for i in range(pos.size):
        p = pos[i]
        for j in range(indptr[i], indptr[i + 1]):
            k = keys[j]
            if k < 0x80:
                out[p] = k
                p += 1
            else:
                out[p] = (k & 0x7F) | 0x80
                out[p + 1] = k >> 7
                p += 2


@njit(cache=True, nogil=True)
def decode_varint_segments(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray,
                           counts: np.ndarray) -> tuple[int, int, int]:
    """Decode the packed varints of every segment ``buf[starts[i]:+lengths[i]]`` into ``out`` back to back.

    ``counts[i]`` receives the number of varints of segment ``i``. Returns ``(status, segment, written)``:
    ``VARINT_OK`` with the total written, ``VARINT_CORRUPT`` for a segment that ends inside a varint or
    holds one longer than 10 bytes, ``VARINT_OVERFLOW`` when ``out`` is too small for the segments.
    """
    w = 0
    cap = out.size
    for i in range(starts.size):
        p = starts[i]
        end = p + lengths[i]
        c = 0
        while p < end:
            b = buf[p]
            if b < 0x80:  # one byte: most keys
                v = np.uint64(b)
                p += 1
            else:
                v = np.uint64(b & 0x7F)
                shift = 7
                p += 1
                while True:
                    if p >= end or shift >= 70:
                        return VARINT_CORRUPT, i, w
                    b = buf[p]
                    v |= np.uint64(b & 0x7F) << np.uint64(shift)
                    p += 1
                    if b < 0x80:
                        break
                    shift += 7
            if w >= cap:
                return VARINT_OVERFLOW, i, w
            out[w] = v
            w += 1
            c += 1
        counts[i] = c
    return VARINT_OK, -1, w


@njit(cache=True, nogil=True)
def write_const(out: np.ndarray, pos: np.ndarray, data: np.ndarray, present: np.ndarray) -> None:
    """Write ``data`` at ``out[pos[i]]`` for every row (``present`` empty) or the rows where it is true."""
    m = data.size
    every = present.size == 0
    for i in range(pos.size):
        if every or present[i]:
            p = pos[i]
            for j in range(m):
                out[p + j] = data[j]


@njit(cache=True, nogil=True)
def write_varints(out: np.ndarray, pos: np.ndarray, values: np.ndarray, present: np.ndarray) -> None:
    """Write ``values[i]`` (uint64) as a varint at ``out[pos[i]]`` for every (present) row."""
    every = present.size == 0
    for i in range(pos.size):
        if every or present[i]:
            v = values[i]
            p = pos[i]
            while v >= 0x80:
                out[p] = (v & 0x7F) | 0x80
                v >>= np.uint64(7)
                p += 1
            out[p] = v


@njit(cache=True, nogil=True)
def write_fixed_rows(out: np.ndarray, pos: np.ndarray, src: np.ndarray, width: int) -> None:
    """Copy row ``i``'s ``width`` bytes ``src[i * width:(i + 1) * width]`` to ``out[pos[i]]``."""
    for i in range(pos.size):
        p = pos[i]
        s = i * width
        for j in range(width):
            out[p + j] = src[s + j]


@njit(cache=True, nogil=True)
def varint2_row_bytes(keys: np.ndarray, indptr: np.ndarray, out: np.ndarray) -> None:
    """Bytes of row ``i``'s keys (each < 2**14: one byte below 128, else two) into ``out[i]``."""
    for i in range(out.size):
        s = 0
        for j in range(indptr[i], indptr[i + 1]):
            s += 1 if keys[j] < 0x80 else 2
        out[i] = s


@njit(cache=True, nogil=True)
def _varint_at(buf: np.ndarray, p: int, limit: int) -> tuple[int, int]:
    """``(value, next position)`` of a length varint at ``p`` that must end before ``limit``; ``(-1, -1)``
    when it does not, is longer than 10 bytes or does not fit in an int64 (the caller gives up)."""
    v = 0
    shift = 0
    while True:
        if p >= limit or shift > 56:
            return -1, -1
        b = buf[p]
        v |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            return v, p
        shift += 7


@njit(cache=True, nogil=True)
def canonical_entries(buf: np.ndarray, p: np.ndarray, lim: np.ndarray, tag: int, e_end: np.ndarray,
                      has: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[bool, int, int, int]:
    """Parse one map entry per record in the layout every SDK writer produces (see ``_decode_canonical``).

    Record ``i``'s entry starts at ``p[i]`` (its tag must be ``tag``) inside a record ending at ``lim[i]``:
    ``tag len | 0a klen key | 12 len | t0 len | [0a len values] [12 len keys] [1a len shape]`` with the same
    key and tensor tag ``t0`` (0x12 float32 or 0x1a float64) as record 0. Fills ``e_end`` (entry ends) and
    ``has`` / ``starts`` / ``lengths`` (3 rows: values, keys, shape payloads). Returns
    ``(ok, key position in record 0, key length, t0)``; ``ok`` is false at the first deviation (the
    caller then uses the general parser, which also reports any corruption).
    """
    n = p.size
    key_at, k0, t0 = 0, 0, 0
    for i in range(n):
        q = p[i]
        end = lim[i]
        if q >= end or buf[q] != tag:
            return False, 0, 0, 0
        length, q = _varint_at(buf, q + 1, end)
        if length < 0 or length > end - q:
            return False, 0, 0, 0
        e = q + length
        e_end[i] = e
        # key: 0a klen key, then the Value's tag 12
        if q + 2 > e or buf[q] != 0x0A:
            return False, 0, 0, 0
        if i == 0:
            k0 = buf[q + 1]
            if k0 >= 0x80:
                return False, 0, 0, 0
            key_at = q + 2
        elif buf[q + 1] != k0:
            return False, 0, 0, 0
        if q + 3 + k0 > e or buf[q + 2 + k0] != 0x12:
            return False, 0, 0, 0
        if i > 0:
            for j in range(k0):
                if buf[q + 2 + j] != buf[key_at + j]:
                    return False, 0, 0, 0
        q += 3 + k0
        length, q = _varint_at(buf, q, e)
        if length < 0 or q + length != e:
            return False, 0, 0, 0
        # tensor: t0 len, filling the Value
        if q >= e:
            return False, 0, 0, 0
        t = buf[q]
        if i == 0:
            t0 = t
            if t0 != 0x12 and t0 != 0x1A:
                return False, 0, 0, 0
        elif t != t0:
            return False, 0, 0, 0
        length, q = _varint_at(buf, q + 1, e)
        if length < 0 or q + length != e:
            return False, 0, 0, 0
        for f in range(3):  # values (0a), keys (12), shape (1a), each optional, in this order
            ftag = 0x0A + 8 * f
            if q < e and buf[q] == ftag:
                length, s = _varint_at(buf, q + 1, e)
                if length < 0 or length > e - s:
                    return False, 0, 0, 0
                has[f, i] = True
                starts[f, i] = s
                lengths[f, i] = length
                q = s + length
            else:
                has[f, i] = False
                starts[f, i] = 0
                lengths[f, i] = 0
        if q != e:
            return False, 0, 0, 0
    return True, key_at, k0, t0
