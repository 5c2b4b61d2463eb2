"""PCA in one streaming pass: exact (``regular``/``stable``) or sketched (``randomized``).

* ``regular`` / ``stable``: the mean and the scatter matrix are accumulated batch by batch with the
  pairwise (Chan et al.) update -- each batch is centred on its own mean and merged with a rank-one
  correction -- so the result is exact and numerically stable in float64; the components are the
  eigenvectors of the covariance (``eigh``), equal to an SVD of the centred data.
* ``randomized``: for large ``feature_dim``. One pass accumulates ``S = X^T (X Omega)`` for a Gaussian
  ``Omega`` of ``num_components + extra_components`` columns (``extra_components=-1``: twice as many
  extra columns as components, at least 20), never the d x d matrix. The centred covariance sketch
  ``C Omega`` follows from ``S`` and the mean, and the Nystrom approximation
  ``C ~ (C Omega) (Omega^T C Omega)^+ (C Omega)^T`` gives the leading components.

``subtract_mean=False`` skips centring. The model file ``model_algo-1`` is SageMaker's MXNet NDArray
dict: ``mean`` (when centring), ``v`` (feature_dim x num_components) and ``s`` (singular values of the
centred training matrix) with the **largest component last**; the component variances are
``s^2 / (n - 1)`` (:meth:`smspark_assets.sagemaker.artifacts.PCAArtifact.explained_variance`).
Inference answers ``{"projections": [{"projection": [...]}, ...]}``, the projection columns in the
order of ``v``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_io
from smspark_assets.local.algorithms.base import AlgorithmError, ChannelError, TrainingEnvironment
from smspark_assets.local.algorithms.common_blas import single_blas_thread
from smspark_assets.local.algorithms.common_model import read_model_file, write_model_file
from smspark_assets.sagemaker.artifacts import PCAArtifact, read_pca, write_pca
from smspark_assets.local.algorithms.common_serving import Output, encode_response, parse_request
from smspark_assets.sagemaker.algorithms.pca import CONTRACT, NAME


class ScatterAccumulator:
    """Streaming mean and scatter matrix (sum of outer products of centred rows), merged pairwise."""

    def __init__(self, d: int) -> None:
        self.n = 0
        self.mean = np.zeros(d)
        self.scatter = np.zeros((d, d))
        self.raw = np.zeros((d, d))  # uncentred X^T X, for subtract_mean=False

    def update(self, x: np.ndarray | sp.csr_matrix, centred: bool = True) -> None:
        m = x.shape[0]
        if m == 0:
            return
        if sp.issparse(x):
            x64 = x.astype(np.float64)
            bmean = np.asarray(x64.mean(axis=0)).ravel()
            gram = np.asarray((x64.T @ x64).todense())
            bscatter = gram - m * np.outer(bmean, bmean)
        else:
            x64 = np.asarray(x, dtype=np.float64)
            bmean = x64.mean(axis=0)
            if centred:
                xc = x64 - bmean
                bscatter = xc.T @ xc
                gram = None
            else:
                gram = x64.T @ x64
                bscatter = None
        if not centred:
            self.raw += gram if gram is not None else bscatter + m * np.outer(bmean, bmean)
        else:
            delta = bmean - self.mean
            total = self.n + m
            self.scatter += bscatter + np.outer(delta, delta) * (self.n * m / total)
        total = self.n + m
        self.mean += (bmean - self.mean) * (m / total)
        self.n = total


class RandomizedSketch:
    """One-pass sketch S = X^T X Omega (and the column sums) for the Nystrom approximation."""

    def __init__(self, d: int, width: int, rng: np.random.Generator) -> None:
        self.omega = rng.standard_normal((d, width))
        self.s = np.zeros((d, width))
        self.total = np.zeros(d)
        self.n = 0

    def update(self, x: np.ndarray | sp.csr_matrix) -> None:
        x64 = x.astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        self.s += np.asarray(x64.T @ np.asarray(x64 @ self.omega))
        self.total += np.asarray(x64.sum(axis=0)).ravel()
        self.n += x.shape[0]

    def components(self, k: int, centred: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, components d x k with largest first, eigenvalues of the scatter, largest first)."""
        mean = self.total / self.n
        y = self.s - (self.n * np.outer(mean, mean @ self.omega) if centred else 0.0)  # scatter @ Omega
        # Nystrom with a small shift for numerical stability (Tropp et al., "Fixed-rank approximation of a PSD matrix").
        nu = np.finfo(np.float64).eps * np.linalg.norm(y)
        y_nu = y + nu * self.omega
        core = self.omega.T @ y_nu
        core = 0.5 * (core + core.T)
        try:
            chol = np.linalg.cholesky(core)
            b = np.linalg.solve(chol, y_nu.T).T
        except np.linalg.LinAlgError:
            evals, evecs = np.linalg.eigh(core)
            keep = evals > evals.max() * 1e-12
            b = y_nu @ evecs[:, keep] / np.sqrt(evals[keep])
        u, sing, _ = np.linalg.svd(b, full_matrices=False)
        eig = np.maximum(sing ** 2 - nu, 0.0)
        return mean, u[:, :k], eig[:k]


