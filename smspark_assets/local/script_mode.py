"""Custom algorithms in SageMaker's script mode: a user's Python entry point behind a custom image URI.

The service configuration maps an image URI to an entry point (``"custom_images"`` in
``<root>/local/config.json``): a module name (``mypkg.train``) or a path to a ``.py`` file.

Training runs the entry point as SageMaker's framework containers do: as ``__main__`` in a subprocess,
with each hyperparameter as ``--name value`` and the script-mode environment (``SM_MODEL_DIR``,
``SM_CHANNELS``, ``SM_CHANNEL_<NAME>``, ``SM_HPS``, ``SM_HP_<NAME>``, ``SM_OUTPUT_DATA_DIR``, ...), with the
``/opt/ml`` layout relocated under the job folder. Serving imports the same file and calls
``model_fn(model_dir)`` once, then ``input_fn(body, content_type)`` -> ``predict_fn(data, model)`` ->
``output_fn(prediction, accept)`` per request; the three per-request functions have JSON/CSV defaults.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import numpy as np

from smspark_assets.local.algorithms.base import (
    AlgorithmError,
    BadRequest,
    TrainingEnvironment,
    UnsupportedContentType,
)

TAIL_LINES = 15


def _is_path(entry_point: str) -> bool:
    return entry_point.endswith(".py") or os.sep in entry_point


def script_environment(env: TrainingEnvironment) -> dict[str, str]:
    """The ``SM_*`` variables a script-mode training script reads, pointing into the job folder."""
    channels = sorted(env.input_data_config)
    hps = {k: _typed(v) for k, v in env.hyperparameters.items()}
    out = {
        "SM_MODEL_DIR": str(env.model_dir),
        "SM_OUTPUT_DIR": str(env.output_dir),
        "SM_OUTPUT_DATA_DIR": str(env.output_data_dir),
        "SM_INPUT_DIR": str(env.job_dir / "input"),
        "SM_INPUT_CONFIG_DIR": str(env.job_dir / "input" / "config"),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(hps),
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_USER_ARGS": json.dumps(_arguments(env.hyperparameters)),
    }
    for channel in channels:
        out[f"SM_CHANNEL_{channel.upper()}"] = str(env.channel_dir(channel))
    for name, value in env.hyperparameters.items():
        out[f"SM_HP_{name.upper()}"] = str(value)
    out["SM_TRAINING_ENV"] = json.dumps(
        {
            "model_dir": out["SM_MODEL_DIR"],
            "channel_input_dirs": {c: str(env.channel_dir(c)) for c in channels},
            "hyperparameters": hps,
            "current_host": "algo-1",
        }
    )
    return out


def _typed(value: str) -> Any:
    """SageMaker's framework containers JSON-decode hyperparameters when they can (``"3"`` -> 3)."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _arguments(hyperparameters: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for name, value in sorted(hyperparameters.items()):
        args += [f"--{name}", str(value)]
    return args


class ScriptModePredictor:
    """Answers invocations with the entry point's ``model_fn``/``input_fn``/``predict_fn``/``output_fn``."""

    def __init__(self, module: ModuleType, model_dir: Path) -> None:
        if not hasattr(module, "model_fn"):
            raise AlgorithmError(
                f"{module.__name__} has no model_fn(model_dir); script mode serving needs it"
            )
        self.module = module
        self.model = module.model_fn(str(model_dir))

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        accept = accept if accept and accept != "*/*" else "application/json"
        input_fn = getattr(self.module, "input_fn", default_input_fn)
        predict_fn = getattr(self.module, "predict_fn", default_predict_fn)
        output_fn = getattr(self.module, "output_fn", default_output_fn)
        data = input_fn(body, content_type)
        prediction = predict_fn(data, self.model)
        out = output_fn(prediction, accept)
        if isinstance(out, tuple):  # (body, content type), as some containers allow
            out, accept = out
        return (out.encode() if isinstance(out, str) else bytes(out)), accept


def default_input_fn(body: bytes, content_type: str) -> np.ndarray:
    """``text/csv`` (rows of numbers) or ``application/json`` (a list of rows or ``{"instances": ...}``)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        if kind == "text/csv":
            return np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)
        if kind == "application/json":
            doc = json.loads(body)
            return np.asarray(doc.get("instances", doc) if isinstance(doc, dict) else doc, dtype=float)
    except ValueError as exc:
        raise BadRequest(f"cannot parse the {kind} body: {exc}") from None
    raise UnsupportedContentType(
        f"content type {content_type!r} is not supported; allowed: text/csv, application/json"
    )


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    kind = accept.split(";", 1)[0].strip().lower()
    values = np.asarray(prediction)
    if kind == "application/json":
        return json.dumps({"predictions": values.tolist()}).encode(), "application/json"
    if kind == "text/csv":
        buffer = io.StringIO()
        np.savetxt(buffer, values.reshape(len(values), -1), delimiter=",", fmt="%.10g")
        return buffer.getvalue().encode(), "text/csv"
    raise UnsupportedContentType(
        f"accept {accept!r} is not supported; allowed: application/json, text/csv", 406
    )


class ScriptModeAlgorithm:
    """An :class:`~smspark_assets.local.algorithms.base.Algorithm` backed by a user's script-mode
    entry point."""

    name = "script"

    def __init__(self, entry_point: str) -> None:
        self.entry_point = entry_point

    def validate_hyperparameters(self, hyperparameters: Mapping[str, str]) -> dict[str, Any]:
        # A script declares its own arguments (argparse); SageMaker passes them through unchecked too.
        return dict(hyperparameters)

    def _command(self) -> list[str]:
        if _is_path(self.entry_point):
            path = Path(self.entry_point)
            if not path.is_file():
                raise AlgorithmError(f"entry point {self.entry_point} does not exist")
            return [sys.executable, str(path)]
        return [sys.executable, "-m", self.entry_point]

    def train(self, env: TrainingEnvironment) -> None:
        child_env = dict(os.environ)
        child_env.update(script_environment(env))
        failure = env.output_dir / "failure"
        result = subprocess.run(
            self._command() + _arguments(env.hyperparameters),
            env=child_env,
            cwd=str(env.job_dir),
            stdout=sys.stderr,
            stderr=subprocess.PIPE,
            check=False,
        )
        sys.stderr.buffer.write(result.stderr)
        sys.stderr.flush()
        if result.returncode != 0:
            # The script's own failure file wins, as in SageMaker; else the tail of its stderr.
            if failure.exists() and failure.read_text().strip():
                raise AlgorithmError(failure.read_text().strip())
            tail = "\n".join(result.stderr.decode(errors="replace").strip().splitlines()[-TAIL_LINES:])
            raise AlgorithmError(
                f"ExecuteUserScriptError: the entry point {self.entry_point} exited with code "
                f"{result.returncode}:\n{tail}"
            )

    def load(self, model_dir: Path) -> ScriptModePredictor:
        return ScriptModePredictor(self._import(), model_dir)

    def _import(self) -> ModuleType:
        if not _is_path(self.entry_point):
            return importlib.import_module(self.entry_point)
        path = Path(self.entry_point)
        spec = importlib.util.spec_from_file_location(f"user_entry_point_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise AlgorithmError(f"cannot import entry point {self.entry_point}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
