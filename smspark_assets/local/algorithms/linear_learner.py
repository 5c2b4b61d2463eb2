"""Linear Learner: many linear models trained at once by mini-batch SGD/Adam/RMSProp, then the best one kept.

Training (DG "How Linear Learner works"):

1. **Normalization.** Feature means and standard deviations (and, for the regressor, the label's)
   are estimated from the first ``num_point_for_scaler`` records. Normalization is folded into the
   weights, never materialised: scores are ``X @ (W / sigma) + (b - (mu / sigma) @ W)``, so sparse
   input stays sparse (and is only scaled, not centred, unless ``unbias_data=True``).
2. **``num_models`` models in parallel.** The models differ in learning rate, weight decay and (for
   ``positive_example_weight_mult=auto``) positive-class weight: one weight matrix of shape
   ``(feature_dim, num_models)`` (times ``num_classes`` for multiclass) is updated by one GEMM per
   mini-batch. Losses: logistic, hinge, squared, absolute, eps-insensitive squared/absolute,
   quantile, huber, softmax. Optimizers: adam (``auto``), sgd with momentum, rmsprop; L2 (``wd``)
   and proximal L1 (``l1``); learning-rate steps every ``lr_scheduler_step`` updates.
3. **Early stopping.** After every epoch each model's loss is measured on ``validation`` (or, without
   it, on the epoch's training loss); each model keeps its best weights, and training stops when the
   best loss has not improved by ``early_stopping_tolerance`` (relative) for
   ``early_stopping_patience`` epochs.
4. **Model selection and calibration.** On ``validation`` (else the first ``num_calibration_samples``
   training records) the binary classifier chooses, for every model, the threshold that maximises
   ``binary_classifier_model_selection_criteria`` and keeps the best model; regressor and multiclass
   keep the model with the lowest loss.

Metrics: ``validation:*`` and ``test:*`` forms of ``objective_loss``, ``binary_classification_accuracy``,
``binary_f_beta``, ``precision``, ``recall``, ``roc_auc_score``, ``mse``, ``rmse``, ``absolute_loss``,
``multiclass_accuracy``, ``multiclass_top_k_accuracy``, ``dcg``, ``macro_f_beta``, ``macro_precision``,
``macro_recall``. ``model_algo-1`` is SageMaker's zip of an MXNet checkpoint holding the selected
model with feature and label normalization folded in: ``arg:fc0_weight`` (outputs x feature_dim),
``arg:fc0_bias``, plus predictor type, loss and threshold in ``additional-params.json``.

Inference: binary ``{"score", "predicted_label"}`` (score = probability for logistic loss, raw margin
for hinge loss), multiclass ``{"score": [per class], "predicted_label"}``, regressor ``{"score"}``.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from smspark_assets.local.algorithms import common_io
from smspark_assets.local.algorithms.base import ChannelError, TrainingEnvironment
from smspark_assets.local.algorithms.common_blas import single_blas_thread
from smspark_assets.local.algorithms.common_metrics import (log_metric, precision_recall_fbeta, roc_auc,
                                                            threshold_sweep)
from smspark_assets.local.algorithms.common_model import read_model_file, write_model_file
from smspark_assets.sagemaker.algorithms.module_artifacts import (LinearLearnerArtifact, read_linear_learner,
                                                                  write_linear_learner)
from smspark_assets.local.algorithms.common_serving import Output, encode_response, parse_request
from smspark_assets.sagemaker.algorithms.linear_learner import BINARY, CONTRACT, MULTICLASS, NAME, REGRESSOR

# What ``loss=auto`` means per predictor type (DG "Linear Learner hyperparameters").
_AUTO_LOSS = {BINARY: "logistic", MULTICLASS: "softmax_loss", REGRESSOR: "squared_loss"}

# ``auto`` choices of this implementation (the container documents only that it "chooses").
_LR_GRID = {"adam": (0.005, 0.02, 0.001, 0.1), "rmsprop": (0.005, 0.02, 0.001, 0.1), "sgd": (0.05, 0.2, 0.01, 1.0)}
_WD_GRID = (1e-4, 0.0, 1e-3, 1e-2, 0.1, 1.0)
AUTO_CALIBRATION_SAMPLES = 1_000_000
AUTO_LR_STEP, AUTO_LR_FACTOR, AUTO_LR_MIN = 100, 0.99, 1e-5


# ---------------------------------------------------------------------------------------------- losses

def _sigmoid(s: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def loss_and_grad(loss: str, scores: np.ndarray, y: np.ndarray, hp: Mapping[str, Any],
                  label_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-record loss and d loss / d score for scores (n, M) (or (n, M, C) for softmax); y is (n,).

    ``label_scale`` converts label-unit parameters (insensitivity, huber delta) into normalized-label units.
    """
    if loss == "softmax_loss":
        z = scores - scores.max(axis=2, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=2, keepdims=True)
        idx = y.astype(np.int64)
        rows = np.arange(scores.shape[0])
        p_true = z[rows, :, idx]  # (n, M)
        values = -np.log(np.maximum(p_true, 1e-12))
        z[rows, :, idx] -= 1.0
        return values, z
    yy = y[:, None]
    if loss == "logistic":
        p = _sigmoid(scores)
        values = np.logaddexp(0.0, scores) - yy * scores
        return values, p - yy
    if loss == "hinge_loss":
        sign = 2.0 * yy - 1.0
        gap = hp["margin"] - sign * scores
        active = gap > 0
        return np.where(active, gap, 0.0), np.where(active, -sign, 0.0)
    r = scores - yy
    if loss == "squared_loss":
        return 0.5 * r * r, r
    if loss == "absolute_loss":
        return np.abs(r), np.sign(r)
    if loss in ("eps_insensitive_squared_loss", "eps_insensitive_absolute_loss"):
        eps = hp["loss_insensitivity"] * label_scale
        excess = np.maximum(np.abs(r) - eps, 0.0)
        if loss == "eps_insensitive_squared_loss":
            return 0.5 * excess * excess, np.sign(r) * excess
        return excess, np.sign(r) * (excess > 0)
    if loss == "quantile_loss":
        q = hp["quantile"]
        under = r < 0  # prediction below the label
        return np.where(under, -q * r, (1 - q) * r), np.where(under, -q, 1 - q)
    if loss == "huber_loss":
        delta = hp["huber_delta"] * label_scale
        a = np.abs(r)
        return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), np.clip(r, -delta, delta)
    raise ValueError(f"unknown loss {loss}")  # pragma: no cover - validated


