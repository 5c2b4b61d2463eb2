"""A minimal SageMaker runtime endpoint serving an xgboost Booster, for tests and benchmarks.

It speaks the runtime protocol boto3's ``sagemaker-runtime`` client uses for ``InvokeEndpoint``:
``POST /endpoints/<name>/invocations`` with the payload as the body and ``Content-Type``/``Accept``
headers; it answers ``text/csv`` predictions as one comma-joined line (as the XGBoost container
does for real-time requests) and AWS-shaped JSON errors otherwise. It binds 127.0.0.1 only.

The scoring job is tested against it so that its tests need no SageMaker service; the benchmark
falls back to it when the project's local service is not available.
"""

from __future__ import annotations

import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_PATH_RE = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


def parse_csv_matrix(body: bytes) -> np.ndarray:
    """A float32 matrix from headerless numeric CSV (empty cells become NaN, XGBoost's missing value)."""
    table = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
    )
    if table.num_columns == 0:
        return np.empty((0, 0), dtype=np.float32)
    columns = []
    for col in table.columns:
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
            raise ValueError(f"non-numeric CSV column of type {col.type}")
        columns.append(pc.cast(col, pa.float32()).to_numpy(zero_copy_only=False))
    return np.column_stack(columns).astype(np.float32, copy=False)


class BoosterEndpointServer:
    """Serve ``booster`` as endpoint ``endpoint_name`` on ``127.0.0.1:<port>`` in a background thread."""

    def __init__(self, booster: Any, endpoint_name: str, port: int = 0) -> None:
        self.booster = booster
        self.endpoint_name = endpoint_name
        self.requests = 0
        self.rows = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"__type": code, "message": message}).encode()
                self._send(status, body, "application/json", {"x-amzn-ErrorType": code})

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                match = _PATH_RE.match(self.path.split("?", 1)[0])
                if match is None:
                    self._error(404, "UnknownOperationException", f"no route for {self.path}")
                    return
                if match.group("name") != server.endpoint_name:
                    self._error(400, "ValidationError", f"Endpoint {match.group('name')} not found.")
                    return
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if content_type != "text/csv":
                    self._error(415, "ValidationError", f"unsupported content type {content_type!r}; allowed: text/csv")
                    return
                try:
                    matrix = parse_csv_matrix(body)
                    preds = server.booster.inplace_predict(matrix) if matrix.size else np.empty(0)
                except Exception as exc:  # the runtime reports model failures as ModelError
                    self._error(424, "ModelError", f"could not score the request: {exc}")
                    return
                with server._lock:
                    server.requests += 1
                    server.rows += int(matrix.shape[0])
                out = ",".join(np.char.mod("%.9g", np.asarray(preds, dtype=np.float64)).tolist()).encode()
                self._send(200, out, "text/csv", {"x-Amzn-Invoked-Production-Variant": "AllTraffic"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="booster-endpoint", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BoosterEndpointServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> BoosterEndpointServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
