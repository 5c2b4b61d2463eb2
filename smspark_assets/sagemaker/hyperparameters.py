"""Hyperparameter specifications: SageMaker's names, defaults, required set and validation.

Values arrive as strings in either SDK's form: the Python SDK sends ``True``/``1e-05``/``["msd"]``,
the Spark SDK sends Scala renderings such as ``True``, ``1.0E-5`` and ``[msd,ssd]``. A spec parses
both and refuses anything out of range *before* a job starts, naming what is allowed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from smspark_assets.sagemaker.errors import HyperparameterError

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``None`` bounds are open-ended."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return False
        if self.high is not None and (value > self.high or (value == self.high and not self.high_inclusive)):
            return False
        return True

    def describe(self) -> str:
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        return f"{'[' if self.low_inclusive and self.low is not None else '('}{lo}, {hi}{']' if self.high_inclusive and self.high is not None else ')'}"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: its kind (int, float, bool, str, list), allowed values and default."""

    name: str
    kind: str = "float"  # int | float | bool | str | list
    interval: Interval | None = None
    choices: Sequence[str] | None = None
    default: Any = None
    required: bool = False
    # Strings accepted in place of a number (e.g. "auto" for num_models).
    specials: Sequence[str] = ()

    def allowed(self) -> str:
        parts: list[str] = []
        if self.kind == "bool":
            parts.append("True or False")
        elif self.choices is not None:
            parts.append("one of " + ", ".join(self.choices))
        else:
            parts.append(f"{'an integer' if self.kind == 'int' else 'a number'}"
                         + (f" in {self.interval.describe()}" if self.interval else ""))
        if self.specials:
            parts.append("or " + ", ".join(repr(s) for s in self.specials))
        return " ".join(parts)

    def parse(self, raw: Any) -> Any:
        text = str(raw).strip()
        if text.lower() in (s.lower() for s in self.specials):
            return text.lower()
        try:
            value = self._parse_kind(text)
        except (TypeError, ValueError):
            raise HyperparameterError(
                f"hyperparameter {self.name}={raw!r} is not valid; allowed: {self.allowed()}") from None
        if self.kind in ("int", "float") and self.interval and not self.interval.contains(value):
            raise HyperparameterError(
                f"hyperparameter {self.name}={raw!r} is out of range; allowed: {self.allowed()}")
        if self.kind == "str" and self.choices is not None and value not in self.choices:
            raise HyperparameterError(
                f"hyperparameter {self.name}={raw!r} is not valid; allowed: {self.allowed()}")
        if self.kind == "list" and self.choices is not None:
            bad = [v for v in value if v not in self.choices]
            if bad:
                raise HyperparameterError(
                    f"hyperparameter {self.name}={raw!r} has {bad}; allowed: each of {', '.join(self.choices)}")
        return value

    def _parse_kind(self, text: str) -> Any:
        if self.kind == "int":
            number = float(text)  # accepts "10", "10.0", "1.0E1"
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if self.kind == "float":
            number = float(text)
            if math.isnan(number):
                raise ValueError(text)
            return number
        if self.kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if self.kind == "list":
            return parse_list(text)
        return text


def parse_list(text: str) -> list[str]:
    """``["msd", "ssd"]`` (JSON), ``[msd,ssd]`` (Scala) or ``msd,ssd`` -> ``["msd", "ssd"]``."""
    text = text.strip()
    if text.startswith("["):
        try:
            loaded = json.loads(text)
            if isinstance(loaded, list):
                return [str(v).strip() for v in loaded]
        except json.JSONDecodeError:
            pass
        text = text[1:-1] if text.endswith("]") else text[1:]
    return [p.strip().strip("'\"") for p in text.split(",") if p.strip()]


@dataclass(frozen=True)
class HyperparameterSpec:
    """All hyperparameters of one algorithm."""

    algorithm: str
    parameters: Sequence[Hyperparameter]
    # Names the container tolerates and ignores (e.g. the Python SDK's force_dense for K-means).
    ignored: frozenset[str] = field(default_factory=frozenset)

    @property
    def by_name(self) -> dict[str, Hyperparameter]:
        return {p.name: p for p in self.parameters}

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Parse ``raw``; return every known hyperparameter (defaults filled). Raises on the first problem."""
        known = self.by_name
        unknown = sorted(set(raw) - set(known) - set(self.ignored))
        if unknown:
            raise HyperparameterError(
                f"{self.algorithm}: unknown hyperparameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(known))}")
        missing = sorted(p.name for p in self.parameters if p.required and p.name not in raw)
        if missing:
            raise HyperparameterError(f"{self.algorithm}: missing required hyperparameter(s) {', '.join(missing)}")
        parsed = {p.name: p.default for p in self.parameters}
        for name, value in raw.items():
            if name in known:
                parsed[name] = known[name].parse(value)
        return parsed


def names(params: Iterable[Hyperparameter]) -> list[str]:
    return [p.name for p in params]