# ---------------------------------------------------------------------------------------------- scaler

@dataclass
class Scaler:
    """Feature and label normalization estimated from the first records."""

    mu: np.ndarray
    inv_sigma: np.ndarray
    y_mu: float = 0.0
    y_sigma: float = 1.0
    pos_fraction: float = 0.5
    class_counts: np.ndarray | None = None


def fit_scaler(batches: Iterable[common_io.Batch], hp: Mapping[str, Any], n_features: int) -> Scaler:
    limit = hp["num_point_for_scaler"]
    xs, ys, sparse = [], [], False
    seen = 0
    for batch in batches:
        xs.append(batch.features)
        ys.append(batch.labels)
        sparse = batch.is_sparse
        seen += batch.size
        if seen >= limit:
            break
    x = (sp.vstack(xs, format="csr") if sparse else np.concatenate(xs))[:limit]
    y = np.concatenate(ys)[:limit].astype(np.float64)
    x64 = x.astype(np.float64)
    if sparse:
        mean = np.asarray(x64.mean(axis=0)).ravel()
        sq = np.asarray(x64.multiply(x64).mean(axis=0)).ravel()
        var = np.maximum(sq - mean * mean, 0.0)
    else:
        mean, var = x64.mean(axis=0), x64.var(axis=0)
    unbias = hp["unbias_data"]
    unbias = (not sparse) if unbias == "auto" else bool(unbias)
    if not hp["normalize_data"]:
        mu, inv = np.zeros(n_features), np.ones(n_features)
    else:
        std = np.sqrt(var) if unbias else np.sqrt(sq if sparse else (x64 * x64).mean(axis=0))
        inv = np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 1.0)
        mu = mean if unbias else np.zeros(n_features)
    scaler = Scaler(mu=mu, inv_sigma=inv)
    kind = hp["predictor_type"]
    if kind == REGRESSOR:
        norm_label = True if hp["normalize_label"] == "auto" else bool(hp["normalize_label"])
        unbias_label = True if hp["unbias_label"] == "auto" else bool(hp["unbias_label"])
        if norm_label:
            scaler.y_mu = float(y.mean()) if unbias_label else 0.0
            sd = float(y.std()) if unbias_label else float(np.sqrt((y * y).mean()))
            scaler.y_sigma = sd if sd > 1e-12 else 1.0
    elif kind == BINARY:
        scaler.pos_fraction = float((y > 0.5).mean())
    else:
        scaler.class_counts = np.bincount(y.astype(np.int64), minlength=hp["num_classes"]).astype(np.float64)
    return scaler


