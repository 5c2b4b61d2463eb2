#!/usr/bin/env python3
"""Run the Spark jobs on pyspark 3.5 (EMR 7's Spark) in an environment of their own, and say which pass.

The project develops on pyspark 4; EMR Serverless 7.x runs Spark 3.5. This script builds a virtualenv
(default ``/tmp/smspark-spark35``) with ``pyspark==<version>`` and the jobs' pinned dependencies from
``requirements.txt`` next to it (the same file the EMR image installs), then, inside it, runs the job
functions of ``smspark_assets/spark_jobs`` on small generated days with a local session:

* ``prepare_features``  raw CSV days -> features (+ quarantine)
* ``write_channels``    features -> XGBoost CSV channels
* ``algorithm_channels`` features + generated interactions/documents -> recordIO-protobuf channels

The package is imported from this checkout (``PYTHONPATH``), not installed: the venv holds only what the
EMR image holds (plus SciPy, which only the demo-data generator here needs). Needs Java 17 (Spark 3.5
runs on 8/11/17) and PyPI access for the first run. Exit status 0 when every job passed.

    python3.11 deploy/emr-serverless/check_spark35.py [--venv DIR] [--pyspark 3.5.2] [--rows 3000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
# EMR release 7.5.0 (the template's and the runner's default release label) ships Spark 3.5.2.
DEFAULT_PYSPARK = "3.5.2"
# Only the demo-data generator of this script needs it (documents); the jobs do not.
TEST_ONLY = ["scipy>=1.11"]
DAYS = ["2026-11-01", "2026-11-02"]
BUCKET = "s3://compat"


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def build_venv(path: Path, pyspark: str) -> Path:
    """Create (or reuse) the venv with pyspark ``pyspark`` and the image's requirements; its python."""
    python = _venv_python(path)
    marker = path / f".installed-{pyspark}-{_requirements_digest()}"
    if marker.exists():
        return python
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(path)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"pyspark=={pyspark}",
                    "-r", str(REQUIREMENTS), *TEST_ONLY], check=True)
    marker.touch()
    return python


def _requirements_digest() -> str:
    import hashlib

    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


class _FileStore:
    """The three calls the demo-data writer needs, over the folder the jobs see as ``s3://`` (EMRFS root)."""

    def __init__(self, s3_root: Path) -> None:
        self.s3_root = s3_root

    def _path(self, uri: str) -> Path:
        from smspark_assets.environment import local_path

        return local_path(uri, root=self.s3_root)

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def list_objects(self, prefix_uri: str) -> list:
        from types import SimpleNamespace

        base = self._path(prefix_uri)
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        return [SimpleNamespace(uri="s3://" + p.relative_to(self.s3_root).as_posix()) for p in files]

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)


def make_inputs(work: Path, rows: int) -> None:
    """Generate the demo days and the algorithm datasets under ``work`` (the jobs' ``s3://`` folder)."""
    from smspark_assets.datasets import credit
    from smspark_assets.datasets.documents import DocumentsSpec, generate_documents
    from smspark_assets.datasets.interactions import InteractionsSpec, generate_interactions, to_parquet_bytes

    store = _FileStore(work / "s3")
    for day in DAYS:
        credit.write_day(store, BUCKET, dt.date.fromisoformat(day), rows, seed=21)
    interactions = generate_interactions(InteractionsSpec(users=60, items=40, interactions=3000))
    documents = generate_documents(DocumentsSpec(vocabulary=50, documents=200, words_per_doc=30))
    store.write_bytes(f"{BUCKET}/datasets/interactions.parquet", to_parquet_bytes(interactions.table))
    store.write_bytes(f"{BUCKET}/datasets/documents.parquet", to_parquet_bytes(documents.table))


