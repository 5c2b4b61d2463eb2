"""Batch transform jobs of the local service: CreateTransformJob, DescribeTransformJob, ListTransformJobs,
StopTransformJob.

A job starts model servers for its model (one per instance, capped at the cores), splits every input
object (``SplitType`` None, Line or RecordIO), packs records into requests (``BatchStrategy``
SingleRecord or MultiRecord, at most ``MaxPayloadInMB``), and writes one ``<key>.out`` object per
input object under ``S3OutputPath``, joined as ``AssembleWith`` says, in input order. Batches are found
with NumPy over the record boundaries, never by looping over rows.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from smspark_assets.local.algorithm_lookup import resolve_image
from smspark_assets.local.api_errors import in_use, not_found, validation
from smspark_assets.local.endpoints import _extract
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.model_servers import ModelServerError, ModelServerProcess
from smspark_assets.local.private_files import private_dir
from smspark_assets.local.process_environment import (CONTAINER_LIMITS, TRANSFORM_LIMITS, check_environment,
                                                     checked_or_error)
from smspark_assets.local.state import AlreadyExists, StateStore
from smspark_assets.local.training import ChannelDataError, _prefix_matches

KIND = "transform-job"
MB = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6
RECORDIO_MAGIC = 0xCED7230A
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")


class TransformFailure(Exception):
    """The job cannot complete; the message is its FailureReason."""


class _Stopped(Exception):
    pass


def line_records(data: bytes) -> np.ndarray:
    """End offsets (exclusive) of each line record; a last line without newline is a record too."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A) + 1
    if len(data) and (len(ends) == 0 or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    return ends.astype(np.int64)


def recordio_records(data: bytes) -> np.ndarray:
    """End offsets of each recordIO record (magic, length word, payload padded to 4 bytes).

    Walks headers only (one step per record, no payload copies); records are what SageMaker sends whole.
    """
    ends: list[int] = []
    offset, size = 0, len(data)
    while offset < size:
        if offset + 8 > size:
            raise TransformFailure(f"ClientError: truncated recordIO header at byte {offset}")
        magic, word = struct.unpack_from("<II", data, offset)
        if magic != RECORDIO_MAGIC:
            raise TransformFailure(
                f"ClientError: invalid recordIO magic {magic:#x} at byte {offset}; "
                "SplitType RecordIO needs recordIO-protobuf input"
            )
        length = word & ((1 << 29) - 1)
        offset += 8 + length + (-length % 4)
        if offset > size:
            raise TransformFailure("ClientError: truncated recordIO record at the end of the object")
        ends.append(offset)
    return np.asarray(ends, dtype=np.int64)


def batch_bounds(ends: np.ndarray, max_bytes: int, multi: bool) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges of the requests: one record each, or as many whole records as fit."""
    if len(ends) == 0:
        return []
    starts = np.concatenate(([0], ends[:-1]))
    sizes = ends - starts
    too_big = np.flatnonzero(sizes > max_bytes)
    if len(too_big):
        raise TransformFailure(
            f"ClientError: a record of {int(sizes[too_big[0]])} bytes is larger than MaxPayloadInMB "
            f"({max_bytes // MB} MB); raise MaxPayloadInMB or split the records"
        )
    if not multi:
        return list(zip(starts.tolist(), ends.tolist()))
    bounds = []
    begin = 0
    count = len(ends)
    while begin < count:
        start = int(starts[begin])
        # the last record that still ends within start + max_bytes (one search per request, not per record)
        last = int(np.searchsorted(ends, start + max_bytes, side="right")) - 1
        bounds.append((start, int(ends[last])))
        begin = last + 1
    return bounds


class TransformRunner:
    """Runs transform jobs in background threads and answers the transform operations."""

    def __init__(
        self,
        layout: LocalLayout,
        store: StateStore,
        api: Any,
        custom_images: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.layout = layout
        self.store = store
        self.api = api
        self.custom_images = custom_images
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        # The variables with which boto3 in a model server reaches the stack (the service sets it).
        self.client_env: Callable[[str | None], dict[str, str]] = lambda role_arn=None: {}

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateTransformJob": self.create,
            "DescribeTransformJob": self.describe,
            "ListTransformJobs": self.list,
            "StopTransformJob": self.stop,
        }

    # -- API --------------------------------------------------------------------------------------------

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import (
            _check_enum,
            _check_name,
            _check_s3_uri,
            _check_tags,
            _require,
        )

        name = _require(p, "TransformJobName")
        _check_name(name, "transformJobName")
        model_name = _require(p, "ModelName")
        model = self.store.get("model", model_name)
        if model is None:
            raise validation(f"Could not find model \"{self.api.arn('model', model_name)}\".")
        source = _require(p, "TransformInput", "DataSource", "S3DataSource")
        _check_enum(
            source.get("S3DataType"),
            "transformInput.dataSource.s3DataSource.s3DataType",
            ("ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"),
        )
        if source.get("S3DataType") != "S3Prefix":
            raise validation(
                f"S3DataType {source.get('S3DataType')!r} is not supported locally; allowed: S3Prefix"
            )
        _check_s3_uri(
            _require(p, "TransformInput", "DataSource", "S3DataSource", "S3Uri"),
            "transformInput.dataSource.s3DataSource.s3Uri",
        )
        tin = p["TransformInput"]
        _check_enum(
            tin.get("SplitType"), "transformInput.splitType", ("None", "Line", "RecordIO", "TFRecord")
        )
        if tin.get("SplitType") == "TFRecord":
            raise validation("SplitType TFRecord is not supported locally; allowed: None, Line, RecordIO")
        _check_enum(tin.get("CompressionType"), "transformInput.compressionType", ("None", "Gzip"))
        if tin.get("CompressionType") == "Gzip":
            raise validation("CompressionType Gzip is not supported locally; allowed: None")
        _check_enum(p.get("BatchStrategy"), "batchStrategy", ("MultiRecord", "SingleRecord"))
        out = _require(p, "TransformOutput")
        _check_s3_uri(_require(p, "TransformOutput", "S3OutputPath"), "transformOutput.s3OutputPath")
        _check_enum(out.get("AssembleWith"), "transformOutput.assembleWith", ("None", "Line"))
        resources = _require(p, "TransformResources")
        _require(p, "TransformResources", "InstanceType")
        count = resources.get("InstanceCount")
        if not isinstance(count, int) or count < 1:
            raise validation(
                f"Value '{count}' at 'transformResources.instanceCount' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            )
        payload = p.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
        if not isinstance(payload, int) or not 0 <= payload <= 100:
            raise validation(
                f"Value '{payload}' at 'maxPayloadInMB' failed to satisfy constraint: Member must have "
                "value between 0 and 100"
            )
        concurrent = p.get("MaxConcurrentTransforms", 1)
        if not isinstance(concurrent, int) or concurrent < 0:
            raise validation("MaxConcurrentTransforms must be an integer >= 0")
        # Refused before anything exists: the map reaches the model servers' environment.
        check_environment(p.get("Environment"), "environment", TRANSFORM_LIMITS)
        if p.get("DataProcessing"):
            raise validation(
                "DataProcessing (InputFilter, JoinSource, OutputFilter) is not supported locally"
            )
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        try:
            ref = resolve_image(container.get("Image", ""), self.custom_images())
        except ValueError as exc:
            raise validation(str(exc)) from None
        tags = _check_tags(p.get("Tags"))
        arn = self.api.arn("transform-job", name)
        now = time.time()
        doc = {k: v for k, v in p.items() if k != "Tags"}
        doc.update(
            {
                "TransformJobName": name,
                "TransformJobArn": arn,
                "TransformJobStatus": "InProgress",
                "CreationTime": now,
                "LastModifiedTime": now,
                "MaxPayloadInMB": payload,
                "MaxConcurrentTransforms": concurrent,
                "BatchStrategy": p.get("BatchStrategy", "MultiRecord"),
            }
        )
        try:
            self.store.create(KIND, name, arn, doc, status="InProgress")
        except AlreadyExists:
            raise in_use(
                f"Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists ({arn})"
            ) from None
        if tags:
            self.store.add_tags(arn, tags)
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(name, doc, model, ref, stop), name=f"transform-{name}", daemon=True
        )
        with self._lock:
            self._stops[name] = stop
            self._threads[name] = thread
        thread.start()
        return {"TransformJobArn": arn}

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _require

        name = _require(p, "TransformJobName")
        doc = self.store.get(KIND, name)
        if doc is None:
            raise validation(f"Could not find requested job with name {name}")
        return doc

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _filter_and_sort, _Pager

        docs = _filter_and_sort(
            self.store.list(KIND),
            p,
            "TransformJobName",
            "TransformJobStatus",
            STATUSES,
            {"Name": "TransformJobName", "CreationTime": "CreationTime", "Status": "TransformJobStatus"},
        )
        page, token = _Pager.page(docs, p, name_key="TransformJobName")
        keys = (
            "TransformJobName",
            "TransformJobArn",
            "CreationTime",
            "TransformEndTime",
            "LastModifiedTime",
            "TransformJobStatus",
            "FailureReason",
        )
        result: dict[str, Any] = {"TransformJobSummaries": [{k: d[k] for k in keys if k in d} for d in page]}
        if token:
            result["NextToken"] = token
        return result

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _require

        name = _require(p, "TransformJobName")
        doc = self.store.get(KIND, name)
        if doc is None:
            raise not_found(f"Could not find requested job with name {name}")
        if doc["TransformJobStatus"] != "InProgress":
            raise validation(
                f"The request was rejected because the transform job is in status "
                f"{doc['TransformJobStatus']}."
            )
        self._set(name, {"TransformJobStatus": "Stopping"})
        with self._lock:
            stop = self._stops.get(name)
        if stop is not None:
            stop.set()
        return {}

    # -- lifecycle --------------------------------------------------------------------------------------

    def fail_unfinished(self, reason: str) -> None:
        for doc in self.store.list(KIND):
            if doc["TransformJobStatus"] in ("InProgress", "Stopping"):
                self._set(
                    doc["TransformJobName"],
                    {
                        "TransformJobStatus": "Failed",
                        "FailureReason": reason,
                        "TransformEndTime": time.time(),
                    },
                )

    def shutdown(self) -> None:
        with self._lock:
            stops, threads = list(self._stops.values()), list(self._threads.values())
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=15)
        self.fail_unfinished("InternalServerError: the local service was stopped while the job was running")

    # -- running ----------------------------------------------------------------------------------------

    def _set(self, name: str, values: dict[str, Any]) -> None:
        def change(doc: dict[str, Any]) -> None:
            doc.update(values)
            doc["LastModifiedTime"] = time.time()

        self.store.update(KIND, name, change, status_key="TransformJobStatus")

    def _run(
        self, name: str, doc: dict[str, Any], model: dict[str, Any], ref: Any, stop: threading.Event
    ) -> None:
        job_dir = self.layout.transform_jobs_dir / name
        servers: list[ModelServerProcess] = []
        self._set(name, {"TransformStartTime": time.time()})
        try:
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            model_dir = job_dir / "model"
            if container.get("ModelDataUrl"):
                archive = self.layout.s3_path(container["ModelDataUrl"])
                if not archive.is_file():
                    raise TransformFailure(f"ClientError: no model data at {container['ModelDataUrl']}")
                _extract(archive, model_dir)
            else:
                private_dir(model_dir)
            # Checked at create; checked again here for models and jobs stored before the check existed.
            try:
                env = checked_or_error(container.get("Environment"), "primaryContainer.environment",
                                       CONTAINER_LIMITS)
                env.update(checked_or_error(doc.get("Environment"), "environment", TRANSFORM_LIMITS))
            except ValueError as exc:
                raise TransformFailure(f"ClientError: {exc}") from None
            # What SageMaker tells a container in a transform job; the built-in ones answer one line per
            # record. The contract's variables win over the user's map.
            contract = dict(self.client_env(model.get("ExecutionRoleArn")))  # signed as the model's role
            contract.update(
                {
                    "SAGEMAKER_BATCH": "true",
                    "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(doc["MaxPayloadInMB"]),
                    "SAGEMAKER_BATCH_STRATEGY": (
                        "MULTI_RECORD" if doc["BatchStrategy"] == "MultiRecord" else "SINGLE_RECORD"
                    ),
                }
            )
            instances = min(int(doc["TransformResources"]["InstanceCount"]), os.cpu_count() or 1)
            for i in range(instances):
                server = ModelServerProcess(ref, model_dir, job_dir / f"model-server-{i}.log", env, contract)
                servers.append(server)
                server.start()
            self._transform_all(doc, servers, stop)
        except _Stopped:
            self._set(name, {"TransformJobStatus": "Stopped", "TransformEndTime": time.time()})
        except (TransformFailure, ModelServerError, ChannelDataError) as exc:
            self._set(
                name,
                {"TransformJobStatus": "Failed", "FailureReason": str(exc), "TransformEndTime": time.time()},
            )
        except Exception as exc:  # noqa: BLE001 - a bug must still end the job visibly
            self._set(
                name,
                {
                    "TransformJobStatus": "Failed",
                    "TransformEndTime": time.time(),
                    "FailureReason": f"InternalServerError: {type(exc).__name__}: {exc}",
                },
            )
        else:
            self._set(name, {"TransformJobStatus": "Completed", "TransformEndTime": time.time()})
        finally:
            for server in servers:
                server.stop()
            shutil.rmtree(job_dir / "model", ignore_errors=True)
            with self._lock:
                self._stops.pop(name, None)
                self._threads.pop(name, None)

    def _transform_all(
        self, doc: dict[str, Any], servers: list[ModelServerProcess], stop: threading.Event
    ) -> None:
        tin, tout = doc["TransformInput"], doc["TransformOutput"]
        uri = tin["DataSource"]["S3DataSource"]["S3Uri"]
        prefix = self.layout.s3_path(uri)
        objects = _prefix_matches(prefix)
        if not objects:
            raise TransformFailure(f'ClientError: No S3 objects found under S3 URL "{uri}"')
        split = tin.get("SplitType") or "None"
        multi = doc.get("BatchStrategy", "MultiRecord") == "MultiRecord"
        # MaxPayloadInMB=0 means "no limit" in SageMaker (streaming); locally, one object per request.
        max_bytes = int(doc.get("MaxPayloadInMB") or 0) * MB or (1 << 62)
        assemble_lines = tout.get("AssembleWith") == "Line"
        headers = {"Content-Type": tin.get("ContentType") or "application/octet-stream"}
        if tout.get("Accept"):
            headers["Accept"] = tout["Accept"]
        out_root = self.layout.s3_path(tout["S3OutputPath"])
        workers = max(1, int(doc.get("MaxConcurrentTransforms") or 1)) * len(servers)
        counter = iter(range(1 << 62))
        lock = threading.Lock()

        def call(chunk: bytes) -> bytes:
            if stop.is_set():
                raise _Stopped()
            with lock:
                server = servers[next(counter) % len(servers)]
            status, _, body = server.invoke(chunk, headers)
            if status != 200:
                raise TransformFailure(
                    f"ClientError: the model answered {status} for a request of {len(chunk)} "
                    f"bytes: {body[:500].decode('utf-8', errors='replace')}"
                )
            return body

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transform") as pool:
            for source, rel in objects:
                data = source.read_bytes()
                if split == "Line":
                    bounds = batch_bounds(line_records(data), max_bytes, multi)
                elif split == "RecordIO":
                    bounds = batch_bounds(recordio_records(data), max_bytes, multi)
                else:
                    if len(data) > max_bytes:
                        raise TransformFailure(
                            f"ClientError: the object {rel} ({len(data)} bytes) is larger than "
                            "MaxPayloadInMB and SplitType is None"
                        )
                    bounds = [(0, len(data))] if data else []
                answers = list(pool.map(call, [data[a:b] for a, b in bounds]))
                if stop.is_set():
                    raise _Stopped()
                if assemble_lines:
                    answers = [a if a.endswith(b"\n") else a + b"\n" for a in answers]
                target = out_root / f"{rel}.out"
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".writing")
                tmp.write_bytes(b"".join(answers))
                tmp.replace(target)
