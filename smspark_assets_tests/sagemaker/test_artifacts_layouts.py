"""SageMaker's ``model_algo-1`` layouts: artifacts built by hand from the reference are read and served,
and what the embedded stack writes has the same bytes layout.

Fixtures are assembled from ``reference/sagemaker_artifacts.md`` (Part 1's byte tables, Part 2's
layouts, Part 3's symbol JSON as MXNet 1.9.1 wrote it) with ``struct`` and ``zipfile``, not with the
writers under test; expected answers are computed here with NumPy from the same numbers.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from smspark_assets.local.algorithms import get_algorithm
from smspark_assets.local.algorithms.base import AlgorithmError
from smspark_assets.sagemaker import artifacts
from smspark_assets.sagemaker.algorithms import module_artifacts
from smspark_assets.sagemaker.artifacts import MODEL_FILE, ArtifactError

pytestmark = pytest.mark.timeout(60)

_FLAGS = {np.dtype("float32"): 0, np.dtype("float64"): 1, np.dtype("int32"): 4, np.dtype("int64"): 6}


def ndarray_file(arrays: list[np.ndarray], names: list[str] | None = None) -> bytes:
    """An NDArray list file per the reference's tables (list header, V2 dense records, names)."""
    out = struct.pack("<QQQ", 0x112, 0, len(arrays))
    for a in arrays:
        out += struct.pack("<Iii", 0xF993FAC9, 0, a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape)
        out += struct.pack("<iii", 1, 0, _FLAGS[a.dtype]) + a.astype(a.dtype.newbyteorder("<")).tobytes(order="C")
    names = names or []
    out += struct.pack("<Q", len(names))
    for name in names:
        out += struct.pack("<Q", len(name.encode())) + name.encode()
    return out


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return out.getvalue()


