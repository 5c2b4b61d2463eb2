"""Factorization Machines: a second-order FM trained by mini-batch Adam on sparse input.

Model: ``y(x) = w0 + x.w + 1/2 sum_f ((x V)_f^2 - (x^2)(V^2)_f)`` with ``V`` of shape
``feature_dim x num_factors``. The pairwise term is computed in O(nnz * num_factors) with the usual
identity, so sparse records (one-hot users and items, say) stay sparse end to end.

Training reads the ``train`` channel (recordIO-protobuf with Float32 tensors only, as SageMaker's FM
does) in mini-batches for ``epochs`` passes. The three parameter groups have their own learning rate,
weight decay and initialisation (``bias_*``, ``linear_*``, ``factors_*``). Updates are Adam steps
applied *lazily*: only the rows of ``w`` and ``V`` whose features occur in the mini-batch move (their
weight decay too), so a step costs O(nnz) rather than O(feature_dim). ``clip_gradient`` clips each
gradient element, ``rescale_grad`` scales the (batch-mean) gradient, ``eps`` is Adam's epsilon.
Losses: squared (``regressor``) and logistic (``binary_classifier``, labels 0/1).

Metrics on ``test``: ``test:rmse`` (regressor); ``test:binary_classification_accuracy``,
``test:binary_classification_cross_entropy`` and ``test:binary_f_beta`` at threshold 0.5 (binary).
``model_algo-1`` is SageMaker's zip of ``symbol.json`` and ``params`` (``arg:w0_weight``,
``arg:w1_weight`` (feature_dim x 1), ``arg:v``). Inference (``application/json``, ``application/jsonlines``
or recordIO-protobuf in; no CSV, as in SageMaker) answers ``score`` (probability for the binary
classifier) and ``predicted_label``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_io
from smspark_assets.local.algorithms.base import ChannelError, TrainingEnvironment
from smspark_assets.local.algorithms.common_blas import single_blas_thread
from smspark_assets.local.algorithms.common_io import JSON, JSONLINES, RECORDIO
from smspark_assets.local.algorithms.common_metrics import log_loss, log_metric, precision_recall_fbeta
from smspark_assets.local.algorithms.common_model import read_model_file, write_model_file
from smspark_assets.sagemaker.algorithms.module_artifacts import (FMArtifact, read_factorization_machines,
                                                                  write_factorization_machines)
from smspark_assets.local.algorithms.common_serving import Output, encode_response, parse_request
from smspark_assets.sagemaker.algorithms.factorization_machines import BINARY, CONTRACT, NAME, REGRESSOR


def _init(hp: Mapping[str, Any], group: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    method = hp[f"{group}_init_method"]
    if method == "normal":
        return rng.normal(0.0, hp[f"{group}_init_sigma"], size=shape)
    if method == "uniform":
        scale = hp[f"{group}_init_scale"]
        return rng.uniform(-scale, scale, size=shape)
    return np.full(shape, float(hp[f"{group}_init_value"]))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fm_scores(x: sp.csr_matrix | np.ndarray, w0: float, w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw FM outputs and ``x @ V`` (reused by the gradient)."""
    xv = np.asarray(x @ v)
    x2 = x.multiply(x) if sp.issparse(x) else x * x
    x2v2 = np.asarray(x2 @ (v * v))
    out = w0 + np.asarray(x @ w).ravel() + 0.5 * (xv * xv - x2v2).sum(axis=1)
    return out, xv


class _Adam:
    """Adam state for one parameter array, updated on selected rows only (lazy)."""

    def __init__(self, shape: tuple[int, ...], lr: float, wd: float, eps: float) -> None:
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.t = np.zeros(shape[0] if shape else 1)
        self.lr, self.wd, self.eps = lr, wd, eps

    def update(self, param: np.ndarray, grad: np.ndarray, rows: np.ndarray | None) -> None:
        b1, b2 = 0.9, 0.999
        if rows is None:  # scalar / whole array
            g = grad + self.wd * param
            self.t += 1
            self.m = b1 * self.m + (1 - b1) * g
            self.v = b2 * self.v + (1 - b2) * g * g
            corr = np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            param -= self.lr * corr.reshape(-1) * self.m / (np.sqrt(self.v) + self.eps)
            return
        g = grad + self.wd * param[rows]
        self.t[rows] += 1
        t = self.t[rows]
        m = b1 * self.m[rows] + (1 - b1) * g
        v = b2 * self.v[rows] + (1 - b2) * g * g
        self.m[rows], self.v[rows] = m, v
        corr = np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        if param.ndim == 2:
            corr = corr[:, None]
        param[rows] -= self.lr * corr * m / (np.sqrt(v) + self.eps)


