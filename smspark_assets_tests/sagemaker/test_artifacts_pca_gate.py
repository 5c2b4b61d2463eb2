"""The PCA quality gate reads SageMaker's PCA artifact (a ``model.tar.gz`` built from the reference's layout)."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from smspark_assets.assets.algorithm_models import pca_explained_variance_ratio
from smspark_assets_tests.sagemaker.test_artifacts_layouts import ndarray_file

pytestmark = pytest.mark.timeout(60)

URL = "s3://bucket/models/pca/output/model.tar.gz"


class _Store:
    """The one call the gate makes on the object store."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def read_bytes(self, uri: str) -> bytes:
        return self.objects[uri]


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def test_gate_reads_the_sagemaker_pca_artifact() -> None:
    # Data whose centred SVD is known: two orthogonal directions with singular values 3 and 4.
    rows = 5
    v = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.float32)
    s = np.array([3.0, 4.0], dtype=np.float32)  # largest last, as SageMaker orders them
    mean = np.zeros((1, 3), dtype=np.float32)
    store = _Store({URL: _tar_gz({"model_algo-1": ndarray_file([mean, v, s], ["mean", "v", "s"])})})
    # Component variances 9/4 + 16/4 = 6.25 of a total variance of 12.5.
    ratio = pca_explained_variance_ratio(store, URL, total_variance=12.5, train_rows=rows)  # type: ignore[arg-type]
    assert ratio == pytest.approx(0.5)


def test_gate_reads_an_artifact_without_mean() -> None:
    store = _Store({URL: _tar_gz({"model_algo-1": ndarray_file(
        [np.eye(2, dtype=np.float32), np.array([[1.0], [2.0]], dtype=np.float32)], ["v", "s"])})})
    assert pca_explained_variance_ratio(store, URL, 5.0, 2) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_gate_refuses_what_is_not_a_pca_artifact() -> None:
    kmeans = _Store({URL: _tar_gz({"model_algo-1": ndarray_file([np.zeros((2, 2), dtype=np.float32)])})})
    with pytest.raises(ValueError, match="not a PCA model artifact: a pca model_algo-1 is a dict"):
        pca_explained_variance_ratio(kmeans, URL, 1.0, 10)  # type: ignore[arg-type]
    empty = _Store({URL: _tar_gz({"other": b""})})
    with pytest.raises(ValueError, match="holds no model_algo-1"):
        pca_explained_variance_ratio(empty, URL, 1.0, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        pca_explained_variance_ratio(kmeans, URL, 0.0, 10)  # type: ignore[arg-type]
