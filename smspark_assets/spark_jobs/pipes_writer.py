"""Dagster Pipes' S3 message writer for a job's driver, without its fixed sleeps.

A job on EMR Serverless (real or the stack's) sends its logs, progress and result through S3 with
``dagster_pipes.PipesS3MessageWriter``. As shipped (dagster-pipes 1.13), closing it took about 6 s of
every job's wall time after the work was done, and the progress lines lagged by 2 to 3 s:

* the upload loop looks every 1 s, and compares the interval in whole seconds (``1.0`` means 2 s);
* capturing stdout and stderr into the messages (the reader's ``include_stdio_in_messages``) closes
  each stream after sleeping 1 s for ``tee`` to flush, then polls the captured file every 1 s until 1 s
  passed since the stop: about 3 s per stream, one stream after the other.

:class:`PromptS3MessageWriter` is the same writer (the same chunks, numbered the same way, the same
stdio capture) whose upload loop waits on the close event with a float interval, and whose stdio
channels poll every 0.1 s and give ``tee`` 0.5 s, ample for a local pipe, to pass on a failing job's
last lines (its traceback). Measured in the demo, a job's run is seen to complete about 2 s after its
last log line, not 5 to 6 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from threading import Event
from typing import Any, Literal

from dagster_pipes import (
    PipesDefaultLogWriter,
    PipesDefaultLogWriterChannel,
    PipesLogWriter,
    PipesParams,
    PipesS3MessageWriter,
    PipesS3MessageWriterChannel,
)

# How often captured stdout/stderr is read into messages, and how long a stream's tee gets to flush.
STDIO_POLL_SECONDS = 0.1
TEE_FLUSH_SECONDS = 0.5


class _PromptS3Channel(PipesS3MessageWriterChannel):
    def _upload_loop(self, is_session_closed: Event) -> None:
        # Every interval (a float, in seconds), and at once when the session closes: upload what is
        # buffered as the next numbered chunk; after the close, until the buffer is empty.
        while True:
            closed = is_session_closed.wait(self._interval)
            payload = "\n".join(json.dumps(message) for message in self.flush_messages())
            if payload:
                self.upload_messages_chunk(StringIO(payload), self._counter)
                self._counter += 1
            if closed and self._buffer.empty():
                return


class _PromptStdioLogWriter(PipesDefaultLogWriter):
    def make_channel(self, params: PipesParams, stream: Literal["stdout", "stderr"]) -> PipesDefaultLogWriterChannel:
        channel = super().make_channel(params, stream)
        channel.WAIT_FOR_TEE_SECONDS = TEE_FLUSH_SECONDS
        return channel


class PromptS3MessageWriter(PipesS3MessageWriter):
    """``PipesS3MessageWriter`` whose uploads follow ``interval`` to the fraction of a second and whose
    close takes about a second (see the module's docstring)."""

    def make_channel(self, params: PipesParams) -> PipesS3MessageWriterChannel:
        bucket = params.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            raise ValueError(f"the Pipes messages parameters name no S3 bucket: {sorted(params)}")
        key_prefix = params.get("key_prefix")
        return _PromptS3Channel(client=self._client, bucket=bucket, key_prefix=key_prefix, interval=self.interval)

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[Any]:
        channel = self.make_channel(params)
        with channel.buffered_upload_loop():
            if params.get(self.INCLUDE_STDIO_IN_MESSAGES_KEY):
                stdio = _PromptStdioLogWriter(message_channel=channel, interval=STDIO_POLL_SECONDS)
                with stdio.open(params.get(PipesLogWriter.LOG_WRITER_KEY, {})):
                    yield channel
            else:
                yield channel