class FMTrainer:
    """Parameters and optimizer state of one FM."""

    def __init__(self, hp: Mapping[str, Any], d: int, rng: np.random.Generator) -> None:
        self.hp = hp
        self.kind = hp["predictor_type"]
        self.w0 = _init(hp, "bias", (1,), rng)
        self.w = _init(hp, "linear", (d,), rng)
        self.v = _init(hp, "factors", (d, hp["num_factors"]), rng)
        eps = 1e-8 if hp["eps"] is None else hp["eps"]
        self.opt_w0 = _Adam((1,), hp["bias_lr"], hp["bias_wd"], eps)
        self.opt_w = _Adam((d,), hp["linear_lr"], hp["linear_wd"], eps)
        self.opt_v = _Adam((d, hp["num_factors"]), hp["factors_lr"], hp["factors_wd"], eps)

    def _prep(self, g: np.ndarray) -> np.ndarray:
        if self.hp["rescale_grad"] is not None:
            g = g * self.hp["rescale_grad"]
        if self.hp["clip_gradient"] is not None:
            g = np.clip(g, -self.hp["clip_gradient"], self.hp["clip_gradient"])
        return g

    def step(self, x: sp.csr_matrix, y: np.ndarray) -> float:
        """One Adam step on a mini-batch; returns the batch's mean loss before the step.

        The batch is re-indexed onto the features it uses (``uniq``), so every product and gradient has
        ``len(uniq)`` rows, never ``feature_dim``: a step costs O(nnz * num_factors).
        """
        uniq, local = np.unique(x.indices, return_inverse=True)
        xc = sp.csr_matrix((x.data, local.ravel(), x.indptr), shape=(x.shape[0], uniq.size))
        x2c = sp.csr_matrix((x.data * x.data, local.ravel(), x.indptr), shape=xc.shape)
        v = self.v[uniq]
        xv = np.asarray(xc @ v)
        out = self.w0[0] + np.asarray(xc @ self.w[uniq]).ravel() + 0.5 * (
            (xv * xv).sum(axis=1) - np.asarray(x2c @ (v * v)).sum(axis=1))
        if self.kind == BINARY:
            p = _sigmoid(out)
            loss = float(np.mean(np.logaddexp(0.0, out) - y * out))
            g = (p - y) / y.size
        else:
            r = out - y
            loss = float(np.mean(r * r))
            g = r / y.size  # gradient of the mean of 1/2 r^2
        xct = xc.T.tocsr()
        gw = np.asarray(xct @ g).ravel()
        gv = np.asarray(xct @ (g[:, None] * xv)) - v * np.asarray(x2c.T @ g).ravel()[:, None]
        self.opt_w0.update(self.w0, self._prep(np.array([g.sum()])), None)
        self.opt_w.update(self.w, self._prep(gw), uniq)
        self.opt_v.update(self.v, self._prep(gv), uniq)
        return loss


class FMModel:
    def __init__(self, kind: str, w0: float, w: np.ndarray, v: np.ndarray) -> None:
        self.kind, self.w0, self.w, self.v = kind, float(w0), w.astype(np.float64), v.astype(np.float64)

    def scores(self, x: sp.csr_matrix | np.ndarray) -> np.ndarray:
        out, _ = fm_scores(x.astype(np.float64), self.w0, self.w, self.v)
        return _sigmoid(out) if self.kind == BINARY else out

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        x = parse_request(body, content_type, accepted=(JSON, JSONLINES, RECORDIO), feature_dim=self.w.shape[0])
        s = self.scores(x)
        outputs = [Output("score", s)]
        if self.kind == BINARY:
            outputs.append(Output("predicted_label", (s >= 0.5).astype(np.int64)))
        return encode_response(outputs, accept, offered=(JSON, JSONLINES, RECORDIO))


