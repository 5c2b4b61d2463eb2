"""A model server speaking SageMaker's inference container contract, for one production variant instance.

``python -m smspark_assets.local.model_server --algorithm xgboost --model-dir <dir> --port 0``

* ``GET /ping`` answers 200 once the model is loaded;
* ``POST /invocations`` calls ``Predictor.invoke(body, content_type, accept)``;
  :class:`UnsupportedContentType` -> 415 (or its own status), :class:`BadRequest` -> 400, anything else ->
  500,
  each with the message as a text body;
* ``GET /execution-parameters`` answers the batch-transform defaults, as SageMaker's containers may.

It prints one JSON line ``{"port": N}`` on stdout when it is listening, so the parent learns the port
(``--port 0`` picks a free one), and exits on its own when its parent process goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from smspark_assets.local.algorithm_lookup import AlgorithmRef, load_algorithm
from smspark_assets.local.algorithms.train import PARENT_PID_VAR
from smspark_assets.local.algorithms.base import BadRequest, Predictor, UnsupportedContentType

DEFAULT_CONTENT_TYPE = "application/octet-stream"


_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    predictor: Predictor


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive (HTTP/1.1) and no Nagle: the local service reuses connections and 1-row latency matters.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass  # one log line per request would cost more than the prediction

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        # One write for small answers (one TCP segment: lower latency); two for big ones (no 5 MiB copy).
        if len(body) <= 64 * 1024:
            self.wfile.write(head + body)
        else:
            self.wfile.write(head)
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path == "/ping":
            self._reply(200, b"")
        elif self.path == "/execution-parameters":
            self._reply(
                200,
                json.dumps(
                    {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
                ).encode(),
                "application/json",
            )
        else:
            self._reply(404, f"no such path: {self.path}".encode())

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path != "/invocations":
            self._reply(404, f"no such path: {self.path}".encode())
            return
        content_type = self.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        accept = self.headers.get("Accept")
        try:
            out, out_type = self.server.predictor.invoke(body, content_type, accept)
        except UnsupportedContentType as exc:
            self._reply(exc.status, str(exc).encode())
        except BadRequest as exc:
            self._reply(400, str(exc).encode())
        except (
            Exception
        ) as exc:  # noqa: BLE001 - the container answers 500 with the message, and keeps serving
            traceback.print_exc(file=sys.stderr)
            self._reply(500, f"{type(exc).__name__}: {exc}".encode())
        else:
            self._reply(200, out, out_type)


def _exit_with_parent(parent: int) -> None:
    """Stop when the process that started us is gone (e.g. the service was killed with SIGKILL)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(1.0)


def serve(ref: AlgorithmRef, model_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
    predictor = load_algorithm(ref).load(model_dir)
    server = _Server((host, port), _Handler)
    server.predictor = predictor
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    # The spawner names itself: it may already be gone by the time the model has loaded.
    parent = int(os.environ.get(PARENT_PID_VAR) or os.getppid())
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smspark_assets.local.model_server")
    parser.add_argument("--algorithm", required=True, help="built-in algorithm name, or 'script'")
    parser.add_argument("--entry-point", default=None, help="script mode: module or .py file")
    parser.add_argument("--image", default="")
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=0, type=int)
    args = parser.parse_args(argv)
    if not args.model_dir.is_dir():
        print(f"model dir {args.model_dir} does not exist", file=sys.stderr)
        return 2
    try:
        serve(
            AlgorithmRef(args.algorithm, args.image, args.entry_point), args.model_dir, args.host, args.port
        )
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - the parent shows this as the endpoint's FailureReason
        traceback.print_exc(file=sys.stderr)
        print(f"model server failed to start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
