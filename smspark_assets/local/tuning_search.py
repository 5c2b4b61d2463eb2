"""The search strategies of the local hyperparameter tuner: Random, Grid and Bayesian, on SageMaker's ranges.

A :class:`SearchSpace` is built from a request's ``ParameterRanges`` (validated with SageMaker's rules) and a
:class:`Searcher` proposes the next trial's hyperparameters (as the strings a training job receives) and
learns from finished trials. Nothing here starts a job: :mod:`.tuning` drives the searcher, so the strategies
can be tested on a synthetic objective in milliseconds.

* ``Random``: independent draws from a seeded NumPy generator, per-parameter scaling applied.
* ``Grid``: every combination of the categorical values, in a fixed order (SageMaker allows only
  categorical ranges for Grid).
* ``Bayesian``: optuna's TPE sampler (multivariate, ``constant_liar`` so that trials still running are not
  proposed twice), seeded. SageMaker describes its own Bayesian search as a Gaussian-process surrogate
  (KDD'21); optuna's GP sampler needs PyTorch, which the project does not ship, so TPE stands in -- a
  model-based search all the same, exploiting the region of good trials and exploring the rest.

Scaling (``ScalingType``): ``Linear``; ``Logarithmic`` (range > 0; uniform in log space);
``ReverseLogarithmic`` (continuous ranges in 0 <= x < 1; uniform in ``log(1 - x)``, dense near 1);
``Auto`` resolves to ``Logarithmic`` when the range is positive and spans at least three orders of
magnitude, else ``Linear`` (SageMaker says only that it picks log scaling "when the appropriate choice is
clear from the ranges"; the threshold is this service's).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

import numpy as np

MAX_RANGES = 30
MAX_CATEGORICAL_VALUES = 30
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
AUTO_LOG_SPAN = 1000.0  # Auto picks log scaling for a positive range at least this wide (max / min)


class SearchSpaceError(ValueError):
    """A ParameterRanges document SageMaker would refuse; the message says which member and why."""


@dataclass(frozen=True)
class Parameter:
    """One tunable hyperparameter: kind ``Integer``, ``Continuous`` or ``Categorical``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"  # resolved: Linear, Logarithmic or ReverseLogarithmic
    values: tuple[str, ...] = ()

    def to_unit(self, value: float) -> float:
        """The value in the space where the search is uniform (log, reverse log or as is)."""
        if self.scaling == "Logarithmic":
            return math.log(value)
        if self.scaling == "ReverseLogarithmic":
            return math.log(1.0 - value)
        return float(value)

    def from_unit(self, unit: float) -> float:
        if self.scaling == "Logarithmic":
            value = math.exp(unit)
        elif self.scaling == "ReverseLogarithmic":
            value = 1.0 - math.exp(unit)
        else:
            value = unit
        return min(max(value, self.low), self.high)

    def format(self, value: Any) -> str:
        """The string a training job receives (integers without a decimal point)."""
        if self.kind == "Categorical":
            return str(value)
        if self.kind == "Integer":
            return str(int(round(float(value))))
        return repr(float(value))

    def contains(self, text: str) -> bool:
        """Whether a hyperparameter string (a parent's trial, in warm start) lies in this range."""
        if self.kind == "Categorical":
            return text in self.values
        try:
            value = float(text)
        except ValueError:
            return False
        return self.low <= value <= self.high and (self.kind != "Integer" or value == int(value))


