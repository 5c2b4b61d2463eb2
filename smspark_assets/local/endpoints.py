"""Endpoints of the local service: deploy an endpoint config as model-server processes, route invocations.

A :class:`Deployment` is one endpoint config being served: its production variants, each with one
model-server process per instance. The live deployment of an endpoint is replaced atomically, which
makes UpdateEndpoint blue/green: the new deployment starts beside the old one and takes traffic only
once every server answers ``/ping``; the old one then drains its in-flight requests and stops. A new
config that cannot start leaves the old one serving, with a ``FailureReason``, as SageMaker does.

With a ``DeploymentConfig`` the switch is gradual (canary or linear steps, bakes watched by CloudWatch
alarms, rollback to the old fleet: :mod:`.deployment_rollout`). Every invocation is counted in memory for
CloudWatch (:mod:`.endpoint_metrics`) and, when the config asks for it, captured
(:mod:`.deployment_capture`). Serverless variants start their model server on first use
(:mod:`.deployment_serverless`).
"""

from __future__ import annotations

import bisect
import itertools
import os
import random
import shutil
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from smspark_assets.local.algorithm_lookup import AlgorithmRef, resolve_image
from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.deployment_capture import ROTATE_SECONDS, DataCapture, capture_summary
from smspark_assets.local.deployment_config import RolloutPlan
from smspark_assets.local.deployment_rollout import Aborted, RolledBack, Shift, run_rollout
from smspark_assets.local.deployment_serverless import (COLD_START_WAIT_SECONDS, IDLE_SECONDS, MAX_PAYLOAD_BYTES,
                                                         ServerlessGate, not_ready, oversize)
from smspark_assets.local.endpoint_metrics import EndpointMetrics
from smspark_assets.local.fault_injection import FaultConfig
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.model_servers import ModelServerError, ModelServerProcess
from smspark_assets.local.private_files import private_dir
from smspark_assets.local.process_environment import CONTAINER_LIMITS, checked_or_error
from smspark_assets.local.state import NotFound, StateStore

KIND = "endpoint"
ACCOUNT = "123456789012"
DRAIN_TIMEOUT_SECONDS = 30.0
HEALTH_INTERVAL_SECONDS = 0.5
# More processes than cores only adds contention on this machine; extra instances share the cores.
MAX_PROCESSES_PER_VARIANT = max(1, os.cpu_count() or 1)


@dataclass
class Variant:
    """One production variant being served: its weight and its model-server processes."""

    name: str
    weight: float
    image: str
    ref: AlgorithmRef
    model_dir: Path
    log_dir: Path
    env: dict[str, str]  # the model's checked Environment map
    desired_instances: int
    contract: dict[str, str] = field(default_factory=dict)  # set by the platform, wins over ``env``
    instance_type: str = ""
    serverless: ServerlessGate | None = None  # set for a ServerlessConfig variant: servers start on demand
    servers: list[ModelServerProcess] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next: Any = field(default_factory=itertools.count)

    def new_server(self, index: int) -> ModelServerProcess:
        return ModelServerProcess(
            self.ref, self.model_dir, self.log_dir / f"{self.name}-{index}.log", self.env, self.contract
        )

    def pick(self) -> int:
        return next(self._next) % len(self.servers)


