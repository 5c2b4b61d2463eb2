"""LDA by online variational Bayes (Hoffman, Blei & Bach 2010), streamed in mini-batches of documents.

Each record is a document's word counts over a vocabulary of ``feature_dim`` words (dense or sparse
recordIO-protobuf, or dense CSV). The topic-word parameters ``lambda`` (num_topics x feature_dim) are
updated after every mini-batch of ``mini_batch_size`` documents:

* **E-step** (vectorized over the batch's non-zero counts): document-topic parameters ``gamma`` are
  iterated to a fixed point, at most ``max_iterations`` times, until the mean absolute change of the
  normalized topic mixtures drops below ``tol`` -- documents that have converged are frozen, so a tight
  ``tol`` costs iterations only on the documents that need them.
* **M-step**: ``lambda <- (1 - rho) lambda + rho (eta + D / |batch| * stats)`` with
  ``rho = (10 + t) ** -0.7`` and D the number of documents in the channel (counted on the first pass).

The Dirichlet prior on topic mixtures is ``alpha0 / num_topics`` per topic (``alpha0`` is the
concentration, as in SageMaker); the prior on topic-word distributions is ``1 / num_topics``.
``max_restarts`` random initialisations of ``lambda`` are tried on the first mini-batch (a few coarse
online steps each) and the one with the best per-word log-likelihood is kept. Passes over the channel continue until the training
per-word log-likelihood improves by less than 0.1 % (relative) between passes, at most ``PASS_LIMIT``.

Metric: ``test:pwll``, the per-word log-likelihood of the ``test`` documents, ``sum(c_dw log(theta_d .
beta_w)) / sum(c_dw)`` with ``theta_d`` inferred with the topics fixed. ``model_algo-1`` is SageMaker's
MXNet NDArray list ``[alpha (per topic), beta (num_topics x feature_dim, each row a topic's word
distribution)]`` in float32. Inference answers ``{"predictions": [{"topic_mixture": [...]}]}`` per document.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import scipy.sparse as sp
from scipy.special import psi

from smspark_assets.local.algorithms import common_io
from smspark_assets.local.algorithms.base import ChannelError, TrainingEnvironment
from smspark_assets.local.algorithms.common_blas import single_blas_thread
from smspark_assets.local.algorithms.common_metrics import log_metric
from smspark_assets.local.algorithms.common_model import read_model_file, write_model_file
from smspark_assets.sagemaker.artifacts import LDAArtifact, read_lda, write_lda
from smspark_assets.local.algorithms.common_serving import Output, encode_response, parse_request
from smspark_assets.sagemaker.algorithms.lda import CONTRACT, HYPERPARAMETERS, NAME

# Online-learning schedule (Hoffman et al.'s tau0 and kappa) and the pass limit: choices of this implementation.
TAU0, KAPPA = 10.0, 0.7
PASS_LIMIT = 50
PASS_TOLERANCE = 1e-3
RESTART_SWEEPS = 3
RESTART_E_ITERATIONS, RESTART_E_TOL = 50, 1e-3


def _dirichlet_expectation(a: np.ndarray) -> np.ndarray:
    return psi(a) - psi(a.sum(axis=1, keepdims=True))


def _as_counts(x: np.ndarray | sp.csr_matrix) -> sp.csr_matrix:
    m = x.tocsr() if sp.issparse(x) else sp.csr_matrix(x)
    m = m.astype(np.float64)
    m.eliminate_zeros()
    if m.data.size and m.data.min() < 0:
        raise ChannelError("LDA records are word counts; found a negative value")
    return m


def _batch_terms(x: sp.csr_matrix, exp_elog_beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    return rows, exp_elog_beta[:, x.indices].T, x.data  # beta at each non-zero: (nnz, K)


def e_step(x: sp.csr_matrix, exp_elog_beta: np.ndarray, alpha: float | np.ndarray, *, max_iter: int, tol: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point updates of gamma for a batch; returns (gamma (b x K), sufficient stats (K x V)).

    Converged documents drop out: the working set is re-sliced whenever it has shrunk by half, so the
    cost follows the documents that still move.
    """
    n_docs = x.shape[0]
    k = exp_elog_beta.shape[0]
    gamma = rng.gamma(100.0, 0.01, size=(n_docs, k))
    idx = np.arange(n_docs)  # documents in the working set
    sub = x
    rows, beta_nz, counts = _batch_terms(sub, exp_elog_beta)
    g = gamma
    for _ in range(max_iter):
        exp_elog_theta = np.exp(_dirichlet_expectation(g))
        phinorm = np.einsum("nk,nk->n", exp_elog_theta[rows], beta_nz) + 1e-100
        weighted = sp.csr_matrix((counts / phinorm, sub.indices, sub.indptr), shape=sub.shape)
        new_g = alpha + exp_elog_theta * np.asarray(weighted @ exp_elog_beta.T)
        change = np.abs(new_g / new_g.sum(axis=1, keepdims=True) - g / g.sum(axis=1, keepdims=True)).mean(axis=1)
        g = new_g
        moving = change >= tol
        if not moving.any():
            break
        if moving.sum() * 2 <= len(idx):
            gamma[idx] = g
            idx, g = idx[moving], g[moving]
            sub = x[idx]
            rows, beta_nz, counts = _batch_terms(sub, exp_elog_beta)
    gamma[idx] = g
    exp_elog_theta = np.exp(_dirichlet_expectation(gamma))
    rows, beta_nz, counts = _batch_terms(x, exp_elog_beta)
    phinorm = np.einsum("nk,nk->n", exp_elog_theta[rows], beta_nz) + 1e-100
    weighted = sp.csr_matrix((counts / phinorm, x.indices, x.indptr), shape=x.shape)
    stats = np.asarray((weighted.T @ exp_elog_theta).T) * exp_elog_beta
    return gamma, stats


