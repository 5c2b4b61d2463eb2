"""Serverless production variants (``ServerlessConfig``): validation, limits and emulated cold starts.

Facts (``aws_next_notes.md`` §7, botocore's model): ``MemorySizeInMB`` one of 1024, 2048, ..., 6144;
``MaxConcurrency`` 1-200; ``ProvisionedConcurrency`` 1-200 and at most ``MaxConcurrency``; request and
response at most 4 MB; no data capture and no second production variant on a serverless endpoint.

Locally a serverless variant has no model server until its first invocation: that request starts one
(the cold start, published as ``ModelSetupTime``) and waits for it, as on AWS, where a cold start shows as
latency, not as an error. Requests beyond ``MaxConcurrency`` in flight get ``ThrottlingException`` (429).
A request that cannot get a server within :data:`COLD_START_WAIT_SECONDS` (the model server is still
being provisioned) gets ``ModelNotReadyException`` (429), the error AWS answers while resources are being
provisioned. A server idle for ``serverless_idle_seconds`` (``config.json``, default
:data:`IDLE_SECONDS`) is stopped, so the next request is a cold start again; with
``ProvisionedConcurrency`` the server is started at deploy time and kept warm.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from smspark_assets.local.api_errors import ApiError, validation

MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
IDLE_SECONDS = 300.0
COLD_START_WAIT_SECONDS = 60.0


def check_serverless_config(config: Any, member: str) -> dict[str, int]:
    """A ``ProductionVariantServerlessConfig`` checked as SageMaker checks it."""
    if not isinstance(config, dict):
        raise validation(f"{member} must be an object with MemorySizeInMB and MaxConcurrency")
    memory = config.get("MemorySizeInMB")
    if memory not in MEMORY_SIZES or isinstance(memory, bool):
        raise validation(f"1 validation error detected: Value '{memory}' at '{member}.memorySizeInMB' failed to "
                         f"satisfy constraint: Member must be one of {', '.join(map(str, MEMORY_SIZES))}")
    concurrency = config.get("MaxConcurrency")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 200:
        raise validation(f"1 validation error detected: Value '{concurrency}' at '{member}.maxConcurrency' "
                         "failed to satisfy constraint: Member must have value between 1 and 200")
    out = {"MemorySizeInMB": memory, "MaxConcurrency": concurrency}
    provisioned = config.get("ProvisionedConcurrency")
    if provisioned is not None:
        if not isinstance(provisioned, int) or isinstance(provisioned, bool) or not 1 <= provisioned <= concurrency:
            raise validation(f"Value '{provisioned}' at '{member}.provisionedConcurrency' must be between 1 and "
                             f"MaxConcurrency ({concurrency})")
        out["ProvisionedConcurrency"] = provisioned
    return out


class ServerlessGate:
    """The concurrency and idleness bookkeeping of one serverless variant."""

    def __init__(self, config: dict[str, int]) -> None:
        self.config = config
        self.max_concurrency = int(config["MaxConcurrency"])
        self.provisioned = bool(config.get("ProvisionedConcurrency"))
        self.inflight = 0
        self.last_used = time.monotonic()
        self.lock = threading.Lock()
        self.starting = threading.Lock()  # one cold start at a time; others wait on it

    def enter(self, endpoint: str) -> None:
        with self.lock:
            if self.inflight >= self.max_concurrency:
                raise ApiError("ThrottlingException",
                               f"Endpoint {endpoint} is serverless with MaxConcurrency {self.max_concurrency}, "
                               "and that many invocations are in flight; retry with backoff.", 429)
            self.inflight += 1
            self.last_used = time.monotonic()

    def leave(self) -> None:
        with self.lock:
            self.inflight -= 1
            self.last_used = time.monotonic()

    def idle_for(self) -> float:
        with self.lock:
            return 0.0 if self.inflight else time.monotonic() - self.last_used


def not_ready(endpoint: str) -> ApiError:
    return ApiError("ModelNotReadyException",
                    f"Model for endpoint {endpoint} is not ready yet: its serverless compute is still being "
                    "provisioned (cold start). Retry the request.", 429)


def oversize(request_id: str | None, size: int, what: str = "Request") -> ApiError:
    return ApiError("ValidationError",
                    f"{what} {request_id or ''} has oversize body: {size} bytes; a serverless endpoint accepts at "
                    f"most {MAX_PAYLOAD_BYTES} bytes.".replace("  ", " "))
