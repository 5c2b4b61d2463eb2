"""Linear Learner's and Factorization Machines' ``model_algo-1``: a zip of an MXNet module checkpoint.

What is known (``../shared/reference/sagemaker_artifacts.md``, Part 2 and 3) and written here:

* **Linear Learner**: members ``mx-mod-symbol.json`` and ``mx-mod-0000.params`` (plus
  ``manifest.json`` and ``additional-params.json`` in SageMaker's, whose contents are unknown).
  The params hold ``arg:fc0_weight`` (outputs, feature_dim) -- MXNet's FullyConnected convention --
  and ``arg:fc0_bias`` (outputs,). The example notebooks load the pair with ``mx.mod.Module.load``.
* **Factorization Machines**: members ``symbol.json`` and ``params``, with ``arg:w0_weight`` (1,),
  ``arg:w1_weight`` (num_features, 1) and ``arg:v`` (num_features, num_factors).

What is not known, and how this module deals with it:

* SageMaker's own symbol graphs: the graphs written here are this project's (FullyConnected + an
  output op for Linear Learner; FM's equation in MXNet ops), valid MXNet JSON that ``Module.load``
  accepts; the reader never needs them except as a fallback to tell the predictor type.
* Where normalisation lives: the writer folds feature and label normalisation into the weights, so
  ``x @ fc0_weight.T + fc0_bias`` is the answer in label units; the reader assumes the same.
* The predictor type, loss and threshold: written to ``additional-params.json`` (this project's keys);
  for an archive without them the reader falls back to the graph's output op, and refuses when that
  does not decide it (a raw FullyConnected head with one output could be a regressor or a hinge
  classifier).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from smspark_assets.sagemaker import mxnet_ndarray
from smspark_assets.sagemaker.algorithms.linear_learner import BINARY, MULTICLASS, REGRESSOR
from smspark_assets.sagemaker.artifacts import MAX_MODEL_FILE_BYTES, MODEL_FILE, ArtifactError, model_file_kind

LL_SYMBOL, LL_PARAMS = "mx-mod-symbol.json", "mx-mod-0000.params"
FM_SYMBOL, FM_PARAMS = "symbol.json", "params"
ADDITIONAL_PARAMS = "additional-params.json"
# MXNet 1.9.1 as major*10000 + minor*100 + patch: the version whose loader the graphs were checked with;
# without it MXNet assumes 0.8.0 and runs its upgrade passes.
_MXNET_VERSION = 10901
# A fixed timestamp makes the archive's bytes depend on the model only (stable artifact hashes).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)



@dataclass(frozen=True)
class LinearLearnerArtifact:
    """The selected linear model on raw features: ``scores = x @ weights + bias`` in label units."""

    weights: np.ndarray  # (feature_dim, outputs)
    bias: np.ndarray  # (outputs,)
    predictor_type: str
    loss: str
    threshold: float = 0.5


@dataclass(frozen=True)
class FMArtifact:
    """A second-order factorization machine: ``w0 + x.w + 1/2 sum_f ((xV)_f^2 - (x^2)(V^2)_f)``."""

    w0: float
    w: np.ndarray  # (num_features,)
    v: np.ndarray  # (num_features, num_factors)
    predictor_type: str


# --- symbol graphs --------------------------------------------------------------------------------


def _symbol_json(nodes: list[dict[str, Any]], head: int) -> bytes:
    """nnvm's graph JSON: variables are ``op: "null"``; attribute values are strings."""
    graph = {
        "nodes": [{"op": n["op"], "name": n["name"], **({"attrs": n["attrs"]} if n.get("attrs") else {}),
                   "inputs": [[i, 0, 0] for i in n.get("inputs", [])]} for n in nodes],
        "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
        "node_row_ptr": list(range(len(nodes) + 1)),
        "heads": [[head, 0, 0]],
        "attrs": {"mxnet_version": ["int", _MXNET_VERSION]},
    }
    return json.dumps(graph, indent=2).encode()


def _variable(name: str, **attrs: str) -> dict[str, Any]:
    return {"op": "null", "name": name, "attrs": attrs}


def _with_output(nodes: list[dict[str, Any]], output_op: str | None) -> bytes:
    """Append ``out_label`` and the training output op (the head) when there is one."""
    if output_op is None:
        return _symbol_json(nodes, len(nodes) - 1)
    last = len(nodes) - 1
    nodes += [_variable("out_label"), {"op": output_op, "name": "out", "inputs": [last, last + 1]}]
    return _symbol_json(nodes, len(nodes) - 1)


def _ll_output_op(predictor_type: str, loss: str) -> str | None:
    if predictor_type == REGRESSOR:
        return "LinearRegressionOutput"
    if loss == "logistic":
        return "LogisticRegressionOutput"
    if predictor_type == MULTICLASS and loss == "softmax_loss":
        return "SoftmaxOutput"
    return None  # hinge losses answer raw margins: no output op transforms them