def per_word_log_likelihood(x: sp.csr_matrix, theta: np.ndarray, beta: np.ndarray) -> tuple[float, float]:
    """(sum of c_dw log p(w | d), sum of counts) for documents ``x`` with mixtures ``theta``, topics ``beta``."""
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    p = np.einsum("nk,kn->n", theta[rows], beta[:, x.indices])
    return float(x.data @ np.log(np.maximum(p, 1e-300))), float(x.data.sum())


class OnlineLDA:
    """Online variational Bayes state."""

    def __init__(self, hp: Mapping[str, Any], n_docs: int, rng: np.random.Generator) -> None:
        self.k = hp["num_topics"]
        self.v = hp["feature_dim"]
        self.alpha = hp["alpha0"] / self.k
        self.eta = 1.0 / self.k
        self.max_iter = hp["max_iterations"]
        self.tol = hp["tol"]
        self.n_docs = max(n_docs, 1)
        self.rng = rng
        self.lam = rng.gamma(100.0, 0.01, size=(self.k, self.v))
        self.updates = 0

    def exp_elog_beta(self) -> np.ndarray:
        return np.exp(_dirichlet_expectation(self.lam))

    def beta(self) -> np.ndarray:
        return self.lam / self.lam.sum(axis=1, keepdims=True)

    def update(self, x: sp.csr_matrix, max_iter: int | None = None, tol: float | None = None) -> tuple[float, float]:
        """One online step; returns the batch's (log-likelihood, words) under the topics before the step."""
        beta = self.beta()
        gamma, stats = e_step(x, self.exp_elog_beta(), self.alpha, max_iter=max_iter or self.max_iter,
                              tol=tol or self.tol, rng=self.rng)
        ll = per_word_log_likelihood(x, gamma / gamma.sum(axis=1, keepdims=True), beta)
        rho = (TAU0 + self.updates) ** -KAPPA
        self.lam = (1 - rho) * self.lam + rho * (self.eta + self.n_docs / x.shape[0] * stats)
        self.updates += 1
        return ll

    def infer(self, x: sp.csr_matrix) -> np.ndarray:
        """Topic mixtures (rows sum to 1) with the topics fixed."""
        gamma, _ = e_step(x, self.exp_elog_beta(), self.alpha, max_iter=self.max_iter, tol=self.tol, rng=self.rng)
        return gamma / gamma.sum(axis=1, keepdims=True)

    def pwll(self, x: sp.csr_matrix) -> float:
        ll, words = per_word_log_likelihood(x, self.infer(x), self.beta())
        return ll / max(words, 1.0)


def fit_lda(hp: Mapping[str, Any], epoch: "callable", n_docs: int, log=lambda m: None) -> OnlineLDA:
    """Train over ``epoch()`` (an iterable of count batches per call); restarts on the first batch."""
    with single_blas_thread():
        return _fit_lda(hp, epoch, n_docs, log)