# The graph MXNet 1.9.1 saved for FullyConnected(num_hidden=1, name="fc0") + LinearRegressionOutput (Part 3.1).
LL_SYMBOL_FROM_MXNET = json.dumps({"nodes": [
    {"op": "null", "name": "data", "inputs": []},
    {"op": "null", "name": "fc0_weight", "attrs": {"num_hidden": "1"}, "inputs": []},
    {"op": "null", "name": "fc0_bias", "attrs": {"num_hidden": "1"}, "inputs": []},
    {"op": "FullyConnected", "name": "fc0", "attrs": {"num_hidden": "1"}, "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
    {"op": "null", "name": "out_label", "inputs": []},
    {"op": "LinearRegressionOutput", "name": "out", "inputs": [[3, 0, 0], [4, 0, 0]]}],
    "arg_nodes": [0, 1, 2, 4], "node_row_ptr": [0, 1, 2, 3, 4, 5, 6], "heads": [[5, 0, 0]],
    "attrs": {"mxnet_version": ["int", 10901]}}).encode()
# The minimal graph of Part 3.2: its head is the FullyConnected itself.
LL_SYMBOL_MINIMAL = json.dumps({"nodes": [
    {"op": "null", "name": "data", "inputs": []}, {"op": "null", "name": "fc0_weight", "inputs": []},
    {"op": "null", "name": "fc0_bias", "inputs": []},
    {"op": "FullyConnected", "name": "fc0", "attrs": {"num_hidden": "1"}, "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}],
    "arg_nodes": [0, 1, 2], "heads": [[3, 0, 0]]}).encode()
LL_PARAMS = ndarray_file([np.array([[1, 2, 3]], dtype=np.float32), np.array([0.5], dtype=np.float32)],
                         ["arg:fc0_weight", "arg:fc0_bias"])


def model_dir(tmp_path: Path, payload: bytes) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(payload)
    return folder


def answers(algorithm: str, folder: Path, rows: np.ndarray, content_type: str = "application/json") -> list[dict]:
    predictor = get_algorithm(algorithm).load(folder)
    if content_type == "text/csv":
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()
    else:
        body = json.dumps({"instances": [{"features": row.tolist()} for row in rows]}).encode()
    out, _ = predictor.invoke(body, content_type, "application/json")
    parsed = json.loads(out)
    return next(iter(parsed.values()))


# --- a model trained on SageMaker is served here ----------------------------------------------------


def test_kmeans_byom_artifact_is_served(tmp_path: Path) -> None:
    # The BYOM notebook: mx.ndarray.save("model_algo-1", [centroids]).
    centroids = np.array([[0, 0], [10, 10]], dtype=np.float32)
    folder = model_dir(tmp_path, ndarray_file([centroids]))
    got = answers("kmeans", folder, np.array([[1.0, 0.0], [9.0, 12.0]]), "text/csv")
    assert [a["closest_cluster"] for a in got] == [0, 1]
    assert got[1]["distance_to_cluster"] == pytest.approx(np.hypot(1, 2), rel=1e-6)
    assert artifacts.write_kmeans(centroids) == ndarray_file([centroids])


@pytest.mark.parametrize("s_shape", [(2,), (2, 1)])
def test_pca_artifact_is_served_and_written_alike(tmp_path: Path, s_shape: tuple[int, ...]) -> None:
    mean = np.array([[1, 2, 3]], dtype=np.float32)
    v = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.float32)
    s = np.array([1.0, 4.0], dtype=np.float32).reshape(s_shape)
    folder = model_dir(tmp_path, ndarray_file([mean, v, s], ["mean", "v", "s"]))
    got = answers("pca", folder, np.array([[2.0, 4.0, 9.0]]))
    assert got[0]["projection"] == pytest.approx([1.0, 2.0])  # (x - mean) @ v
    model = artifacts.read_pca((folder / MODEL_FILE).read_bytes())
    assert model.s.tolist() == [1.0, 4.0] and model.mean.tolist() == [1.0, 2.0, 3.0]
    assert model.explained_variance(5).tolist() == [0.25, 4.0]
    if s_shape == (2,):
        assert artifacts.write_pca(model) == ndarray_file([mean, v, s], ["mean", "v", "s"])


def test_lda_artifact_is_served(tmp_path: Path) -> None:
    alpha = np.array([0.1, 0.1], dtype=np.float32)
    beta = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]], dtype=np.float32)
    folder = model_dir(tmp_path, ndarray_file([alpha, beta]))
    got = answers("lda", folder, np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]]))
    mixtures = np.array([a["topic_mixture"] for a in got])
    assert mixtures[0].argmax() == 0 and mixtures[1].argmax() == 1 and mixtures.min() < 0.1
    assert artifacts.write_lda(artifacts.read_lda(ndarray_file([alpha, beta]))) == ndarray_file([alpha, beta])


def test_linear_learner_checkpoint_zip_is_served(tmp_path: Path) -> None:
    # The four members the book lists; manifest.json and additional-params.json of unknown content.
    payload = zip_of({"additional-params.json": b'{"something": "unknown"}', "manifest.json": b"{}",
                      "mx-mod-symbol.json": LL_SYMBOL_FROM_MXNET, "mx-mod-0000.params": LL_PARAMS})
    folder = model_dir(tmp_path, payload)
    got = answers("linear-learner", folder, np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]]))
    assert [a["score"] for a in got] == pytest.approx([6.5, 6.5])  # [1,2,3].x + 0.5


def test_linear_learner_of_unknown_kind_is_refused_clearly(tmp_path: Path) -> None:
    folder = model_dir(tmp_path, zip_of({"mx-mod-symbol.json": LL_SYMBOL_MINIMAL, "mx-mod-0000.params": LL_PARAMS}))
    with pytest.raises(AlgorithmError, match="cannot tell this linear-learner model's predictor type"):
        get_algorithm("linear-learner").load(folder)