def _head_op(symbol: bytes | None) -> str | None:
    """The op of the graph's (first) head node, or ``None`` when there is no readable graph."""
    if symbol is None:
        return None
    try:
        graph = json.loads(symbol)
        return str(graph["nodes"][graph["heads"][0][0]]["op"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# --- zip members ----------------------------------------------------------------------------------


def _zip(members: Iterable[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return out.getvalue()


def _unzip(data: bytes, algorithm: str) -> dict[str, bytes]:
    """The archive's regular members by name (read into memory, never extracted to disk)."""
    if model_file_kind(data) != "zip":
        raise ArtifactError(f"{MODEL_FILE} is an NDArray file (a K-means / PCA / LDA layout), not the zip "
                            f"archive a {algorithm} model is")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            if sum(i.file_size for i in infos) > MAX_MODEL_FILE_BYTES:
                raise ArtifactError(f"{algorithm} {MODEL_FILE} would inflate past {MAX_MODEL_FILE_BYTES} bytes")
            return {i.filename: archive.read(i) for i in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ArtifactError(f"{algorithm} {MODEL_FILE} is not a readable zip archive: {exc}") from exc


def _params(members: dict[str, bytes], name: str, algorithm: str) -> dict[str, np.ndarray]:
    """The named arrays of a checkpoint's params, with ``arg:``/``aux:`` prefixes stripped."""
    if name not in members:
        raise ArtifactError(f"{algorithm} {MODEL_FILE} has no {name!r} (members: {', '.join(sorted(members))})")
    try:
        content = mxnet_ndarray.loads(members[name])
    except mxnet_ndarray.NDArrayFormatError as exc:
        raise ArtifactError(f"{algorithm} {MODEL_FILE}, member {name!r}: {exc}") from exc
    if not isinstance(content, dict):
        raise ArtifactError(f"{algorithm} {MODEL_FILE}, member {name!r}: parameters must be named")
    return {key.split(":", 1)[-1]: value for key, value in content.items()}


def _additional(members: dict[str, bytes]) -> dict[str, Any]:
    try:
        parsed = json.loads(members.get(ADDITIONAL_PARAMS, b"{}"))
    except ValueError:
        return {}  # SageMaker's own file may hold something else entirely; it is only a hint here
    return parsed if isinstance(parsed, dict) else {}


def _array(params: dict[str, np.ndarray], key: str, algorithm: str) -> np.ndarray:
    if key not in params:
        raise ArtifactError(f"{algorithm} {MODEL_FILE} parameters lack {key!r} (found: {', '.join(sorted(params))})")
    return params[key]


# --- Linear Learner -------------------------------------------------------------------------------


def write_linear_learner(model: LinearLearnerArtifact) -> bytes:
    """Linear Learner's ``model_algo-1``: ``mx-mod-symbol.json``, ``mx-mod-0000.params`` and our hints."""
    weights = np.asarray(model.weights, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(f"linear-learner weights must be (feature_dim, outputs), got {weights.shape}")
    outputs = weights.shape[1]
    bias = np.asarray(model.bias, dtype=np.float32).reshape(outputs)
    hidden = str(outputs)
    nodes = [_variable("data"), _variable("fc0_weight", num_hidden=hidden), _variable("fc0_bias", num_hidden=hidden),
             {"op": "FullyConnected", "name": "fc0", "attrs": {"num_hidden": hidden}, "inputs": [0, 1, 2]}]
    params = mxnet_ndarray.dumps({"arg:fc0_weight": weights.T, "arg:fc0_bias": bias})
    hints = {"predictor_type": model.predictor_type, "loss": model.loss, "threshold": float(model.threshold),
             "feature_dim": int(weights.shape[0]), "num_outputs": outputs}
    return _zip([(LL_SYMBOL, _with_output(nodes, _ll_output_op(model.predictor_type, model.loss))),
                 (LL_PARAMS, params), (ADDITIONAL_PARAMS, json.dumps(hints, indent=2).encode())])


def read_linear_learner(data: bytes) -> LinearLearnerArtifact:
    """Linear Learner's model from its ``model_algo-1`` (ours or, as far as it is known, SageMaker's)."""
    algorithm = "linear-learner"
    members = _unzip(data, algorithm)
    params = _params(members, LL_PARAMS, algorithm)
    weight = _array(params, "fc0_weight", algorithm)
    if weight.ndim != 2:
        raise ArtifactError(f"linear-learner fc0_weight must be (outputs, feature_dim), got {weight.shape}")
    bias = _array(params, "fc0_bias", algorithm).reshape(-1)
    if bias.size != weight.shape[0]:
        raise ArtifactError(f"linear-learner fc0_bias has {bias.size} values for {weight.shape[0]} outputs")
    hints = _additional(members)
    outputs = weight.shape[0]
    predictor_type, loss = hints.get("predictor_type"), hints.get("loss")
    if predictor_type not in (REGRESSOR, BINARY, MULTICLASS) or not isinstance(loss, str):
        predictor_type, loss = _ll_kind_from_graph(_head_op(members.get(LL_SYMBOL)), outputs)
    default_threshold = 0.5 if loss == "logistic" else 0.0
    threshold = float(hints.get("threshold", default_threshold))
    return LinearLearnerArtifact(weights=weight.T.copy(), bias=bias, predictor_type=predictor_type, loss=loss,
                                 threshold=threshold)


def _ll_kind_from_graph(op: str | None, outputs: int) -> tuple[str, str]:
    """(predictor_type, loss) told by the graph's output op; refused when the op does not tell."""
    if op in ("LinearRegressionOutput", "MAERegressionOutput"):
        return REGRESSOR, "squared_loss"
    if op == "LogisticRegressionOutput":
        return (BINARY if outputs == 1 else MULTICLASS), "logistic"
    if op in ("SoftmaxOutput", "softmax") and outputs > 1:
        return MULTICLASS, "softmax_loss"
    raise ArtifactError(
        f"cannot tell this linear-learner model's predictor type: {ADDITIONAL_PARAMS} does not say and "
        f"the graph's output op is {op!r} with {outputs} output(s)")


# --- Factorization Machines -----------------------------------------------------------------------


def write_factorization_machines(model: FMArtifact) -> bytes:
    """FM's ``model_algo-1``: ``symbol.json`` (the FM equation in MXNet ops), ``params`` and our hints."""
    v = np.asarray(model.v, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"factorization-machines v must be (num_features, num_factors), got {v.shape}")
    w = np.asarray(model.w, dtype=np.float32).reshape(v.shape[0], 1)
    nodes = [
        # Unlike FullyConnected's, these shapes cannot be inferred from the data: the graph declares
        # them (``__shape__``, as ``mx.sym.Variable(shape=...)`` does) so MXNet can bind it.
        _variable("data"), _variable("w0_weight", __shape__="(1,)"),
        _variable("w1_weight", __shape__=str((int(v.shape[0]), 1))),
        _variable("v", __shape__=str(tuple(map(int, v.shape)))),
        {"op": "dot", "name": "w1_dot", "inputs": [0, 2]},                           # 4: x w      (n, 1)
        {"op": "broadcast_add", "name": "linear", "inputs": [4, 1]},                 # 5: + w0
        {"op": "dot", "name": "xv", "inputs": [0, 3]},                               # 6: x V      (n, k)
        {"op": "square", "name": "xv_sq", "inputs": [6]},                            # 7: (x V)^2
        {"op": "square", "name": "x_sq", "inputs": [0]},                             # 8: x^2
        {"op": "square", "name": "v_sq", "inputs": [3]},                             # 9: V^2
        {"op": "dot", "name": "x2v2", "inputs": [8, 9]},                             # 10: x^2 V^2
        {"op": "elemwise_sub", "name": "pair_diff", "inputs": [7, 10]},              # 11
        {"op": "sum", "name": "pair_sum", "attrs": {"axis": "1", "keepdims": "True"}, "inputs": [11]},
        {"op": "_mul_scalar", "name": "pairwise", "attrs": {"scalar": "0.5"}, "inputs": [12]},
        {"op": "elemwise_add", "name": "fm", "inputs": [5, 13]},                     # 14: the FM score
    ]
    output_op = "LogisticRegressionOutput" if model.predictor_type == BINARY else "LinearRegressionOutput"
    params = mxnet_ndarray.dumps({"arg:w0_weight": np.asarray([model.w0], dtype=np.float32),
                                  "arg:w1_weight": w, "arg:v": v})
    hints = {"predictor_type": model.predictor_type, "feature_dim": int(v.shape[0]),
             "num_factors": int(v.shape[1])}
    return _zip([(FM_SYMBOL, _with_output(nodes, output_op)), (FM_PARAMS, params),
                 (ADDITIONAL_PARAMS, json.dumps(hints, indent=2).encode())])


def read_factorization_machines(data: bytes) -> FMArtifact:
    """FM's model from its ``model_algo-1`` (ours or, as far as it is known, SageMaker's)."""
    algorithm = "factorization-machines"
    members = _unzip(data, algorithm)
    params = _params(members, FM_PARAMS, algorithm)
    v = _array(params, "v", algorithm)
    if v.ndim != 2:
        raise ArtifactError(f"factorization-machines v must be (num_features, num_factors), got {v.shape}")
    w1 = _array(params, "w1_weight", algorithm)
    if w1.size != v.shape[0] or (w1.ndim == 2 and 1 not in w1.shape) or w1.ndim > 2:
        raise ArtifactError(f"factorization-machines w1_weight {w1.shape} does not match v {v.shape}")
    w0 = _array(params, "w0_weight", algorithm)
    if w0.size != 1:
        raise ArtifactError(f"factorization-machines w0_weight must hold one value, got shape {w0.shape}")
    predictor_type = _additional(members).get("predictor_type")
    if predictor_type not in (REGRESSOR, BINARY):
        op = _head_op(members.get(FM_SYMBOL))
        if op == "LogisticRegressionOutput":
            predictor_type = BINARY
        elif op == "LinearRegressionOutput":
            predictor_type = REGRESSOR
        else:
            raise ArtifactError(f"cannot tell this factorization-machines model's predictor type: "
                                f"{ADDITIONAL_PARAMS} does not say and the graph's output op is {op!r}")
    return FMArtifact(w0=float(w0.reshape(-1)[0]), w=w1.reshape(-1), v=v, predictor_type=predictor_type)
