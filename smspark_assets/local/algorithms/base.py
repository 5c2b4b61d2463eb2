"""The contract between the local SageMaker service and an algorithm implementation.

It mirrors SageMaker's container contract, relocated under a job folder instead of ``/opt/ml``:

training (``python -m smspark_assets.local.algorithms.train <job_dir>``)::

    <job_dir>/input/config/hyperparameters.json    {"name": "string value", ...}
    <job_dir>/input/config/inputdataconfig.json    {"train": {"ContentType": "text/csv", ...}, ...}
    <job_dir>/input/config/resourceconfig.json
    <job_dir>/input/config/algorithm.json          {"algorithm": "xgboost", "image": "<uri>"}  (local only)
    <job_dir>/input/data/<channel>/...             the channel's files
    <job_dir>/model/                               everything here becomes model.tar.gz
    <job_dir>/output/failure                       written on failure: the FailureReason
    <job_dir>/output/metrics.json                  [{"MetricName": ..., "Value": ..., "Timestamp": ...}]
    <job_dir>/output/data/                         SM_OUTPUT_DATA_DIR

serving (``python -m smspark_assets.local.model_server``): ``Algorithm.load(model_dir)`` returns a
:class:`Predictor` whose ``invoke`` answers one ``/invocations`` request.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from smspark_assets.sagemaker.algorithms.spec import ChannelError
from smspark_assets.sagemaker.errors import AlgorithmError, HyperparameterError

__all__ = ["AlgorithmError", "HyperparameterError", "ChannelError", "UnsupportedContentType", "BadRequest",
           "TrainingEnvironment", "Predictor", "Algorithm"]


class UnsupportedContentType(AlgorithmError):
    """The request's ``Content-Type`` or ``Accept`` is not one this model accepts (HTTP 415 / 406)."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


class BadRequest(AlgorithmError):
    """The request body cannot be parsed (HTTP 400)."""


@dataclass
class TrainingEnvironment:
    """One training job's folder, read the way a SageMaker container reads ``/opt/ml``."""

    job_dir: Path
    hyperparameters: dict[str, str] = field(default_factory=dict)
    input_data_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    _metrics: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_job_dir(cls, job_dir: Path) -> "TrainingEnvironment":
        config = job_dir / "input" / "config"

        def read(name: str) -> dict:
            path = config / name
            return json.loads(path.read_text()) if path.exists() else {}

        return cls(
            job_dir=job_dir,
            hyperparameters={k: str(v) for k, v in read("hyperparameters.json").items()},
            input_data_config=read("inputdataconfig.json"),
        )

    @property
    def model_dir(self) -> Path:
        return self.job_dir / "model"

    @property
    def output_dir(self) -> Path:
        return self.job_dir / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.job_dir / "output" / "data"

    def channel_dir(self, name: str) -> Path:
        return self.job_dir / "input" / "data" / name

    def has_channel(self, name: str) -> bool:
        return name in self.input_data_config and self.channel_dir(name).exists()

    def content_type(self, channel: str, default: str) -> str:
        return str(self.input_data_config.get(channel, {}).get("ContentType") or default)

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def log_metric(self, name: str, value: float) -> None:
        """Record ``name`` (e.g. ``validation:auc``) for FinalMetricDataList and print it as the container does."""
        self._metrics = [m for m in self._metrics if m["MetricName"] != name]
        self._metrics.append({"MetricName": name, "Value": float(value), "Timestamp": time.time()})
        self.log(f"#metrics {name}={float(value):.6f}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "metrics.json").write_text(json.dumps(self._metrics))


class Predictor(Protocol):
    """A loaded model that answers ``/invocations`` requests."""

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        """Return ``(response body, response content type)`` with one answer per input record."""
        ...


class Algorithm(Protocol):
    """A local implementation of a SageMaker algorithm (built-in or custom)."""

    name: str

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        """Parse and check string hyperparameters; raise :class:`HyperparameterError` naming the allowed range."""
        ...

    def train(self, env: TrainingEnvironment) -> None:
        """Train from ``env``'s channels and write the model files into ``env.model_dir``."""
        ...

    def load(self, model_dir: Path) -> Predictor:
        """Load the files ``train`` wrote (extracted from model.tar.gz) for serving."""
        ...