def run_jobs(work: Path, only: list[str]) -> dict[str, dict]:
    """Inside a venv: run the jobs named in ``only`` over ``work``; per job ``{"ok", "seconds", "detail"}``."""
    import pyspark

    # The jobs map s3:// to this folder, as the embedded EMR does (spark_jobs/storage.py).
    os.environ["SMSPARK_EMRFS_ROOT"] = str(work / "s3")
    os.environ["SMSPARK_ROOT"] = str(work)
    from smspark_assets.spark_jobs.algorithm_channels import algorithm_channels
    from smspark_assets.spark_jobs.prepare_features import prepare_features
    from smspark_assets.spark_jobs.session import local_session
    from smspark_assets.spark_jobs.write_channels import write_channels

    spark = local_session("smspark-spark35-check", cores="2")
    results: dict[str, dict] = {"_pyspark": {"ok": True, "seconds": 0.0, "detail": pyspark.__version__}}
    features = f"{BUCKET}/features/credit_applications"
    jobs = {
        "prepare_features": lambda: prepare_features(
            spark, f"{BUCKET}/raw/credit_applications", DAYS, features,
            quarantine_prefix=f"{BUCKET}/quarantine/credit_applications"),
        "write_channels": lambda: write_channels(spark, features, DAYS, f"{BUCKET}/channels/credit_default"),
        "algorithm_channels": lambda: algorithm_channels(
            spark, features, DAYS, f"{BUCKET}/channels/algorithms",
            interactions_uri=f"{BUCKET}/datasets/interactions.parquet",
            documents_uri=f"{BUCKET}/datasets/documents.parquet", vocabulary=50, max_rows=1000),
    }
    try:
        for name in only:
            job = jobs[name]
            started = time.monotonic()
            try:
                out = job()
                results[name] = {"ok": True, "seconds": round(time.monotonic() - started, 1),
                                 "detail": _summary(name, out)}
            except Exception as exc:  # noqa: BLE001 - report every job, not only the first failure
                results[name] = {"ok": False, "seconds": round(time.monotonic() - started, 1),
                                 "detail": _failure(exc)}
    finally:
        spark.stop()
    return results


def _failure(exc: BaseException) -> str:
    """The error and the project line that raised it (the first thing to fix on Spark 3.5)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "smspark_assets" in f.filename]
    where = f" at {Path(frames[-1].filename).relative_to(REPO)}:{frames[-1].lineno} ({frames[-1].line})" \
        if frames else ""
    return ("".join(traceback.format_exception_only(type(exc), exc)).strip() + where)[-800:]


def _summary(name: str, out: dict) -> str:
    """A short, checkable line of what the job reported."""
    if name == "prepare_features":
        return f"rows written by day {out.get('rows_written_by_dt')}, malformed {out.get('malformed_by_dt')}"
    if name == "write_channels":
        return f"rows by channel {out.get('rows_by_channel')}, {out.get('num_features')} features"
    return f"records by model {out.get('records_by_model')}"


JOBS = ["prepare_features", "write_channels", "algorithm_channels"]


def _inner(python: Path, work: Path, only: list[str], rows: int) -> dict[str, dict]:
    """Run ``only`` with ``python`` (a venv's) in a child process; its results, or the error it died of."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME"):  # the venv's own, not the caller's
        env.pop(name, None)
    proc = subprocess.run([str(python), __file__, "--inside", "--work", str(work), "--rows", str(rows),
                           "--only", ",".join(only)], env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    if not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"FAIL: the check did not finish under {python} (see the error above)")
    return json.loads(lines[-1][len("RESULTS "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "smspark-spark35")
    parser.add_argument("--pyspark", default=DEFAULT_PYSPARK)
    parser.add_argument("--rows", type=int, default=3000, help="applications per generated day")
    parser.add_argument("--fallback-python", type=Path, default=REPO / ".venv" / "bin" / "python",
                        help="the project's Python (pyspark 4): makes a job's input when the job before it "
                             "failed on 3.5, so every job is still checked")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", default=",".join(JOBS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        if not (args.work / "s3").exists():
            make_inputs(args.work, args.rows)
        results = run_jobs(args.work, [j for j in args.only.split(",") if j])
        print("RESULTS " + json.dumps(results))
        return 0
    python = build_venv(args.venv, args.pyspark)
    work = Path(tempfile.mkdtemp(prefix="smspark-spark35-"))
    results = _inner(python, work, JOBS, args.rows)
    version = results.pop("_pyspark")["detail"]
    notes: dict[str, str] = {}
    failed_at = next((i for i, job in enumerate(JOBS) if not results[job]["ok"]), None)
    # A failed job leaves the next ones without input: make it with pyspark 4, then re-check them on 3.5.
    while failed_at is not None and failed_at + 1 < len(JOBS) and args.fallback_python.exists():
        made = _inner(args.fallback_python, work, [JOBS[failed_at]], args.rows)
        if not made[JOBS[failed_at]]["ok"]:
            break
        rest = JOBS[failed_at + 1:]
        for job, result in _inner(python, work, rest, args.rows).items():
            if job in rest:
                results[job] = result
                notes[job] = f"(input from {JOBS[failed_at]} on pyspark {made['_pyspark']['detail']})"
        failed_at = next((i for i, job in enumerate(JOBS) if i > failed_at and not results[job]["ok"]), None)
    print(f"pyspark {version} in {args.venv}")
    for name in JOBS:
        result = results[name]
        print(f"{'PASS' if result['ok'] else 'FAIL'}  {name:<20} {result['seconds']:>6.1f}s  {result['detail']}"
              f" {notes.get(name, '')}".rstrip())
    return 0 if all(results[j]["ok"] for j in JOBS) else 1


if __name__ == "__main__":
    sys.exit(main())
