"""An XGBoost model artifact read in process: ``model.tar.gz`` -> ``xgboost-model`` -> a Booster.

The SageMaker XGBoost container (algorithm mode) writes one file, ``xgboost-model``, at the root of
``model.tar.gz`` (UBJSON from xgboost >= 1.6; the local engine writes the same). Predictions use the
rounds up to ``best_iteration`` when early stopping recorded one, as the container's server does, so
figures computed here equal the endpoint's answers for the same rows.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from smspark_assets.sagemaker.artifacts import member_from_tar

MODEL_FILE = "xgboost-model"
# A Booster file larger than this is not a model this project trains; refusing it bounds memory.
MAX_MODEL_BYTES = 1 << 30

# Why: xgboost's OpenMP threads busy-wait by default, which slows everything else on a shared machine;
# only effective before the first import of xgboost in the process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class XGBoostArtifactError(ValueError):
    """The archive is not an XGBoost model as the container writes it."""


def model_bytes_from_tar(tar_gz: bytes) -> bytes:
    """The bytes of ``xgboost-model`` inside ``model.tar.gz``."""
    return member_from_tar(tar_gz, MODEL_FILE, MAX_MODEL_BYTES, XGBoostArtifactError)


class XGBoostModel:
    """A trained Booster with the container's prediction conventions."""

    def __init__(self, model_file: bytes) -> None:
        import xgboost as xgb

        self.booster = xgb.Booster()
        try:
            self.booster.load_model(bytearray(model_file))
        except xgb.core.XGBoostError as exc:
            raise XGBoostArtifactError(f"{MODEL_FILE} is not an XGBoost model: {str(exc).splitlines()[0]}") from exc
        best = self.booster.attr("best_iteration")
        self.iteration_range = (0, int(best) + 1) if best is not None else (0, 0)

    @classmethod
    def from_tar(cls, tar_gz: bytes) -> "XGBoostModel":
        return cls(model_bytes_from_tar(tar_gz))

    @property
    def num_features(self) -> int:
        return int(self.booster.num_features())

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``features`` (n, num_features); NaN is a missing value."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"the model takes {self.num_features} feature columns, got shape {features.shape}")
        return np.asarray(self.booster.inplace_predict(features, iteration_range=self.iteration_range,
                                                       missing=np.nan), dtype=np.float64)

    def gain_importance(self, feature_names: Sequence[str] | None = None) -> dict[str, float]:
        """Total gain per feature (features never split on are left out), keyed by ``feature_names`` when
        given (the container trains on unnamed columns ``f0``, ``f1``, ...)."""
        scores = self.booster.get_score(importance_type="total_gain")
        names = list(feature_names or [])

        def name(key: str) -> str:
            index = int(key[1:]) if key.startswith("f") and key[1:].isdigit() else None
            return names[index] if index is not None and index < len(names) else key

        return {name(k): float(v) for k, v in scores.items()}