def _fit_lda(hp: Mapping[str, Any], epoch: "callable", n_docs: int, log) -> OnlineLDA:
    rng = np.random.default_rng(0)
    first = next(iter(epoch()), None)
    if first is None:
        raise ChannelError("channel 'train' has no records")
    first = _as_counts(first)
    best, best_ll = None, -np.inf
    for restart in range(hp["max_restarts"]):
        model = OnlineLDA(hp, n_docs, np.random.default_rng(restart))
        # Screening restarts with a coarse E-step keeps them cheap; the winner is refined by the passes.
        for _ in range(RESTART_SWEEPS):
            ll_words = model.update(first, max_iter=min(hp["max_iterations"], RESTART_E_ITERATIONS),
                                    tol=max(hp["tol"], RESTART_E_TOL))
        ll = ll_words[0] / max(ll_words[1], 1.0)
        if ll > best_ll:
            best, best_ll = model, ll
    assert best is not None
    model = best
    model.rng = rng
    model.updates = 0
    previous = None
    for p in range(PASS_LIMIT):
        total_ll, total_words = 0.0, 0.0
        for x in epoch():
            ll, words = model.update(_as_counts(x))
            total_ll += ll
            total_words += words
        current = total_ll / max(total_words, 1.0)
        log(f"#progress pass {p + 1}: train pwll {current:.6f}")
        if previous is not None and abs(current - previous) <= PASS_TOLERANCE * abs(previous):
            break
        previous = current
    return model


class LDAPredictor:
    def __init__(self, alpha: np.ndarray, beta: np.ndarray, max_iter: int, tol: float) -> None:
        # Per topic: SageMaker's models keep the topics with the largest priors, so they differ.
        self.alpha = np.asarray(alpha, dtype=np.float64)
        self.beta = beta
        self.exp_elog_beta = beta  # the served model uses the point estimate of the topics
        self.max_iter, self.tol = max_iter, tol

    def topic_mixture(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        counts = _as_counts(x)
        gamma, _ = e_step(counts, self.exp_elog_beta, self.alpha, max_iter=self.max_iter, tol=self.tol,
                          rng=np.random.default_rng(0))
        return gamma / gamma.sum(axis=1, keepdims=True)

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        x = parse_request(body, content_type, feature_dim=self.beta.shape[1])
        try:
            mixture = self.topic_mixture(x)
        except ChannelError as exc:
            from smspark_assets.local.algorithms.base import BadRequest

            raise BadRequest(str(exc)) from None
        return encode_response([Output("topic_mixture", mixture)], accept)


class LDA:
    """SageMaker's ``lda`` algorithm."""

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
            raise ChannelError("lda needs a 'train' channel")
        started = time.perf_counter()
        channel = common_io.Channel(env.channel_dir("train"), env.content_type("train", common_io.RECORDIO),
                                    batch_size=hp["mini_batch_size"], name="train", feature_dim=hp["feature_dim"],
                                    cache_bytes=common_io.DEFAULT_CACHE_BYTES)
        # Count the documents (the online update scales by corpus size); this pass also fills the cache.
        n_docs = sum(b.size for b in channel.batches())

        def epoch() -> Iterable[np.ndarray | sp.csr_matrix]:
            return (b.features for b in channel.batches())

        model = fit_lda(hp, epoch, n_docs, env.log)
        env.log(f"lda: {n_docs} documents, trained in {time.perf_counter() - started:.2f}s")
        beta = model.beta()
        write_model_file(env.model_dir, write_lda(LDAArtifact(alpha=np.full(model.k, model.alpha), beta=beta)))
        if env.has_channel("test"):
            test = common_io.Channel(env.channel_dir("test"), env.content_type("test", common_io.RECORDIO),
                                     batch_size=hp["mini_batch_size"], name="test", feature_dim=hp["feature_dim"])
            total_ll, total_words = 0.0, 0.0
            for batch in test.batches():
                counts = _as_counts(batch.features)
                ll, words = per_word_log_likelihood(counts, model.infer(counts), beta)
                total_ll += ll
                total_words += words
            log_metric(env, "test", "pwll", total_ll / max(total_words, 1.0))

    def load(self, model_dir: Path) -> LDAPredictor:
        # SageMaker's artifact holds only alpha and beta: inference runs the E-step with the contract's
        # default max_iterations and tol, whatever the training job used.
        model = read_model_file(model_dir, read_lda)
        defaults = HYPERPARAMETERS.by_name
        return LDAPredictor(model.alpha, model.beta, int(defaults["max_iterations"].default),
                            float(defaults["tol"].default))


ALGORITHM = LDA()
