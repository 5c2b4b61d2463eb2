"""Built-in algorithm image URIs: build them for a region and recognise them in any region's registry."""

from __future__ import annotations

import re

# Registry accounts per region for the first-party algorithms (kmeans, pca, linear-learner,
# factorization-machines, lda) and for the framework-style XGBoost container.
_ALGORITHMS_ACCOUNTS = {
    "us-east-1": "382416733822",
    "us-east-2": "404615174143",
    "us-west-1": "632365934929",
    "us-west-2": "174872318107",
    "eu-west-1": "438346466558",
    "eu-central-1": "664544806723",
    "ap-northeast-1": "351501993468",
    "ap-southeast-2": "712309505854",
}
_XGBOOST_ACCOUNTS = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-central-1": "492215442770",
    "ap-northeast-1": "354813040037",
    "ap-southeast-2": "783357654285",
}

BUILTIN_REPOSITORIES: dict[str, str] = {
    "kmeans": "kmeans",
    "linear-learner": "linear-learner",
    "pca": "pca",
    "lda": "lda",
    "factorization-machines": "factorization-machines",
    "sagemaker-xgboost": "xgboost",
    "xgboost": "xgboost",
}
DEFAULT_TAGS = {"xgboost": "1.7-1"}

_IMAGE_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+):(?P<tag>[A-Za-z0-9._-]+)$"
)


def image_uri(algorithm: str, region: str, tag: str | None = None) -> str:
    """The ECR image URI of a built-in ``algorithm`` (``xgboost``, ``kmeans``, ...) in ``region``."""
    if algorithm == "xgboost":
        accounts, repo = _XGBOOST_ACCOUNTS, "sagemaker-xgboost"
    elif algorithm in BUILTIN_REPOSITORIES.values():
        accounts, repo = _ALGORITHMS_ACCOUNTS, algorithm
    else:
        allowed = ", ".join(sorted(set(BUILTIN_REPOSITORIES.values())))
        raise ValueError(f"unknown built-in algorithm {algorithm!r}; allowed: {allowed}")
    account = accounts.get(region, accounts["us-east-1"])
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}:{tag or DEFAULT_TAGS.get(algorithm, '1')}"


def builtin_algorithm(uri: str) -> str | None:
    """The built-in algorithm an image URI names (any region, any account), or ``None``."""
    match = _IMAGE_RE.match(uri.strip())
    if not match:
        return None
    return BUILTIN_REPOSITORIES.get(match.group("repo").rsplit("/", 1)[-1])