def _number(value: Any, member: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SearchSpaceError(f"{member} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise SearchSpaceError(f"{member} {value!r} is not a finite number")
    return number


def _scaling(kind: str, name: str, low: float, high: float, scaling: str) -> str:
    if scaling not in SCALING_TYPES:
        raise SearchSpaceError(
            f"ScalingType {scaling!r} of {name!r} is not one of: {', '.join(SCALING_TYPES)}"
        )
    if scaling == "Auto":
        return "Logarithmic" if low > 0 and high / low >= AUTO_LOG_SPAN else "Linear"
    if scaling == "Logarithmic" and low <= 0:
        raise SearchSpaceError(
            f"Logarithmic scaling of {name!r} needs a range above 0; MinValue is {low:g}"
        )
    if scaling == "ReverseLogarithmic":
        if kind == "Integer":
            raise SearchSpaceError(
                f"ReverseLogarithmic scaling is for continuous ranges only; {name!r} is an integer range"
            )
        if not (0 <= low and high < 1):
            raise SearchSpaceError(
                f"ReverseLogarithmic scaling of {name!r} needs 0 <= MinValue < MaxValue < 1; "
                f"the range is [{low:g}, {high:g}]"
            )
    return scaling


@dataclass(frozen=True)
class SearchSpace:
    """The tunable hyperparameters of a tuning job, in request order."""

    parameters: tuple[Parameter, ...]

    @classmethod
    def from_ranges(cls, ranges: dict[str, Any] | None) -> "SearchSpace":
        """Parse ``ParameterRanges``; :class:`SearchSpaceError` on anything SageMaker refuses."""
        ranges = ranges or {}
        if not isinstance(ranges, dict):
            raise SearchSpaceError("ParameterRanges must be an object")
        if ranges.get("AutoParameters"):
            raise SearchSpaceError(
                "AutoParameters (Autotune) is not supported locally; give explicit parameter ranges"
            )
        params: list[Parameter] = []
        for key, kind in (
            ("IntegerParameterRanges", "Integer"),
            ("ContinuousParameterRanges", "Continuous"),
            ("CategoricalParameterRanges", "Categorical"),
        ):
            entries = ranges.get(key) or []
            if not isinstance(entries, list) or len(entries) > MAX_RANGES:
                raise SearchSpaceError(f"{key} must be a list of at most {MAX_RANGES} ranges")
            for entry in entries:
                params.append(cls._parameter(entry, kind, key))
        if len(params) > MAX_RANGES:
            raise SearchSpaceError(
                f"A tuning job may tune at most {MAX_RANGES} hyperparameters; the ranges name {len(params)}"
            )
        names = [p.name for p in params]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SearchSpaceError(f"Hyperparameters appear in more than one range: {', '.join(repeated)}")
        return cls(tuple(params))

    @staticmethod
    def _parameter(entry: Any, kind: str, key: str) -> Parameter:
        if not isinstance(entry, dict) or not entry.get("Name"):
            raise SearchSpaceError(f"Each of {key} needs a Name")
        name = str(entry["Name"])
        if kind == "Categorical":
            values = entry.get("Values")
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_CATEGORICAL_VALUES:
                raise SearchSpaceError(
                    f"Values of categorical range {name!r} must list 1 to {MAX_CATEGORICAL_VALUES} values"
                )
            texts = tuple(str(v) for v in values)
            if len(set(texts)) != len(texts):
                raise SearchSpaceError(f"Values of categorical range {name!r} repeat a value")
            return Parameter(name, kind, values=texts)
        low = _number(entry.get("MinValue"), f"MinValue of {name!r}")
        high = _number(entry.get("MaxValue"), f"MaxValue of {name!r}")
        if kind == "Integer" and (low != int(low) or high != int(high)):
            raise SearchSpaceError(f"Integer range {name!r} needs integer MinValue and MaxValue")
        if low > high:
            raise SearchSpaceError(f"MinValue of {name!r} ({low:g}) is greater than its MaxValue ({high:g})")
        scaling = _scaling(kind, name, low, high, str(entry.get("ScalingType") or "Auto"))
        return Parameter(name, kind, low, high, scaling)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def grid(self) -> list[dict[str, str]]:
        """Every combination of categorical values (Grid strategy), first parameter varying slowest."""
        return [
            dict(zip(self.names, combo)) for combo in itertools.product(*(p.values for p in self.parameters))
        ]

    def contains(self, hyperparameters: dict[str, str]) -> bool:
        return all(p.name in hyperparameters and p.contains(hyperparameters[p.name]) for p in self.parameters)


class Searcher(Protocol):
    """What the tuner asks of a strategy."""

    def suggest(self) -> dict[str, str] | None:
        """The next trial's tuned hyperparameters; None when the strategy has nothing left (Grid)."""

    def observe(self, hyperparameters: dict[str, str], value: float | None) -> None:
        """A finished trial (``value`` None when it failed or emitted no objective)."""


class RandomSearcher:
    """Independent draws, uniform in each parameter's scaled space."""

    def __init__(self, space: SearchSpace, seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    def suggest(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.space.parameters:
            if p.kind == "Categorical":
                out[p.name] = p.values[int(self.rng.integers(len(p.values)))]
            elif p.kind == "Integer" and p.scaling == "Linear":
                out[p.name] = p.format(self.rng.integers(int(p.low), int(p.high) + 1))
            else:
                lo, hi = sorted((p.to_unit(p.low), p.to_unit(p.high)))
                out[p.name] = p.format(p.from_unit(float(self.rng.uniform(lo, hi))))
        return out

    def observe(self, hyperparameters: dict[str, str], value: float | None) -> None:
        """Random search does not learn."""


class GridSearcher:
    """The categorical grid, each combination once."""

    def __init__(self, space: SearchSpace, done: Iterable[dict[str, str]] = ()) -> None:
        seen = {tuple(sorted(d.items())) for d in done}
        self._todo = [g for g in space.grid() if tuple(sorted(g.items())) not in seen]

    def suggest(self) -> dict[str, str] | None:
        return self._todo.pop(0) if self._todo else None

    def observe(self, hyperparameters: dict[str, str], value: float | None) -> None:
        """The grid is fixed."""


@dataclass
class BayesianSearcher:
    """optuna's TPE sampler through its ask/tell interface; warm-start trials are added as finished trials."""

    space: SearchSpace
    maximize: bool
    seed: int | None = None
    startup_trials: int = 5
    _pending: dict[tuple[tuple[str, str], ...], list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            import optuna
        except ImportError:  # pragma: no cover - the project pins optuna; this names it when missing
            raise SearchSpaceError(
                "The Bayesian strategy needs the optuna package, which is not installed in the service's "
                "environment; use Random or Grid, or install optuna"
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        sampler = optuna.samplers.TPESampler(
            seed=self.seed,
            n_startup_trials=self.startup_trials,
            multivariate=True,
            constant_liar=True,
        )
        self.study = optuna.create_study(
            direction="maximize" if self.maximize else "minimize", sampler=sampler
        )
        self._distributions = {p.name: self._distribution(p) for p in self.space.parameters}

    def _distribution(self, p: Parameter) -> Any:
        d = self._optuna.distributions
        if p.kind == "Categorical":
            return d.CategoricalDistribution(list(p.values))
        if p.kind == "Integer":
            return d.IntDistribution(int(p.low), int(p.high), log=p.scaling == "Logarithmic")
        if p.scaling == "ReverseLogarithmic":
            # optuna has no reverse-log scale: search 1 - x on a log scale (dense near x = 1).
            return d.FloatDistribution(1.0 - p.high, 1.0 - p.low, log=True)
        return d.FloatDistribution(p.low, p.high, log=p.scaling == "Logarithmic")

    def _to_strings(self, params: dict[str, Any]) -> dict[str, str]:
        out = {}
        for p in self.space.parameters:
            value = params[p.name]
            if p.kind == "Continuous" and p.scaling == "ReverseLogarithmic":
                value = min(max(1.0 - float(value), p.low), p.high)
            out[p.name] = p.format(value)
        return out

    def _from_strings(self, hyperparameters: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.space.parameters:
            text = hyperparameters[p.name]
            if p.kind == "Categorical":
                out[p.name] = text
            elif p.kind == "Integer":
                out[p.name] = int(float(text))
            elif p.scaling == "ReverseLogarithmic":
                out[p.name] = 1.0 - float(text)
            else:
                out[p.name] = float(text)
        return out

    def suggest(self) -> dict[str, str]:
        trial = self.study.ask(self._distributions)
        hps = self._to_strings(trial.params)
        self._pending.setdefault(tuple(sorted(hps.items())), []).append(trial)
        return hps

    def observe(self, hyperparameters: dict[str, str], value: float | None) -> None:
        key = tuple(sorted(hyperparameters.items()))
        trials = self._pending.get(key)
        if trials:
            trial = trials.pop(0)
            if value is None or not math.isfinite(value):
                self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, value)
            return
        # A trial this searcher did not propose: a warm-start parent's, or one before a restart.
        if value is None or not math.isfinite(value) or not self.space.contains(hyperparameters):
            return
        self.study.add_trial(
            self._optuna.trial.create_trial(
                params=self._from_strings(hyperparameters), distributions=self._distributions, value=value
            )
        )


def make_searcher(
    strategy: str, space: SearchSpace, maximize: bool, seed: int | None,
    done: Iterable[dict[str, str]] = (),
) -> Searcher:
    """The searcher for ``strategy`` (``Random``, ``Grid`` or ``Bayesian``)."""
    if strategy == "Random":
        return RandomSearcher(space, seed)
    if strategy == "Grid":
        return GridSearcher(space, done)
    if strategy == "Bayesian":
        return BayesianSearcher(space, maximize, seed)
    raise SearchSpaceError(f"Strategy {strategy!r} is not supported locally; allowed: Bayesian, Random, Grid")
