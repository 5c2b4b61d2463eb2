"""Demo data for Factorization Machines: user-item interactions whose target has a known low-rank truth.

The hidden model of one interaction between user ``u`` and item ``i``::

    truth(u, i) = mu + b_user[u] + b_item[i] + <p[u], q[i]>          p[u], q[i] ~ N(0, 1/sqrt(rank)) each
    rating      = truth + N(0, noise_std)                              (regressor)
    clicked     = Bernoulli(sigmoid(truth))                            (binary)

``noise_std`` is the noise floor: no model can reach a lower expected test RMSE than it, and a model
with only biases (a linear model on one-hot user and item) cannot explain the ``<p, q>`` part, which
carries about as much variance as the biases. A Factorization Machine of ``num_factors >= rank`` on
the one-hot encoding ``[user one-hot | item one-hot]`` (``feature_dim = users + items``) can.

The table (:func:`generate_interactions`) has one row per interaction: ``interaction_id``, ``user``,
``item`` (0-based), ``rating``, ``clicked``, ``truth`` (kept for evaluation, never a feature) and
``split`` (``train`` / ``test``, by a seeded draw). Everything is drawn from
``numpy.random.default_rng(seed)`` in a fixed order, so the same spec gives the same table.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPLITS = ("train", "test")


@dataclass(frozen=True)
class InteractionsSpec:
    """What determines a generated interactions table (also the data version of the FM demo model)."""

    users: int = 400
    items: int = 300
    rank: int = 4
    interactions: int = 40_000
    noise_std: float = 0.4
    mu: float = 3.0
    bias_std: float = 0.5
    test_fraction: float = 0.2
    seed: int = 11

    def __post_init__(self) -> None:
        for name in ("users", "items", "rank", "interactions"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.noise_std >= 0 and np.isfinite(self.noise_std)):
            raise ValueError(f"noise_std must be a finite number >= 0, got {self.noise_std!r}")
        if not (self.bias_std >= 0 and np.isfinite(self.bias_std)):
            raise ValueError(f"bias_std must be a finite number >= 0, got {self.bias_std!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @property
    def feature_dim(self) -> int:
        """Width of the one-hot encoding ``[user | item]``."""
        return self.users + self.items

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Interactions:
    """A generated table plus the truth it was drawn from."""

    spec: InteractionsSpec
    table: pa.Table
    user_factors: np.ndarray  # users x rank
    item_factors: np.ndarray  # items x rank
    user_bias: np.ndarray
    item_bias: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy()

    def split_mask(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        return self.table.column("split").to_numpy(zero_copy_only=False) == split

    def noise_floor_rmse(self, split: str = "test") -> float:
        """RMSE of the true (noise-free) target on ``split``: the best any regressor can do on these rows."""
        mask = self.split_mask(split)
        return float(np.sqrt(np.mean((self.column("rating")[mask] - self.column("truth")[mask]) ** 2)))

    def bias_only_rmse(self, split: str = "test") -> float:
        """RMSE on ``split`` of the best bias-only predictor (linear on one-hot), ``mu + b_user + b_item``."""
        mask = self.split_mask(split)
        users, items = self.column("user")[mask], self.column("item")[mask]
        pred = self.spec.mu + self.user_bias[users] + self.item_bias[items]
        return float(np.sqrt(np.mean((self.column("rating")[mask] - pred) ** 2)))


def generate_interactions(spec: InteractionsSpec | None = None) -> Interactions:
    """Draw the interactions of ``spec`` (module docstring); vectorized, deterministic in the spec."""
    spec = spec or InteractionsSpec()
    rng = np.random.default_rng(int(spec.seed))
    scale = 1.0 / np.sqrt(np.sqrt(spec.rank))  # <p, q> then has variance 1 whatever the rank
    p = rng.normal(0.0, scale, size=(spec.users, spec.rank))
    q = rng.normal(0.0, scale, size=(spec.items, spec.rank))
    bu = rng.normal(0.0, spec.bias_std, size=spec.users)
    bi = rng.normal(0.0, spec.bias_std, size=spec.items)
    n = int(spec.interactions)
    user = rng.integers(0, spec.users, size=n)
    item = rng.integers(0, spec.items, size=n)
    truth = spec.mu + bu[user] + bi[item] + np.einsum("ij,ij->i", p[user], q[item])
    rating = truth + rng.normal(0.0, spec.noise_std, size=n)
    clicked = (rng.random(n) < 1.0 / (1.0 + np.exp(-(truth - spec.mu)))).astype(np.int32)
    split = np.where(rng.random(n) < spec.test_fraction, "test", "train")
    table = pa.table({
        "interaction_id": pa.array(np.arange(n, dtype=np.int64)),
        "user": pa.array(user.astype(np.int32)),
        "item": pa.array(item.astype(np.int32)),
        "rating": pa.array(rating.astype(np.float64)),
        "clicked": pa.array(clicked),
        "truth": pa.array(truth.astype(np.float64)),
        "split": pa.array(split),
    })
    return Interactions(spec, table, p, q, bu, bi)


def to_parquet_bytes(table: pa.Table) -> bytes:
    """The table as one Parquet file (what the demo writes to object storage for Spark to read)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
