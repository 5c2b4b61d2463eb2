"""The training worker: ``python -m smspark_assets.local.algorithms.train <job_dir>``.

Runs one training job inside its job folder (layout in :mod:`.base`), the way a SageMaker training
container runs in ``/opt/ml``: validate the hyperparameters, train, package ``model/`` as
``output/model.tar.gz``. On failure it writes the reason to ``output/failure`` (SageMaker's
``FailureReason``) and exits non-zero. Exit codes: 0 success, 1 algorithm or client error, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import tarfile
import time
import traceback
from pathlib import Path

from smspark_assets.local.algorithm_lookup import AlgorithmRef, load_algorithm
from smspark_assets.local.algorithms.base import (
    AlgorithmError,
    ChannelError,
    HyperparameterError,
    TrainingEnvironment,
)

MODEL_ARCHIVE = "model.tar.gz"
# Bounded so a pathological message cannot bloat the Describe document (SageMaker caps it at 1024 chars).
MAX_FAILURE_REASON = 1024
# Set by the process that starts a worker or model server to its own pid (see _exit_with_parent).
PARENT_PID_VAR = "SMSPARK_PARENT_PID"


def package_model(model_dir: Path, archive: Path) -> None:
    """Write every file under ``model_dir`` into ``archive`` (paths relative to ``model_dir``), as SageMaker
    does.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".tmp")
    # compresslevel 6: models can be tens of MB and level 9 buys little for float arrays.
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    tmp.replace(archive)


def _reason(kind: str, exc: BaseException) -> str:
    """``<kind>: <message>``, unless the message already carries SageMaker's prefix (a script's own failure
    file).
    """
    text = str(exc)
    return text if text.startswith(("ClientError:", "AlgorithmError:")) else f"{kind}: {text}"


def _exit_with_parent(parent: int) -> None:
    """End this worker (and whatever it started) when the service that launched it is gone (e.g.
    ``kill -9``)."""
    while True:
        if os.getppid() != parent:
            try:
                os.killpg(os.getpgrp(), signal.SIGKILL)
            finally:
                os._exit(1)
        time.sleep(1.0)


def write_failure(env: TrainingEnvironment, reason: str) -> None:
    env.output_dir.mkdir(parents=True, exist_ok=True)
    (env.output_dir / "failure").write_text(reason[:MAX_FAILURE_REASON])


def run(job_dir: Path) -> int:
    """Train the job in ``job_dir``; returns the process exit code."""
    env = TrainingEnvironment.from_job_dir(job_dir)
    env.model_dir.mkdir(parents=True, exist_ok=True)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        ref = AlgorithmRef.from_json(
            json.loads((job_dir / "input" / "config" / "algorithm.json").read_text())
        )
        algorithm = load_algorithm(ref)
        env.log(f"algorithm {ref.algorithm} ({ref.image}); hyperparameters {json.dumps(env.hyperparameters)}")
        algorithm.validate_hyperparameters(env.hyperparameters)
        algorithm.train(env)
        if not any(env.model_dir.iterdir()):
            raise AlgorithmError("the algorithm finished without writing any model file")
        package_model(env.model_dir, env.output_dir / MODEL_ARCHIVE)
    except (HyperparameterError, ChannelError) as exc:
        # The built-in containers report bad input as ClientError, the algorithm's own failures as
        # AlgorithmError.
        write_failure(env, _reason("ClientError", exc))
        env.log(_reason("ClientError", exc))
        return 1
    except AlgorithmError as exc:
        write_failure(env, _reason("AlgorithmError", exc))
        env.log(_reason("AlgorithmError", exc))
        return 1
    except (
        Exception
    ) as exc:  # noqa: BLE001 - any crash must become a FailureReason, with the trace in the log
        env.log(traceback.format_exc())
        write_failure(env, f"AlgorithmError: {type(exc).__name__}: {exc}")
        return 1
    env.log(f"training finished in {time.perf_counter() - started:.2f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m smspark_assets.local.algorithms.train <job_dir>", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    if not (job_dir / "input" / "config").is_dir():
        print(f"{job_dir} is not a training job folder (no input/config/)", file=sys.stderr)
        return 2
    if os.getpgrp() == os.getpid():
        # Started by the service as its own process group: watch the service, so a crashed service leaves no
        # orphans.
        # The spawner names itself: it may already be gone by the time this process has imported everything.
        parent = int(os.environ.get(PARENT_PID_VAR) or os.getppid())
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    return run(job_dir)


if __name__ == "__main__":
    sys.exit(main())
