"""Every first-party algorithm through the training worker: model.tar.gz, FailureReason, load from the archive."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from smspark_assets.local.algorithms import get_algorithm
from algorithm_job_folders import make_job
from algorithm_synthetic_data import documents, interactions

RIO = "application/x-recordio-protobuf"


def _cases():
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)[:200]
    y = y.astype(np.float32)[:200]
    inter = interactions(500, users=20, items=20, seed=0)
    corpus = documents(200, vocabulary=40, num_topics=2, seed=0)
    return [
        ("kmeans", {"k": 3, "feature_dim": 30}, {"train": (x, None)}, RIO),
        ("linear-learner", {"predictor_type": "binary_classifier", "mini_batch_size": 50}, {"train": (x, y)}, "text/csv"),
        ("pca", {"feature_dim": 30, "num_components": 2, "mini_batch_size": 50}, {"train": (x, None)}, RIO),
        ("factorization-machines", {"feature_dim": 40, "num_factors": 2, "predictor_type": "regressor"},
         {"train": (inter.features, inter.labels)}, RIO),
        ("lda", {"num_topics": 2, "feature_dim": 40, "mini_batch_size": 50, "max_restarts": 2},
         {"train": (corpus.counts, None)}, RIO),
    ]


@pytest.mark.integration
@pytest.mark.parametrize("algorithm, hyperparameters, channels, content_type", _cases(), ids=lambda v: str(v)[:20])
def test_algorithm_trains_in_the_worker_and_loads_from_the_archive(tmp_path, algorithm, hyperparameters, channels,
                                                                   content_type):
    env = make_job(tmp_path / "job", hyperparameters, channels, content_type=content_type, algorithm=algorithm)
    done = subprocess.run([sys.executable, "-m", "smspark_assets.local.algorithms.train", str(env.job_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    archive = env.output_dir / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["model_algo-1"]
        tar.extractall(tmp_path / "extracted", filter="data")
    predictor = get_algorithm(algorithm).load(tmp_path / "extracted")
    x = channels["train"][0][:2]
    from smspark_assets.local.algorithms.common_recordio import encode_records

    body, ct = predictor.invoke(encode_records(x), RIO, "application/jsonlines")
    assert ct == "application/jsonlines" and len(body.decode().splitlines()) == 2


@pytest.mark.integration
def test_invalid_hyperparameters_become_a_client_error(tmp_path):
    x = np.ones((10, 3), dtype=np.float32)
    env = make_job(tmp_path, {"k": 1, "feature_dim": 3}, {"train": (x, None)}, algorithm="kmeans")
    done = subprocess.run([sys.executable, "-m", "smspark_assets.local.algorithms.train", str(env.job_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    reason = (env.output_dir / "failure").read_text()
    assert reason.startswith("ClientError:") and "[2, inf)" in reason
    assert not (env.output_dir / "metrics.json").exists() or json.loads((env.output_dir / "metrics.json").read_text()) == []
