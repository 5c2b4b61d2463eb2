"""K-means, trained as SageMaker describes it: a streaming mini-batch pass with extra centers, then local Lloyd's.

Training (DG "How K-means clustering works"):

1. **Streaming phase.** ``K = k * extra_center_factor`` centers are seeded from the first mini-batch
   (``init_method``: uniform sample or k-means++), then every mini-batch of ``mini_batch_size``
   records is assigned to its nearest center and each center moves to the running mean of the
   records it received (learning rate 1/count). ``half_life_time_size`` > 0 makes old records
   count half as much after that many new ones. ``epochs`` passes are made over ``train``.
2. **Reduction.** The K centers, weighted by the number of records they absorbed, are clustered down
   to ``k`` with weighted Lloyd's iterations (``local_lloyd_*``): ``local_lloyd_num_trials`` seedings
   (``local_lloyd_init_method``), each iterated to ``local_lloyd_tol`` or ``local_lloyd_max_iter``;
   the trial with the lowest weighted cost wins.

Memory is one mini-batch plus K centers, whatever the channel size. With a ``test`` channel the job
reports ``test:msd`` and/or ``test:ssd`` (``eval_metrics``). The model file ``model_algo-1`` is
SageMaker's: an MXNet NDArray list of one float32 array, the centroids (k x feature_dim). Inference answers ``closest_cluster`` (0-based, as a float) and
``distance_to_cluster`` (Euclidean distance to that centroid).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_io
from smspark_assets.local.algorithms.base import AlgorithmError, ChannelError, TrainingEnvironment
from smspark_assets.local.algorithms.common_blas import single_blas_thread
from smspark_assets.local.algorithms.common_metrics import log_metric
from smspark_assets.local.algorithms.common_model import read_model_file, write_model_file
from smspark_assets.sagemaker.artifacts import read_kmeans, write_kmeans
from smspark_assets.local.algorithms.common_serving import Output, encode_response, parse_request
from smspark_assets.sagemaker.algorithms.kmeans import CONTRACT, NAME

# ``auto`` values (documented choices of this implementation).
AUTO_EXTRA_CENTER_FACTOR = 10
AUTO_LLOYD_TRIALS = 10


# ---------------------------------------------------------------------------------------------- kernels

def squared_distances(x: np.ndarray | sp.csr_matrix, centers: np.ndarray,
                      x_sq: np.ndarray | None = None) -> np.ndarray:
    """(n, K) squared Euclidean distances, computed as |x|^2 - 2 x.c + |c|^2 with one GEMM."""
    if x_sq is None:
        x_sq = (np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x)
                else np.einsum("ij,ij->i", x, x))
    cross = x @ centers.T
    if sp.issparse(cross):  # pragma: no cover - sparse @ dense is dense
        cross = cross.toarray()
    cross = np.asarray(cross)
    c_sq = np.einsum("ij,ij->i", centers, centers)
    d = cross
    d *= -2.0
    d += x_sq[:, None]
    d += c_sq[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def assign(x: np.ndarray | sp.csr_matrix, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest center index and squared distance for each row.

    |x|^2 is the same for every center of a row, so the argmin runs on |c|^2 - 2 x.c and |x|^2 is added
    to the winners only: two passes over the (n, K) matrix instead of four.
    """
    partial = np.asarray(x @ centers.T)
    partial *= -2.0
    partial += np.einsum("ij,ij->i", centers, centers)[None, :]
    idx = partial.argmin(axis=1)
    x_sq = (np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else np.einsum("ij,ij->i", x, x))
    best = partial[np.arange(partial.shape[0]), idx] + x_sq
    return idx, np.maximum(best, 0.0)


