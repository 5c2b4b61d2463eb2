"""What SageMaker's first-party algorithms keep in ``model.tar.gz``: one file, ``model_algo-1``.

``model_algo-1`` comes in two kinds, told apart by its first bytes:

* an MXNet NDArray list file (:mod:`~smspark_assets.sagemaker.mxnet_ndarray`, signature
  ``12 01 00 00 00 00 00 00``) for K-means, PCA and LDA -- the layouts of this module;
* a zip archive of an MXNet module checkpoint (``PK\\x03\\x04``) for Linear Learner and
  Factorization Machines -- :mod:`~smspark_assets.sagemaker.algorithms.module_artifacts`.

Layouts (``../shared/reference/sagemaker_artifacts.md``, Part 2; float32 as SageMaker writes them):

============  ====================================================================================
kmeans        list ``[centroids (k, feature_dim)]`` -- confirmed, hostable by SageMaker (BYOM notebook)
pca           dict ``{"mean"?, "v", "s"}``: ``v`` (feature_dim, num_components), ``s`` singular values,
              both with the largest component last; ``mean`` only with ``subtract_mean`` -- keys
              confirmed; ``v``'s shape inferred; ``s`` written (num_components,), ``mean``
              (1, feature_dim): their shapes are unconfirmed, so the reader accepts either orientation
lda           list ``[alpha (num_topics,), beta (num_topics, vocabulary)]`` -- confirmed, shapes inferred
============  ====================================================================================

Readers check the layout and raise :class:`ArtifactError` saying what they found, so a model of
another algorithm (or a corrupt file) is refused with a reason instead of served wrongly.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

from smspark_assets.sagemaker import mxnet_ndarray

MODEL_FILE = "model_algo-1"
ZIP_SIGNATURE = b"PK\x03\x04"
# A model_algo-1 larger than this is not a first-party model this project reads; refusing it keeps a
# hostile or mistaken archive from being inflated into memory.
MAX_MODEL_FILE_BYTES = 2 << 30


class ArtifactError(ValueError):
    """``model_algo-1`` is not the layout the algorithm writes."""


def model_file_kind(data: bytes) -> Literal["ndarray", "zip"]:
    """``"ndarray"`` for an NDArray list file, ``"zip"`` for a module checkpoint archive."""
    if mxnet_ndarray.is_ndarray_file(data[:8]):
        return "ndarray"
    if data[:4] == ZIP_SIGNATURE:
        return "zip"
    raise ArtifactError(f"{MODEL_FILE} is neither an MXNet NDArray file nor a zip archive "
                        f"(first bytes {bytes(data[:8]).hex(' ')})")


def model_file_from_tar(tar_gz: bytes) -> bytes:
    """The bytes of ``model_algo-1`` inside a ``model.tar.gz`` (at the root, as SageMaker packs it)."""
    return member_from_tar(tar_gz, MODEL_FILE, MAX_MODEL_FILE_BYTES, ArtifactError)


def member_from_tar(tar_gz: bytes, name: str, max_bytes: int,
                    error: type[ValueError] = ArtifactError) -> bytes:
    """The bytes of the regular file ``name`` (at most ``max_bytes``) at the root of a ``model.tar.gz``;
    anything else raises ``error`` saying what the archive holds."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.name.lstrip("./") == name), None)
            if member is None:
                raise error(f"model.tar.gz holds no {name} (members: {', '.join(tar.getnames()[:10]) or 'none'})")
            if not member.isfile() or member.size > max_bytes:
                raise error(f"{name} in model.tar.gz is not a regular file of at most {max_bytes} bytes")
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file always has a handle
            return handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise error(f"model.tar.gz is not a readable gzip tar archive: {exc}") from exc


def _load_ndarray_file(data: bytes, algorithm: str) -> list[np.ndarray] | dict[str, np.ndarray]:
    if model_file_kind(data) != "ndarray":
        raise ArtifactError(f"{MODEL_FILE} is a zip archive (a Linear Learner / FM / NTM layout), "
                            f"not the NDArray file a {algorithm} model is")
    try:
        return mxnet_ndarray.loads(data)
    except mxnet_ndarray.NDArrayFormatError as exc:
        raise ArtifactError(f"{algorithm} {MODEL_FILE}: {exc}") from exc


def _describe(content: list[np.ndarray] | dict[str, np.ndarray]) -> str:
    if isinstance(content, dict):
        return "dict " + ", ".join(f"{k}{tuple(v.shape)}" for k, v in content.items())
    return "list " + ", ".join(str(tuple(v.shape)) for v in content)


