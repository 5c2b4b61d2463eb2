"""The local service process: one threaded HTTP server on 127.0.0.1 for SageMaker, its runtime and DynamoDB.

``python -m smspark_assets.local.server --root <root>`` (started by :mod:`smspark_assets.local.process`).
Requests are routed by what botocore sends:

* ``X-Amz-Target: SageMaker.<Operation>`` (JSON 1.1) -> :class:`~.sagemaker_api.SageMakerApi`;
* ``POST /endpoints/<name>/invocations`` (rest-json) -> the endpoint's model servers, bytes passed through;
* ``X-Amz-Target: DynamoDB_20120810.<Operation>`` -> moto's DynamoDB (:class:`~.dynamodb.DynamoDBHost`);
* ``GET /_smspark/health`` -> ``{"pid", "root", "url"}`` (used by the lifecycle API).

It writes ``<root>/local/service.json`` once it listens, and on SIGTERM stops its training workers and
model servers, saves DynamoDB and removes the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from smspark_assets.local.algorithm_lookup import read_config
from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.dynamodb import DynamoDBHost
from smspark_assets.local.endpoints import EndpointManager
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.sagemaker_api import SageMakerApi
from smspark_assets.local.state import NotFound, StateStore
from smspark_assets.local.training import TrainingRunner

log = logging.getLogger("smspark.local")

# The request size the project allows per invocation (ARCHITECTURE.md §5: requests are at most 5 MiB).
MAX_INVOKE_PAYLOAD_BYTES = 5 * 1024 * 1024
# Bodies larger than this are not even drained: the connection is closed.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_TRAINING_JOBS = 2
INTERRUPTED = (
    "InternalServerError: the local service stopped while the job was running "
    "(it was restarted or killed); create the job again under a new name"
)


class LocalService:
    """Everything the service process holds: state store, training runner, endpoints, DynamoDB, HTTP
    server."""

    def __init__(self, root: Path | str | None = None, port: int = 0) -> None:
        self.layout = LocalLayout.for_root(root)
        self.layout.local_dir.mkdir(parents=True, exist_ok=True)
        self.layout.s3_root.mkdir(parents=True, exist_ok=True)
        self.config = read_config(self.layout.config_json)
        self.store = StateStore(self.layout.state_db)
        self.training = TrainingRunner(
            self.layout,
            self.store,
            int(self.config.get("max_concurrent_training_jobs", DEFAULT_MAX_CONCURRENT_TRAINING_JOBS)),
        )
        self.endpoints = EndpointManager(self.layout, self.store, self.custom_images)
        self.sagemaker = SageMakerApi(
            self.layout, self.store, self.training, self.endpoints, self.custom_images
        )
        try:
            from smspark_assets.local.transform import TransformRunner
        except ImportError:  # batch transform is optional for the core service
            TransformRunner = None  # type: ignore[assignment,misc]  # noqa: N806
        if TransformRunner is not None:
            self.sagemaker.transforms = TransformRunner(
                self.layout, self.store, self.sagemaker, self.custom_images
            )
        self.dynamodb = DynamoDBHost(self.layout.dynamodb_snapshot)
        self.httpd = _bind(port)
        self.httpd.service = self
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self.done = threading.Event()

    def custom_images(self) -> dict[str, str]:
        """Image URI (or prefix ending in ``*``) -> script-mode entry point, from ``config.json``.

        Re-read when the file changes, so a mapping registered while the service runs takes effect.
        """
        path = self.layout.config_json
        mtime = path.stat().st_mtime_ns if path.exists() else 0
        if mtime != getattr(self, "_config_mtime", None):
            self.config = read_config(path)
            self._config_mtime = mtime
        return dict(self.config.get("custom_images") or {})

    def recover(self) -> None:
        """After a restart (graceful or not): fail the jobs that were running, serve the endpoints again."""
        failed = self.training.fail_unfinished(INTERRUPTED)
        if failed:
            log.info("marked %d interrupted training job(s) Failed: %s", len(failed), ", ".join(failed))
        if self.sagemaker.transforms is not None:
            self.sagemaker.transforms.fail_unfinished(INTERRUPTED)
        for doc in self.store.list("endpoint"):
            name, status = doc["EndpointName"], doc["EndpointStatus"]
            if status == "Deleting":
                self.endpoints.undeploy(name)
                try:
                    self.store.delete("endpoint", name)
                except NotFound:
                    pass
            elif status in ("InService", "Updating", "SystemUpdating", "Creating"):
                # SystemUpdating while the servers come back: waiters keep waiting, as during AWS maintenance.
                new_status = "Creating" if status == "Creating" else "SystemUpdating"

                def change(d: dict[str, Any], new_status: str = new_status) -> None:
                    d["EndpointStatus"] = new_status
                    d.pop("PendingEndpointConfigName", None)

                self.store.update("endpoint", name, change, status_key="EndpointStatus")
                self.endpoints.deploy_async(name, doc["EndpointConfigName"], updating=False)

    def start(self) -> None:
        self.dynamodb.start()
        self.recover()

    def write_service_json(self) -> None:
        info = {
            "pid": os.getpid(),
            "port": self.port,
            "url": self.url,
            "root": str(self.layout.root),
            "started": time.time(),
        }
        tmp = self.layout.service_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.layout.service_json)
        self.layout.last_port.write_text(str(self.port))

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def shutdown(self) -> None:
        """Stop serving, stop workers and model servers, save DynamoDB. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()
        self.training.shutdown(
            "InternalServerError: the local service was stopped while the job was running; "
            "create the job again under a new name"
        )
        if self.sagemaker.transforms is not None:
            self.sagemaker.transforms.shutdown()
        self.endpoints.shutdown()
        try:
            self.dynamodb.close()
        finally:
            self.httpd.server_close()
            self.store.close()
            try:
                info = json.loads(self.layout.service_json.read_text())
                if info.get("pid") == os.getpid():
                    self.layout.service_json.unlink()
            except (OSError, ValueError):
                pass
            self.done.set()