def _cluster_sums(x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster weighted sums of rows and total weights, via one sparse one-hot product (no Python loop)."""
    n = x.shape[0]
    w = np.ones(n, dtype=x.dtype) if weights is None else weights.astype(x.dtype, copy=False)
    onehot = sp.csr_matrix((w, (labels, np.arange(n))), shape=(n_clusters, n))
    sums = np.asarray(onehot @ x)
    totals = np.bincount(labels, weights=w, minlength=n_clusters)
    return sums, totals


def kmeans_plus_plus(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted k-means++ seeding with greedy local trials (2 + ln k candidates per step)."""
    n = points.shape[0]
    trials = 2 + int(math.log(k))
    p = weights / weights.sum()
    first = rng.choice(n, p=p)
    centers = [points[first]]
    closest = squared_distances(points, points[first:first + 1]).ravel()
    for _ in range(1, k):
        potential = weights * closest
        total = potential.sum()
        if total <= 0:  # every point already coincides with a center
            candidates = rng.choice(n, size=trials)
        else:
            candidates = rng.choice(n, size=trials, p=potential / total)
        d = squared_distances(points, points[candidates])  # (n, trials)
        np.minimum(d, closest[:, None], out=d)
        best = int(np.argmin(weights @ d))
        centers.append(points[candidates[best]])
        closest = d[:, best]
    return np.array(centers)


def random_init(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct rows sampled with probability proportional to weight."""
    idx = rng.choice(points.shape[0], size=k, replace=False, p=weights / weights.sum())
    return points[idx].copy()


def weighted_lloyd(points: np.ndarray, weights: np.ndarray, k: int, *, init: str, max_iter: int, tol: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Weighted Lloyd's iterations from one seeding; returns (centers, weighted cost)."""
    centers = (kmeans_plus_plus if init == "kmeans++" else random_init)(points, weights, k, rng).astype(np.float64)
    mean = (weights @ points) / weights.sum()
    variance = float(weights @ ((points - mean) ** 2).sum(axis=1)) / weights.sum()
    threshold = tol * variance
    for _ in range(max_iter):
        labels, dist = assign(points, centers)
        sums, totals = _cluster_sums(points, labels, weights, k)
        new = centers.copy()
        filled = totals > 0
        new[filled] = sums[filled] / totals[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:
            # Re-seed an empty cluster with the points that cost most.
            far = np.argsort(-(weights * dist))[: empty.size]
            new[empty] = points[far]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= threshold and not empty.size:
            break
    _, dist = assign(points, centers)
    return centers, float(weights @ dist)


def reduce_centers(points: np.ndarray, weights: np.ndarray, k: int, *, trials: int, init: str, max_iter: int,
                   tol: float, rng: np.random.Generator) -> np.ndarray:
    """The best of ``trials`` weighted Lloyd's runs clustering ``points`` down to ``k`` centers."""
    if points.shape[0] < k:
        raise AlgorithmError(f"the data has only {points.shape[0]} distinct cluster candidate(s) but k={k}; "
                             "use a smaller k or more (distinct) records")
    points = points.astype(np.float64)
    weights = weights.astype(np.float64)
    if points.shape[0] == k:
        return points
    best, best_cost = None, math.inf
    for _ in range(trials):
        centers, cost = weighted_lloyd(points, weights, k, init=init, max_iter=max_iter, tol=tol, rng=rng)
        if cost < best_cost:
            best, best_cost = centers, cost
    assert best is not None
    return best


class StreamingKMeans:
    """The streaming phase: K centers updated by mini-batches (running means with optional half-life)."""

    def __init__(self, n_centers: int, *, init: str, half_life: int, rng: np.random.Generator) -> None:
        self.n_centers = n_centers
        self.init = init
        self.half_life = half_life
        self.rng = rng
        self.centers: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    def _seed(self, x: np.ndarray) -> None:
        n_centers = min(self.n_centers, x.shape[0])
        ones = np.ones(x.shape[0])
        chooser = kmeans_plus_plus if self.init == "kmeans++" else random_init
        self.centers = chooser(x, ones, n_centers, self.rng).astype(np.float32)
        self.counts = np.zeros(n_centers, dtype=np.float64)

    def partial_fit(self, x: np.ndarray) -> None:
        if self.centers is None:
            # Seed only once enough records are buffered to pick K distinct ones.
            self._buffer.append(x)
            self._buffered += x.shape[0]
            if self._buffered < self.n_centers:
                return
            x = np.concatenate(self._buffer) if len(self._buffer) > 1 else x
            self._buffer, self._buffered = [], 0
            self._seed(x)
        assert self.centers is not None and self.counts is not None
        labels, _ = assign(x, self.centers)
        sums, totals = _cluster_sums(x, labels, None, self.centers.shape[0])
        if self.half_life > 0:
            self.counts *= 0.5 ** (x.shape[0] / self.half_life)
        hit = totals > 0
        new_counts = self.counts[hit] + totals[hit]
        # Running mean: c <- c + (sum - m c) / (n + m)
        self.centers[hit] += ((sums[hit] - totals[hit, None] * self.centers[hit]) / new_counts[:, None]).astype(np.float32)
        self.counts[hit] = new_counts

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The centers that absorbed records and their weights."""
        if self.centers is None and self._buffer:
            x = np.concatenate(self._buffer)
            self._buffer, self._buffered = [], 0
            self._seed(x)
            self.partial_fit(x)
        if self.centers is None or self.counts is None:
            raise ChannelError("channel 'train' has no records")
        keep = self.counts > 0
        return self.centers[keep], self.counts[keep]


# ---------------------------------------------------------------------------------------------- algorithm

class KMeansPredictor:
    """Answers ``closest_cluster`` / ``distance_to_cluster`` for each record."""

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = centroids.astype(np.float64)

    def predict(self, x: np.ndarray | sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        x = x.astype(np.float64)
        idx, d2 = assign(x, self.centroids)
        return idx.astype(np.float64), np.sqrt(d2)

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        x = parse_request(body, content_type, feature_dim=self.centroids.shape[1])
        closest, distance = self.predict(x)
        return encode_response([Output("closest_cluster", closest), Output("distance_to_cluster", distance)], accept)


class KMeans:
    """SageMaker's ``kmeans`` algorithm."""

    name = NAME
    contract = CONTRACT

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        return CONTRACT.validate_hyperparameters(hyperparameters)

    def fit_stream(self, hp: Mapping[str, Any], batches_per_epoch, rng: np.random.Generator) -> np.ndarray:
        """Run both phases over ``batches_per_epoch()`` (a callable returning one epoch of dense batches)."""
        factor = AUTO_EXTRA_CENTER_FACTOR if hp["extra_center_factor"] == "auto" else hp["extra_center_factor"]
        stream = StreamingKMeans(hp["k"] * factor, init=hp["init_method"], half_life=hp["half_life_time_size"], rng=rng)
        with single_blas_thread():
            for _ in range(hp["epochs"]):
                for x in batches_per_epoch():
                    stream.partial_fit(x)
            points, weights = stream.finish()
            trials = AUTO_LLOYD_TRIALS if hp["local_lloyd_num_trials"] == "auto" else hp["local_lloyd_num_trials"]
            return reduce_centers(points, weights, hp["k"], trials=trials, init=hp["local_lloyd_init_method"],
                                  max_iter=hp["local_lloyd_max_iter"], tol=hp["local_lloyd_tol"], rng=rng)

    def train(self, env: TrainingEnvironment) -> None:
        with single_blas_thread():  # evaluation passes too are many small products
            self._train(env)

    def _train(self, env: TrainingEnvironment) -> None:
        hp = self.validate_hyperparameters(env.hyperparameters)
        if not env.has_channel("train"):
            raise ChannelError("kmeans needs a 'train' channel")
        started = time.perf_counter()
        channel = common_io.Channel(env.channel_dir("train"), env.content_type("train", common_io.RECORDIO),
                                    batch_size=hp["mini_batch_size"], name="train", feature_dim=hp["feature_dim"],
                                    # Only worth caching when the data is read more than once.
                                    cache_bytes=common_io.DEFAULT_CACHE_BYTES if hp["epochs"] > 1 else 0)
        rng = np.random.default_rng(0)

        def epoch():
            for batch in channel.batches():
                yield batch.dense()

        centroids = self.fit_stream(hp, epoch, rng)
        env.log(f"kmeans: {channel.rows_seen} records, k={hp['k']}, trained in {time.perf_counter() - started:.2f}s")
        write_model_file(env.model_dir, write_kmeans(centroids))
        if env.has_channel("test"):
            self._evaluate(env, hp, centroids)

    def _evaluate(self, env: TrainingEnvironment, hp: Mapping[str, Any], centroids: np.ndarray) -> None:
        test = common_io.Channel(env.channel_dir("test"), env.content_type("test", common_io.RECORDIO),
                                 batch_size=max(hp["mini_batch_size"], 10000), name="test", feature_dim=hp["feature_dim"])
        ssd, n = 0.0, 0
        for batch in test.batches():
            _, d2 = assign(batch.features.astype(np.float64), centroids)
            ssd += float(d2.sum())
            n += batch.size
        if "ssd" in hp["eval_metrics"]:
            log_metric(env, "test", "ssd", ssd)
        if "msd" in hp["eval_metrics"]:
            log_metric(env, "test", "msd", ssd / n)

    def load(self, model_dir: Path) -> KMeansPredictor:
        return KMeansPredictor(read_model_file(model_dir, read_kmeans))


ALGORITHM = KMeans()
