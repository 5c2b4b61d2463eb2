"""The generated corpus for LDA: determinism, the sparse layout, the known topics, the baselines."""

import numpy as np
import pytest

from smspark_assets.datasets.documents import DocumentsSpec, generate_documents, unigram_pwll

SIZE = {"vocabulary": 200, "topics": 4, "documents": 1500, "words_per_doc": 60}


@pytest.fixture(scope="module")
def data():
    return generate_documents(DocumentsSpec(**SIZE, seed=5))


def test_same_spec_gives_the_same_corpus_and_another_seed_does_not(data) -> None:
    again = generate_documents(DocumentsSpec(**SIZE, seed=5))
    assert again.table.equals(data.table)
    other = generate_documents(DocumentsSpec(**SIZE, seed=6))
    assert not other.table.equals(data.table)


def test_table_rows_are_sorted_distinct_word_ids_with_counts(data) -> None:
    t = data.table
    assert t.column_names == ["doc_id", "split", "word_ids", "counts"]
    assert t.num_rows == 1500
    ids = t.column("word_ids").combine_chunks()
    counts = t.column("counts").combine_chunks()
    offsets = ids.offsets.to_numpy()
    flat = ids.flatten().to_numpy()
    assert flat.min() >= 0 and flat.max() < 200
    # Within each document: strictly increasing word ids (no duplicates), positive counts.
    within = np.diff(flat)[np.isin(np.arange(1, flat.size), offsets, invert=True)]
    assert (within > 0).all()
    assert (counts.flatten().to_numpy() >= 1).all()
    lengths = np.asarray(data.counts.sum(axis=1)).ravel()
    assert lengths.min() >= 5 and abs(lengths.mean() - 60) < 2
    assert abs(data.split_mask("test").mean() - 0.2) < 0.03


def test_topics_and_mixtures_are_distributions_with_their_own_blocks(data) -> None:
    np.testing.assert_allclose(data.topics.sum(axis=1), 1.0)
    np.testing.assert_allclose(data.mixtures.sum(axis=1), 1.0)
    block = 200 // 4
    for t in range(4):
        assert data.topics[t, t * block:(t + 1) * block].sum() > 0.8  # most mass on its own block


def test_word_frequencies_match_the_generative_model(data) -> None:
    lengths = np.asarray(data.counts.sum(axis=1)).ravel()
    expected = (lengths[:, None] * (data.mixtures @ data.topics)).sum(axis=0)
    observed = np.asarray(data.counts.sum(axis=0)).ravel()
    # Pearson chi-square per degree of freedom near 1 when the tokens follow the model.
    chi2 = ((observed - expected) ** 2 / expected).sum() / (observed.size - 1)
    assert chi2 < 1.5


def test_the_true_model_beats_the_unigram_baseline(data) -> None:
    train, test = data.split_mask("train"), data.split_mask("test")
    unigram = unigram_pwll(data.counts[train], data.counts[test])
    assert unigram < np.log(1.0 / 200) + 1.0  # a unigram model is only a little better than uniform
    assert data.true_pwll("test") > unigram + 0.3


@pytest.mark.parametrize("kwargs, message", [
    ({"vocabulary": 0}, "vocabulary must be a positive integer"),
    ({"topics": 10, "vocabulary": 5}, "topics (10) cannot exceed the vocabulary (5)"),
    ({"alpha": 0.0}, "alpha must be a finite number > 0"),
    ({"test_fraction": 0.0}, "test_fraction must be in (0, 1)"),
])
def test_bad_specs_are_refused_with_what_is_allowed(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DocumentsSpec(**kwargs)


def test_unigram_needs_matching_vocabularies(data) -> None:
    with pytest.raises(ValueError, match="share the vocabulary"):
        unigram_pwll(data.counts[:, :100], data.counts)