def _bind(port: int) -> "_Server":
    """Listen on ``port`` (the previous run's, so clients holding the URL keep working), else any
    free port."""
    if port:
        try:
            return _Server(("127.0.0.1", port), _Handler)
        except OSError:
            pass
    return _Server(("127.0.0.1", 0), _Handler)


_REASONS = {status.value: status.phrase for status in HTTPStatus}
# Below this size, head and body go out in one write (one TCP segment for small answers: lower latency).
_SINGLE_WRITE_BYTES = 64 * 1024


def write_response(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    extra: dict[str, str] | None = None,
    close: bool = False,
    request_id: bool = False,
) -> None:
    """Write a complete HTTP/1.1 response with a Content-Length (keep-alive unless ``close``)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}"]
    if request_id:
        lines.append(f"x-amzn-RequestId: {uuid.uuid4().hex}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    if close:
        lines.append("Connection: close")
        handler.close_connection = True
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if len(body) <= _SINGLE_WRITE_BYTES:
        handler.wfile.write(head + body)
    else:
        handler.wfile.write(head)
        handler.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    service: LocalService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # per-request logging would dominate the cost of small invocations

    # -- plumbing ---------------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        write_response(self, status, body, content_type, extra, close, request_id=True)

    def _error(self, exc: ApiError, content_type: str, close: bool = False) -> None:
        self._send(exc.status, exc.body(), content_type, {"x-amzn-ErrorType": exc.code}, close=close)

    def _read_body(self, limit: int | None = None) -> bytes | None:
        """The request body; ``None`` (after draining it) when it is larger than ``limit``."""
        length = int(self.headers.get("Content-Length") or 0)
        if limit is not None and length > limit:
            if length > MAX_DRAIN_BYTES:
                return None
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            return None
        return self.rfile.read(length) if length else b""

    # -- routes -----------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        service = self.server.service
        if self.path in ("/_smspark/health", "/ping"):
            body = json.dumps(
                {"pid": os.getpid(), "root": str(service.layout.root), "url": service.url}
            ).encode()
            self._send(200, body, "application/json")
        else:
            self._send(
                404, json.dumps({"message": f"no such path: {self.path}"}).encode(), "application/json"
            )

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path.startswith("/endpoints/") and path.endswith("/invocations"):
            self._invoke(unquote(path[len("/endpoints/"):-len("/invocations")]))
            return
        target = self.headers.get("X-Amz-Target") or ""
        if target.startswith("SageMaker."):
            self._sagemaker(target[len("SageMaker."):])
        elif target.startswith("DynamoDB_20120810."):
            self._dynamodb(target)
        else:
            self._read_body()
            self._error(
                ApiError(
                    "UnknownOperationException",
                    f"The local service does not serve {target or path!r}: it serves SageMaker "
                    "(X-Amz-Target SageMaker.*), sagemaker-runtime InvokeEndpoint and DynamoDB.",
                ),
                "application/x-amz-json-1.1",
            )

    def _sagemaker(self, operation: str) -> None:
        content_type = "application/x-amz-json-1.1"
        body = self._read_body()
        try:
            params = json.loads(body) if body else {}
            result = self.server.service.sagemaker.dispatch(operation, params)
        except json.JSONDecodeError as exc:
            self._error(ApiError("SerializationException", f"request body is not JSON: {exc}"), content_type)
            return
        except ApiError as exc:
            self._error(exc, content_type)
            return
        except (
            Exception
        ) as exc:  # noqa: BLE001 - an internal bug answers 500 rather than dropping the connection
            log.exception("SageMaker.%s failed", operation)
            self._error(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500), content_type)
            return
        self._send(200, json.dumps(result).encode(), content_type)

    def _dynamodb(self, target: str) -> None:
        body = self._read_body() or b""
        path, _, query = self.path.partition("?")
        status, headers, out = self.server.service.dynamodb.handle(
            "POST", path, query, list(self.headers.items()), body, target
        )
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _invoke(self, endpoint: str) -> None:
        content_type = "application/json"
        body = self._read_body(MAX_INVOKE_PAYLOAD_BYTES)
        if body is None:
            size = self.headers.get("Content-Length")
            self._error(
                ApiError(
                    "ValidationError",
                    f"Received payload of {size} bytes for endpoint {endpoint}; the "
                    f"maximum is {MAX_INVOKE_PAYLOAD_BYTES} bytes (5 MiB) per "
                    "invocation. Split the records over several requests.",
                ),
                content_type,
                close=int(size or 0) > MAX_DRAIN_BYTES,
            )
            return
        forward = {"Content-Type": self.headers.get("Content-Type") or "application/octet-stream"}
        accept = self.headers.get("Accept")
        if accept:
            forward["Accept"] = accept
        custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom:
            forward["X-Amzn-SageMaker-Custom-Attributes"] = custom
        try:
            status, out_type, out, variant = self.server.service.endpoints.invoke(
                endpoint, body, forward, self.headers.get("X-Amzn-SageMaker-Target-Variant")
            )
        except ApiError as exc:
            self._error(exc, content_type)
            return
        except Exception as exc:  # noqa: BLE001 - answer, rather than drop the client's connection
            log.exception("invocation of %s failed", endpoint)
            self._error(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500), content_type)
            return
        if status != 200:
            text = out.decode("utf-8", errors="replace")
            kind = "client" if 400 <= status < 500 else "server"
            self._error(
                ApiError(
                    "ModelError",
                    f'Received {kind} error ({status}) from primary with message "{text}". '
                    f"See `smspark local status` and the endpoint's model-server logs under "
                    f"local/endpoints/{endpoint}/.",
                    424,
                    OriginalStatusCode=status,
                    OriginalMessage=text,
                ),
                content_type,
            )
            return
        self._send(200, out, out_type, {"x-Amzn-Invoked-Production-Variant": variant})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smspark_assets.local.server")
    parser.add_argument("--root", default=None, help="project root (default: SMSPARK_ROOT or ./.smspark)")
    parser.add_argument("--port", default=0, type=int, help="preferred port; any free port when taken or 0")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    service = LocalService(args.root, args.port)
    service.start()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        threading.Thread(target=service.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.write_service_json()
    log.info("local service listening on %s (root %s)", service.url, service.layout.root)
    service.serve_forever()
    # serve_forever returns once shutdown() asked the HTTP server to stop; wait for the rest of it.
    service.shutdown()
    service.done.wait()
    log.info("local service stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