@dataclass
class Deployment:
    """An endpoint config served by running processes; replaced as a whole on update."""

    config_name: str
    directory: Path
    variants: list[Variant]
    created: float = field(default_factory=time.time)
    inflight: int = 0
    inflight_lock: threading.Lock = field(default_factory=threading.Lock)
    capture: DataCapture | None = None
    capture_config: dict[str, Any] | None = None
    _cumulative: list[float] = field(default_factory=list)

    def reweigh(self) -> None:
        total, cumulative = 0.0, []
        for variant in self.variants:
            total += max(0.0, variant.weight)
            cumulative.append(total)
        self._cumulative = cumulative

    def choose(self, target: str | None) -> Variant:
        if target:
            for variant in self.variants:
                if variant.name == target:
                    return variant
            raise ApiError(
                "ValidationError",
                f"The variant {target!r} does not exist on this endpoint; its variants "
                f"are: {', '.join(v.name for v in self.variants)}.",
            )
        if len(self.variants) == 1:
            return self.variants[0]
        total = self._cumulative[-1] if self._cumulative else 0.0
        if total <= 0:
            return self.variants[0]
        return self.variants[bisect.bisect_right(self._cumulative, random.random() * total)]

    def stop(self) -> None:
        if self.capture is not None:
            self.capture.flush(force=True)  # what was captured is delivered before the servers go
        for variant in self.variants:
            for server in variant.servers:
                server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _private_data_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter (refuses absolute paths, links and escapes out of ``dest``), then only the
    owner's permission bits: an archive's 0644 would otherwise make the model readable by everyone."""
    member = tarfile.data_filter(member, dest)
    if member.mode is not None:
        member = member.replace(mode=member.mode & 0o700 | (0o700 if member.isdir() else 0o600), deep=False)
    return member


def _extract(archive: Path, target: Path) -> None:
    private_dir(target)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter=_private_data_filter)


class EndpointManager:
    """Runs the live deployments of all endpoints and routes invocations to their model servers."""

    def __init__(
        self, layout: LocalLayout, store: StateStore, custom_images: Callable[[], dict[str, str]] = dict
    ) -> None:
        self.layout = layout
        self.store = store
        self.custom_images = custom_images
        self._live: dict[str, Deployment] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._closing = threading.Event()
        # Traffic shifts of updates in progress: endpoint -> the green deployment and its share.
        self._shifts: dict[str, Shift] = {}
        # Invocation metrics for CloudWatch (read by the CloudWatch API, which also sets alarm_state).
        self.metrics = EndpointMetrics()
        # Injected throttling/unavailability (config.json "fault_injection"; off by default).
        self.faults = FaultConfig(layout.config_json)
        self.alarm_state: Callable[[str], tuple[str, str] | None] = lambda name: None
        # The variables with which boto3 in a model server reaches the stack (the service sets it).
        self.client_env: Callable[[str | None], dict[str, str]] = lambda role_arn=None: {}
        # Records what the service does on the model role's behalf (model data downloads).
        self.on_behalf: Callable[[str, str, str], None] = lambda service, action, principal: None
        self._monitor = threading.Thread(target=self._watch, name="model-server-monitor", daemon=True)
        self._monitor.start()

    def _lock(self, endpoint: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(endpoint, threading.Lock())

    # -- deploying --------------------------------------------------------------------------------------

    def deploy_async(self, endpoint: str, config_name: str, *, updating: bool,
                     plan: RolloutPlan | None = None) -> None:
        threading.Thread(
            target=self.deploy,
            args=(endpoint, config_name),
            kwargs={"updating": updating, "plan": plan},
            name=f"deploy-{endpoint}",
            daemon=True,
        ).start()

    def deploy(self, endpoint: str, config_name: str, *, updating: bool, plan: RolloutPlan | None = None) -> None:
        """Start ``config_name`` for ``endpoint`` and switch traffic to it (blue/green when ``updating``, in
        the steps of ``plan`` when it has any)."""
        with self._lock(endpoint):
            try:
                deployment = self._start(endpoint, config_name)
            except Exception as exc:  # noqa: BLE001 - any failure becomes the endpoint's FailureReason
                reason = (
                    str(exc)
                    if isinstance(exc, (ModelServerError, ApiError, ValueError))
                    else f"{type(exc).__name__}: {exc}"
                )
                self._record_failure(endpoint, config_name, reason, updating)
                return
            if self._closing.is_set() or not self._still_wanted(endpoint):
                deployment.stop()
                return
            old = self._live.get(endpoint)
            if updating and old is not None and plan is not None and plan.guarded:
                try:
                    run_rollout(endpoint, deployment, plan, self._shifts, self.store, self.alarm_state,
                                lambda: not self._closing.is_set() and self._still_wanted(endpoint))
                except (RolledBack, Aborted) as exc:
                    self._shifts.pop(endpoint, None)
                    if isinstance(exc, RolledBack):
                        self._record_failure(endpoint, config_name, str(exc), True)
                    self._retire(deployment)  # green drains what it is answering, then stops
                    return
            self._live[endpoint] = deployment  # the switch: new requests go to the new servers from here on
            self._shifts.pop(endpoint, None)
            self._record_in_service(endpoint, deployment)
        if old is not None:
            self._retire(old)

    def _still_wanted(self, endpoint: str) -> bool:
        doc = self.store.get(KIND, endpoint)
        return doc is not None and doc["EndpointStatus"] != "Deleting"

    def _start(self, endpoint: str, config_name: str) -> Deployment:
        config = self.store.get("endpoint-config", config_name)
        if config is None:
            raise ValueError(f"endpoint configuration {config_name!r} no longer exists")
        directory = self.layout.endpoints_dir / endpoint / f"{config_name}-{int(time.time() * 1000)}"
        variants: list[Variant] = []
        deployment = Deployment(config_name, directory, variants)
        capture = config.get("DataCaptureConfig")
        deployment.capture_config = capture
        if capture and capture.get("EnableCapture", True):
            deployment.capture = DataCapture(endpoint, capture, self.layout.s3_root,
                                             self.layout.local_dir / "capture-staging", self._rotate_seconds())
        try:
            for spec in config["ProductionVariants"]:
                variants.append(self._start_variant(directory, spec))
        except BaseException:
            deployment.stop()
            raise
        deployment.reweigh()
        return deployment

    def _start_variant(self, directory: Path, spec: dict[str, Any]) -> Variant:
        model = self.store.get("model", spec["ModelName"])
        if model is None:
            raise ValueError(f"Could not find model \"{spec['ModelName']}\" of variant {spec['VariantName']}")
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        image = container.get("Image", "")
        ref = resolve_image(image, self.custom_images())
        model_dir = directory / spec["VariantName"] / "model"
        data_url = container.get("ModelDataUrl")
        if data_url:
            archive = self.layout.s3_path(data_url)
            if not archive.is_file():
                raise ValueError(
                    f"Failed to download model data for variant {spec['VariantName']}: "
                    f"no object at {data_url}"
                )
            self.on_behalf("s3", "GetObject", model.get("ExecutionRoleArn", ""))  # downloaded with the model's role
            try:
                _extract(archive, model_dir)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ValueError(
                    f"Failed to extract model data for variant {spec['VariantName']} from "
                    f"{data_url}: {exc}; it must be a .tar.gz archive"
                ) from None
        else:
            private_dir(model_dir)
        # Checked at CreateModel; checked again for models stored before the check existed.
        env = checked_or_error(container.get("Environment"), "primaryContainer.environment", CONTAINER_LIMITS)
        instances = int(spec.get("InitialInstanceCount") or 1)
        serverless = spec.get("ServerlessConfig")
        variant = Variant(
            name=spec["VariantName"],
            weight=float(spec.get("InitialVariantWeight", 1.0)),
            image=image,
            ref=ref,
            model_dir=model_dir,
            # beside the deployment, not in it: the logs outlive a deployment that failed or was replaced
            log_dir=directory.parent / "logs" / directory.name,
            env=env,
            desired_instances=instances,
            contract=dict(self.client_env(model.get("ExecutionRoleArn"))),  # signed as the model's role
            instance_type=str(spec.get("InstanceType") or ""),
            serverless=ServerlessGate(serverless) if serverless else None,
        )
        if variant.serverless is not None and not variant.serverless.provisioned:
            return variant  # no server until the first invocation: the cold start
        try:
            for index in range(1 if variant.serverless is not None else min(instances, MAX_PROCESSES_PER_VARIANT)):
                server = variant.new_server(index)
                variant.servers.append(server)
                server.start()
        except BaseException:
            for server in variant.servers:
                server.stop()
            raise
        return variant

    def _retire(self, old: Deployment) -> None:
        """Let the old deployment finish what it is answering, then stop it."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        while old.inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        old.stop()

    # -- state ------------------------------------------------------------------------------------------

    @staticmethod
    def variant_summaries(deployment: Deployment) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for v in deployment.variants:
            summary: dict[str, Any] = {
                "VariantName": v.name,
                "DeployedImages": [
                    {"SpecifiedImage": v.image, "ResolvedImage": v.image, "ResolutionTime": now}
                ],
                "CurrentWeight": v.weight,
                "DesiredWeight": v.weight,
            }
            if v.serverless is not None:
                summary["CurrentServerlessConfig"] = dict(v.serverless.config)
                summary["DesiredServerlessConfig"] = dict(v.serverless.config)
            else:
                summary["CurrentInstanceCount"] = v.desired_instances
                summary["DesiredInstanceCount"] = v.desired_instances
            out.append(summary)
        return out

    def _record_in_service(self, endpoint: str, deployment: Deployment) -> None:
        def change(doc: dict[str, Any]) -> None:
            doc["EndpointStatus"] = "InService"
            doc["EndpointConfigName"] = deployment.config_name
            doc["ProductionVariants"] = self.variant_summaries(deployment)
            doc["LastModifiedTime"] = time.time()
            doc.pop("FailureReason", None)
            doc.pop("PendingEndpointConfigName", None)
            doc.pop("PendingDeploymentSummary", None)
            summary = capture_summary(deployment.capture_config)
            if summary is None:
                doc.pop("DataCaptureConfig", None)
            else:
                doc["DataCaptureConfig"] = summary

        try:
            self.store.update(KIND, endpoint, change, status_key="EndpointStatus")
        except NotFound:
            pass

    def _record_failure(self, endpoint: str, config_name: str, reason: str, updating: bool) -> None:
        serving = endpoint in self._live

        def change(doc: dict[str, Any]) -> None:
            # An update that fails leaves the old config serving: InService with the reason, as SageMaker
            # does.
            doc["EndpointStatus"] = "InService" if (updating and serving) else "Failed"
            doc["FailureReason"] = reason
            doc["LastModifiedTime"] = time.time()
            doc.pop("PendingEndpointConfigName", None)
            doc.pop("PendingDeploymentSummary", None)

        try:
            self.store.update(KIND, endpoint, change, status_key="EndpointStatus")
        except NotFound:
            pass

    # -- other lifecycle --------------------------------------------------------------------------------

    def undeploy(self, endpoint: str) -> None:
        """Stop the endpoint's servers (DeleteEndpoint)."""
        with self._lock(endpoint):
            deployment = self._live.pop(endpoint, None)
        if deployment is not None:
            self._retire(deployment)
        shutil.rmtree(self.layout.endpoints_dir / endpoint, ignore_errors=True)

    def update_weights(self, endpoint: str, desired: list[dict[str, Any]]) -> None:
        """UpdateEndpointWeightsAndCapacities on the live deployment (weights; instance counts start/stop
        servers).
        """
        with self._lock(endpoint):
            deployment = self._live.get(endpoint)
            if deployment is None:
                return
            by_name = {v.name: v for v in deployment.variants}
            try:
                for item in desired:
                    variant = by_name[item["VariantName"]]
                    if "DesiredWeight" in item:
                        variant.weight = float(item["DesiredWeight"])
                    if "DesiredInstanceCount" in item:
                        self._resize(variant, int(item["DesiredInstanceCount"]))
            except Exception as exc:  # noqa: BLE001 - the endpoint keeps serving what did start
                deployment.reweigh()
                self._record_in_service(endpoint, deployment)
                self._record_failure(endpoint, deployment.config_name, f"{type(exc).__name__}: {exc}", True)
                return
            deployment.reweigh()
            self._record_in_service(endpoint, deployment)

    def _resize(self, variant: Variant, count: int) -> None:
        variant.desired_instances = count
        target = max(1, min(count, MAX_PROCESSES_PER_VARIANT))
        while len(variant.servers) < target:
            server = variant.new_server(len(variant.servers))
            server.start()
            with variant.lock:
                variant.servers = variant.servers + [server]
        while len(variant.servers) > target:
            with variant.lock:
                server, variant.servers = variant.servers[-1], variant.servers[:-1]
            server.stop()

    def is_live(self, endpoint: str) -> bool:
        return endpoint in self._live

    def live_config(self, endpoint: str) -> str | None:
        deployment = self._live.get(endpoint)
        return deployment.config_name if deployment else None

    def shutdown(self) -> None:
        self._closing.set()
        for endpoint in list(self._shifts):
            shift = self._shifts.pop(endpoint, None)
            if shift is not None:
                shift.deployment.stop()
        for endpoint in list(self._live):
            deployment = self._live.pop(endpoint, None)
            if deployment is not None:
                deployment.stop()

    def _rotate_seconds(self) -> float:
        """How often capture files rotate (``capture_rotate_seconds`` in ``config.json``; tests shorten it)."""
        return float(self._setting("capture_rotate_seconds", ROTATE_SECONDS))

    def _setting(self, name: str, default: float) -> float:
        from smspark_assets.local.algorithm_lookup import read_config

        try:
            return float(read_config(self.layout.config_json).get(name, default))
        except (TypeError, ValueError):
            return default

    # -- health -----------------------------------------------------------------------------------------

    def _revive(self, variant: Variant, index: int, dead: ModelServerProcess) -> ModelServerProcess:
        """Replace a dead server (once, however many requests noticed it) and return the live one."""
        with variant.lock:
            if index < len(variant.servers) and variant.servers[index] is dead and not dead.alive():
                dead.stop()
                fresh = variant.new_server(index)
                fresh.start()
                servers = list(variant.servers)
                servers[index] = fresh
                variant.servers = servers
            return variant.servers[index % len(variant.servers)]

    def _watch(self) -> None:
        """Restart model servers that died, rotate capture files, stop idle serverless servers."""
        idle_limit, checked = IDLE_SECONDS, 0.0
        while not self._closing.wait(HEALTH_INTERVAL_SECONDS):
            if time.monotonic() - checked > 5.0:  # the setting is re-read now and then, not every tick
                idle_limit, checked = self._setting("serverless_idle_seconds", IDLE_SECONDS), time.monotonic()
            deployments = list(self._live.values()) + [s.deployment for s in list(self._shifts.values())]
            for deployment in deployments:
                if deployment.capture is not None:
                    deployment.capture.flush()
                for variant in deployment.variants:
                    gate = variant.serverless
                    if gate is not None and not gate.provisioned and variant.servers and \
                            gate.idle_for() > idle_limit:
                        self._stop_idle(variant)
                        continue
                    for index, server in enumerate(list(variant.servers)):
                        if not server.alive() and not self._closing.is_set():
                            try:
                                self._revive(variant, index, server)
                            except ModelServerError:
                                pass  # retried on the next tick; invocations meanwhile get ModelError

    # -- invoking ---------------------------------------------------------------------------------------

    def _stop_idle(self, variant: Variant) -> None:
        """A serverless variant idle past its limit gives its server back; the next request starts cold."""
        gate = variant.serverless
        assert gate is not None
        with gate.starting:
            with gate.lock:
                if gate.inflight or not variant.servers:
                    return
                servers, variant.servers = variant.servers, []
        for server in servers:
            server.stop()

    def _serverless_server(self, endpoint: str, variant: Variant) -> ModelServerProcess:
        """The variant's server, started now if it has none (a cold start, published as ModelSetupTime)."""
        gate = variant.serverless
        assert gate is not None
        servers = variant.servers
        if servers:
            return servers[0]
        # Requests that arrive during a cold start wait for it, up to the invocation time limit.
        if not gate.starting.acquire(timeout=COLD_START_WAIT_SECONDS):
            raise not_ready(endpoint)
        try:
            if variant.servers:
                return variant.servers[0]
            began = time.perf_counter()
            server = variant.new_server(0)
            try:
                server.start()
            except ModelServerError as exc:
                raise ApiError("ModelError", f"Received server error (503) from primary with message \"{exc}\".",
                               424, OriginalStatusCode=503, OriginalMessage=str(exc)) from None
            with variant.lock:
                variant.servers = [server]
            self.metrics.record_setup(endpoint, variant.name, (time.perf_counter() - began) * 1e6)
            return server
        finally:
            gate.starting.release()

    def invoke(
        self, endpoint: str, body: bytes, headers: dict[str, str], target_variant: str | None
    ) -> tuple[int, str, bytes, str]:
        """Route one invocation; returns ``(status, content type, body, variant name)`` of the model
        server. Counts it for CloudWatch and captures it when the endpoint config asks for it."""
        began = time.perf_counter()
        self.faults.maybe_fail_invoke()  # SageMaker sheds load before routing: nothing reaches the model
        deployment = self._live.get(endpoint)
        if deployment is None:
            doc = self.store.get(KIND, endpoint)
            if doc is None:
                raise ApiError("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT} not found.")
            raise ApiError(
                "ValidationError",
                f"Endpoint {endpoint} of account {ACCOUNT} is not serving: its status is "
                f"{doc['EndpointStatus']}"
                + (f" ({doc['FailureReason']})" if doc.get("FailureReason") else ""),
            )
        shift = self._shifts.get(endpoint)
        if shift is not None and shift.fraction > 0.0 and (shift.fraction >= 1.0 or random.random() < shift.fraction):
            deployment = shift.deployment  # this request is part of the share shifted to the new fleet
        variant = deployment.choose(target_variant)
        gate = variant.serverless
        if gate is not None and len(body) > MAX_PAYLOAD_BYTES:
            raise oversize(headers.get("X-Amzn-SageMaker-Inference-Id"), len(body))
        with deployment.inflight_lock:
            deployment.inflight += 1
        model_seconds = 0.0
        status = 0
        try:
            if gate is not None:
                gate.enter(endpoint)
            try:
                if gate is not None:
                    server = self._serverless_server(endpoint, variant)
                    index = 0
                else:
                    servers = variant.servers
                    index = variant.pick() if len(servers) > 1 else 0
                    server = servers[index]
                called = time.perf_counter()
                try:
                    status, content_type, data = server.invoke(body, headers)
                except ModelServerError:
                    # The process died under us: replace it (or wait for the monitor's replacement) and retry
                    # once.
                    try:
                        server = self._revive(variant, index, server)
                        called = time.perf_counter()
                        status, content_type, data = server.invoke(body, headers)
                    except ModelServerError as exc:
                        # The instance is down (killed, being replaced), not the model failing: SageMaker's
                        # retryable 503, so clients in botocore's standard retry mode try again once the
                        # monitor has restarted it (a 424 ModelError is not retried).
                        raise ApiError(
                            "ServiceUnavailable",
                            f"The instance serving the endpoint is unavailable and is being replaced: {exc}. "
                            "Try your call again.",
                            503,
                        ) from None
                model_seconds = time.perf_counter() - called
            finally:
                if gate is not None:
                    gate.leave()
        except ApiError as exc:
            if exc.code == "ModelError":  # the model did not answer: an invocation error in CloudWatch
                self.metrics.record(endpoint, variant.name, 0, 0.0, (time.perf_counter() - began) * 1e6)
            raise
        finally:
            with deployment.inflight_lock:
                deployment.inflight -= 1
        if gate is not None and len(data) > MAX_PAYLOAD_BYTES:
            status, data = 500, f"response body of {len(data)} bytes is over the serverless limit".encode()
        total = time.perf_counter() - began
        self.metrics.record(endpoint, variant.name, status, model_seconds * 1e6, (total - model_seconds) * 1e6)
        if deployment.capture is not None and status == 200:
            deployment.capture.record(variant.name, headers.get("X-Amzn-SageMaker-Inference-Id"),
                                      headers.get("Content-Type", "application/octet-stream"), body, content_type,
                                      data)
        return status, content_type, data, variant.name
