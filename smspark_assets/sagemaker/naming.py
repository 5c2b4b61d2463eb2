"""Deterministic SageMaker resource names.

A training job name is derived from what determines the model (data fingerprint, image,
hyperparameters), so materializing twice with nothing changed adopts the completed job instead of
training again. Names satisfy SageMaker's pattern ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*`` and 63 characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_NAME = 63
_INVALID = re.compile(r"[^a-zA-Z0-9-]+")


def sanitize(name: str) -> str:
    """Replace characters SageMaker refuses (``_``, ``.``, ``/``...) with ``-`` and trim dashes."""
    cleaned = re.sub(r"-{2,}", "-", _INVALID.sub("-", name)).strip("-")
    if not cleaned:
        raise ValueError(f"cannot make a SageMaker name from {name!r}")
    return cleaned


def content_hash(*parts: Any, length: int = 12) -> str:
    """A short SHA-256 of ``parts`` as canonical JSON (keys sorted): equal inputs, equal hashes."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def deterministic_name(prefix: str, *parts: Any, suffix: str = "") -> str:
    """``<prefix>-<hash of parts>[-suffix]``, the prefix truncated so the whole fits in 63 characters."""
    tail = "-" + content_hash(*parts) + (f"-{sanitize(suffix)}" if suffix else "")
    head = sanitize(prefix)[: MAX_NAME - len(tail)].rstrip("-")
    return head + tail


def derived_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` within 63 characters (e.g. an endpoint config named after its model)."""
    tail = "-" + sanitize(suffix)
    return sanitize(base)[: MAX_NAME - len(tail)].rstrip("-") + tail


def endpoint_config_name(model_name: str, config: Any) -> str:
    """``<model>-cfg-<hash>``: named after its model for people, and by a hash of the whole canonical
    config (``config``: everything CreateEndpointConfig receives but the name) for correctness.

    A config named after its model only would make a new instance type or count look "unchanged".
    """
    return derived_name(model_name, f"cfg-{content_hash(config, length=10)}")
