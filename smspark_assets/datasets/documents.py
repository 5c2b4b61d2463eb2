"""Demo data for LDA: bag-of-words documents drawn from LDA's own generative model with known topics.

The hidden model (Blei, Ng & Jordan's generative story)::

    topic t      : a distribution over the vocabulary that puts most of its mass on its own block of
                   ``vocabulary / topics`` words (Gamma-distributed weights) and a little everywhere,
                   so topics overlap but are identifiable
    document d   : theta_d ~ Dirichlet(alpha, ..., alpha);  length ~ Poisson(words_per_doc), at least 5
    each word    : z ~ Categorical(theta_d), w ~ Categorical(topic z)

The table (:func:`generate_documents`) has one row per document: ``doc_id``, ``split`` (``train`` /
``test``), ``word_ids`` (sorted, distinct, 0-based) and ``counts`` (how often each occurs), i.e. the
sparse word-count vector LDA trains on (``feature_dim = vocabulary``). The true ``topics`` and
``mixtures`` come with it for evaluation. Token sampling is vectorized (inverse CDF per topic), not
a loop over documents or words.

:func:`unigram_pwll` gives the per-word log-likelihood of a corpus under the train corpus' word
frequencies: the bar a topic model must clear (one topic is exactly a unigram model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DocumentsSpec:
    """What determines a generated corpus (also the data version of the LDA demo model)."""

    vocabulary: int = 300
    topics: int = 5
    documents: int = 2_000
    words_per_doc: int = 80
    alpha: float = 0.2
    background: float = 0.02
    test_fraction: float = 0.2
    seed: int = 13

    def __post_init__(self) -> None:
        for name in ("vocabulary", "topics", "documents", "words_per_doc"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.topics > self.vocabulary:
            raise ValueError(f"topics ({self.topics}) cannot exceed the vocabulary ({self.vocabulary}): "
                             "every topic needs its own block of words")
        if not (self.alpha > 0 and np.isfinite(self.alpha)):
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        if not (self.background >= 0 and np.isfinite(self.background)):
            raise ValueError(f"background must be a finite number >= 0, got {self.background!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Documents:
    """A generated corpus: the table plus the truth it was drawn from."""

    spec: DocumentsSpec
    table: pa.Table
    counts: sp.csr_matrix  # documents x vocabulary
    topics: np.ndarray  # topics x vocabulary, rows sum to 1
    mixtures: np.ndarray  # documents x topics

    def split_mask(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        return self.table.column("split").to_numpy(zero_copy_only=False) == split

    def true_pwll(self, split: str = "test") -> float:
        """Per-word log-likelihood of ``split`` under the true topics and the true mixtures (a ceiling)."""
        counts = self.counts[self.split_mask(split)].tocoo()
        mixtures = self.mixtures[self.split_mask(split)]
        probs = np.einsum("ij,ji->i", mixtures[counts.row], self.topics[:, counts.col])
        return float((counts.data * np.log(probs)).sum() / counts.data.sum())


def _categorical(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: for each ``u`` the first index whose cumulative probability exceeds it."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


def generate_documents(spec: DocumentsSpec | None = None) -> Documents:
    """Draw the corpus of ``spec`` (module docstring); deterministic in the spec."""
    spec = spec or DocumentsSpec()
    rng = np.random.default_rng(int(spec.seed))
    k, v, n = spec.topics, spec.vocabulary, spec.documents
    block = v // k
    topics = np.full((k, v), spec.background)
    own = rng.gamma(1.0, 1.0, size=(k, block))
    for t in range(k):  # k small slices; each topic's block of the vocabulary
        topics[t, t * block:(t + 1) * block] += own[t]
    topics /= topics.sum(axis=1, keepdims=True)
    mixtures = rng.dirichlet(np.full(k, spec.alpha), size=n)
    lengths = np.maximum(rng.poisson(spec.words_per_doc, size=n), 5)
    doc = np.repeat(np.arange(n), lengths)
    # Topic of every token: inverse CDF of its document's mixture, all tokens at once.
    mix_cdf = np.cumsum(mixtures, axis=1)
    z = (rng.random(doc.size)[:, None] > mix_cdf[doc]).sum(axis=1).clip(max=k - 1)
    # Word of every token: inverse CDF of its topic, one searchsorted per topic.
    words = np.empty(doc.size, dtype=np.int64)
    u = rng.random(doc.size)
    for t in range(k):
        sel = z == t
        words[sel] = _categorical(np.cumsum(topics[t]), u[sel])
    counts = sp.csr_matrix((np.ones(doc.size, dtype=np.float64), (doc, words)), shape=(n, v))
    counts.sum_duplicates()
    counts.sort_indices()
    split = np.where(rng.random(n) < spec.test_fraction, "test", "train")
    offsets = pa.array(counts.indptr.astype(np.int32))
    table = pa.table({
        "doc_id": pa.array(np.arange(n, dtype=np.int64)),
        "split": pa.array(split),
        "word_ids": pa.ListArray.from_arrays(offsets, pa.array(counts.indices.astype(np.int32))),
        "counts": pa.ListArray.from_arrays(offsets, pa.array(counts.data.astype(np.float64))),
    })
    return Documents(spec, table, counts, topics, mixtures)


def unigram_pwll(train: sp.csr_matrix, test: sp.csr_matrix, smoothing: float = 0.5) -> float:
    """Per-word log-likelihood of ``test`` under the (add-``smoothing``) word frequencies of ``train``."""
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test must share the vocabulary; got {train.shape[1]} and "
                         f"{test.shape[1]} words")
    freq = np.asarray(train.sum(axis=0)).ravel() + smoothing
    logp = np.log(freq / freq.sum())
    test = test.tocsr()
    total = float(test.data.sum())
    if total <= 0:
        raise ValueError("the test documents contain no words")
    return float((test.data * logp[test.indices]).sum() / total)
