"""LDA: hyperparameters, online training on a corpus with known topics, test:pwll and topic_mixture serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import BadRequest, HyperparameterError
from algorithm_job_folders import make_job
from smspark_assets.sagemaker import mxnet_ndarray
from smspark_assets.sagemaker.artifacts import MODEL_FILE
from smspark_assets.local.algorithms.common_recordio import encode_records
from algorithm_synthetic_data import documents
from smspark_assets.sagemaker import recordio

LDA = get_algorithm("lda")
BASE = {"num_topics": "3", "feature_dim": "60", "mini_batch_size": "100"}


@pytest.mark.parametrize("raw, fragment", [
    ({"feature_dim": "60", "mini_batch_size": "10"}, "missing required hyperparameter(s) num_topics"),
    ({"num_topics": "3", "mini_batch_size": "10"}, "missing required hyperparameter(s) feature_dim"),
    ({"num_topics": "3", "feature_dim": "60"}, "missing required hyperparameter(s) mini_batch_size"),
    ({**BASE, "num_topics": "0"}, "[1, inf)"),
    ({**BASE, "alpha0": "0"}, "(0, inf)"),
    ({**BASE, "max_restarts": "0"}, "[1, inf)"),
    ({**BASE, "max_iterations": "0"}, "[1, inf)"),
    ({**BASE, "tol": "0"}, "(0, inf)"),
    ({**BASE, "eta": "0.1"}, "unknown hyperparameter(s) eta"),
])
def test_lda_refuses_invalid_hyperparameters(raw, fragment):
    with pytest.raises(HyperparameterError) as info:
        LDA.validate_hyperparameters(raw)
    assert fragment in str(info.value)


def test_lda_defaults():
    hp = LDA.validate_hyperparameters(BASE)
    assert (hp["alpha0"], hp["max_restarts"], hp["max_iterations"], hp["tol"]) == (1.0, 10, 1000, 1e-8)


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-recordio-protobuf"])
def test_lda_recovers_topics(tmp_path, content_type):
    corpus = documents(700, vocabulary=60, num_topics=3, words_per_doc=80, seed=4)
    x = corpus.counts
    channels = {"train": (x[:600], None), "test": (x[600:], None)}
    env = make_job(tmp_path, {**BASE, "max_restarts": 3, "tol": "1e-4"}, channels, content_type=content_type)
    LDA.train(env)
    # SageMaker's layout: an unnamed NDArray list [alpha, beta] of float32.
    alpha, beta = mxnet_ndarray.loads((env.model_dir / MODEL_FILE).read_bytes())
    assert beta.shape == (3, 60) and alpha.shape == (3,) and beta.dtype == np.float32
    beta = beta.astype(np.float64)
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, rtol=1e-5)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    cosine = unit(beta) @ unit(corpus.topics).T
    assert cosine.max(axis=0).min() >= 0.9
    metrics = {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}
    assert set(metrics) == {"test:pwll"}
    uniform = -np.log(60)
    assert uniform < metrics["test:pwll"] < 0

    predictor = LDA.load(env.model_dir)
    docs = x[600:603]
    out = json.loads(predictor.invoke(encode_records(docs), "application/x-recordio-protobuf", None)[0])
    mixtures = np.array([p["topic_mixture"] for p in out["predictions"]])
    assert mixtures.shape == (3, 3)
    np.testing.assert_allclose(mixtures.sum(axis=1), 1.0)
    # The dominant inferred topic is the true dominant topic (through the topic matching).
    match = cosine.argmax(axis=0)  # learned topic for each true topic
    assert (mixtures.argmax(axis=1) == match[corpus.mixtures[600:603].argmax(axis=1)]).mean() >= 2 / 3
    csv_body = "\n".join(",".join(str(int(v)) for v in row) for row in docs.toarray()).encode()
    for ct, body in (("text/csv", csv_body),
                     ("application/json", json.dumps({"instances": [
                         {"data": {"features": {"keys": r.indices.tolist(), "shape": [60], "values": r.data.tolist()}}}
                         for r in docs]}).encode())):
        again = json.loads(predictor.invoke(body, ct, "application/json")[0])
        np.testing.assert_allclose([p["topic_mixture"] for p in again["predictions"]], mixtures, atol=1e-6)
    rio = recordio.decode(predictor.invoke(csv_body, "text/csv", "application/x-recordio-protobuf")[0])
    np.testing.assert_allclose(rio.label["topic_mixture"].to_dense(), mixtures, atol=1e-6)
    with pytest.raises(BadRequest, match="negative"):
        predictor.invoke(b"-1" + b",0" * 59, "text/csv", None)