class FactorizationMachines:
    """SageMaker's ``factorization-machines`` algorithm."""

    name = NAME
    contract = CONTRACT

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        return CONTRACT.validate_hyperparameters(hyperparameters)

    def _channel(self, env: TrainingEnvironment, name: str, hp: Mapping[str, Any], cache: int) -> common_io.Channel:
        return common_io.Channel(env.channel_dir(name), env.content_type(name, RECORDIO),
                                 batch_size=hp["mini_batch_size"], name=name, allowed=(RECORDIO,),
                                 feature_dim=hp["feature_dim"], need_labels=True, cache_bytes=cache,
                                 float32_only=True)

    def fit(self, hp: Mapping[str, Any], train, log=lambda m: None) -> FMModel:
        """Train over ``train`` (anything with ``batches(rng)``) for ``epochs`` passes."""
        with single_blas_thread():
            return self._fit(hp, train, log)

    def _fit(self, hp: Mapping[str, Any], train, log) -> FMModel:
        rng = np.random.default_rng(0)
        trainer = FMTrainer(hp, hp["feature_dim"], rng)
        for epoch in range(hp["epochs"]):
            total, n = 0.0, 0
            for batch in train.batches(rng if getattr(train, "cached", False) else None):
                y = batch.labels.astype(np.float64)
                if epoch == 0 and trainer.kind == BINARY and not np.all((y == 0) | (y == 1)):
                    raise ChannelError("binary_classifier labels must be 0 or 1")
                x = batch.features if batch.is_sparse else sp.csr_matrix(batch.features)
                x = x.astype(np.float64)
                x.sum_duplicates()
                total += trainer.step(x, y) * batch.size
                n += batch.size
            if n == 0:
                raise ChannelError("channel 'train' has no records")
            log(f"#progress epoch {epoch + 1}: train {'rmse' if trainer.kind == REGRESSOR else 'log loss'} "
                f"{math.sqrt(total / n) if trainer.kind == REGRESSOR else total / n:.6f}")
        return FMModel(trainer.kind, float(trainer.w0[0]), trainer.w, trainer.v)

    @staticmethod
    def evaluate(model: FMModel, batches) -> dict[str, float]:
        preds, labels = [], []
        for batch in batches:
            preds.append(model.scores(batch.features))
            labels.append(batch.labels.astype(np.float64))
        p, y = np.concatenate(preds), np.concatenate(labels)
        if model.kind == REGRESSOR:
            return {"rmse": float(np.sqrt(np.mean((p - y) ** 2)))}
        predicted = p >= 0.5
        truth = y > 0.5
        tp = float(np.count_nonzero(predicted & truth))
        fp = float(np.count_nonzero(predicted & ~truth))
        fn = float(np.count_nonzero(~predicted & truth))
        return {"binary_classification_accuracy": float(np.mean(predicted == truth)),
                "binary_classification_cross_entropy": log_loss(y, p),
                "binary_f_beta": precision_recall_fbeta(tp, fp, fn, 1.0)[2]}

    def train(self, env: TrainingEnvironment) -> None:
        with single_blas_thread():  # evaluation passes too are many small products
            self._train(env)

    def _train(self, env: TrainingEnvironment) -> None:
        hp = self.validate_hyperparameters(env.hyperparameters)
        if not env.has_channel("train"):
            raise ChannelError("factorization-machines needs a 'train' channel")
        started = time.perf_counter()
        train = self._channel(env, "train", hp, common_io.DEFAULT_CACHE_BYTES if hp["epochs"] > 1 else 0)
        model = self.fit(hp, train, env.log)
        env.log(f"factorization-machines: trained in {time.perf_counter() - started:.2f}s")
        write_model_file(env.model_dir, write_factorization_machines(
            FMArtifact(w0=model.w0, w=model.w, v=model.v, predictor_type=model.kind)))
        if env.has_channel("test"):
            for metric, value in self.evaluate(model, self._channel(env, "test", hp, 0).batches()).items():
                log_metric(env, "test", metric, value)

    def load(self, model_dir: Path) -> FMModel:
        artifact = read_model_file(model_dir, read_factorization_machines)
        return FMModel(artifact.predictor_type, artifact.w0, artifact.w.astype(np.float64),
                       artifact.v.astype(np.float64))


ALGORITHM = FactorizationMachines()
