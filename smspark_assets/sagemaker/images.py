"""Built-in algorithm image URIs: build them for a region and recognise them in any region's registry.

The registry account of a built-in algorithm's image differs per region (and LDA has accounts of its
own, in fewer regions), and the registry's domain differs per partition (``amazonaws.com.cn`` in
China, the isolated regions' own domains). Guessing either gives an image that does not exist, so
the full table ships as data (``image_accounts.json``, taken from the SageMaker Python SDK; its
``_about`` says from which version) and a region it does not list is refused.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

_TABLE_FILE = Path(__file__).with_name("image_accounts.json")

# Repository name (last path segment) -> the algorithm name the project uses. ``xgboost`` is the
# repository of the deprecated 0.72 container; the emulator serves it as XGBoost too.
BUILTIN_REPOSITORIES: dict[str, str] = {
    "kmeans": "kmeans",
    "linear-learner": "linear-learner",
    "pca": "pca",
    "lda": "lda",
    "factorization-machines": "factorization-machines",
    "sagemaker-xgboost": "xgboost",
    "xgboost": "xgboost",
}

# Recognition is deliberately lenient about account, region and domain: a model trained anywhere
# (another region, a private mirror of the image in any ECR registry) is still the same algorithm.
_IMAGE_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?P<domain>[a-z0-9.-]+)/"
    r"(?P<repo>[a-z0-9._/-]+):(?P<tag>[A-Za-z0-9._-]+)$"
)


class UnknownRegionError(ValueError):
    """The region has no registry for the requested built-in algorithm."""


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    """The shipped per-algorithm, per-region table (read once)."""
    return json.loads(_TABLE_FILE.read_text(encoding="utf-8"))


def table_source() -> str:
    """Where the shipped table came from (the SageMaker Python SDK version), for metadata and errors."""
    return f"SageMaker Python SDK {_table()['sdk_version']}"


def known_regions(algorithm: str | None = None) -> list[str]:
    """Regions with a registry for ``algorithm`` (every region the table knows when ``None``)."""
    table = _table()
    if algorithm is None:
        return sorted(table["domains"])
    return sorted(_entry(algorithm)["accounts"])


def default_tag(algorithm: str) -> str:
    """The tag :func:`image_uri` uses when none is given (``1`` for the first-party algorithms)."""
    return str(_entry(algorithm)["default_tag"])


def _entry(algorithm: str) -> dict[str, Any]:
    algorithms = _table()["algorithms"]
    if algorithm not in algorithms:
        allowed = ", ".join(sorted(algorithms))
        raise ValueError(f"unknown built-in algorithm {algorithm!r}; allowed: {allowed}")
    return algorithms[algorithm]


def registry_host(account: str, region: str) -> str:
    """``<account>.dkr.ecr.<region>.<domain>`` with the region's own domain (China, isolated regions)."""
    domains = _table()["domains"]
    if region not in domains:
        raise UnknownRegionError(
            f"unknown AWS region {region!r} for SageMaker built-in images ({table_source()}); "
            f"known regions: {', '.join(sorted(domains))}")
    return f"{account}.dkr.ecr.{region}.{domains[region]}"


def image_uri(algorithm: str, region: str, tag: str | None = None) -> str:
    """The ECR image URI of a built-in ``algorithm`` (``xgboost``, ``kmeans``, ...) in ``region``.

    Raises :class:`UnknownRegionError` (a ``ValueError``) naming the regions that have the
    algorithm when ``region`` has none, instead of pointing at another region's account.
    """
    entry = _entry(algorithm)
    accounts: dict[str, str] = entry["accounts"]
    if region not in accounts:
        where = "an unknown AWS region" if region not in _table()["domains"] else "a region without it"
        raise UnknownRegionError(
            f"the built-in {algorithm!r} image is not published in {region!r} ({where}; "
            f"{table_source()}); regions with it: {', '.join(sorted(accounts))}")
    return f"{registry_host(accounts[region], region)}/{entry['repository']}:{tag or entry['default_tag']}"


def builtin_algorithm(uri: str) -> str | None:
    """The built-in algorithm an image URI names (any region, any account, any domain), or ``None``."""
    match = _IMAGE_RE.match(uri.strip())
    if not match:
        return None
    return BUILTIN_REPOSITORIES.get(match.group("repo").rsplit("/", 1)[-1])