def _vector(array: np.ndarray, size: int | None, what: str) -> np.ndarray:
    """A 1-D view of a (n,), (n, 1) or (1, n) array: writers differ in how they shape vectors."""
    if array.ndim > 2 or (array.ndim == 2 and 1 not in array.shape):
        raise ArtifactError(f"{what} must be a vector, got shape {array.shape}")
    flat = array.reshape(-1)
    if size is not None and flat.size != size:
        raise ArtifactError(f"{what} has {flat.size} values, expected {size}")
    return flat


def _matrix(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim != 2 or 0 in array.shape:
        raise ArtifactError(f"{what} must be a non-empty 2-D array, got shape {array.shape}")
    return array


# --- K-means --------------------------------------------------------------------------------------


def write_kmeans(centroids: np.ndarray) -> bytes:
    """K-means' ``model_algo-1``: an unnamed list of one float32 array (k, feature_dim)."""
    return mxnet_ndarray.dumps([np.asarray(_matrix(np.asarray(centroids), "centroids"), dtype=np.float32)])


def read_kmeans(data: bytes) -> np.ndarray:
    """The centroids (k, feature_dim) of a K-means ``model_algo-1``."""
    content = _load_ndarray_file(data, "kmeans")
    if isinstance(content, dict) or len(content) != 1:
        raise ArtifactError(f"a kmeans {MODEL_FILE} is a list of one (k, feature_dim) array, "
                            f"found {_describe(content)}")
    return _matrix(content[0], "kmeans centroids")


# --- PCA --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PCAArtifact:
    """PCA's model: components ``v`` (feature_dim, k) and singular values ``s`` (k,), largest last."""

    v: np.ndarray
    s: np.ndarray
    mean: np.ndarray | None = None  # (feature_dim,), present when subtract_mean was true

    def explained_variance(self, rows: int) -> np.ndarray:
        """Variance along each component, ``s**2 / (rows - 1)`` for ``rows`` training records.

        ``s`` are the singular values of the (centred) training matrix, so the component variances
        follow only with the record count, which the artifact does not hold.
        """
        if rows < 2:
            raise ValueError(f"the explained variance needs at least 2 training records, got {rows}")
        return self.s.astype(np.float64) ** 2 / (rows - 1)


def write_pca(model: PCAArtifact) -> bytes:
    """PCA's ``model_algo-1``: a named list ``mean`` (1, d) when centred, ``v`` (d, k), ``s`` (k,)."""
    v = _matrix(np.asarray(model.v), "pca v")
    arrays: dict[str, np.ndarray] = {}
    if model.mean is not None:
        arrays["mean"] = _vector(np.asarray(model.mean), v.shape[0], "pca mean").reshape(1, -1)
    arrays["v"] = v
    arrays["s"] = _vector(np.asarray(model.s), v.shape[1], "pca s")
    return mxnet_ndarray.dumps({k: a.astype(np.float32) for k, a in arrays.items()})


def read_pca(data: bytes) -> PCAArtifact:
    """PCA's model from its ``model_algo-1`` (any orientation of ``s`` and ``mean``)."""
    content = _load_ndarray_file(data, "pca")
    if not isinstance(content, dict) or not {"v", "s"} <= set(content) or set(content) - {"v", "s", "mean"}:
        raise ArtifactError(f"a pca {MODEL_FILE} is a dict of 'v', 's' and optionally 'mean', "
                            f"found {_describe(content)}")
    v = _matrix(content["v"], "pca v")
    s = _vector(content["s"], v.shape[1], "pca s")
    mean = _vector(content["mean"], v.shape[0], "pca mean") if "mean" in content else None
    return PCAArtifact(v=v, s=s, mean=mean)


# --- LDA --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LDAArtifact:
    """LDA's model: Dirichlet prior ``alpha`` per topic and topic-word weights ``beta`` (topics, vocab)."""

    alpha: np.ndarray
    beta: np.ndarray


def write_lda(model: LDAArtifact) -> bytes:
    """LDA's ``model_algo-1``: an unnamed list ``[alpha (K,), beta (K, V)]`` of float32."""
    beta = _matrix(np.asarray(model.beta), "lda beta")
    alpha = _vector(np.asarray(model.alpha), beta.shape[0], "lda alpha")
    return mxnet_ndarray.dumps([alpha.astype(np.float32), beta.astype(np.float32)])


def read_lda(data: bytes) -> LDAArtifact:
    """LDA's model from its ``model_algo-1``."""
    content = _load_ndarray_file(data, "lda")
    if isinstance(content, dict) or len(content) != 2:
        raise ArtifactError(f"an lda {MODEL_FILE} is a list [alpha (K,), beta (K, V)], found {_describe(content)}")
    beta = _matrix(content[1], "lda beta")
    return LDAArtifact(alpha=_vector(content[0], beta.shape[0], "lda alpha"), beta=beta)
