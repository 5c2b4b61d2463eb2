"""Data capture of an endpoint config (``DataCaptureConfig``): sampled requests and responses, written to
the S3 store in SageMaker's capture format.

Layout and format (``aws_next_notes.md`` §2; AWS guide "Data capture"):
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/MM-SS-mmm-<uuid4>.jsonl`` (UTC hour of the
invocation; the file name is the minute, second and millisecond the file was opened), one JSON line per
invocation::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "1,2\\n", "encoding": "CSV"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "<uuid4>", "inferenceId": "<if given>", "inferenceTime": "...Z"},
     "eventVersion": "0"}

``encoding`` is ``CSV`` / ``JSON`` when the observed content type is in ``CaptureContentTypeHeader``'s
Csv / Json lists (data is then the text), else ``BASE64``. Only successful invocations are captured.

Cost: the request thread appends one small tuple (the bodies are referenced, not copied or encoded) to a
buffer; a flusher encodes the lines and writes each file whole, atomically, when it rotates (about once
a minute, :data:`ROTATE_SECONDS`, configurable), when the buffer grows past :data:`FLUSH_BYTES`, and
when the deployment stops (update, delete, shutdown). Delivery is asynchronous, as on AWS.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from smspark_assets import environment
from smspark_assets.local.api_errors import validation
from smspark_assets.local.s3_names import bucket_name_problem, object_path

log = logging.getLogger("smspark.local.capture")

ROTATE_SECONDS = 60.0
# A buffer this large is written at once, whatever the rotation: bounds the memory capture holds.
FLUSH_BYTES = 64 * 1024 * 1024
MODES = ("Input", "Output", "InputAndOutput")
# Bytes a JSON string must escape, apart from the newline (which CSV is full of, escaped with one replace).
_UNSAFE = bytes(c for c in range(32) if c != 10) + b'"\\'


def check_capture_config(config: Any, serverless: bool) -> dict[str, Any] | None:
    """A CreateEndpointConfig ``DataCaptureConfig`` checked as botocore's model constrains it."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise validation("DataCaptureConfig must be an object")
    if serverless:
        raise validation("DataCaptureConfig is not supported for serverless endpoints (a variant has a "
                         "ServerlessConfig).")
    percent = config.get("InitialSamplingPercentage")
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise validation(f"1 validation error detected: Value '{percent}' at 'dataCaptureConfig."
                         "initialSamplingPercentage' failed to satisfy constraint: Member must have value "
                         "between 0 and 100")
    uri = config.get("DestinationS3Uri")
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) > 512:
        raise validation(f"Value '{uri}' at 'dataCaptureConfig.destinationS3Uri' must be an s3:// URI of at most "
                         "512 characters")
    try:
        bucket, _ = environment.split_s3_uri(uri)
        problem = bucket_name_problem(bucket)
        if problem is not None:
            raise ValueError(problem)
        environment.local_path(uri.rstrip("/") + "/x", root=Path("/"))  # refuses keys that leave the bucket
    except ValueError as exc:
        raise validation(f"Value '{uri}' at 'dataCaptureConfig.destinationS3Uri' is not a valid S3 URI "
                         f"({exc})") from None
    options = config.get("CaptureOptions")
    if not isinstance(options, list) or not 1 <= len(options) <= 32:
        raise validation("1 validation error detected: Value at 'dataCaptureConfig.captureOptions' failed to "
                         "satisfy constraint: Member must have length between 1 and 32")
    for i, option in enumerate(options, 1):
        mode = option.get("CaptureMode") if isinstance(option, dict) else None
        if mode not in MODES:
            raise validation(f"1 validation error detected: Value '{mode}' at 'dataCaptureConfig.captureOptions."
                             f"{i}.member.captureMode' failed to satisfy constraint: Member must satisfy enum "
                             f"value set: [{', '.join(MODES)}]")
    header = config.get("CaptureContentTypeHeader")
    if header is not None:
        if not isinstance(header, dict):
            raise validation("CaptureContentTypeHeader must be an object")
        for member in ("CsvContentTypes", "JsonContentTypes"):
            types = header.get(member)
            if types is not None and (not isinstance(types, list) or not 1 <= len(types) <= 10 or not all(
                    isinstance(t, str) and 1 <= len(t) <= 256 for t in types)):
                raise validation(f"CaptureContentTypeHeader.{member} must hold 1-10 content types")
    return {**config, "EnableCapture": bool(config.get("EnableCapture", True))}