def test_factorization_machines_zip_is_served(tmp_path: Path) -> None:
    v = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    w1 = np.array([[0.5], [-0.5], [0.0]], dtype=np.float32)
    params = ndarray_file([np.array([0.25], dtype=np.float32), w1, v], ["arg:w0_weight", "arg:w1_weight", "arg:v"])
    symbol = json.dumps({"nodes": [{"op": "null", "name": "fm", "inputs": []},
                                   {"op": "null", "name": "out_label", "inputs": []},
                                   {"op": "LinearRegressionOutput", "name": "out", "inputs": [[0, 0, 0], [1, 0, 0]]}],
                         "arg_nodes": [0, 1], "heads": [[2, 0, 0]]}).encode()
    folder = model_dir(tmp_path, zip_of({"symbol.json": symbol, "params": params}))
    x = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
    # w0 + x.w + sum_{i<j} <v_i, v_j> x_i x_j, pair by pair.
    gram = v.astype(np.float64) @ v.T.astype(np.float64)
    expected = [0.25 + row @ w1[:, 0] + sum(gram[i, j] * row[i] * row[j] for i in range(3) for j in range(i + 1, 3))
                for row in x]
    got = answers("factorization-machines", folder, x)
    assert [a["score"] for a in got] == pytest.approx(expected)


# --- a model trained here has SageMaker's layout ----------------------------------------------------


def test_linear_learner_and_fm_written_here_are_checkpoint_zips(tmp_path: Path) -> None:
    ll = module_artifacts.write_linear_learner(module_artifacts.LinearLearnerArtifact(
        weights=np.array([[1.0], [2.0], [3.0]]), bias=np.array([0.5]), predictor_type="regressor",
        loss="squared_loss"))
    with zipfile.ZipFile(io.BytesIO(ll)) as archive:
        assert {"mx-mod-symbol.json", "mx-mod-0000.params"} <= set(archive.namelist())
        assert archive.read("mx-mod-0000.params") == LL_PARAMS  # keys, shapes (outputs, d), float32
        graph = json.loads(archive.read("mx-mod-symbol.json"))
    assert graph["nodes"][graph["heads"][0][0]]["op"] == "LinearRegressionOutput"
    assert [n["name"] for n in graph["nodes"] if n["op"] == "null"] == ["data", "fc0_weight", "fc0_bias", "out_label"]
    assert ll == module_artifacts.write_linear_learner(module_artifacts.read_linear_learner(ll))  # stable bytes

    fm = module_artifacts.write_factorization_machines(module_artifacts.FMArtifact(
        w0=0.25, w=np.array([0.5, -0.5, 0.0]), v=np.array([[1, 0], [0, 1], [1, 1]]), predictor_type="binary_classifier"))
    with zipfile.ZipFile(io.BytesIO(fm)) as archive:
        expected = ndarray_file([np.array([0.25], dtype=np.float32), np.array([[0.5], [-0.5], [0.0]], dtype=np.float32),
                                 np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)],
                                ["arg:w0_weight", "arg:w1_weight", "arg:v"])
        assert archive.read("params") == expected
    assert module_artifacts.read_factorization_machines(fm).predictor_type == "binary_classifier"


# --- refusals ---------------------------------------------------------------------------------------


def test_a_truncated_artifact_is_refused_naming_the_offset(tmp_path: Path) -> None:
    data = ndarray_file([np.zeros((2, 2), dtype=np.float32)])
    folder = model_dir(tmp_path, data[:-12])  # cut inside the data (which starts at byte 64)
    with pytest.raises(AlgorithmError, match="kmeans model_algo-1: .*truncated.*at byte offset 64"):
        get_algorithm("kmeans").load(folder)


def test_another_algorithms_model_is_refused(tmp_path: Path) -> None:
    kmeans = model_dir(tmp_path, ndarray_file([np.zeros((2, 2), dtype=np.float32)]))
    with pytest.raises(AlgorithmError, match="a pca model_algo-1 is a dict"):
        get_algorithm("pca").load(kmeans)
    with pytest.raises(AlgorithmError, match="not the zip archive"):
        get_algorithm("linear-learner").load(kmeans)
    with pytest.raises(AlgorithmError, match="has no model_algo-1"):
        get_algorithm("lda").load(tmp_path / "nothing")
    with pytest.raises(ArtifactError, match="neither an MXNet NDArray file nor a zip"):
        artifacts.read_kmeans(b"\x93NUMPY" + bytes(10))  # the emulator's former .npz format
