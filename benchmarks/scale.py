"""Benchmark: cost of the daily flow (features -> scores -> DynamoDB) as the rows per day grow.

The daily flow is the project's own ``daily_scoring_job`` run against the embedded stack, on one fresh
day of ``--base-rows`` rows times each factor of ``--factors`` (default 1, 4, 16 times the demo's
20,000 rows per day). Training is not what it measures, but the daily flow needs a served model:

* by default it is trained once first, on a day of 1x data, by the project's own assets (features ->
  training channels -> SageMaker training -> endpoint), as the platform does;
* with ``--quick-model`` an XGBoost Booster with the flow's hyperparameters is trained in-process on a
  generated 1x day (features computed with pandas in :data:`FEATURE_COLUMNS` order), packed as
  ``model.tar.gz``, created as a SageMaker model and deployed on the stack's endpoint ``credit-default``;
  its handle is stored as the ``credit_default_endpoint`` asset the daily job reads. This skips two
  Spark applications and a training job (minutes), which the smoke test cannot afford. The scoring
  path measured is the same: the endpoint serves a model of the same kind and size.

Each size runs in its own Dagster process (a child of this one), so that process's peak memory is the
peak of that size alone. Printed per size: seconds of each stage (Dagster step), rows per second, and
the peak resident memory of each process taking part:

* ``dagster``      the Dagster process that runs the job (its own high-water mark ``VmHWM``, exact);
* ``stack``        the embedded stack's server (S3, EMR, SageMaker, DynamoDB, ... APIs);
* ``spark jvm``    the Spark driver JVM (``spark-submit``, sampled high-water marks);
* ``spark python`` the Spark job's Python driver and its Python workers (sum, sampled);
* ``model server`` the endpoint's model-server process(es) (sampled).

The baseline is the 1x size measured in the same run. Targets (exit status 1 when missed):

* time per row at the largest size at most ``--time-target`` (1.1) times that at 1x: fixed start-up
  costs amortize, nothing grows faster than the data;
* peak memory of the Dagster process at the largest size at most ``--memory-target`` (1.25) times that
  at 1x: the Dagster process streams a day, it does not hold it.

    .venv/bin/python benchmarks/scale.py                       # 20,000 x 1, 4, 16 rows per day
    .venv/bin/python benchmarks/scale.py --base-rows 2000      # smaller
    .venv/bin/python benchmarks/scale.py --base-rows 300 --factors 1 --no-targets --quick-model   # smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_ROWS_PER_DAY = 20_000
START = dt.date(2026, 11, 1)
SEED = 7
DAILY_JOB = "daily_scoring_job"
# The daily job's steps in flow order; anything else it runs (asset checks) is reported as "checks".
STAGES = ("credit_features", "credit_scores", "credit_scores_dynamodb")
ROLES = ("dagster", "stack", "spark jvm", "spark python", "model server")
SAMPLE_SECONDS = 0.25
ENDPOINT_NAME = "credit-default"  # the endpoint credit_default_endpoint serves


# --------------------------------------------------------------------------------------------------
# Memory of the processes taking part, from /proc (Linux).


def _status_kib(pid: int, field_name: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def classify_stack_descendants(stack_pid: int) -> dict[str, list[int]]:
    """The stack's descendants by role: Spark's JVM, Spark's Python processes, model servers."""
    children = _children_map()
    roles: dict[str, list[int]] = {"spark jvm": [], "spark python": [], "model server": []}
    for pid in _descendants(stack_pid, children):
        command = _cmdline(pid)
        if "java" in command.split(" ", 1)[0] and "SparkSubmit" in command:
            roles["spark jvm"].append(pid)
            # Everything under spark-submit's JVM that is Python: the job's driver and the workers.
            roles["spark python"].extend(p for p in _descendants(pid, children) if "python" in _cmdline(p))
        elif "model_server" in command:
            roles["model server"].append(pid)
    return roles


