"""The gate's metrics against scikit-learn and hand computation."""

import numpy as np
import pytest
from sklearn import metrics as skm

from smspark_assets import model_quality as mq


def _data(n: int = 5000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.2
    # Scores rounded to 2 decimals: many ties, which rank-based AUC must average.
    scores = np.round(np.clip(0.2 + 0.3 * labels + rng.normal(0, 0.2, n), 0, 1), 2)
    return labels.astype(int), scores


def test_auc_matches_scikit_learn_with_ties() -> None:
    labels, scores = _data()
    assert mq.auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(mq.auc(np.zeros(4), np.arange(4.0)))


def test_roc_and_precision_recall_curves_match_scikit_learn() -> None:
    labels, scores = _data()
    fpr, tpr, thresholds = mq.roc_curve(labels, scores)
    sk_fpr, sk_tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    assert np.isinf(thresholds[0])
    assert mq.average_precision(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12)


def test_expected_calibration_error_by_hand() -> None:
    # Bin [0.1, 0.2): scores 0.1, 0.1 labels 0, 1 -> |0.2 - 1| = 0.8 over 4 rows;
    # bin [0.9, 1.0]: scores 0.9, 1.0 labels 1, 1 -> |1.9 - 2| = 0.1 over 4 rows.
    assert mq.expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 1.0]) == pytest.approx(0.9 / 4)
    # Perfectly calibrated within each bin: 0 error.
    assert mq.expected_calibration_error([0, 1], [0.5, 0.5]) == pytest.approx(0.0)


def test_expected_calibration_error_matches_sklearn_calibration_curve() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(5)  # continuous scores: no score on a bin edge, where conventions differ
    labels = (rng.random(5000) < 0.3).astype(int)
    scores = np.clip(0.25 + 0.2 * labels + rng.normal(0, 0.15, 5000), 0.001, 0.999)
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="uniform")
    # calibration_curve drops empty bins; weight the rest by their counts.
    index = np.clip((scores * 10).astype(int), 0, 9)
    counts = np.bincount(index, minlength=10)
    counts = counts[counts > 0]
    expected = float(np.sum(counts / labels.size * np.abs(predicted - observed)))
    assert mq.expected_calibration_error(labels, scores) == pytest.approx(expected, abs=1e-9)


def test_calibration_by_quantile_is_ntile() -> None:
    table = mq.calibration_by_quantile([0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5], buckets=2)
    # NTILE(2) over 5 rows: 3 then 2.
    assert table.count.tolist() == [3, 2]
    np.testing.assert_allclose(table.mean_score, [0.2, 0.45])
    np.testing.assert_allclose(table.observed_rate, [1 / 3, 1.0])


def test_population_stability_index_by_hand() -> None:
    expected = np.arange(100) / 100.0  # quartile edges at 0.2475, 0.495, 0.7425
    actual = np.r_[np.full(50, 0.1), np.full(50, 0.9)]  # shares 0.5, 0, 0, 0.5 -> floored
    e, a = np.full(4, 0.25), np.array([0.5, 1e-4, 1e-4, 0.5])
    by_hand = float(np.sum((a - e) * np.log(a / e)))
    assert mq.population_stability_index(expected, actual, bins=4) == pytest.approx(by_hand)
    assert mq.population_stability_index(expected, expected) == pytest.approx(0.0)


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="labels must be 0/1"):
        mq.auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="one length"):
        mq.auc([0, 1], [0.1])