def fit_pca(batches, hp: Mapping[str, Any], d: int) -> dict[str, np.ndarray]:
    """Fit from an iterable of feature batches; returns the model arrays (largest component last)."""
    with single_blas_thread():
        return _fit_pca(batches, hp, d)


def _fit_pca(batches, hp: Mapping[str, Any], d: int) -> dict[str, np.ndarray]:
    k = hp["num_components"]
    centred = hp["subtract_mean"]
    if hp["algorithm_mode"] == "randomized":
        extra = max(2 * k, 20) if hp["extra_components"] == -1 else hp["extra_components"]
        width = min(d, k + extra)
        sketch = RandomizedSketch(d, width, np.random.default_rng(0))
        for x in batches:
            sketch.update(x)
        if sketch.n == 0:
            raise ChannelError("channel 'train' has no records")
        mean, comps, eig = sketch.components(k, centred)
        n = sketch.n
    else:
        acc = ScatterAccumulator(d)
        for x in batches:
            acc.update(x, centred)
        if acc.n == 0:
            raise ChannelError("channel 'train' has no records")
        matrix = acc.scatter if centred else acc.raw
        evals, evecs = np.linalg.eigh(matrix)
        order = np.argsort(evals)[::-1][:k]
        eig, comps, mean, n = np.maximum(evals[order], 0.0), evecs[:, order], acc.mean, acc.n
    if n < 2:
        raise AlgorithmError("pca needs at least 2 records")
    # Fix the sign so that each component's largest-magnitude entry is positive (deterministic output).
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(comps.shape[1])])
    comps = comps * np.where(signs == 0, 1.0, signs)
    arrays = {"v": comps[:, ::-1].copy(), "s": np.sqrt(eig)[::-1].copy(),
              "explained_variance": (eig / (n - 1))[::-1].copy()}
    if centred:
        arrays["mean"] = mean
    return arrays


class PCAPredictor:
    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.v = np.asarray(arrays["v"], dtype=np.float64)
        self.mean = np.asarray(arrays["mean"], dtype=np.float64) if "mean" in arrays else None

    def project(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        out = np.asarray(x.astype(np.float64) @ self.v)
        if self.mean is not None:
            out -= self.mean @ self.v
        return out

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        x = parse_request(body, content_type, feature_dim=self.v.shape[0])
        return encode_response([Output("projection", self.project(x))], accept, top_key="projections")


class PCA:
    """SageMaker's ``pca`` algorithm."""

    name = NAME
    contract = CONTRACT

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        return CONTRACT.validate_hyperparameters(hyperparameters)

    def train(self, env: TrainingEnvironment) -> None:
        with single_blas_thread():  # evaluation passes too are many small products
            self._train(env)

    def _train(self, env: TrainingEnvironment) -> None:
        hp = self.validate_hyperparameters(env.hyperparameters)
        if not env.has_channel("train"):
            raise ChannelError("pca needs a 'train' channel")
        started = time.perf_counter()
        channel = common_io.Channel(env.channel_dir("train"), env.content_type("train", common_io.RECORDIO),
                                    batch_size=max(hp["mini_batch_size"], 1), name="train",
                                    feature_dim=hp["feature_dim"])
        arrays = fit_pca((b.features for b in channel.batches()), hp, hp["feature_dim"])
        env.log(f"pca: {channel.rows_seen} records, mode={hp['algorithm_mode']}, "
                f"trained in {time.perf_counter() - started:.2f}s")
        write_model_file(env.model_dir, write_pca(PCAArtifact(v=arrays["v"], s=arrays["s"], mean=arrays.get("mean"))))

    def load(self, model_dir: Path) -> PCAPredictor:
        model = read_model_file(model_dir, read_pca)
        return PCAPredictor({"v": model.v} if model.mean is None else {"v": model.v, "mean": model.mean})


ALGORITHM = PCA()