def capture_summary(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``DataCaptureConfigSummary`` of DescribeEndpoint."""
    if not config:
        return None
    summary = {
        "EnableCapture": bool(config.get("EnableCapture", True)),
        "CaptureStatus": "Started" if config.get("EnableCapture", True) else "Stopped",
        "CurrentSamplingPercentage": int(config["InitialSamplingPercentage"]),
        "DestinationS3Uri": config["DestinationS3Uri"],
    }
    if config.get("KmsKeyId"):
        summary["KmsKeyId"] = config["KmsKeyId"]
    return summary


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class DataCapture:
    """Capture of one endpoint's deployment: sampling, buffering and rotation per variant."""

    def __init__(self, endpoint: str, config: dict[str, Any], s3_root: Path, staging: Path,
                 rotate_seconds: float = ROTATE_SECONDS) -> None:
        self.endpoint = endpoint
        self.rate = int(config["InitialSamplingPercentage"]) / 100.0
        self.destination = config["DestinationS3Uri"].rstrip("/")
        modes = {o["CaptureMode"] for o in config["CaptureOptions"]}
        self.inputs = bool(modes & {"Input", "InputAndOutput"})
        self.outputs = bool(modes & {"Output", "InputAndOutput"})
        header = config.get("CaptureContentTypeHeader") or {}
        self.csv_types = {_base_type(t) for t in header.get("CsvContentTypes") or []}
        self.json_types = {_base_type(t) for t in header.get("JsonContentTypes") or []}
        self.bucket, prefix = environment.split_s3_uri(self.destination)
        self.prefix = prefix.strip("/")
        self.s3_root = s3_root
        self.staging = staging
        self.rotate_seconds = rotate_seconds
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        # variant -> (opened at, events); an event is (time, inference id, in type, in body, out type, out body)
        self._open: dict[str, tuple[float, list[tuple]]] = {}
        self._bytes = 0
        self.written: list[str] = []  # keys written (for the log and tests of the stack itself)

    # -- the request path -------------------------------------------------------------------------------

    def record(self, variant: str, inference_id: str | None, in_type: str, body: bytes, out_type: str,
               out: bytes) -> None:
        """Buffer one invocation if it is sampled: a tuple append, nothing encoded here."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return
        now = time.time()
        with self._lock:
            current = self._open.get(variant)
            if current is None:
                current = self._open[variant] = (now, [])
            current[1].append((now, inference_id, in_type, body, out_type, out))
            self._bytes += len(body) + len(out)
            big = self._bytes > FLUSH_BYTES
        if big:
            threading.Thread(target=self.flush, kwargs={"force": True}, daemon=True).start()

    # -- the flusher ------------------------------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        """Write the files that are due (opened ``rotate_seconds`` ago or in an earlier UTC hour); all with
        ``force``."""
        now = time.time()
        with self._lock:
            due = {}
            for variant, (opened, events) in list(self._open.items()):
                if events and (force or now - opened >= self.rotate_seconds
                               or int(now // 3600) != int(opened // 3600)):
                    due[variant] = (opened, events)
                    del self._open[variant]
            if force:
                self._bytes = 0
            elif due:
                self._bytes = sum(len(e[3]) + len(e[5]) for _, events in self._open.values() for e in events)
        with self._flush_lock:
            for variant, (opened, events) in due.items():
                try:
                    self._write(variant, opened, events)
                except Exception as exc:  # noqa: BLE001 - on AWS a failed delivery loses the capture, never the invocation
                    log.warning("data capture of %s/%s could not be written: %s", self.endpoint, variant, exc)

    def _encode(self, mode: str, content_type: str, data: bytes) -> list[bytes]:
        """One ``endpointInput`` / ``endpointOutput`` object as JSON byte pieces (joined by ``writev``).

        Hot for big payloads: text that is plain ASCII with nothing to escape but newlines (the usual CSV)
        is escaped with one ``bytes.replace``, not through ``json.dumps`` (several times slower); anything
        else goes through the JSON encoder, and text that is not UTF-8 is captured as BASE64.
        """
        base = _base_type(content_type)
        encoding = "CSV" if base in self.csv_types else "JSON" if base in self.json_types else "BASE64"
        if encoding != "BASE64":
            if data.isascii() and len(data.translate(None, _UNSAFE)) == len(data):
                escaped = data.replace(b"\n", b"\\n")
            else:
                try:
                    escaped = json.dumps(data.decode("utf-8"))[1:-1].encode("ascii")
                except UnicodeDecodeError:
                    encoding = "BASE64"
        if encoding == "BASE64":
            escaped = base64.b64encode(data)
        head = json.dumps({"observedContentType": content_type, "mode": mode}, separators=(",", ":"))[:-1]
        return [head.encode(), b',"data":"', escaped, f'","encoding":"{encoding}"}}'.encode()]

    def _write(self, variant: str, opened: float, events: list[tuple]) -> None:
        stamp = dt.datetime.fromtimestamp(opened, dt.timezone.utc)
        key = (f"{self.endpoint}/{variant}/{stamp:%Y/%m/%d/%H}/"
               f"{stamp:%M-%S}-{stamp.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl")
        key = f"{self.prefix}/{key}" if self.prefix else key
        uri = f"s3://{self.bucket}/{key}"
        bucket_dir = self.s3_root / self.bucket
        if not bucket_dir.is_dir():
            log.warning("data capture of %s: bucket of %s does not exist; %d record(s) dropped",
                        self.endpoint, self.destination, len(events))
            return
        pieces: list[bytes] = []
        for when, inference_id, in_type, body, out_type, out in events:
            pieces.append(b'{"captureData":{')
            if self.inputs:
                pieces.append(b'"endpointInput":')
                pieces.extend(self._encode("INPUT", in_type, body))
            if self.outputs:
                pieces.append(b',"endpointOutput":' if self.inputs else b'"endpointOutput":')
                pieces.extend(self._encode("OUTPUT", out_type, out))
            moment = dt.datetime.fromtimestamp(when, dt.timezone.utc)
            metadata = {"eventId": str(uuid.uuid4())}
            if inference_id:
                metadata["inferenceId"] = inference_id
            metadata["inferenceTime"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            pieces.append(b'},"eventMetadata":' + json.dumps(metadata, separators=(",", ":")).encode()
                          + b',"eventVersion":"0"}\n')
        target = object_path(bucket_dir, key)  # checked again here: the file stays inside its bucket
        target.parent.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        # Written beside the store, then moved in: a reader sees the whole file or nothing.
        fd, tmp = tempfile.mkstemp(dir=self.staging, prefix="capture-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for start in range(0, len(pieces), 512):  # writev: the payloads are never joined in memory
                    batch = pieces[start:start + 512]
                    written, total = os.writev(fh.fileno(), batch), sum(map(len, batch))
                    if written < total:  # a short write (rare): the rest the plain way
                        rest = b"".join(batch)[written:]
                        fh.write(rest)
                        fh.flush()
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.written.append(uri)
