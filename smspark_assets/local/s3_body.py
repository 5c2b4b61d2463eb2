"""Request bodies of S3 uploads, read in chunks from the socket, decoded and checked while they stream.

A body arrives in one of three framings:

* plain, ``Content-Length`` bytes;
* ``Content-Encoding: aws-chunked`` (boto3 >= 1.36 over TLS, the AWS SDKs with trailing checksums): chunks
  ``<hex>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`` ending with a zero-size chunk and trailer lines such as
  ``x-amz-checksum-crc32:<b64>``; the object's length is ``x-amz-decoded-content-length``. Both the
  unsigned-trailer form and the ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` chunk-signature form are decoded
  (signatures are not checked here: authentication is the server's job);
* ``Transfer-Encoding: chunked`` (HTTP/1.1 chunked, same framing without signatures).

While reading, the MD5 (the ETag) and the checksum the client declared (``Content-MD5``,
``x-amz-checksum-<algorithm>`` as a header or a trailer) are computed; a mismatch is ``BadDigest`` and the
caller discards what it staged. CRC32C and CRC64NVME cannot be computed without a native library that
the project does not ship: such checksums are accepted but neither verified nor echoed back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import queue
import threading
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

from smspark_assets.local.s3_errors import S3Error, invalid_argument
from smspark_assets.local.wire import Request

# 5 GiB: S3's limit for one PUT and for one part.
MAX_UPLOAD_BYTES = 5 * 1024**3
CHUNK = 1 << 20
# Bodies from this size on are hashed on a second thread (below, a thread costs more than it saves).
PIPELINE_MIN_BYTES = 4 * CHUNK
PIPELINE_BUFFERS = 6
_MAX_LINE = 8192


class _Crc32:
    """``zlib.crc32`` behind the hashlib interface, big-endian digest as S3 encodes it."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: Any) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "crc32": _Crc32,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
_UNVERIFIABLE = ("crc32c", "crc64nvme")


@dataclass
class Digest:
    """What was read: decoded size, MD5 hex (the ETag) and the verified checksum ``(algorithm, base64)``."""

    size: int
    md5_hex: str
    checksum: tuple[str, str] | None = None


class _Limited(io.RawIOBase):
    """At most ``length`` bytes of ``raw``; ends early -> ``IncompleteBody``."""

    def __init__(self, raw: BinaryIO, length: int) -> None:
        self.raw, self.left = raw, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self.left)]
        n = self.raw.readinto(view)  # type: ignore[attr-defined]
        if not n:
            raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by the "
                          "Content-Length HTTP header", 400)
        self.left -= n
        return n


