"""Built-in image URIs per region: the shipped table against facts read from the SageMaker SDK.

Expected accounts below were read by hand from the SageMaker Python SDK 2.257.7 wheel
(``sagemaker/image_uri_config/{kmeans,lda,xgboost}.json``), and the domains from botocore's ECR
endpoints; they are independent of the code under test, which reads only the shipped table.
"""

from __future__ import annotations

import pytest

from smspark_assets.sagemaker.images import (
    UnknownRegionError,
    builtin_algorithm,
    image_uri,
    known_regions,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("algorithm", "region", "expected"), [
    # kmeans.json "1" registries (pca, linear-learner and factorization-machines list the same accounts).
    ("kmeans", "us-east-1", "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"),
    ("pca", "eu-west-3", "749696950732.dkr.ecr.eu-west-3.amazonaws.com/pca:1"),
    ("linear-learner", "ap-south-1", "991648021394.dkr.ecr.ap-south-1.amazonaws.com/linear-learner:1"),
    ("factorization-machines", "sa-east-1",
     "855470959533.dkr.ecr.sa-east-1.amazonaws.com/factorization-machines:1"),
    # lda.json has accounts of its own: us-east-1 is 766337827248, not the kmeans account.
    ("lda", "us-east-1", "766337827248.dkr.ecr.us-east-1.amazonaws.com/lda:1"),
    ("lda", "eu-west-1", "999678624901.dkr.ecr.eu-west-1.amazonaws.com/lda:1"),
    # xgboost.json, repository sagemaker-xgboost.
    ("xgboost", "us-east-1", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
    ("xgboost", "eu-north-1", "662702820516.dkr.ecr.eu-north-1.amazonaws.com/sagemaker-xgboost:1.7-1"),
    # China regions live under amazonaws.com.cn.
    ("kmeans", "cn-north-1", "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/kmeans:1"),
    ("xgboost", "cn-northwest-1",
     "451049120500.dkr.ecr.cn-northwest-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1"),
    # Isolated regions have their own domains.
    ("kmeans", "us-iso-east-1", "490574956308.dkr.ecr.us-iso-east-1.c2s.ic.gov/kmeans:1"),
])
def test_image_uri_matches_the_sdk_table(algorithm: str, region: str, expected: str) -> None:
    assert image_uri(algorithm, region) == expected
    assert builtin_algorithm(expected) == algorithm


def test_every_region_the_sdk_knows_is_covered() -> None:
    # The SDK 2.257.7 lists 37 regions for the first-party algorithms and XGBoost, 16 for LDA.
    regions = known_regions()
    assert len(regions) == 37
    assert {"eu-west-3", "il-central-1", "ca-west-1", "us-gov-west-1", "cn-north-1"} <= set(regions)
    for algorithm in ("kmeans", "pca", "linear-learner", "factorization-machines", "xgboost"):
        assert known_regions(algorithm) == regions
    assert len(known_regions("lda")) == 16


def test_an_unknown_region_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownRegionError, match="unknown AWS region") as info:
        image_uri("kmeans", "mars-north-1")
    assert "eu-west-3" in str(info.value) and "us-east-1" in str(info.value)


def test_lda_outside_its_regions_is_refused_not_guessed() -> None:
    # lda.json has no eu-west-3 entry although the region exists for the other algorithms.
    with pytest.raises(UnknownRegionError, match="regions with it") as info:
        image_uri("lda", "eu-west-3")
    assert "us-east-1" in str(info.value)


def test_recogniser_accepts_any_registry_and_tag() -> None:
    assert builtin_algorithm("123456789012.dkr.ecr.ap-south-9.amazonaws.com/kmeans:1") == "kmeans"
    assert builtin_algorithm(image_uri("xgboost", "us-east-1", "1.5-1")) == "xgboost"
    assert builtin_algorithm("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:1") is None
    assert builtin_algorithm("my-registry/custom:latest") is None
    with pytest.raises(ValueError, match="unknown built-in algorithm"):
        image_uri("random-forest", "us-east-1")
