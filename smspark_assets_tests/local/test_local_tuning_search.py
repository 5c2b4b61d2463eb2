"""The tuner's search strategies on synthetic objectives (no training jobs): ranges and scaling as SageMaker
defines them, Grid coverage, and a seeded Bayesian search that finds the optimum's neighbourhood in fewer trials
than random search with the same budget."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from smspark_assets.local.tuning_search import (BayesianSearcher, GridSearcher, RandomSearcher, SearchSpace,
                                                SearchSpaceError, make_searcher)

pytestmark = pytest.mark.timeout(120)

SPACE = {
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "subsample", "MinValue": "0.1", "MaxValue": "1", "ScalingType": "Linear"},
    ],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "20", "ScalingType": "Linear"}],
}


def _loss(h: dict[str, str]) -> float:
    """A bowl with its minimum 0 at eta=0.01, max_depth=6, subsample=0.8 (eta on a log scale)."""
    return ((math.log10(float(h["eta"])) + 2) ** 2 + ((int(h["max_depth"]) - 6) / 4) ** 2
            + ((float(h["subsample"]) - 0.8) * 3) ** 2)


def _trials_to_reach(strategy: str, seed: int, budget: int, threshold: float, parallel: int = 2) -> int:
    """Trials run until one scores below ``threshold`` (``budget + 1`` when none does); ``parallel`` trials
    are proposed before their results are known, as the tuner runs them."""
    searcher = make_searcher(strategy, SearchSpace.from_ranges(SPACE), maximize=False, seed=seed)
    run = 0
    while run < budget:
        batch = [searcher.suggest() for _ in range(min(parallel, budget - run))]
        for h in batch:
            run += 1
            value = _loss(h)
            if value < threshold:
                return run
            searcher.observe(h, value)
    return budget + 1


def test_bayesian_reaches_the_optimum_in_fewer_trials_than_random() -> None:
    budget, threshold, seeds = 60, 0.1, range(6)
    bayesian = [_trials_to_reach("Bayesian", s, budget, threshold) for s in seeds]
    random = [_trials_to_reach("Random", s, budget, threshold) for s in seeds]
    # The neighbourhood (loss < 0.1) is a small part of the box: random search rarely hits it in 60 trials.
    assert statistics.median(bayesian) < statistics.median(random), (bayesian, random)
    assert sum(b <= budget for b in bayesian) >= 4, bayesian
    # Seeded: the same seed proposes the same trials.
    assert _trials_to_reach("Bayesian", 3, budget, threshold) == bayesian[3]


def test_random_search_respects_ranges_and_log_scaling() -> None:
    searcher = RandomSearcher(SearchSpace.from_ranges(SPACE), seed=7)
    draws = [searcher.suggest() for _ in range(4000)]
    eta = np.array([float(d["eta"]) for d in draws])
    depth = np.array([int(d["max_depth"]) for d in draws])
    assert eta.min() >= 1e-4 and eta.max() <= 1
    # Log-uniform over four decades: about a quarter of the draws in each decade.
    share = np.mean((eta >= 1e-4) & (eta < 1e-3))
    assert 0.2 < share < 0.3, share
    assert set(depth.tolist()) == set(range(1, 21))
    assert all(d["max_depth"] == str(int(d["max_depth"])) for d in draws[:50])  # integers as integers


def test_reverse_logarithmic_is_dense_near_one() -> None:
    space = SearchSpace.from_ranges({"ContinuousParameterRanges": [
        {"Name": "momentum", "MinValue": "0", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"}]})
    values = np.array([float(RandomSearcher(space, seed=s).suggest()["momentum"]) for s in range(2000)])
    assert values.min() >= 0 and values.max() <= 0.999
    # Uniform in log(1 - x) over three decades: a third of the draws lie in [0.99, 0.999].
    assert 0.25 < np.mean(values >= 0.99) < 0.42
    bayes = BayesianSearcher(space, maximize=True, seed=1)
    for _ in range(10):
        h = bayes.suggest()
        assert 0 <= float(h["momentum"]) <= 0.999
        bayes.observe(h, float(h["momentum"]))


def test_auto_scaling_picks_log_for_wide_positive_ranges() -> None:
    space = SearchSpace.from_ranges({
        "ContinuousParameterRanges": [
            {"Name": "wide", "MinValue": "0.00001", "MaxValue": "10", "ScalingType": "Auto"},
            {"Name": "narrow", "MinValue": "0.1", "MaxValue": "0.9", "ScalingType": "Auto"},
        ]})
    assert [p.scaling for p in space.parameters] == ["Logarithmic", "Linear"]


def test_grid_enumerates_every_combination_once() -> None:
    space = SearchSpace.from_ranges({"CategoricalParameterRanges": [
        {"Name": "booster", "Values": ["gbtree", "dart"]},
        {"Name": "max_depth", "Values": ["3", "6", "9"]}]})
    searcher = GridSearcher(space, done=[{"booster": "dart", "max_depth": "6"}])
    seen = []
    while (h := searcher.suggest()) is not None:
        seen.append((h["booster"], h["max_depth"]))
    assert len(seen) == 5 and len(set(seen)) == 5 and ("dart", "6") not in seen


def test_warm_start_trials_seed_the_bayesian_model() -> None:
    space = SearchSpace.from_ranges(SPACE)
    cold = BayesianSearcher(space, maximize=False, seed=0, startup_trials=5)
    warm = BayesianSearcher(space, maximize=False, seed=0, startup_trials=5)
    rng = RandomSearcher(space, seed=11)
    for _ in range(20):
        h = rng.suggest()
        warm.observe(h, _loss(h))  # trials it did not propose: added as finished trials
    assert len(warm.study.trials) == 20
    # With 20 finished trials the model is past its random start-up phase: its next proposals are better.
    warm_next = [_loss(warm.suggest()) for _ in range(5)]
    cold_next = [_loss(cold.suggest()) for _ in range(5)]
    assert statistics.median(warm_next) < statistics.median(cold_next)


@pytest.mark.parametrize(
    "ranges, message",
    [
        ({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "0", "MaxValue": "1",
                                         "ScalingType": "Logarithmic"}]}, "above 0"),
        ({"IntegerParameterRanges": [{"Name": "a", "MinValue": "0", "MaxValue": "1",
                                      "ScalingType": "ReverseLogarithmic"}]}, "continuous ranges only"),
        ({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "0.5", "MaxValue": "1",
                                         "ScalingType": "ReverseLogarithmic"}]}, "MaxValue < 1"),
        ({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "2", "MaxValue": "1"}]}, "greater than"),
        ({"IntegerParameterRanges": [{"Name": "a", "MinValue": "1.5", "MaxValue": "3"}]}, "integer"),
        ({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "x", "MaxValue": "1"}]}, "not a number"),
        ({"CategoricalParameterRanges": [{"Name": "a", "Values": []}]}, "1 to 30"),
        ({"CategoricalParameterRanges": [{"Name": "a", "Values": ["1"]}],
          "IntegerParameterRanges": [{"Name": "a", "MinValue": "1", "MaxValue": "3"}]}, "more than one range"),
    ],
)
def test_invalid_ranges_are_refused(ranges: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace.from_ranges(ranges)
