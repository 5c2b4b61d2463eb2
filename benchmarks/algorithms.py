"""Quality, speed and memory of the local first-party algorithms against the best open implementations.

Run: ``.venv/bin/python benchmarks/algorithms.py`` (``--skip-memory`` to leave out the >= 4 GB channel,
``--memory-gb N`` to change its size, ``--only quality|speed|memory``). Data sets ship with scikit-learn or are
generated (no downloads). For every target the script prints our figure, the reference figure, their ratio
(or difference), the target and whether it is met, plus training times and their ratio.

Our side always trains the way the local service does: ``Algorithm.train(env)`` on a job folder whose
channels are CSV or recordIO-protobuf files. For the speed targets the algorithm's core on the same
in-memory array as the reference is timed too ("core"), because the end-to-end figure also includes
decoding the recordIO channel, which the reference never does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smspark_assets.local.algorithms import get_algorithm  # noqa: E402
from smspark_assets.local.algorithms.common_io import Batch  # noqa: E402
from smspark_assets.local.algorithms.common_metrics import roc_auc  # noqa: E402
from smspark_assets.sagemaker import artifacts  # noqa: E402
from smspark_assets_tests.algorithms.algorithm_job_folders import make_job  # noqa: E402

RIO = "application/x-recordio-protobuf"
ROWS: list[tuple[str, ...]] = []


def report(name: str, ours: float, reference: float, target: str, ok: bool, *, diff: bool = False,
           unit: str = "") -> None:
    relation = f"diff {ours - reference:+.4g}" if diff else f"ratio {ours / reference:.4f}" if reference else "ratio n/a"
    line = (f"{name:<52} ours {ours:>12.6g}{unit}  ref {reference:>12.6g}{unit}  {relation:<16} "
            f"target {target:<22} {'PASS' if ok else 'FAIL'}")
    print(line, flush=True)
    ROWS.append((name, f"{ours:.6g}", f"{reference:.6g}", relation, target, "PASS" if ok else "FAIL"))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def metrics_of(env) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in json.loads((env.output_dir / "metrics.json").read_text())}


class InMemory:
    """An in-memory stand-in for a cached channel (the "core" timings)."""

    def __init__(self, x, y, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.cached, self.name = True, "train"

    def batches(self, rng: np.random.Generator | None = None):
        starts = np.arange(0, self.x.shape[0], self.batch_size)
        if rng is not None:
            starts = rng.permutation(starts)
        for s in starts:
            yield Batch(self.x[s:s + self.batch_size], None if self.y is None else self.y[s:s + self.batch_size])


def _quiet(env) -> None:
    env.log = lambda message: None  # keep the benchmark output to the figures


# ---------------------------------------------------------------------------------------------- quality

def quality_kmeans(tmp: Path) -> None:
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    from smspark_assets.local.algorithms.kmeans import assign

    x = load_digits().data.astype(np.float32)
    env = make_job(tmp / "km", {"k": 10, "feature_dim": 64}, {"train": (x, None)}, content_type=RIO)
    _quiet(env)
    km = get_algorithm("kmeans")
    _, t_ours = timed(lambda: km.train(env))
    centroids = artifacts.read_kmeans((env.model_dir / "model_algo-1").read_bytes()).astype(np.float64)
    ours = float(assign(x.astype(np.float64), centroids)[1].sum())
    ref_model, t_ref = timed(lambda: KMeans(10, random_state=0).fit(x))
    report("K-means digits k=10: inertia", ours, ref_model.inertia_, "<= 1.02 x ref", ours <= 1.02 * ref_model.inertia_)
    report("K-means digits: training time", t_ours, t_ref, "(info)", True, unit="s")


def _splits(x, y, seed: int = 0, stratify: bool = True):
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y if stratify else None)
    x_a, x_v, y_a, y_v = train_test_split(x_tr, y_tr, test_size=0.25, random_state=seed + 1,
                                          stratify=y_tr if stratify else None)
    return x_tr, y_tr, x_te, y_te, x_a, y_a, x_v, y_v


def quality_linear_learner(tmp: Path) -> None:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ll = get_algorithm("linear-learner")

    # Binary: breast_cancer, test AUC.
    x, y = load_breast_cancer(return_X_y=True)
    x_tr, y_tr, x_te, y_te, x_a, y_a, x_v, y_v = _splits(x, y)
    env = make_job(tmp / "llb", {"predictor_type": "binary_classifier", "mini_batch_size": 32, "epochs": 30},
                   {"train": (x_a, y_a), "validation": (x_v, y_v), "test": (x_te, y_te)}, content_type=RIO)
    _quiet(env)
    _, t_ours = timed(lambda: ll.train(env))
    ours = metrics_of(env)["test:roc_auc_score"]
    ref, t_ref = timed(lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_tr, y_tr))
    ref_auc = roc_auc(y_te, ref.predict_proba(x_te)[:, 1])
    report("Linear Learner binary breast_cancer: test AUC", ours, ref_auc, "diff >= -0.01", ours >= ref_auc - 0.01, diff=True)
    report("Linear Learner binary: training time", t_ours, t_ref, "(info)", True, unit="s")

    # Regressor: diabetes, test R^2.
    x, y = load_diabetes(return_X_y=True)
    x_tr, y_tr, x_te, y_te, x_a, y_a, x_v, y_v = _splits(x, y, stratify=False)
    env = make_job(tmp / "llr", {"predictor_type": "regressor", "mini_batch_size": 32, "epochs": 50},
                   {"train": (x_a, y_a), "validation": (x_v, y_v), "test": (x_te, y_te)}, content_type=RIO)
    _quiet(env)
    _, t_ours = timed(lambda: ll.train(env))
    ours = 1.0 - metrics_of(env)["test:mse"] / float(np.var(y_te))
    ref, t_ref = timed(lambda: Ridge().fit(x_tr, y_tr))
    ref_r2 = float(ref.score(x_te, y_te))
    report("Linear Learner regressor diabetes: test R^2", ours, ref_r2, "diff >= -0.02", ours >= ref_r2 - 0.02, diff=True)
    report("Linear Learner regressor: training time", t_ours, t_ref, "(info)", True, unit="s")

    # Multiclass: digits, test accuracy.
    x, y = load_digits(return_X_y=True)
    x_tr, y_tr, x_te, y_te, x_a, y_a, x_v, y_v = _splits(x, y)
    env = make_job(tmp / "llm", {"predictor_type": "multiclass_classifier", "num_classes": 10, "mini_batch_size": 32,
                                 "epochs": 30},
                   {"train": (x_a, y_a), "validation": (x_v, y_v), "test": (x_te, y_te)}, content_type=RIO)
    _quiet(env)
    _, t_ours = timed(lambda: ll.train(env))
    ours = metrics_of(env)["test:multiclass_accuracy"]
    ref, t_ref = timed(lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_tr, y_tr))
    ref_acc = float(ref.score(x_te, y_te))
    report("Linear Learner multiclass digits: test accuracy", ours, ref_acc, "diff >= -0.02", ours >= ref_acc - 0.02,
           diff=True)
    report("Linear Learner multiclass: training time", t_ours, t_ref, "(info)", True, unit="s")


def quality_pca(tmp: Path) -> None:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)
    k = 10
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    (_, s, vt), t_ref = timed(lambda: np.linalg.svd(xc, full_matrices=False))
    ev_ref = s[:k] ** 2 / (len(x) - 1)
    pca = get_algorithm("pca")
    env = make_job(tmp / "pca", {"feature_dim": 64, "num_components": k, "mini_batch_size": 200},
                   {"train": (x, None)}, content_type=RIO)
    _quiet(env)
    _, t_ours = timed(lambda: pca.train(env))
    m = artifacts.read_pca((env.model_dir / "model_algo-1").read_bytes())
    ev, v = m.explained_variance(len(x))[::-1], m.v.astype(np.float64)[:, ::-1]
    ev_err = float(np.max(np.abs(ev - ev_ref) / ev_ref))
    comp_err = float(np.max(np.abs(np.abs(v) - np.abs(vt[:k].T))))
    report("PCA regular digits: max rel. error explained var.", ev_err, 1e-4, "<= 1e-4", ev_err <= 1e-4)
    report("PCA regular digits: max abs. error components", comp_err, 1e-4, "<= 1e-4 (up to sign)", comp_err <= 1e-4)
    report("PCA regular digits: training time (vs SVD)", t_ours, t_ref, "(info)", True, unit="s")
    env = make_job(tmp / "pcar", {"feature_dim": 64, "num_components": k, "mini_batch_size": 200,
                                  "algorithm_mode": "randomized"}, {"train": (x, None)}, content_type=RIO)
    _quiet(env)
    pca.train(env)
    v_r = artifacts.read_pca((env.model_dir / "model_algo-1").read_bytes()).v.astype(np.float64)
    captured = float(((xc @ v_r) ** 2).sum() / ((xc @ vt[:k].T) ** 2).sum())
    report("PCA randomized digits: variance captured / exact", captured, 1.0, ">= 0.99", captured >= 0.99)


def quality_fm(tmp: Path) -> None:
    from smspark_assets_tests.algorithms.algorithm_synthetic_data import interactions

    fm = get_algorithm("factorization-machines")
    common = {"feature_dim": 600, "epochs": 30, "mini_batch_size": 500, "bias_lr": 0.01, "linear_lr": 0.01,
              "factors_lr": 0.01, "bias_wd": 0, "linear_wd": 1e-5, "factors_wd": 1e-5}
    linear_only = {"num_factors": 1, "factors_lr": 0, "factors_init_method": "constant", "factors_init_value": 0}
    data = interactions(120_000, users=300, items=300, rank=4, noise=0.5, seed=0)
    tr, te = slice(0, 100_000), slice(100_000, None)
    channels = {"train": (data.features[tr], data.labels[tr]), "test": (data.features[te], data.labels[te])}
    results = {}
    for label, extra in (("fm", {"num_factors": 8}), ("linear", linear_only)):
        env = make_job(tmp / f"fm-{label}", {**common, "predictor_type": "regressor", **extra}, channels, content_type=RIO)
        _quiet(env)
        _, t = timed(lambda: fm.train(env))
        results[label] = (metrics_of(env)["test:rmse"], t)
    rmse, t = results["fm"]
    report("FM regressor: test RMSE vs noise floor", rmse, data.noise, "<= 1.10 x floor", rmse <= 1.10 * data.noise)
    report("FM regressor: test RMSE vs linear-only", rmse, results["linear"][0], "clearly lower (< 0.8x)",
           rmse < 0.8 * results["linear"][0])
    print(f"{'FM regressor: training time (100k records, 30 epochs)':<52} {t:.2f}s", flush=True)

    data = interactions(120_000, users=300, items=300, rank=4, binary=True, seed=1)
    channels = {"train": (data.features[tr], data.labels[tr]), "test": (data.features[te], data.labels[te])}
    aucs = {}
    for label, extra in (("fm", {"num_factors": 8}), ("linear", linear_only)):
        env = make_job(tmp / f"fmb-{label}", {**common, "predictor_type": "binary_classifier", **extra}, channels,
                       content_type=RIO)
        _quiet(env)
        fm.train(env)
        predictor = fm.load(env.model_dir)
        aucs[label] = roc_auc(data.labels[te], predictor.scores(data.features[te]))
    oracle = roc_auc(data.labels[te], data.truth[te])
    report("FM binary: test AUC vs oracle (true probabilities)", aucs["fm"], oracle, ">= 0.90 x oracle",
           aucs["fm"] >= 0.9 * oracle)
    report("FM binary: test AUC vs linear-only", aucs["fm"], aucs["linear"], "clearly higher (+0.05)",
           aucs["fm"] >= aucs["linear"] + 0.05)


def quality_lda(tmp: Path) -> None:
    from sklearn.decomposition import LatentDirichletAllocation

    from smspark_assets_tests.algorithms.algorithm_synthetic_data import documents
    from smspark_assets.local.algorithms.lda import per_word_log_likelihood

    k, vocab = 5, 500
    corpus = documents(3000, vocabulary=vocab, num_topics=k, seed=0)
    x = corpus.counts
    tr, te = slice(0, 2500), slice(2500, None)
    lda = get_algorithm("lda")
    env = make_job(tmp / "lda", {"num_topics": k, "feature_dim": vocab, "mini_batch_size": 250},
                   {"train": (x[tr], None), "test": (x[te], None)}, content_type=RIO)
    _quiet(env)
    _, t_ours = timed(lambda: lda.train(env))
    beta = artifacts.read_lda((env.model_dir / "model_algo-1").read_bytes()).beta.astype(np.float64)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    worst = float((unit(beta) @ unit(corpus.topics).T).max(axis=0).min())
    report("LDA: worst best-match cosine over true topics", worst, 0.9, ">= 0.9", worst >= 0.9)
    ours = metrics_of(env)["test:pwll"]
    ref, t_ref = timed(lambda: LatentDirichletAllocation(k, learning_method="online", batch_size=250, random_state=0,
                                                         doc_topic_prior=1.0 / k, topic_word_prior=1.0 / k).fit(x[tr]))
    ref_beta = ref.components_ / ref.components_.sum(axis=1, keepdims=True)
    ll, words = per_word_log_likelihood(x[te].tocsr().astype(np.float64), ref.transform(x[te]), ref_beta)
    ref_pwll = ll / words
    report("LDA: test per-word log-likelihood", ours, ref_pwll, "within 5 %", abs(ours - ref_pwll) <= 0.05 * abs(ref_pwll))
    report("LDA: training time", t_ours, t_ref, "(info)", True, unit="s")


# ---------------------------------------------------------------------------------------------- speed

def speed(tmp: Path) -> None:
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs, make_classification
    from sklearn.linear_model import SGDClassifier

    from smspark_assets.local.algorithms.kmeans import assign
    from smspark_assets.local.algorithms.linear_learner import validate as ll_validate
    from smspark_assets.local.algorithms.pca import fit_pca
    from smspark_assets.local.algorithms.pca import validate as pca_validate

    n, d = 1_000_000, 50
    x, _ = make_blobs(n, d, centers=10, cluster_std=3.0, random_state=0)
    x = x.astype(np.float32)

    # K-means.
    km = get_algorithm("kmeans")
    hp = km.validate_hyperparameters({"k": "10", "feature_dim": str(d)})
    ref, t_ref = timed(lambda: KMeans(10, n_init=1, random_state=0).fit(x))
    centers, t_core = timed(lambda: km.fit_stream(hp, lambda: (b.features for b in InMemory(x, None, 5000).batches()),
                                                  np.random.default_rng(0)))
    inertia = float(assign(x, centers.astype(np.float32))[1].astype(np.float64).sum())
    env = make_job(tmp / "km-speed", {"k": 10, "feature_dim": d}, {"train": (x, None)}, content_type=RIO)
    _quiet(env)
    _, t_e2e = timed(lambda: km.train(env))
    report("Speed K-means 1M x 50 k=10: core time", t_core, t_ref, "ratio <= 1.5", t_core <= 1.5 * t_ref, unit="s")
    report("Speed K-means: end-to-end from recordIO channel", t_e2e, t_ref, "(info; incl. decoding)", True, unit="s")
    report("Speed K-means: inertia", inertia, ref.inertia_, "<= 1.01 x ref", inertia <= 1.01 * ref.inertia_)
    del env

    # PCA (regular).
    pca_hp = pca_validate({"feature_dim": str(d), "num_components": "10", "mini_batch_size": "10000"})
    (_, t_ref) = timed(lambda: np.linalg.eigh(np.cov(x, rowvar=False)))
    _, t_core = timed(lambda: fit_pca((b.features for b in InMemory(x, None, 10000).batches()), pca_hp, d))
    env = make_job(tmp / "pca-speed", {"feature_dim": d, "num_components": 10, "mini_batch_size": 10000},
                   {"train": (x, None)}, content_type=RIO)
    _quiet(env)
    _, t_e2e = timed(lambda: get_algorithm("pca").train(env))
    report("Speed PCA regular 1M x 50: core time (vs cov+eigh)", t_core, t_ref, "ratio <= 1.5", t_core <= 1.5 * t_ref,
           unit="s")
    report("Speed PCA: end-to-end from recordIO channel", t_e2e, t_ref, "(info; incl. decoding)", True, unit="s")
    del x

    # Linear Learner, one model, same epochs as SGDClassifier.
    epochs = 5
    xc, yc = make_classification(n, d, n_informative=20, random_state=0)
    xc, yc = xc.astype(np.float32), yc.astype(np.float32)
    ll = get_algorithm("linear-learner")
    raw = {"predictor_type": "binary_classifier", "epochs": epochs, "num_models": 1, "mini_batch_size": 1000,
           "early_stopping_patience": epochs}
    _, t_ref = timed(lambda: SGDClassifier(loss="log_loss", max_iter=epochs, tol=None, random_state=0).fit(xc, yc))
    (model, _), t_core = timed(lambda: ll.fit(ll_validate({k: str(v) for k, v in raw.items()}),
                                              InMemory(xc, yc, 1000), None))
    env = make_job(tmp / "ll-speed", raw, {"train": (xc, yc)}, content_type=RIO)
    _quiet(env)
    _, t_e2e = timed(lambda: ll.train(env))
    report(f"Speed Linear Learner 1M x 50, {epochs} epochs: core", t_core, t_ref, "ratio <= 1.5", t_core <= 1.5 * t_ref,
           unit="s")
    report("Speed Linear Learner: end-to-end from recordIO", t_e2e, t_ref, "(info; incl. decoding)", True, unit="s")


# ---------------------------------------------------------------------------------------------- memory

def _write_big_channel(folder: Path, target_bytes: int, d: int) -> tuple[int, int]:
    from smspark_assets.local.algorithms.common_recordio import encode_records

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 10, size=(10, d))
    w = rng.normal(size=d)
    written, rows, part = 0, 0, 0
    chunk = 200_000
    while written < target_bytes:
        path = folder / f"part-{part:05d}.pbr"
        with open(path, "wb") as fh:
            for _ in range(10):  # ~0.5 GB per file
                x = (centers[rng.integers(0, 10, size=chunk)] + rng.normal(size=(chunk, d))).astype(np.float32)
                y = ((x - centers.mean(axis=0)) @ w > 0).astype(np.float32)
                data = encode_records(x, y)
                fh.write(data)
                written += len(data)
                rows += chunk
                if written >= target_bytes:
                    break
        part += 1
    return written, rows


# The child reports VmHWM, the peak RSS of its own (post-exec) address space. wait4's ru_maxrss cannot be
# used: Linux folds the pre-exec image -- a vfork/fork of this big benchmark process -- into it.
_CHILD = ("import sys; from pathlib import Path; from smspark_assets.local.algorithms.train import run; "
          "code = run(Path(sys.argv[1])); "
          "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]; "
          "print('VmHWM_kB', status, flush=True); sys.exit(code)")


def _peak_rss_of_training(job_dir: Path) -> tuple[float, float, int]:
    """Run the training worker in a fresh process; (its peak RSS in MB, seconds, exit code)."""
    started = time.perf_counter()
    with open(job_dir / "train.log", "w") as log:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(job_dir)], stdout=subprocess.PIPE, stderr=log,
                              text=True, cwd=Path(__file__).resolve().parents[1])
    seconds = time.perf_counter() - started
    peak_kb = next((float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("VmHWM_kB")), -1.0)
    return peak_kb / 1024.0, seconds, done.returncode


def memory(tmp: Path, gigabytes: float) -> None:
    import shutil

    d = 50
    data_dir = tmp / "big"
    (written, rows), t_gen = timed(lambda: _write_big_channel(data_dir, int(gigabytes * (1 << 30)), d))
    print(f"generated a {written / (1 << 30):.2f} GiB recordIO channel ({rows} records x {d}) in {t_gen:.1f}s", flush=True)
    try:
        for algorithm, hp in (("kmeans", {"k": 10, "feature_dim": d}),
                              ("linear-learner", {"predictor_type": "binary_classifier", "epochs": 1,
                                                  "feature_dim": d})):
            job = tmp / f"mem-{algorithm}"
            config = job / "input" / "config"
            config.mkdir(parents=True)
            (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hp.items()}))
            (config / "inputdataconfig.json").write_text(json.dumps({"train": {"ContentType": RIO}}))
            (config / "algorithm.json").write_text(json.dumps({"algorithm": algorithm, "image": ""}))
            (job / "input" / "data").mkdir(parents=True)
            (job / "input" / "data" / "train").symlink_to(data_dir, target_is_directory=True)
            peak, seconds, code = _peak_rss_of_training(job)
            if code != 0:
                print((job / "train.log").read_text()[-2000:])
            report(f"Memory {algorithm} on {written / (1 << 30):.2f} GiB: peak RSS", peak, 1024.0, "< 1024 MB",
                   code == 0 and peak < 1024.0, unit="MB")
            print(f"{'  (training time, ' + f'{rows / seconds / 1e6:.2f}M records/s)':<52} {seconds:.1f}s", flush=True)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-memory", action="store_true", help="skip the >= 4 GB channel")
    parser.add_argument("--memory-gb", type=float, default=4.1)
    parser.add_argument("--only", choices=("quality", "speed", "memory"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smspark-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "quality"):
            for section in (quality_kmeans, quality_linear_learner, quality_pca, quality_fm, quality_lda):
                section(tmp)
        if args.only in (None, "speed"):
            speed(tmp)
        if args.only == "memory" or (args.only is None and not args.skip_memory):
            memory(tmp, args.memory_gb)
    failed = [r for r in ROWS if r[-1] == "FAIL"]
    print(f"\n{len(ROWS) - len(failed)} of {len(ROWS)} figures meet their target", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