class MemorySampler:
    """Samples the high-water marks (``VmHWM``) of the stack's processes while a size runs.

    ``VmHWM`` is a process's own peak, so a sample misses only what a process reached in the last
    interval before it exited. The stack server's mark is reset before each size (``clear_refs``) so
    its peak is that size's; where the kernel refuses, it is the peak since the server started.
    """

    def __init__(self, stack_pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.stack_pid = stack_pid
        self.interval = interval
        self.peak_kib: dict[str, int] = {}
        self.stack_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        try:  # "5" resets the peak resident set size of the process (Linux >= 4.0)
            with open(f"/proc/{self.stack_pid}/clear_refs", "w") as fh:
                fh.write("5")
            self.stack_reset = True
        except OSError:
            self.stack_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        current = {"stack": _status_kib(self.stack_pid, "VmHWM")}
        for role, pids in classify_stack_descendants(self.stack_pid).items():
            current[role] = sum(_status_kib(pid, "VmHWM") for pid in pids)
        for role, kib in current.items():
            self.peak_kib[role] = max(self.peak_kib.get(role, 0), kib)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


# --------------------------------------------------------------------------------------------------
# The child processes: each one is a Dagster process running the project's assets.


def _instance() -> Any:
    from smspark_assets.demo import dagster_instance

    return dagster_instance()


def _quiet_config() -> dict[str, Any]:
    # Errors only: the figures are the output (Dagster's preview warnings are silenced in the child too).
    return {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def child_train(day: str) -> dict[str, Any]:
    """Features of ``day``, then the training channels, the model (behind its gate) and the endpoint."""
    import dagster as dg

    from smspark_assets.assets.features import credit_features
    from smspark_assets.assets.serving import credit_default_endpoint
    from smspark_assets.assets.training import credit_default_model, credit_training_channels
    from smspark_assets.definitions import ASSETS
    from smspark_assets.resources.by_environment import resources_for

    instance = _instance()
    for selection, partition in (([credit_features], day),
                                 ([credit_training_channels, credit_default_model, credit_default_endpoint], None)):
        result = dg.materialize(ASSETS, selection=selection, instance=instance, resources=resources_for(),
                                partition_key=partition, raise_on_error=False, run_config=_quiet_config())
        if not result.success:
            raise RuntimeError("training the model failed: " + _failures(result))
    return {}


def _failures(result: Any) -> str:
    return " | ".join(str(e.message) for e in result.all_events if e.event_type_value == "STEP_FAILURE")


def quick_features(frame: Any) -> tuple[Any, Any]:
    """(features in ``FEATURE_COLUMNS`` order, labels) of generated applications, with pandas.

    The same recipe as the Spark feature job (clip, median-impute with ``_missing`` flags, loan to
    income, one-hot over the fixed vocabulary), without its quarantine: the data comes from the
    generator, not from files, so there is nothing malformed to set aside.
    """
    import numpy as np
    import pandas as pd

    from smspark_assets.spark_jobs.prepare_features import (
        CLIP_RANGES, FALLBACK_MEDIANS, FEATURE_COLUMNS, LABEL, MISSING_INDICATORS, VOCABULARY)

    out: dict[str, Any] = {}
    for column, (low, high) in CLIP_RANGES.items():
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64").clip(low, high)
        median = values.median()
        out[column] = values.fillna(FALLBACK_MEDIANS[column] if pd.isna(median) else median)
        if column in MISSING_INDICATORS:
            out[f"{column}_missing"] = values.isna().astype("float64")
    out["loan_to_income"] = out["loan_amount"] / np.maximum(out["annual_income"], 1000.0)
    for column, vocabulary in VOCABULARY.items():
        text = frame[column].astype("string").str.strip()
        text = text.str.lower() if column == "purpose" else text.str.upper()
        for value in vocabulary:
            out[f"{column}__{value.lower()}"] = (text == value).fillna(False).astype("float64")
        out[f"{column}__other"] = (~text.isin(vocabulary)).fillna(True).astype("float64")
    features = pd.DataFrame(out)[FEATURE_COLUMNS].to_numpy(dtype=np.float32)
    return features, frame[LABEL].to_numpy(dtype=np.float32)


def quick_model(day: str, rows: int) -> dict[str, Any]:
    """The ``--quick-model`` path: an in-process Booster on a generated day, deployed on the stack and
    stored as the ``credit_default_endpoint`` asset (through the project's JSON IO manager)."""
    import io
    import tarfile

    import dagster as dg
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    from smspark_assets.assets.training import DEFAULT_HYPERPARAMETERS
    from smspark_assets.datasets.credit import generate_day
    from smspark_assets.layout import layout
    from smspark_assets.resources.by_environment import resources_for
    from smspark_assets.sagemaker.algorithms import algorithm_spec
    from smspark_assets.sagemaker.endpoints import EndpointSettings, deploy_model
    from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS

    features, labels = quick_features(generate_day(dt.date.fromisoformat(day), rows, SEED))
    # The flow's hyperparameters (same number and depth of trees, so the endpoint does the same work
    # per row); without early stopping, which needs the validation channel, the rounds all run.
    params = {k: v for k, v in DEFAULT_HYPERPARAMETERS.items() if k not in ("num_round", "early_stopping_rounds")}
    held_out = np.arange(len(labels)) % 5 == 0
    booster = xgb.train(params, xgb.DMatrix(features[~held_out], label=labels[~held_out]),
                        int(DEFAULT_HYPERPARAMETERS["num_round"]))
    auc = float(roc_auc_score(labels[held_out], booster.inplace_predict(features[held_out])))

    # The artifact as the XGBoost container (>= 1.3) writes it: model.tar.gz holding xgboost-model.
    model_bytes = bytes(booster.save_raw(raw_format="ubj"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(model_bytes)
        tar.addfile(info, io.BytesIO(model_bytes))
    resources = resources_for()
    sagemaker = resources["sagemaker"]
    model_uri = f"{layout().model_output}/scale-quick-model/output/model.tar.gz"
    resources["store"].write_bytes(model_uri, buffer.getvalue())
    sm = sagemaker.sagemaker
    model_name = "credit-default-scale-quick"
    sm.create_model(ModelName=model_name, ExecutionRoleArn=sagemaker.role_arn,
                    PrimaryContainer={"Image": algorithm_spec("xgboost").image_uri(sagemaker.region_name),
                                      "ModelDataUrl": model_uri})
    served = deploy_model(sm, ENDPOINT_NAME, model_name, EndpointSettings(), poll_seconds=sagemaker.poll_seconds,
                          log=lambda message: None)
    handle = {"endpoint_name": served.endpoint_name, "config_name": served.config_name, "model_name": model_name,
              "status": served.status, "endpoint_mode": "realtime", "feature_columns": FEATURE_COLUMNS,
              "model_version": None}

    @dg.asset(name="credit_default_endpoint", group_name="serving", io_manager_key="json_io_manager")
    def quick_endpoint() -> dict[str, Any]:
        """Stand-in for the served model's handle: the endpoint of the quick model."""
        return handle

    result = dg.materialize([quick_endpoint], instance=_instance(), raise_on_error=False, run_config=_quiet_config(),
                            resources={"json_io_manager": resources["json_io_manager"]})
    if not result.success:
        raise RuntimeError("storing the quick model's endpoint handle failed: " + _failures(result))
    return {"trees": booster.num_boosted_rounds(), "held_out_auc": auc, "endpoint": served.endpoint_name}


def child_daily(day: str) -> dict[str, Any]:
    """The project's daily job on ``day``; seconds per step and this process's peak memory."""
    import dagster as dg

    from smspark_assets.definitions import defs

    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec from the parent (which held
    # the landed data), while VmHWM belongs to this process's own memory.
    imported_kib = _status_kib(os.getpid(), "VmHWM")
    instance = _instance()
    job = defs.resolve_job_def(DAILY_JOB)
    started = time.monotonic()
    result = job.execute_in_process(instance=instance, partition_key=day, raise_on_error=False,
                                    run_config=_quiet_config())
    total = time.monotonic() - started
    if not result.success:
        raise RuntimeError(f"{DAILY_JOB} failed on {day}: " + _failures(result))
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for record in instance.get_records_for_run(result.run_id).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in starts:
            seconds[event.step_key] = entry.timestamp - starts[event.step_key]
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        metadata[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()
                                                    if isinstance(getattr(v, "value", v), (int, float, str))}
    return {"seconds": seconds, "total_seconds": total, "metadata": metadata,
            "imported_kib": imported_kib, "peak_kib": _status_kib(os.getpid(), "VmHWM")}


def run_child(mode: str, day: str, env: dict[str, str]) -> dict[str, Any]:
    """Run this script as a child Dagster process; its JSON answer."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        answer = Path(out.name)
    try:
        subprocess.run([sys.executable, __file__, "--child", mode, "--day", day, "--answer", str(answer)],
                       env=env, check=True)
        return json.loads(answer.read_text())
    finally:
        answer.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The benchmark.


@dataclass
class SizeResult:
    factor: int
    rows: int
    day: str
    seconds: dict[str, float]
    total_seconds: float
    peak_mib: dict[str, float]
    items_written: int
    rows_scored: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_row(self) -> float:
        return self.total_seconds / self.rows


def _land(day: dt.date, rows: int, bucket: str) -> None:
    from smspark_assets.datasets.credit import write_day
    from smspark_assets.resources.by_environment import resources_for

    write_day(resources_for()["store"], f"s3://{bucket}", day, rows, SEED)


def _report_raw(days: list[str]) -> None:
    """The raw asset is external: record the landed days, as the sensor does."""
    import dagster as dg

    from smspark_assets.assets.raw import RAW_APPLICATIONS

    instance = _instance()
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition=day))


def format_table(results: list[SizeResult]) -> str:
    stages = [s for s in STAGES if any(s in r.seconds for r in results)]
    others = sorted({k for r in results for k in r.seconds} - set(stages))
    head = ["size", "rows", *[s.replace("credit_", "") + " s" for s in stages], "checks s", "total s",
            "rows/s", "us/row", *[f"{role} MiB" for role in ROLES]]
    lines = ["  ".join(f"{h:>14}" for h in head)]
    for r in results:
        cells = [f"{r.factor}x", f"{r.rows:,}", *[f"{r.seconds.get(s, float('nan')):.1f}" for s in stages],
                 f"{sum(r.seconds.get(o, 0.0) for o in others):.1f}", f"{r.total_seconds:.1f}",
                 f"{r.rows / r.total_seconds:,.0f}", f"{1e6 * r.seconds_per_row:.0f}",
                 *[f"{r.peak_mib.get(role, 0.0):,.0f}" for role in ROLES]]
        lines.append("  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def evaluate(results: list[SizeResult], time_target: float, memory_target: float) -> tuple[list[str], list[str]]:
    """Ratios of the largest size against the 1x baseline; (lines to print, targets missed)."""
    base, top = results[0], results[-1]
    time_ratio = top.seconds_per_row / base.seconds_per_row
    memory_ratio = top.peak_mib["dagster"] / base.peak_mib["dagster"]
    lines = [f"time per row  {top.factor}x / {base.factor}x: {time_ratio:.2f}  (target <= {time_target})",
             f"dagster peak  {top.factor}x / {base.factor}x: {memory_ratio:.2f}  (target <= {memory_target}; "
             f"{base.peak_mib['dagster']:,.0f} -> {top.peak_mib['dagster']:,.0f} MiB)"]
    for stage in STAGES:
        if stage in base.seconds and stage in top.seconds and base.seconds[stage] > 0:
            per_row = (top.seconds[stage] / top.rows) / (base.seconds[stage] / base.rows)
            lines.append(f"  {stage:<24} time per row {top.factor}x / {base.factor}x: {per_row:.2f}")
    if len(results) >= 3:
        # Marginal cost: what each added row costs between the two largest sizes vs the two smallest.
        # Fixed costs cancel, so this shows growth faster than linear that the amortized ratio hides.
        low = (results[1].total_seconds - results[0].total_seconds) / (results[1].rows - results[0].rows)
        high = (results[-1].total_seconds - results[-2].total_seconds) / (results[-1].rows - results[-2].rows)
        lines.append(f"marginal time per added row, {results[-2].factor}x->{top.factor}x vs "
                     f"{results[0].factor}x->{results[1].factor}x: {high / low:.2f}  (1.0 = linear; informational)")
    missed = []
    if time_ratio > time_target:
        missed.append(f"time per row grew {time_ratio:.2f}x (> {time_target})")
    if memory_ratio > memory_target:
        missed.append(f"Dagster peak memory grew {memory_ratio:.2f}x (> {memory_target})")
    return lines, missed


def _factors(text: str) -> list[int]:
    try:
        factors = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers, e.g. 1,4,16") from None
    if not factors or factors[0] != 1 or any(f < 1 for f in factors) or factors != sorted(set(factors)):
        raise argparse.ArgumentTypeError(f"{text!r}: factors must start at 1 and increase, e.g. 1,4,16")
    return factors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-rows", type=int, default=DEMO_ROWS_PER_DAY,
                        help=f"rows per day at 1x (default {DEMO_ROWS_PER_DAY:,}, the demo's)")
    parser.add_argument("--factors", type=_factors, default=[1, 4, 16], help="sizes as multiples of 1x (default 1,4,16)")
    parser.add_argument("--time-target", type=float, default=1.1, help="max time per row, largest / 1x")
    parser.add_argument("--memory-target", type=float, default=1.25, help="max Dagster peak memory, largest / 1x")
    parser.add_argument("--no-targets", action="store_true", help="print the figures, never fail on a target")
    parser.add_argument("--root", type=Path, help="state root to use (default: a new temporary folder, removed)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument("--quick-model", action="store_true",
                        help="serve an XGBoost Booster trained in-process on a generated 1x day instead of training "
                             "through the assets (Spark channels + SageMaker training job); the smoke test's choice")
    parser.add_argument("--child", choices=("train", "daily"), help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        import warnings

        import dagster as dg

        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        answer = child_train(args.day) if args.child == "train" else child_daily(args.day)
        args.answer.write_text(json.dumps(answer))
        return 0
    if args.base_rows < 100:
        parser.error(f"--base-rows {args.base_rows} is too small: at least 100 rows (the split needs them)")

    root = args.root or Path(tempfile.mkdtemp(prefix="smspark-scale-bench-")) / "smspark"
    env = dict(os.environ, SMSPARK_ROOT=str(root), SMSPARK_ENV="local", DAGSTER_HOME=str(root / "dagster"),
               SMSPARK_PARTITIONS_START=START.isoformat())
    os.environ.update(env)
    from smspark_assets.demo import prepare_dagster_home
    from smspark_assets.environment import default_bucket
    from smspark_assets.local import process

    prepare_dagster_home()
    bucket = default_bucket()
    process.ensure_running(root)
    info = process.status(root)
    if info is None:
        raise RuntimeError(f"the embedded stack of {root} did not start")
    stack_pid = info.pid
    try:
        load = os.getloadavg()
        print(f"[scale] state root {root}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"on {os.cpu_count()} cores", flush=True)
        started = time.monotonic()
        train_day = START.isoformat()
        if args.quick_model:
            # In this process (no child): its memory is not measured, and it saves a Dagster start-up.
            quick = quick_model(train_day, args.base_rows)
            print(f"[scale] quick model: {quick['trees']} trees trained in-process on {args.base_rows:,} generated "
                  f"rows of {train_day} (held-out AUC {quick['held_out_auc']:.3f}), served on {quick['endpoint']} "
                  f"in {time.monotonic() - started:.0f} s", flush=True)
        else:
            _land(START, args.base_rows, bucket)
            _report_raw([train_day])
            run_child("train", train_day, env)
            print(f"[scale] model trained through the assets on {args.base_rows:,} rows of {train_day} "
                  f"in {time.monotonic() - started:.0f} s", flush=True)

        results: list[SizeResult] = []
        for offset, factor in enumerate(args.factors, start=1):
            day = START + dt.timedelta(days=offset)
            rows = args.base_rows * factor
            _land(day, rows, bucket)
            _report_raw([day.isoformat()])
            with MemorySampler(stack_pid) as sampler:
                answer = run_child("daily", day.isoformat(), env)
            peaks = {role: kib / 1024 for role, kib in sampler.peak_kib.items()}
            peaks["dagster"] = answer["peak_kib"] / 1024
            md = answer["metadata"]
            result = SizeResult(
                factor=factor, rows=rows, day=day.isoformat(), seconds=answer["seconds"],
                total_seconds=answer["total_seconds"], peak_mib=peaks,
                items_written=int(md.get("credit_scores_dynamodb", {}).get("items_written", 0)),
                rows_scored=int(md.get("credit_scores", {}).get("rows_scored", 0)),
                extra={"dagster_after_imports_mib": answer["imported_kib"] / 1024,
                       "stack_peak_reset": sampler.stack_reset})
            results.append(result)
            print(f"[scale] {factor}x ({rows:,} rows): {result.total_seconds:.1f} s, "
                  f"{result.items_written:,} items written, Dagster peak {peaks['dagster']:,.0f} MiB", flush=True)

        load = os.getloadavg()
        print()
        print(f"scale benchmark: daily flow ({DAILY_JOB}) on {', '.join(f'{f}x' for f in args.factors)} "
              f"x {args.base_rows:,} rows/day; load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(format_table(results))
        lines, missed = evaluate(results, args.time_target, args.memory_target)
        print("\n".join(lines))
        if args.json:
            print(json.dumps({"base_rows": args.base_rows, "model": "quick" if args.quick_model else "assets",
                              "results": [r.__dict__ for r in results],
                              "missed": missed}))
        for result in results:
            if result.items_written != result.rows_scored or result.rows_scored == 0:
                missed.append(f"{result.factor}x wrote {result.items_written} items for {result.rows_scored} "
                              f"scored rows")
        if missed and not args.no_targets:
            print("TARGET MISSED: " + "; ".join(missed))
            return 1
        print("targets " + ("not enforced" if args.no_targets else "met"))
        return 0
    finally:
        process.stop(root)
        if args.root is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
