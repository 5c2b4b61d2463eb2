"""Test and benchmark helper: generated data sets with a known truth, for Factorization Machines and LDA.

The demo models draw their data from :mod:`smspark_assets.datasets` instead (tables with a spec and splits);
these are the bare matrices the algorithm tests and ``benchmarks/algorithms.py`` train on.

* :func:`interactions`: user x item records one-hot encoded (``feature_dim = users + items``) whose target is
  ``mu + b_user + b_item + <p_user, q_item>`` (a rank-``rank`` interaction) plus Gaussian noise; the
  noise standard deviation is the best RMSE any model can reach. ``binary=True`` draws 0/1 labels with
  probability ``sigmoid(truth)`` and also returns the true probabilities.
* :func:`documents`: a bag-of-words corpus drawn from LDA's generative model with known topics
  (sparse, disjoint-ish topic supports so that topics are identifiable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    features: sp.csr_matrix
    labels: np.ndarray
    truth: np.ndarray  # noise-free target (regression) or true probability (binary)
    noise: float


def interactions(n: int, *, users: int = 300, items: int = 300, rank: int = 4, noise: float = 0.5,
                 binary: bool = False, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 1.0, size=(users, rank))
    q = rng.normal(0, 1.0, size=(items, rank))
    bu = rng.normal(0, 0.5, size=users)
    bi = rng.normal(0, 0.5, size=items)
    u = rng.integers(0, users, size=n)
    i = rng.integers(0, items, size=n)
    truth = 0.3 + bu[u] + bi[i] + np.einsum("ij,ij->i", p[u], q[i])
    rows = np.repeat(np.arange(n), 2)
    cols = np.stack([u, users + i], axis=1).ravel()
    x = sp.csr_matrix((np.ones(2 * n, dtype=np.float32), (rows, cols)), shape=(n, users + items))
    if binary:
        prob = 1.0 / (1.0 + np.exp(-truth))
        labels = (rng.random(n) < prob).astype(np.float32)
        return Interactions(x, labels, prob, 0.0)
    labels = (truth + rng.normal(0, noise, size=n)).astype(np.float32)
    return Interactions(x, labels, truth, noise)


@dataclass
class Corpus:
    counts: sp.csr_matrix  # documents x vocabulary word counts
    topics: np.ndarray  # true topic-word distributions (num_topics x vocabulary)
    mixtures: np.ndarray  # true document-topic mixtures


def documents(n_docs: int, *, vocabulary: int = 500, num_topics: int = 5, words_per_doc: int = 100,
              alpha: float = 0.2, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    # Each topic concentrates on its own block of the vocabulary, with a little mass everywhere.
    topics = np.full((num_topics, vocabulary), 0.05)
    block = vocabulary // num_topics
    for t in range(num_topics):
        topics[t, t * block:(t + 1) * block] += rng.gamma(1.0, 1.0, size=block) * 5
    topics /= topics.sum(axis=1, keepdims=True)
    mixtures = rng.dirichlet(np.full(num_topics, alpha), size=n_docs)
    word_probs = mixtures @ topics
    lengths = rng.poisson(words_per_doc, size=n_docs).clip(min=5)
    counts = np.vstack([rng.multinomial(lengths[d], word_probs[d]) for d in range(n_docs)])
    return Corpus(sp.csr_matrix(counts.astype(np.float32)), topics, mixtures)
