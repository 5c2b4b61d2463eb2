"""Every built-in algorithm's answers, in the documented bodies, -> the SageMaker-Spark SDK's columns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smspark_assets.sagemaker import recordio
from smspark_assets.sagemaker.deserializers import (
    ResponseMismatch, XGBoostCSVDeserializer, algorithm_columns, deserializer_for, to_arrow_columns,
)


def _pb(n: int, **labels) -> bytes:
    return recordio.encode_records(n, label={k: np.asarray(v, np.float32) for k, v in labels.items()})


def test_kmeans_protobuf_and_json() -> None:
    body = _pb(2, closest_cluster=[1.0, 0.0], distance_to_cluster=[3.0, 0.5])
    cols = deserializer_for("kmeans").deserialize(body, 2)
    assert cols["closest_cluster"].tolist() == [1.0, 0.0]
    assert cols["distance_to_cluster"].tolist() == [3.0, 0.5]
    doc = json.dumps({"predictions": [{"closest_cluster": 1.0, "distance_to_cluster": 3.0}]}).encode()
    cols = deserializer_for("kmeans", accept="application/json").deserialize(doc, 1)
    assert cols == {"closest_cluster": pytest.approx([1.0]), "distance_to_cluster": pytest.approx([3.0])}


@pytest.mark.parametrize("algo", ["linear-learner", "factorization-machines"])
def test_binary_classifier_score_and_predicted_label(algo: str) -> None:
    body = _pb(3, score=[0.4, 0.9, 0.1], predicted_label=[0, 1, 0])
    cols = deserializer_for(algo, predictor_type="binary_classifier").deserialize(body, 3)
    np.testing.assert_allclose(cols["score"], [0.4, 0.9, 0.1], rtol=1e-6)
    assert cols["predicted_label"].tolist() == [0, 1, 0]
    doc = b'{"predictions":[{"score":0.4,"predicted_label":0}]}'
    cols = deserializer_for(algo, "application/json", "binary_classifier").deserialize(doc, 1)
    assert cols["score"].tolist() == [0.4] and cols["predicted_label"].tolist() == [0.0]


@pytest.mark.parametrize("algo", ["linear-learner", "factorization-machines"])
def test_regressor_has_only_a_score(algo: str) -> None:
    assert algorithm_columns(algo, "regressor") == {"score": "scalar"}
    cols = deserializer_for(algo, predictor_type="regressor").deserialize(_pb(2, score=[1.5, -2.0]), 2)
    assert list(cols) == ["score"] and cols["score"].tolist() == [1.5, -2.0]
    doc = b'{"predictions":[{"score":0.4}]}'
    cols = deserializer_for(algo, "application/json", "regressor").deserialize(doc, 1)
    assert cols["score"].tolist() == [0.4]


def test_linear_learner_multiclass_score_is_a_vector() -> None:
    body = _pb(2, score=[[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], predicted_label=[1, 0])
    cols = deserializer_for("linear-learner", predictor_type="multiclass_classifier").deserialize(body, 2)
    assert cols["score"].shape == (2, 3)
    np.testing.assert_allclose(cols["score"][0], [0.1, 0.7, 0.2], rtol=1e-6)
    doc = b'{"predictions":[{"score":[0.1,0.2,0.7],"predicted_label":2}]}'
    cols = deserializer_for("linear-learner", "application/json", "multiclass_classifier").deserialize(doc, 1)
    assert cols["score"].tolist() == [[0.1, 0.2, 0.7]] and cols["predicted_label"].tolist() == [2.0]
    with pytest.raises(ValueError, match="predictor_type 'multiclass_classifier' is not one of"):
        deserializer_for("factorization-machines", predictor_type="multiclass_classifier")


def test_pca_projection_vector_and_projections_json_key() -> None:
    body = _pb(2, projection=[[1.0, 2.0], [3.0, 4.0]])
    assert deserializer_for("pca").deserialize(body, 2)["projection"].tolist() == [[1, 2], [3, 4]]
    doc = b'{"projections":[{"projection":[1.0,2.0]},{"projection":[3.0,4.0]}]}'
    assert deserializer_for("pca", "application/json").deserialize(doc, 2)["projection"].shape == (2, 2)


def test_one_element_tensors_stay_vectors() -> None:
    """PCA with one component, LDA with one topic: the column is still a vector (Spark SDK quirk 3)."""
    cols = deserializer_for("pca").deserialize(_pb(3, projection=[[0.5], [1.5], [2.5]]), 3)
    assert cols["projection"].shape == (3, 1)
    cols = deserializer_for("lda").deserialize(_pb(2, topic_mixture=[[1.0], [1.0]]), 2)
    assert cols["topic_mixture"].shape == (2, 1)
    doc = b'{"predictions":[{"topic_mixture":[1.0]}]}'
    assert deserializer_for("lda", "application/json").deserialize(doc, 1)["topic_mixture"].shape == (1, 1)


def test_lda_topic_mixture_and_jsonlines() -> None:
    body = _pb(1, topic_mixture=[[0.25, 0.75]])
    assert deserializer_for("lda").deserialize(body, 1)["topic_mixture"].tolist() == [[0.25, 0.75]]
    lines = b'{"topic_mixture":[0.25,0.75]}\n{"topic_mixture":[1.0,0.0]}\n'
    cols = deserializer_for("lda", "application/jsonlines").deserialize(lines, 2)
    assert cols["topic_mixture"].tolist() == [[0.25, 0.75], [1.0, 0.0]]


def test_sparse_response_tensors_are_densified_with_their_shape() -> None:
    body = recordio.encode_records(1, label={"projection": recordio.Sparse(
        np.array([2.0], np.float32), np.array([3]), np.array([0, 1]), 5)})
    assert deserializer_for("pca").deserialize(body, 1)["projection"].tolist() == [[0, 0, 0, 2, 0]]


def test_xgboost_csv_scalar_one_line_and_one_per_line() -> None:
    d = deserializer_for("xgboost")
    assert d.accept == "text/csv"
    assert d.deserialize(b"0.1,0.9,0.4", 3)["prediction"].tolist() == [0.1, 0.9, 0.4]
    assert d.deserialize(b"0.1\n0.9\n0.4\n", 3)["prediction"].tolist() == [0.1, 0.9, 0.4]


def test_xgboost_multi_softprob_vectors() -> None:
    d = XGBoostCSVDeserializer()
    per_line = d.deserialize(b"0.1,0.2,0.7\n0.6,0.3,0.1\n", 2)["prediction"]
    assert per_line.shape == (2, 3) and per_line[0].tolist() == [0.1, 0.2, 0.7]
    joined = d.deserialize(b"0.1,0.2,0.7,0.6,0.3,0.1", 2)["prediction"]
    np.testing.assert_array_equal(joined, per_line)
    fixed = XGBoostCSVDeserializer(output_dim=3)
    assert fixed.columns == {"prediction": "vector"}
    with pytest.raises(ResponseMismatch, match="expected 3 values per record"):
        fixed.deserialize(b"0.1,0.9", 2)
    js = deserializer_for("xgboost", "application/json", output_dim=3)
    assert js.deserialize(b'{"predictions":[{"score":[0.1,0.2,0.7]}]}', 1)["prediction"].shape == (1, 3)


def test_wrong_record_counts_are_errors_never_misalignment() -> None:
    with pytest.raises(ResponseMismatch, match="answered 2 records .* for 3 records sent"):
        deserializer_for("kmeans").deserialize(_pb(2, closest_cluster=[1, 2], distance_to_cluster=[1, 2]), 3)
    with pytest.raises(ResponseMismatch, match="answered 1 records in JSON for 2"):
        deserializer_for("pca", "application/json").deserialize(b'{"projections":[{"projection":[1]}]}', 2)
    with pytest.raises(ResponseMismatch, match="cannot be split evenly across 2 records"):
        deserializer_for("xgboost").deserialize(b"0.1,0.2,0.3", 2)
    with pytest.raises(ResponseMismatch, match="answered 3 records in CSV lines for 2"):
        deserializer_for("xgboost").deserialize(b"1\n2\n3\n", 2)


def test_missing_label_key_and_unknown_algorithm() -> None:
    with pytest.raises(ResponseMismatch, match="no label 'projection'"):
        deserializer_for("pca").deserialize(_pb(1, score=[1.0]), 1)
    with pytest.raises(ValueError, match="unknown built-in algorithm"):
        deserializer_for("random-cut-forest")
    with pytest.raises(ValueError, match="answers in"):
        deserializer_for("kmeans", accept="text/csv")


def test_columns_become_arrow_arrays_for_spark() -> None:
    body = _pb(2, score=[[0.1, 0.9], [0.6, 0.4]], predicted_label=[1, 0])
    cols = deserializer_for("linear-learner", predictor_type="multiclass_classifier").deserialize(body, 2)
    arrow = to_arrow_columns(cols)
    assert str(arrow["score"].type) == "list<item: double>"
    assert arrow["score"].to_pylist()[0] == pytest.approx([0.1, 0.9])
    assert arrow["predicted_label"].to_pylist() == [1.0, 0.0]