# ---------------------------------------------------------------------------------------------- trainer

class ParallelModels:
    """``M`` linear models (``C`` outputs each) trained together on normalized features."""

    def __init__(self, hp: Mapping[str, Any], n_features: int, scaler: Scaler, rng: np.random.Generator) -> None:
        self.hp = hp
        self.kind = hp["predictor_type"]
        self.loss = _AUTO_LOSS[self.kind] if hp["loss"] == "auto" else hp["loss"]
        self.n_classes = hp["num_classes"] if self.kind == MULTICLASS else 1
        self.optimizer = "adam" if hp["optimizer"] == "auto" else hp["optimizer"]
        self.scaler = scaler
        self.d = n_features
        combos = self._combos()
        self.M = len(combos)
        self.lr0 = np.array([c[0] for c in combos])
        self.wd = np.array([c[1] for c in combos])
        self.pos_weight = np.array([c[2] for c in combos])
        self.l1 = 0.0 if hp["l1"] == "auto" else float(hp["l1"])
        C = self.n_classes
        shape = (n_features, self.M * C)
        if hp["init_method"] == "uniform":
            self.W = rng.uniform(-hp["init_scale"], hp["init_scale"], size=shape)
        else:
            self.W = rng.normal(0.0, hp["init_sigma"], size=shape)
        self.b = np.full(self.M * C, float(hp["init_bias"]) if hp["use_bias"] else 0.0)
        self.m_W = np.zeros_like(self.W)
        self.v_W = np.zeros_like(self.W)
        self.m_b = np.zeros_like(self.b)
        self.v_b = np.zeros_like(self.b)
        default_bias_mult = 10.0 if self.optimizer == "sgd" else 1.0
        self.bias_lr_mult = default_bias_mult if hp["bias_lr_mult"] == "auto" else hp["bias_lr_mult"]
        self.bias_wd_mult = 0.0 if hp["bias_wd_mult"] == "auto" else hp["bias_wd_mult"]
        self.momentum = (0.9 if self.optimizer == "sgd" else 0.0) if hp["momentum"] == "auto" else hp["momentum"]
        self.beta1 = 0.9 if hp["beta_1"] == "auto" else hp["beta_1"]
        self.beta2 = 0.999 if hp["beta_2"] == "auto" else hp["beta_2"]
        self.lr_step = AUTO_LR_STEP if hp["lr_scheduler_step"] == "auto" else hp["lr_scheduler_step"]
        self.lr_factor = AUTO_LR_FACTOR if hp["lr_scheduler_factor"] == "auto" else hp["lr_scheduler_factor"]
        self.lr_min = AUTO_LR_MIN if hp["lr_scheduler_minimum_lr"] == "auto" else hp["lr_scheduler_minimum_lr"]
        self.t = 0
        self.class_weight = None
        if self.kind == MULTICLASS and hp["balance_multiclass_weights"] and scaler.class_counts is not None:
            counts = np.maximum(scaler.class_counts, 1.0)
            self.class_weight = counts.sum() / (len(counts) * counts)

    def _combos(self) -> list[tuple[float, float, float]]:
        hp = self.hp
        lrs = _LR_GRID[self.optimizer] if hp["learning_rate"] == "auto" else (hp["learning_rate"],)
        wds = _WD_GRID if hp["wd"] == "auto" else (hp["wd"],)
        pw = hp["positive_example_weight_mult"]
        balanced = (1.0 - self.scaler.pos_fraction) / max(self.scaler.pos_fraction, 1e-12)
        if self.kind != BINARY:
            pws: tuple[float, ...] = (1.0,)
        elif pw == "balanced":
            pws = (balanced,)
        elif pw == "auto":
            pws = (1.0, balanced)
        else:
            pws = (float(pw),)
        grid = list(itertools.product(lrs, wds, pws))
        n = len(grid) if hp["num_models"] == "auto" else hp["num_models"]
        return [grid[i % len(grid)] for i in range(n)]

    # Scores on raw features with normalization folded in.
    def effective(self, W: np.ndarray | None = None, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        W = self.W if W is None else W
        b = self.b if b is None else b
        s = self.scaler
        We = W * s.inv_sigma[:, None]
        be = b - (s.mu * s.inv_sigma) @ W
        return We, be

    def raw_scores(self, x: np.ndarray | sp.csr_matrix, We: np.ndarray, be: np.ndarray) -> np.ndarray:
        out = np.asarray(x @ We)
        out += be
        return out

    def shaped(self, scores: np.ndarray) -> np.ndarray:
        return scores.reshape(scores.shape[0], self.M, self.n_classes) if self.kind == MULTICLASS else scores

    def batch_loss_grad(self, scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-record, per-model loss (n, M) and gradient wrt the flat scores (n, M*C)."""
        ys = (y - self.scaler.y_mu) / self.scaler.y_sigma if self.kind == REGRESSOR else y
        if self.kind == MULTICLASS and self.loss != "softmax_loss":
            # One-vs-all: every class output is a binary problem.
            s3 = self.shaped(scores)
            onehot = (y.astype(np.int64)[:, None] == np.arange(self.n_classes)[None, :]).astype(np.float64)
            vals = np.empty_like(s3)
            grads = np.empty_like(s3)
            for c in range(self.n_classes):
                vals[:, :, c], grads[:, :, c] = loss_and_grad(self.loss, s3[:, :, c], onehot[:, c], self.hp)
            values, grad = vals.sum(axis=2), grads.reshape(scores.shape)
        else:
            values, grad = loss_and_grad(self.loss, self.shaped(scores), ys, self.hp, 1.0 / self.scaler.y_sigma)
            grad = grad.reshape(scores.shape)
        weight = None
        if self.kind == BINARY and not np.all(self.pos_weight == 1.0):
            weight = np.where(y[:, None] > 0.5, self.pos_weight[None, :], 1.0)
        elif self.class_weight is not None:
            weight = np.repeat(self.class_weight[y.astype(np.int64)][:, None], self.M, axis=1)
        if weight is not None:
            values = values * weight
            grad = grad * (np.repeat(weight, self.n_classes, axis=1) if self.n_classes > 1 else weight)
        return values, grad

    def step(self, x: np.ndarray | sp.csr_matrix, y: np.ndarray) -> np.ndarray:
        """One update on a mini-batch; returns the batch's mean loss per model (before the update)."""
        n = x.shape[0]
        # One float64 copy serves both products (mixed-precision products would each convert x again).
        x = x.astype(np.float64)
        We, be = self.effective()
        scores = self.raw_scores(x, We, be)
        values, G = self.batch_loss_grad(scores, y)
        G /= n
        s = self.scaler
        gsum = G.sum(axis=0)
        # d/dW of X_norm @ W = inv_sigma * (X^T G - mu * sum(G)), computed without normalizing X.
        gW = np.asarray(x.T @ G)
        gW -= s.mu[:, None] * gsum[None, :]
        gW *= s.inv_sigma[:, None]
        wd = np.repeat(self.wd, self.n_classes)
        gW += wd[None, :] * self.W
        gb = gsum + self.bias_wd_mult * wd * self.b
        self.t += 1
        lr = np.repeat(self.lr0, self.n_classes)
        if self.hp["use_lr_scheduler"]:
            lr = np.maximum(lr * self.lr_factor ** (self.t // self.lr_step), np.minimum(lr, self.lr_min))
        self._apply(gW, gb, lr)
        if self.l1 > 0:
            shrink = lr * self.l1
            self.W = np.sign(self.W) * np.maximum(np.abs(self.W) - shrink[None, :], 0.0)
        return values.mean(axis=0)

    def _apply(self, gW: np.ndarray, gb: np.ndarray, lr: np.ndarray) -> None:
        blr = lr * self.bias_lr_mult
        use_bias = self.hp["use_bias"]
        if self.optimizer == "adam":
            b1, b2, t = self.beta1, self.beta2, self.t
            for m, v, g in ((self.m_W, self.v_W, gW), (self.m_b, self.v_b, gb)):
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
            corr = math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            self.W -= (lr * corr)[None, :] * self.m_W / (np.sqrt(self.v_W) + 1e-8)
            if use_bias:
                self.b -= blr * corr * self.m_b / (np.sqrt(self.v_b) + 1e-8)
        elif self.optimizer == "rmsprop":
            rho = 0.9 if self.hp["beta_2"] == "auto" else self.beta2
            self.v_W *= rho
            self.v_W += (1 - rho) * gW * gW
            self.v_b *= rho
            self.v_b += (1 - rho) * gb * gb
            self.W -= lr[None, :] * gW / (np.sqrt(self.v_W) + 1e-8)
            if use_bias:
                self.b -= blr * gb / (np.sqrt(self.v_b) + 1e-8)
        else:
            mu = self.momentum
            self.m_W *= mu
            self.m_W += gW
            self.m_b *= mu
            self.m_b += gb
            self.W -= lr[None, :] * self.m_W
            if use_bias:
                self.b -= blr * self.m_b

    def final_scores(self, raw: np.ndarray) -> np.ndarray:
        """Raw flat scores (n, M*C) -> served scores: probabilities / de-normalized regression values."""
        if self.kind == REGRESSOR:
            return raw * self.scaler.y_sigma + self.scaler.y_mu
        if self.kind == BINARY:
            return _sigmoid(raw) if self.loss == "logistic" else raw
        s3 = self.shaped(raw)
        if self.loss == "softmax_loss":
            z = np.exp(s3 - s3.max(axis=2, keepdims=True))
            return (z / z.sum(axis=2, keepdims=True)).reshape(raw.shape)
        return (_sigmoid(s3) if self.loss == "logistic" else s3).reshape(raw.shape)


# ---------------------------------------------------------------------------------------------- selection

def choose_threshold(labels: np.ndarray, scores: np.ndarray, hp: Mapping[str, Any], logistic: bool) -> tuple[float, float]:
    """(threshold, criterion value; higher is better) for one binary model."""
    criterion = hp["binary_classifier_model_selection_criteria"]
    if criterion in ("cross_entropy_loss", "loss_function"):
        return (0.5 if logistic else 0.0), float("nan")
    sweep = threshold_sweep(labels, scores)
    tp, fp, tn, fn = sweep["tp"], sweep["fp"], sweep["tn"], sweep["fn"]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        if criterion == "accuracy":
            value = (tp + tn) / labels.size
        elif criterion in ("f1", "f_beta"):
            b2 = 1.0 if criterion == "f1" else hp["f_beta"] ** 2
            denom = b2 * precision + recall
            value = np.where(denom > 0, (1 + b2) * precision * recall / denom, 0.0)
        elif criterion == "precision_at_target_recall":
            value = np.where(recall >= hp["target_recall"], precision, -1.0)
        else:  # recall_at_target_precision
            value = np.where(precision >= hp["target_precision"], recall, -1.0)
    best = int(np.argmax(value))
    thresholds = sweep["thresholds"]
    threshold = thresholds[best]
    if not np.isfinite(threshold):  # predict nothing positive: any threshold above the max score
        threshold = float(np.max(scores)) + 1.0
    elif best + 1 < thresholds.size:
        # Midway to the next lower score generalises better than the exact score.
        threshold = 0.5 * (threshold + thresholds[best + 1])
    return float(threshold), float(value[best])


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float, beta: float, loss_value: float) -> dict[str, float]:
    predicted = scores >= threshold
    y = labels > 0.5
    tp = float(np.count_nonzero(y & predicted))
    fp = float(np.count_nonzero(~y & predicted))
    fn = float(np.count_nonzero(y & ~predicted))
    precision, recall, fbeta = precision_recall_fbeta(tp, fp, fn, beta)
    return {"objective_loss": loss_value, "binary_classification_accuracy": float(np.mean(predicted == y)),
            "binary_f_beta": fbeta, "precision": precision, "recall": recall,
            "roc_auc_score": roc_auc(labels, scores)}


def multiclass_metrics(labels: np.ndarray, probs: np.ndarray, top_k: int, beta: float, loss_value: float) -> dict[str, float]:
    y = labels.astype(np.int64)
    n_classes = probs.shape[1]
    pred = probs.argmax(axis=1)
    k = min(top_k, n_classes)
    topk = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    # DCG of the true class's rank: 1/log2(1 + rank).
    rank = 1 + (probs > probs[np.arange(y.size), y][:, None]).sum(axis=1)
    tp = np.bincount(y[pred == y], minlength=n_classes).astype(np.float64)
    pred_count = np.bincount(pred, minlength=n_classes).astype(np.float64)
    true_count = np.bincount(y, minlength=n_classes).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(pred_count > 0, tp / pred_count, 0.0)
        rec = np.where(true_count > 0, tp / true_count, 0.0)
        b2 = beta * beta
        f = np.where(b2 * prec + rec > 0, (1 + b2) * prec * rec / (b2 * prec + rec), 0.0)
    return {"objective_loss": loss_value, "multiclass_accuracy": float(np.mean(pred == y)),
            "multiclass_top_k_accuracy": float(np.mean((topk == y[:, None]).any(axis=1))),
            "dcg": float(np.mean(1.0 / np.log2(1.0 + rank))),
            "macro_f_beta": float(f.mean()), "macro_precision": float(prec.mean()), "macro_recall": float(rec.mean())}


def regression_metrics(labels: np.ndarray, preds: np.ndarray, loss_value: float) -> dict[str, float]:
    r = preds - labels
    mse = float(np.mean(r * r))
    return {"objective_loss": loss_value, "mse": mse, "rmse": math.sqrt(mse), "absolute_loss": float(np.mean(np.abs(r)))}


# ---------------------------------------------------------------------------------------------- algorithm

@dataclass
class LinearModel:
    """The served model: raw-feature weights (d, C), bias (C,), and how to turn scores into answers."""

    kind: str
    loss: str
    weights: np.ndarray
    bias: np.ndarray
    threshold: float = 0.5
    y_mu: float = 0.0
    y_sigma: float = 1.0

    def scores(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        raw = np.asarray(x @ self.weights) + self.bias
        if self.kind == REGRESSOR:
            return (raw * self.y_sigma + self.y_mu)[:, 0]
        if self.kind == BINARY:
            raw = raw[:, 0]
            return _sigmoid(raw) if self.loss == "logistic" else raw
        if self.loss == "softmax_loss":
            z = np.exp(raw - raw.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True)
        return _sigmoid(raw) if self.loss == "logistic" else raw

    def artifact(self) -> LinearLearnerArtifact:
        """SageMaker's layout of this model: the label normalisation folded into weights and bias too."""
        if self.kind == REGRESSOR:
            weights, bias = self.weights * self.y_sigma, self.bias * self.y_sigma + self.y_mu
        else:
            weights, bias = self.weights, self.bias
        return LinearLearnerArtifact(weights=weights, bias=bias, predictor_type=self.kind, loss=self.loss,
                                     threshold=self.threshold)

    def outputs(self, x: np.ndarray | sp.csr_matrix) -> list[Output]:
        s = self.scores(x.astype(np.float64))
        if self.kind == REGRESSOR:
            return [Output("score", s)]
        if self.kind == BINARY:
            return [Output("score", s), Output("predicted_label", (s >= self.threshold).astype(np.int64))]
        return [Output("score", s), Output("predicted_label", s.argmax(axis=1).astype(np.int64))]


class LinearLearnerPredictor:
    def __init__(self, model: LinearModel) -> None:
        self.model = model

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        x = parse_request(body, content_type, feature_dim=self.model.weights.shape[0])
        return encode_response(self.model.outputs(x), accept)


class LinearLearner:
    """SageMaker's ``linear-learner`` algorithm."""

    name = NAME
    contract = CONTRACT

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        return CONTRACT.validate_hyperparameters(hyperparameters)

    def _channel(self, env: TrainingEnvironment, name: str, hp: Mapping[str, Any], feature_dim: int | None,
                 cache: int) -> common_io.Channel:
        return common_io.Channel(env.channel_dir(name), env.content_type(name, common_io.RECORDIO),
                                 batch_size=hp["mini_batch_size"], name=name, default_label_size=1,
                                 feature_dim=feature_dim, need_labels=True, cache_bytes=cache,
                                 # Linear Learner reads Float32 tensors only (DG "Linear Learner input/output").
                                 float32_only=True)

    def _check_labels(self, y: np.ndarray, hp: Mapping[str, Any], channel: str) -> None:
        kind = hp["predictor_type"]
        if kind == BINARY and not np.all((y == 0) | (y == 1)):
            raise ChannelError(f"channel {channel!r}: binary_classifier labels must be 0 or 1, found "
                               f"{np.unique(y[(y != 0) & (y != 1)])[:5].tolist()}")
        if kind == MULTICLASS:
            bad = (y < 0) | (y >= hp["num_classes"]) | (y != np.floor(y))
            if bad.any():
                raise ChannelError(f"channel {channel!r}: multiclass labels must be integers in "
                                   f"[0, {hp['num_classes'] - 1}], found {y[bad][:5].tolist()}")

    def fit(self, hp: Mapping[str, Any], train: common_io.Channel, validation: common_io.Channel | None,
            log=lambda m: None) -> tuple[LinearModel, ParallelModels]:
        """Train ``num_models`` models over ``train``; select and calibrate; return the served model."""
        with single_blas_thread():
            return self._fit(hp, train, validation, log)

    def _fit(self, hp: Mapping[str, Any], train: common_io.Channel, validation: common_io.Channel | None,
             log) -> tuple[LinearModel, ParallelModels]:
        rng = np.random.default_rng(0)
        first = next(iter(train.batches()))
        n_features = first.features.shape[1]
        scaler = fit_scaler(train.batches(), hp, n_features)
        models = ParallelModels(hp, n_features, scaler, rng)
        log(f"linear-learner: {models.M} model(s), loss={models.loss}, optimizer={models.optimizer}")
        best_loss = np.full(models.M, np.inf)
        best_W, best_b = models.W.copy(), models.b.copy()
        overall_best, stale = np.inf, 0
        for epoch in range(hp["epochs"]):
            total = np.zeros(models.M)
            count = 0
            for batch in train.batches(rng if train.cached else None):
                if epoch == 0:
                    self._check_labels(batch.labels, hp, train.name)
                y = batch.labels.astype(np.float64)
                total += models.step(batch.features, y) * batch.size
                count += batch.size
            epoch_loss = total / count
            if validation is not None:
                epoch_loss = self._mean_loss(models, validation)
            improved = epoch_loss < best_loss
            best_loss = np.where(improved, epoch_loss, best_loss)
            cols = np.repeat(improved, models.n_classes)
            best_W[:, cols] = models.W[:, cols]
            best_b[cols] = models.b[cols]
            current = float(np.min(epoch_loss))
            log(f"#progress epoch {epoch + 1}: best model loss {current:.6f}")
            if current < overall_best * (1 - hp["early_stopping_tolerance"]) or not np.isfinite(overall_best):
                overall_best, stale = min(current, overall_best), 0
            else:
                stale += 1
                if stale >= hp["early_stopping_patience"]:
                    log(f"early stopping after epoch {epoch + 1}")
                    break
        models.W, models.b = best_W, best_b
        return self._select(hp, models, train, validation), models

    def _mean_loss(self, models: ParallelModels, channel: common_io.Channel) -> np.ndarray:
        We, be = models.effective()
        total = np.zeros(models.M)
        n = 0
        for batch in channel.batches():
            values, _ = models.batch_loss_grad(models.raw_scores(batch.features, We, be), batch.labels.astype(np.float64))
            total += values.sum(axis=0)
            n += batch.size
        return total / n

    def _calibration(self, hp: Mapping[str, Any], models: ParallelModels, channel: common_io.Channel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw flat scores, labels, mean loss per model) on up to num_calibration_samples records."""
        limit = AUTO_CALIBRATION_SAMPLES if hp["num_calibration_samples"] == "auto" else hp["num_calibration_samples"]
        We, be = models.effective()
        scores, labels, total, n = [], [], np.zeros(models.M), 0
        for batch in channel.batches():
            raw = models.raw_scores(batch.features.astype(np.float64), We, be)
            y = batch.labels.astype(np.float64)
            values, _ = models.batch_loss_grad(raw, y)
            total += values.sum(axis=0)
            scores.append(raw.astype(np.float32))
            labels.append(y)
            n += batch.size
            if n >= limit:
                break
        raw_all = np.concatenate(scores)[:limit]
        del scores
        return raw_all, np.concatenate(labels)[:limit], total / n

    def _select(self, hp: Mapping[str, Any], models: ParallelModels, train: common_io.Channel,
                validation: common_io.Channel | None) -> LinearModel:
        raw, labels, losses = self._calibration(hp, models, validation or train)
        kind, C = models.kind, models.n_classes
        threshold = 0.5
        if kind == BINARY and hp["binary_classifier_model_selection_criteria"] not in ("cross_entropy_loss", "loss_function"):
            # One model's column at a time: calibration data can be a million records per model.
            logistic = models.loss == "logistic"
            picks = [choose_threshold(labels, _sigmoid(raw[:, m].astype(np.float64)) if logistic
                                      else raw[:, m].astype(np.float64), hp, logistic) for m in range(models.M)]
            # Ties on the criterion are broken by the lower loss.
            best = max(range(models.M), key=lambda m: (picks[m][1], -losses[m]))
            threshold = picks[best][0]
        else:
            best = int(np.nanargmin(losses))
            if kind == BINARY:
                threshold = 0.5 if models.loss == "logistic" else 0.0
        cols = slice(best * C, (best + 1) * C)
        We, be = models.effective()
        return LinearModel(kind=kind, loss=models.loss, weights=We[:, cols].copy(), bias=be[cols].copy(),
                           threshold=threshold, y_mu=models.scaler.y_mu if kind == REGRESSOR else 0.0,
                           y_sigma=models.scaler.y_sigma if kind == REGRESSOR else 1.0)

    def evaluate(self, model: LinearModel, channel: common_io.Channel, hp: Mapping[str, Any]) -> dict[str, float]:
        """Every metric of the predictor type on a labelled channel."""
        preds, labels = [], []
        for batch in channel.batches():
            preds.append(model.scores(batch.features.astype(np.float64)))
            labels.append(batch.labels.astype(np.float64))
        p = np.concatenate(preds)
        y = np.concatenate(labels)
        if model.kind == REGRESSOR:
            return regression_metrics(y, p, _objective(model, p, y, hp))
        if model.kind == BINARY:
            return binary_metrics(y, p, model.threshold, hp["f_beta"], _objective(model, p, y, hp))
        probs = p if model.loss == "softmax_loss" else p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return multiclass_metrics(y, probs, hp["accuracy_top_k"], hp["f_beta"], _objective(model, p, y, hp))

    def train(self, env: TrainingEnvironment) -> None:
        with single_blas_thread():  # evaluation passes too are many small products
            self._train(env)

    def _train(self, env: TrainingEnvironment) -> None:
        hp = self.validate_hyperparameters(env.hyperparameters)
        if not env.has_channel("train"):
            raise ChannelError("linear-learner needs a 'train' channel")
        started = time.perf_counter()
        feature_dim = None if hp["feature_dim"] == "auto" else hp["feature_dim"]
        train = self._channel(env, "train", hp, feature_dim, common_io.DEFAULT_CACHE_BYTES)
        validation = (self._channel(env, "validation", hp, feature_dim, common_io.DEFAULT_CACHE_BYTES)
                      if env.has_channel("validation") else None)
        model, _ = self.fit(hp, train, validation, env.log)
        env.log(f"linear-learner: trained in {time.perf_counter() - started:.2f}s")
        write_model_file(env.model_dir, write_linear_learner(model.artifact()))
        for name, channel in (("validation", validation),
                              ("test", self._channel(env, "test", hp, model.weights.shape[0], 0)
                               if env.has_channel("test") else None)):
            if channel is None:
                continue
            for metric, value in self.evaluate(model, channel, hp).items():
                if name == "test" and metric == "rmse":
                    continue  # SageMaker reports rmse for validation only
                log_metric(env, name, metric, value)

    def load(self, model_dir: Path) -> LinearLearnerPredictor:
        artifact = read_model_file(model_dir, read_linear_learner)
        return LinearLearnerPredictor(LinearModel(kind=artifact.predictor_type, loss=artifact.loss,
                                                  weights=artifact.weights.astype(np.float64),
                                                  bias=artifact.bias.astype(np.float64),
                                                  threshold=artifact.threshold))


def _objective(model: LinearModel, served: np.ndarray, y: np.ndarray, hp: Mapping[str, Any]) -> float:
    """The training loss of the served model, in label units (mean over records)."""
    if model.kind == REGRESSOR:
        values, _ = loss_and_grad(model.loss, served[:, None], y, hp)
        return float(values.mean())
    if model.kind == BINARY:
        if model.loss == "logistic":
            p = np.clip(served, 1e-12, 1 - 1e-12)
            return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
        values, _ = loss_and_grad("hinge_loss", served[:, None], y, hp)
        return float(values.mean())
    if model.loss == "softmax_loss":
        return float(-np.mean(np.log(np.maximum(served[np.arange(y.size), y.astype(np.int64)], 1e-12))))
    onehot = (y.astype(np.int64)[:, None] == np.arange(served.shape[1])[None, :]).astype(np.float64)
    if model.loss == "logistic":
        p = np.clip(served, 1e-12, 1 - 1e-12)
        return float(-np.mean((onehot * np.log(p) + (1 - onehot) * np.log1p(-p)).sum(axis=1)))
    return float(np.mean(np.maximum(hp["margin"] - (2 * onehot - 1) * served, 0).sum(axis=1)))


ALGORITHM = LinearLearner()
