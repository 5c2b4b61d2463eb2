"""Model-server worker processes and the keep-alive connections the service proxies through.

One :class:`ModelServerProcess` is one "instance" of a production variant: a
``python -m smspark_assets.local.model_server`` subprocess on a free loopback port. The service keeps a
small pool of HTTP/1.1 connections to each, so an invocation costs one round trip and no connect.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from smspark_assets.local.algorithm_lookup import AlgorithmRef
from smspark_assets.local.algorithms.train import PARENT_PID_VAR
from smspark_assets.local.private_files import open_private, private_dir
from smspark_assets.local.process_environment import PRIVATE_UMASK, child_environment

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0
# Upper bound of one invocation round trip; SageMaker's own limit for a real-time invocation is 60 s.
INVOKE_TIMEOUT_SECONDS = 60.0


class ModelServerError(Exception):
    """A model server did not start (the message carries the tail of its log) or is unreachable."""


class ModelServerProcess:
    """One model-server subprocess and its idle keep-alive connections."""

    def __init__(
        self,
        ref: AlgorithmRef,
        model_dir: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        contract: dict[str, str] | None = None,
    ) -> None:
        """``env`` is the model's (checked) Environment map; ``contract`` what the platform sets on top of
        it (batch-transform settings, the stack's endpoint), which wins."""
        self.ref = ref
        self.model_dir = model_dir
        self.log_path = log_path
        self.env = env or {}
        self.contract = contract or {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._idle: deque["InvocationConnection"] = deque()
        self._idle_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Start the process, learn its port and wait until ``/ping`` answers; :class:`ModelServerError` if
        not.
        """
        private_dir(self.log_path.parent)
        args = [
            sys.executable,
            "-m",
            "smspark_assets.local.model_server",
            "--algorithm",
            self.ref.algorithm,
            "--model-dir",
            str(self.model_dir),
            "--port",
            "0",
            "--image",
            self.ref.image,
        ]
        if self.ref.entry_point:
            args += ["--entry-point", self.ref.entry_point]
        # An allow-list of the service's environment, the model's map, then the contract: never the
        # service's whole environment, and nothing a request chose about how the interpreter starts.
        env = child_environment(
            self.env, {**self.contract, "PYTHONUNBUFFERED": "1", PARENT_PID_VAR: str(os.getpid())}
        )
        with open_private(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                umask=PRIVATE_UMASK,  # whatever the model server writes is private too
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        # The server prints {"port": N} once it listens; anything else on stdout is ignored.
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break
                try:
                    self.port = int(json.loads(line)["port"])
                    break
                except (ValueError, KeyError, TypeError):
                    continue
            elif self.process.poll() is not None:
                break
        if not self.port:
            self.stop()
            raise ModelServerError(self._startup_failure())
        # Drain stdout in the background so a chatty model can never block on a full pipe.
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise ModelServerError(self._startup_failure())

    def _drain(self, stream: object) -> None:
        try:
            for _ in stream:  # type: ignore[attr-defined]
                pass
        except (OSError, ValueError):
            pass

    def _startup_failure(self) -> str:
        tail = ""
        if self.log_path.exists():
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
            tail = lines[-1] if lines else ""
        code = self.process.poll() if self.process else None
        what = f"exited with code {code}" if code is not None else "did not answer /ping in time"
        return f"The model server for {self.ref.algorithm} ({self.ref.image}) {what}" + (
            f": {tail}" if tail else ""
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ping(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL; closes the pooled connections."""
        with self._idle_lock:
            while self._idle:
                self._idle.pop().close()
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    # -- invocations ------------------------------------------------------------------------------------

    def _connection(self) -> "InvocationConnection":
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return InvocationConnection(self.port)

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """POST ``/invocations``; returns ``(status, content type, body)``; retries a stale
        connection once."""
        for attempt in (0, 1):
            conn: InvocationConnection | None = None
            try:
                conn = self._connection()
                status, content_type, data, keep_alive = conn.post(body, headers)
            except OSError as exc:
                if conn is not None:
                    conn.close()
                if attempt == 1 or not self.alive():
                    raise ModelServerError(f"model server on port {self.port} is unreachable: {exc}") from exc
                continue
            if keep_alive:
                with self._idle_lock:
                    self._idle.append(conn)
            else:
                conn.close()
            return status, content_type, data
        raise AssertionError("unreachable")


class InvocationConnection:
    """A keep-alive HTTP/1.1 connection to one of our own model servers, for ``POST /invocations``.

    A minimal client on purpose: the peer is always :mod:`smspark_assets.local.model_server`, which answers
    with a ``Content-Length`` and never chunks, so the head is parsed with two ``split`` calls instead of
    ``http.client``'s generic header parser (a measurable share of a 1-row invocation), and bodies are
    received straight into one preallocated buffer.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=INVOKE_TIMEOUT_SECONDS)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes, bool]:
        """Send one request and read its answer: ``(status, content type, body, keep-alive)``."""
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (
            f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        ).encode("latin-1")
        if len(body) <= 64 * 1024:
            self.sock.sendall(request + body)
        else:
            self.sock.sendall(request)
            self.sock.sendall(body)
        buffer = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the model server closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
        lines = buffer[:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ConnectionResetError(f"malformed status line from the model server: {lines[0]!r}") from None
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "0"))
        data = bytearray(length)
        received = buffer[end + 4:end + 4 + length]
        view = memoryview(data)
        view[: len(received)] = received
        filled = len(received)
        while filled < length:
            count = self.sock.recv_into(view[filled:], length - filled)
            if count == 0:
                raise ConnectionResetError("the model server closed the connection mid-answer")
            filled += count
        keep_alive = fields.get("connection", "").lower() != "close"
        return status, fields.get("content-type") or "application/octet-stream", bytes(data), keep_alive