class _Chunked(io.RawIOBase):
    """Decodes chunked framing (aws-chunked or HTTP/1.1 chunked) from a buffered source; keeps the trailers."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.left = 0
        self.done = False
        self.trailers: dict[str, str] = {}

    def readable(self) -> bool:
        return True

    def _line(self) -> bytes:
        line = self.source.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise S3Error("IncompleteBody", "The chunked request body ended inside a chunk header", 400)
        return line.rstrip(b"\r\n")

    def readinto(self, buffer: Any) -> int:
        if self.done:
            return 0
        if self.left == 0:
            header = self._line()
            try:
                self.left = int(header.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise invalid_argument("The chunked request body has a malformed chunk header.") from None
            if self.left < 0:
                raise invalid_argument("The chunked request body has a negative chunk size.")
            if self.left == 0:
                self._read_trailers()
                return 0
        view = memoryview(buffer)[: min(len(buffer), self.left)]
        n = self.source.readinto(view)
        if not n:
            raise S3Error("IncompleteBody", "The chunked request body ended inside a chunk", 400)
        self.left -= n
        if self.left == 0 and self.source.read(2) != b"\r\n":
            raise invalid_argument("The chunked request body has a chunk not followed by CRLF.")
        return n

    def _read_trailers(self) -> None:
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            self.trailers[name.strip().lower()] = value.strip()
        self.done = True


class UploadBody:
    """One request's upload body: ``readinto`` gives decoded bytes, ``finish`` checks and digests them."""

    def __init__(self, request: Request, require_length: bool = False) -> None:
        """``require_length``: an object upload must declare its size (Content-Length or chunked framing)."""
        headers = request.headers
        self.request = request
        encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",") if e.strip()]
        transfer = headers.get("transfer-encoding", "").lower()
        self.aws_chunked = "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith(
            "STREAMING-")
        source: Any
        if "chunked" in transfer:
            source = _Chunked(request.rfile)
            if self.aws_chunked:
                source = _Chunked(io.BufferedReader(source, CHUNK))
        else:
            if request.content_length < 0 or (require_length and "content-length" not in headers):
                raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
            raw = _Limited(request.rfile, request.content_length)
            source = _Chunked(io.BufferedReader(raw, CHUNK)) if self.aws_chunked else raw
        self.source = source
        declared = headers.get("x-amz-decoded-content-length") if self.aws_chunked else None
        if declared is None and not self.aws_chunked and "chunked" not in transfer:
            declared = str(request.content_length)
        try:
            self.expected = int(declared) if declared is not None else None
        except ValueError:
            raise invalid_argument("x-amz-decoded-content-length is not a number.") from None
        if self.expected is not None and (self.expected < 0 or self.expected > MAX_UPLOAD_BYTES):
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400,
                          ProposedSize=self.expected, MaxSizeAllowed=MAX_UPLOAD_BYTES)
        self.md5 = hashlib.md5()
        self.size = 0
        self.checksum_name, self.checksum_hasher = self._declared_checksum()
        self.content_md5 = headers.get("content-md5")
        self._md5_only = self.checksum_hasher is None

    def _declared_checksum(self) -> tuple[str | None, Any]:
        """The algorithm the client declared (header value or trailer name) and a hasher, if verifiable."""
        headers = self.request.headers
        names = [n[len("x-amz-checksum-"):] for n in headers if n.startswith("x-amz-checksum-")
                 and n not in ("x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm")]
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            names.append(trailer[len("x-amz-checksum-"):])
        for name in names:
            if name in _ALGORITHMS:
                return name, _ALGORITHMS[name]()
            if name not in _UNVERIFIABLE:
                raise invalid_argument(f"Unknown checksum algorithm {name!r}.", "x-amz-checksum-" + name)
        return None, None

    def _read(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with decoded bytes (0 at the end), without hashing."""
        # Until finish(): an error leaves the connection mid-body, so it must be closed, not drained.
        self.request.partial_body = True  # type: ignore[attr-defined]
        n = self.source.readinto(buffer)
        self.size += n
        if self.size > MAX_UPLOAD_BYTES:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400)
        return n

    def _hash(self, chunk: memoryview) -> None:
        self.md5.update(chunk)
        if not self._md5_only:
            self.checksum_hasher.update(chunk)

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with decoded bytes (0 at the end), hashing them."""
        n = self._read(buffer)
        if n:
            self._hash(buffer[:n])
        return n

    def copy_to(self, fd: int) -> None:
        """Stream the whole body into the file descriptor ``fd``.

        Large bodies go through a pipeline: this thread receives and writes each chunk while one thread
        computes the MD5 and another the declared checksum on earlier chunks. ``recv``, ``write``, MD5 and
        CRC32 all release the GIL, so the stages run in parallel, and a PUT takes about as long as its
        MD5 alone (~0.5 GB/s, the slowest step and the one S3's ETag cannot do without).
        """
        write = _writer(fd)
        if self.expected is not None and self.expected < PIPELINE_MIN_BYTES:
            buffer = memoryview(bytearray(CHUNK))
            while n := self.readinto(buffer):
                write(buffer[:n])
            return
        free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(PIPELINE_BUFFERS):
            free.put(memoryview(bytearray(CHUNK)))
        hashers = [self.md5] if self._md5_only else [self.md5, self.checksum_hasher]
        # One queue in front of each hasher; a chunk moves down the chain, then back to the free list.
        stages: list[queue.SimpleQueue[tuple[memoryview, int] | None]] = [queue.SimpleQueue() for _ in hashers]

        def run(index: int) -> None:
            inbox, hasher = stages[index], hashers[index]
            nxt = stages[index + 1] if index + 1 < len(stages) else None
            while (item := inbox.get()) is not None:
                hasher.update(item[0][: item[1]])
                (nxt.put(item) if nxt is not None else free.put(item[0]))
            if nxt is not None:
                nxt.put(None)

        threads = [threading.Thread(target=run, args=(i,), name=f"s3-hash-{i}", daemon=True)
                   for i in range(len(hashers))]
        for thread in threads:
            thread.start()
        try:
            while True:
                view = free.get()
                n = self._read(view)
                if not n:
                    break
                write(view[:n])
                stages[0].put((view, n))
        finally:
            stages[0].put(None)
            for thread in threads:
                thread.join()

    def read_all(self, limit: int) -> bytes:
        """A small body (XML documents) in memory; larger than ``limit`` -> 400."""
        out = bytearray()
        buffer = memoryview(bytearray(min(CHUNK, limit + 1)))
        while True:
            n = self.readinto(buffer)
            if not n:
                break
            out += buffer[:n]
            if len(out) > limit:
                raise invalid_argument(f"The request body is larger than {limit} bytes.")
        return bytes(out)

    def finish(self) -> Digest:
        """Check length and checksums after the last byte; the body is then fully consumed."""
        self.request.consumed = True  # type: ignore[attr-defined]  # the server must not drain it again
        self.request.partial_body = False  # type: ignore[attr-defined]  # read to its end: still in step
        if self.expected is not None and self.size != self.expected:
            raise S3Error("IncompleteBody", f"The body had {self.size} bytes, {self.expected} were declared.", 400)
        md5 = self.md5.digest()
        if self.content_md5 is not None:
            try:
                wanted = base64.b64decode(self.content_md5, validate=True)
            except (binascii.Error, ValueError):
                wanted = b""
            if len(wanted) != 16:
                raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400,
                              Content_MD5=self.content_md5)
            if wanted != md5:
                raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
        checksum = None
        if self.checksum_name is not None:
            header = "x-amz-checksum-" + self.checksum_name
            trailers = getattr(self.source, "trailers", {})
            wanted_b64 = self.request.headers.get(header) or trailers.get(header)
            if wanted_b64 is None:
                raise invalid_argument(f"The {header} trailer was declared but not sent.", header)
            got = base64.b64encode(self.checksum_hasher.digest()).decode()
            if got != wanted_b64:
                raise S3Error("BadDigest", f"The {self.checksum_name.upper()} you specified did not match the "
                              "calculated checksum.", 400)
            checksum = (self.checksum_name, got)
        return Digest(self.size, md5.hex(), checksum)


def _writer(fd: int) -> Callable[[memoryview], None]:
    import os

    def write(data: memoryview) -> None:
        while data:
            n = os.write(fd, data)
            data = data[n:]

    return write
