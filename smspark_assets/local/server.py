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
import hashlib
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
from xml.sax.saxutils import escape as xml_escape

from smspark_assets.local.algorithm_lookup import read_config
from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.dynamodb import DynamoDBHost
from smspark_assets.local.endpoints import EndpointManager
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.sagemaker_api import SageMakerApi
from smspark_assets.local.state import NotFound, StateStore
from smspark_assets.local.training import TrainingRunner
from smspark_assets.local.action_log import ActionLog
from smspark_assets.local.services import load_apis
from smspark_assets.local.request_validation import check_params
from smspark_assets.local.scores_api import API_PREFIX, handle_api_request
from smspark_assets.local.credentials import load_or_create, role_credentials
from smspark_assets.local.sigv4 import AuthFailure, loopback_host, verify
from smspark_assets.local.wire import (FileSlice, JsonTargetApi, Request, Response, RestApi, credential_scope,
                                       parse_query)

log = logging.getLogger("smspark.local")

# SageMaker's limit for one real-time invocation: 6 MB (6,291,456 bytes); AWS accepts 5-6 MB requests too.
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
# Bodies larger than this are not even drained: the connection is closed.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
# JSON control-plane requests (Glue, Athena, Logs) are small; a larger body is refused with 413.
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024
# The principal of the root credentials (the Dagster process, `smspark` commands) in the action log.
ORCHESTRATOR = "orchestrator"
# X-Amz-Target prefix -> the service name recorded in the action log (and used in IAM actions).
_TARGET_SERVICES = {"AWSGlue": "glue", "AmazonAthena": "athena", "Logs_20140328": "logs",
                    "GraniteServiceVersion20100801": "cloudwatch"}
