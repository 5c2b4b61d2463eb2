"""A scikit-learn logistic regression as a SageMaker script-mode entry point.

Training (run as ``__main__``): reads every CSV file of the ``train`` channel (label first, no header),
fits a standardised logistic regression with ``--C`` and ``--max_iter``, prints ``validation-auc=<value>``
when
a ``validation`` channel is given (for ``MetricDefinitions``), and saves ``model.joblib`` into
``SM_MODEL_DIR``. On SageMaker this file
runs unchanged in the scikit-learn framework container.

Serving: ``model_fn`` loads the pipeline; ``predict_fn`` answers the probability of class 1 per row;
``input_fn``/``output_fn`` accept and answer ``text/csv`` or ``application/json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np


def _read_channel(directory: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(
        p
        for p in Path(directory).rglob("*")
        if p.is_file() and p.stat().st_size > 0 and not p.name.startswith(("_", "."))
    )
    if not files:
        raise ValueError(f"no data files in {directory}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def train(argv: list[str] | None = None) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max_iter", type=int, default=200)
    args = parser.parse_args(argv)
    if args.C <= 0:
        # SageMaker reads the reason from the failure file of the output directory.
        Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text(f"ClientError: C must be > 0, got {args.C}")
        sys.exit(1)
    features, labels = _read_channel(os.environ["SM_CHANNEL_TRAIN"])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=args.max_iter))
    model.fit(features, labels)
    if "SM_CHANNEL_VALIDATION" in os.environ:
        vx, vy = _read_channel(os.environ["SM_CHANNEL_VALIDATION"])
        auc = roc_auc_score(vy, model.predict_proba(vx)[:, 1])
        # Picked up by AlgorithmSpecification.MetricDefinitions (Regex "validation-auc=([0-9.]+)").
        print(f"validation-auc={auc:.6f}", file=sys.stderr)
    joblib.dump(model, Path(os.environ["SM_MODEL_DIR"], "model.joblib"))


def model_fn(model_dir: str):  # noqa: ANN201 - the script-mode contract
    import joblib

    return joblib.load(Path(model_dir, "model.joblib"))


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    if content_type.startswith("application/json"):
        doc = json.loads(body)
        return np.asarray(doc["instances"] if isinstance(doc, dict) else doc, dtype=float)
    if content_type.startswith("text/csv"):
        return np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)
    raise ValueError(f"unsupported content type {content_type}; use text/csv or application/json")


def predict_fn(data: np.ndarray, model) -> np.ndarray:  # noqa: ANN001
    return model.predict_proba(data)[:, 1]


def output_fn(prediction: np.ndarray, accept: str) -> tuple[bytes, str]:
    if accept.startswith("text/csv"):
        return ("\n".join(f"{p:.10g}" for p in prediction) + "\n").encode(), "text/csv"
    return json.dumps({"predictions": prediction.tolist()}).encode(), "application/json"


if __name__ == "__main__":
    train()