# JSON 1.1 targets whose parameter types are checked against botocore's model before dispatch.
_TYPE_CHECKED_TARGETS = ("AWSGlue", "AmazonAthena", "Logs_20140328")
DEFAULT_MAX_CONCURRENT_TRAINING_JOBS = 2
# Seconds a connection may stay silent while the server waits to read from it (a request line, headers,
# a body, or the next keep-alive request) before it is closed: a stalled client must not hold a thread
# forever. ``config.json`` key ``request_read_timeout_seconds`` (tests shorten it).
DEFAULT_READ_TIMEOUT_SECONDS = 60.0
# Exceptions an API raises when a request's values are not what it expects (a missing key, a number where
# it wanted a map): after the type check of ``request_validation`` they can only come from bad input, so
# they answer 400 rather than 500 (the last line of defence).
_BAD_INPUT_ERRORS = (TypeError, KeyError, AttributeError)
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
        # Injected UnprocessedItems share: the same config.json "fault_injection" object as invocations.
        self.dynamodb.unprocessed_rate = self.endpoints.faults.unprocessed_rate
        self.credentials = load_or_create(self.layout)
        # Access key -> secret: the requests the stack accepts are signed with these only. The root key is
        # the orchestrator's; jobs and models get their role's key (see client_environment).
        self.secrets = {self.credentials.access_key: self.credentials.secret_key}
        # Access key -> who signs with it: "orchestrator" or a role ARN (recorded in the action log).
        self.principals = {self.credentials.access_key: ORCHESTRATOR}
        self.actions = ActionLog(self.layout.actions_log, self.principals)
        self.httpd = _bind(port)
        # A handler class per server, with this root's read timeout (StreamRequestHandler applies it with
        # settimeout to every accepted socket).
        self.httpd.RequestHandlerClass = type("_Handler", (_Handler,), {
            "timeout": float(self.config.get("request_read_timeout_seconds", DEFAULT_READ_TIMEOUT_SECONDS))})
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # S3, EMR Serverless, Glue, Athena, CloudWatch Logs: built after the URL is known (jobs call back).
        self.rest_apis, self.target_apis = load_apis(self)
        # Jobs and model servers reach the stack with its client environment (endpoint, credentials, region).
        self.training.client_env = self.client_environment
        self.endpoints.client_env = self.client_environment
        self.training.on_behalf = self.endpoints.on_behalf = self.actions.record_as
        # SageMaker writes a training job's log to /aws/sagemaker/TrainingJobs, stream <job>/algo-1-<epoch s>.
        self.training.publish_log = lambda name, lines: self.target_apis["Logs_20140328"].append(
            "/aws/sagemaker/TrainingJobs", f"{name}/algo-1-{int(time.time())}", lines)
        if self.sagemaker.transforms is not None:
            self.sagemaker.transforms.client_env = self.client_environment
        self.httpd.service = self
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

    def client_environment(self, role_arn: str | None = None) -> dict[str, str]:
        """The variables with which boto3 (and the AWS CLI) in a job or worker reach this stack.

        With ``role_arn`` (an EMR job's execution role, a training job's or model's SageMaker role) the
        credentials are that role's, so the action log tells the role's calls from the orchestrator's.
        """
        from smspark_assets.local.cli import stack_exports

        env = stack_exports(self.layout, self.url)
        if role_arn:
            creds = role_credentials(self.credentials, role_arn)
            self.secrets[creds.access_key] = creds.secret_key
            self.principals[creds.access_key] = role_arn
            env.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
        return env

    def apis(self) -> list[object]:
        return [*self.rest_apis.values(), *self.target_apis.values()]

    def start(self) -> None:
        self.dynamodb.start()
        self.recover()
        for api in self.apis():
            start = getattr(api, "start", None)
            if start is not None:
                start()

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
        for api in self.apis():
            stop = getattr(api, "shutdown", None)
            if stop is not None:
                try:
                    stop()
                except Exception:  # noqa: BLE001 - one service's failure to stop must not block the others
                    log.exception("stopping %s failed", type(api).__name__)
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
    # Socket read timeout: a client that stalls mid-request (or idles on keep-alive) is disconnected.
    timeout = DEFAULT_READ_TIMEOUT_SECONDS
    server: _Server

    def handle(self) -> None:
        # A client that stalls mid-body raises a timeout out of a read: close its connection quietly (the
        # base class would print a traceback per stalled client).
        try:
            super().handle()
        except (TimeoutError, ConnectionError):
            self.close_connection = True

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
        current = getattr(self, "_current", None)
        if current is not None and current._body is not None:  # already read to verify its signature
            return current._body
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
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    def do_DELETE(self) -> None:  # noqa: N802
        self._route()

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def _request(self) -> Request:
        raw_path, _, raw_query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_query(raw_query)
        access_key, region, service = credential_scope(headers, query)
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        return Request(self.command, raw_path, query, headers, self.rfile, length, service, access_key, region)

    def _route(self) -> None:
        """Find the service a request is for: the SigV4 signing name first, then the target header or path."""
        service = self.server.service
        request = self._request()
        path = request.raw_path
        if request.method == "GET" and path in ("/_smspark/health", "/ping") and not request.service:
            body = json.dumps({"pid": os.getpid(), "root": str(service.layout.root), "url": service.url}).encode()
            self._send(200, body, "application/json")
            return
        # The scores API (API Gateway's, in front of DynamoDB) is authenticated by its API key, not SigV4.
        if request.raw_path.startswith(API_PREFIX):
            self._scores_api(request)
            return
        self._current = request
        if not self._authenticate(request):
            return
        target = request.header("x-amz-target")
        prefix, _, operation = target.partition(".")
        rest = service.rest_apis.get(request.service)
        if rest is not None:
            self._rest(rest, request)
        elif request.method == "POST" and path.startswith("/endpoints/") and path.endswith("/invocations"):
            service.actions.record("sagemaker", "InvokeEndpoint", request.access_key)
            self._invoke(unquote(path[len("/endpoints/"):-len("/invocations")]))
        elif prefix == "SageMaker":
            service.actions.record("sagemaker", operation, request.access_key)
            self._sagemaker(operation)
        elif prefix == "DynamoDB_20120810":
            service.actions.record("dynamodb", operation, request.access_key)
            self._dynamodb(target)
        elif prefix in service.target_apis:
            self._json_target(service.target_apis[prefix], prefix, operation, request)
        else:
            self._read_body()
            self._error(
                ApiError(
                    "UnknownOperationException",
                    f"The local service does not serve {target or (request.method + ' ' + path)!r} "
                    f"(signing name {request.service or 'none'!r}); it serves S3, EMR Serverless, Glue, Athena, "
                    "CloudWatch Logs, SageMaker (+ runtime) and DynamoDB.",
                ),
                "application/x-amz-json-1.1",
            )

    def _scores_api(self, request: Request) -> None:
        """The scores API: a request under ``API_PREFIX`` (see :mod:`smspark_assets.local.scores_api`)."""
        if not loopback_host(request.header("host")):  # DNS rebinding: as for every other route
            self._send(403, b'{"message":"Forbidden"}', "application/json", close=True)
            return
        # The API's methods take no body: read a small one to keep the connection in step, else close.
        if request.content_length < 0 or request.content_length > 1024 * 1024:
            self._send(413 if request.content_length > 0 else 400, b'{"message":"Request body not accepted"}',
                       "application/json", close=True)
            return
        if request.content_length:
            request.body()
        query = self.path.partition("?")[2]
        status, headers, body = handle_api_request(self.server.service, request.method, request.raw_path, query,
                                                   request.headers)
        content_type = headers.pop("Content-Type", "application/json")
        write_response(self, status, b"" if request.method == "HEAD" else body, content_type, headers)

    def _authenticate(self, request: Request) -> bool:
        """Loopback ``Host`` and a valid SigV4 signature with this root's credentials; else answer the error."""
        is_s3 = request.service == "s3"
        if request.content_length < 0:
            self._refuse(request, 400, "InvalidRequest", "BadRequest",
                         "Content-Length must be a non-negative integer.", close=True)
            return False
        if not loopback_host(request.header("host")):
            # A page on another origin that resolves to 127.0.0.1 (DNS rebinding) still sends its own Host.
            self._refuse(request, 400, "InvalidHostHeader", "InvalidArgument",
                         f"Host {request.header('host')!r} is not a loopback name; the stack serves "
                         "127.0.0.1, localhost and [::1] only.", close=True)
            return False
        body_sha = None
        if not is_s3:
            is_invoke = request.raw_path.endswith("/invocations")
            limit = MAX_INVOKE_PAYLOAD_BYTES if is_invoke else MAX_JSON_BODY_BYTES
            if request.content_length > limit:
                if is_invoke:
                    return True  # _invoke answers SageMaker's size error (and drains or closes)
                self._refuse(request, 413, "RequestEntityTooLargeException", "EntityTooLarge",
                             f"request body of {request.content_length} bytes is over the limit of {limit} "
                             "bytes", close=True)
                return False
            try:
                body_sha = hashlib.sha256(request.body()).hexdigest()
            except ApiError as exc:
                self._refuse(request, exc.status, exc.code, exc.code, exc.message, close=True)
                return False
        raw_query = self.path.partition("?")[2]
        try:
            request.access_key = verify(request.method, request.raw_path, raw_query, request.headers, body_sha,
                                        self.server.service.secrets)
        except AuthFailure as failure:
            self._refuse(request, failure.status, failure.code, failure.s3_code, failure.message)
            return False
        return True

    def _refuse(self, request: Request, status: int, code: str, s3_code: str, message: str,
                close: bool = False) -> None:
        """An authentication or request-shape error, in the protocol of the service asked for."""
        self.server.service.actions.record(request.service or "unknown", f"refused:{code}", request.access_key)
        if request.service == "s3":
            body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + s3_code + "</Code><Message>"
                    + xml_escape(message) + "</Message></Error>").encode()
            if request.content_length > 0 and request._body is None:
                close = True  # the unread body would be taken for the next request
            self._send(status, b"" if request.method == "HEAD" else body, "application/xml", close=close)
            return
        if request.content_length > 0 and request._body is None:
            close = True
        self._error(ApiError(code, message, status), "application/x-amz-json-1.1", close=close)

    def _rest(self, api: RestApi, request: Request) -> None:
        """A REST service (S3, EMR Serverless): the API answers a Response, maybe a file slice."""
        try:
            response = api.handle(request)
        except ApiError as exc:
            self._drain(request)
            self._error(exc, "application/json")
            return
        except Exception as exc:  # noqa: BLE001 - an internal bug answers 500 rather than dropping the connection
            log.exception("%s %s failed", request.method, request.raw_path)
            self._drain(request)
            self._error(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500), "application/json")
            return
        self._drain(request)
        self.server.service.actions.record(request.service, response.action or request.method, request.access_key)
        self._write(response)

    def _json_target(self, api: JsonTargetApi, prefix: str, operation: str, request: Request) -> None:
        content_type = "application/x-amz-json-1.1"
        self.server.service.actions.record(_TARGET_SERVICES.get(prefix, prefix), operation, request.access_key)
        try:
            body = request.body(limit=MAX_JSON_BODY_BYTES)
            params = _json_object(body)
            if prefix in _TYPE_CHECKED_TARGETS:
                check_params(_TARGET_SERVICES[prefix], operation, params)
            result = api.dispatch(operation, params)
        except ApiError as exc:
            self._drain(request)
            self._error(exc, content_type)
            return
        except _BAD_INPUT_ERRORS as exc:
            log.warning("%s.%s: bad input reached the API: %r", prefix, operation, exc)
            self._error(ApiError("ValidationException", f"invalid request for {operation}: "
                                 f"{type(exc).__name__}: {exc}"), content_type)
            return
        except Exception as exc:  # noqa: BLE001 - an internal bug answers 500 rather than dropping the connection
            log.exception("%s.%s failed", prefix, operation)
            self._error(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500), content_type)
            return
        self._send(200, json.dumps(result, default=_json_default).encode(), content_type)

    def _drain(self, request: Request) -> None:
        """Read what is left of a body the API did not read, so the keep-alive connection stays in step."""
        if request._body is None and request.content_length > 0 and not getattr(request, "consumed", False):
            if request.content_length > MAX_DRAIN_BYTES:
                self.close_connection = True
                return
            try:
                request.body()
            except ApiError:
                self.close_connection = True

    def _write(self, response: Response) -> None:
        body = response.body
        length = body.length if isinstance(body, FileSlice) else len(body)
        head = {**response.headers}
        if response.head_only:
            length = int(head.pop("Content-Length", length))
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
                 f"Content-Type: {response.content_type}", f"Content-Length: {length}",
                 f"x-amzn-RequestId: {uuid.uuid4().hex}"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        if head.get("Connection", "").lower() == "close":  # e.g. S3 after a body it could not read to the end
            self.close_connection = True
        # A slice may come with the file already open (S3 GET: the inode its headers describe).
        opened = getattr(body, "file", None)
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if response.head_only or self.command == "HEAD":
                return
            if isinstance(body, FileSlice):
                self.wfile.flush()
                with opened if opened is not None else open(body.path, "rb") as fh:
                    self.connection.sendfile(fh, body.offset, body.length)
            elif body:
                self.wfile.write(body)
        finally:
            if opened is not None:
                opened.close()

    def _sagemaker(self, operation: str) -> None:
        content_type = "application/x-amz-json-1.1"
        body = self._read_body()
        try:
            params = _json_object(body)
            # Wrong JSON types answer 400 here, as AWS's deserializer does, before the API trusts them.
            check_params("sagemaker", operation, params)
            result = self.server.service.sagemaker.dispatch(operation, params)
        except ApiError as exc:
            self._error(exc, content_type)
            return
        except _BAD_INPUT_ERRORS as exc:
            log.warning("SageMaker.%s: bad input reached the API: %r", operation, exc)
            self._error(ApiError("ValidationException", f"invalid request for {operation}: "
                                 f"{type(exc).__name__}: {exc}"), content_type)
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
        content_type = "application/x-amz-json-1.0"
        operation = target.partition(".")[2]
        try:
            # moto raises (and the connection used to drop) on a body that is not a JSON object of the
            # operation's types: answer DynamoDB's 400 first.
            doc = _json_object(body)
            check_params("dynamodb", operation, doc)
            status, headers, out = self.server.service.dynamodb.handle(
                "POST", path, query, list(self.headers.items()), body, target, doc
            )
        except ApiError as exc:
            self._error(exc, content_type)
            return
        except OSError as exc:  # the journal could not be written: the stack's fault, not the request's
            log.exception("DynamoDB.%s failed", operation)
            self._error(ApiError("InternalServerError", f"{type(exc).__name__}: {exc}", 500), content_type)
            return
        except Exception as exc:  # noqa: BLE001 - moto choked on input it did not expect: a 400, never a drop
            log.warning("DynamoDB.%s: moto failed on the request: %r", operation, exc)
            self._error(ApiError("ValidationException", f"invalid request for {operation}: "
                                 f"{type(exc).__name__}: {exc}"), content_type)
            return
        # One write of head and body (a bulk load's answers are small and many).
        extra = {key: value for key, value in headers
                 if key.lower() not in ("content-length", "content-type", "connection", "date", "server")}
        answered_as = next((value for key, value in headers if key.lower() == "content-type"), content_type)
        write_response(self, status, out, answered_as, extra)

    def _invoke(self, endpoint: str) -> None:  # noqa: C901 - one answer per failure kind
        content_type = "application/json"
        body = self._read_body(MAX_INVOKE_PAYLOAD_BYTES)
        if body is None:
            size = self.headers.get("Content-Length")
            self._error(
                ApiError(
                    "ValidationError",
                    f"Received payload of {size} bytes for endpoint {endpoint}; the "
                    f"maximum is {MAX_INVOKE_PAYLOAD_BYTES} bytes (6 MB) per "
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
        inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id")
        if inference_id:  # recorded by data capture (eventMetadata.inferenceId)
            forward["X-Amzn-SageMaker-Inference-Id"] = inference_id
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


def _json_object(body: bytes | None) -> dict[str, Any]:
    """A JSON 1.x request body as a dict; a body that is not UTF-8 JSON of an object is a 400
    ``SerializationException`` (AWS's answer), never a 500."""
    if not body:
        return {}
    try:
        params = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError("SerializationException", f"request body is not UTF-8: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, and numbers too large for int() conversion
        raise ApiError("SerializationException", f"request body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError("SerializationException", "request body is nested too deeply") from None
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "request body must be a JSON object")
    return params


def _json_default(value: object) -> object:
    """Timestamps in JSON answers are epoch seconds, as AWS's JSON protocols send them."""
    import datetime as _dt

    if isinstance(value, _dt.datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smspark_assets.local.server")
    parser.add_argument("--root", default=None, help="project root (default: SMSPARK_ROOT or ./.smspark)")
    parser.add_argument("--port", default=0, type=int, help="preferred port; any free port when taken or 0")
    args = parser.parse_args(argv)
    # The state is private: whatever this process and its children (workers, model servers, Spark)
    # create is 0600/0700, whoever started it and with whichever umask.
    from smspark_assets.local.process_environment import PRIVATE_UMASK

    os.umask(PRIVATE_UMASK)
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
