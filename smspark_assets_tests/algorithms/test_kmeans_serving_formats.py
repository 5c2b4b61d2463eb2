"""Request parsing and response encoding shared by the first-party predictors (common_serving)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from smspark_assets.local.algorithms.base import BadRequest, UnsupportedContentType
from smspark_assets.local.algorithms.common_serving import Output, encode_response, negotiate, parse_request


def test_json_request_forms():
    single = parse_request(json.dumps({"features": [1, 2, 3]}).encode(), "application/json")
    assert single.shape == (1, 3)
    listed = parse_request(json.dumps([[1, 2, 3], [4, 5, 6]]).encode(), "application/json")
    np.testing.assert_array_equal(listed, [[1, 2, 3], [4, 5, 6]])
    nested = parse_request(json.dumps({"instances": [{"data": {"features": {"values": [1, 2, 3]}}}]}).encode(),
                           "application/json; charset=utf-8")
    np.testing.assert_array_equal(nested, [[1, 2, 3]])
    mixed = parse_request(json.dumps({"instances": [
        {"data": {"features": {"keys": [2], "shape": [3], "values": [7]}}}, {"features": [1, 0, 2]}]}).encode(),
        "application/json")
    assert sp.issparse(mixed)
    np.testing.assert_array_equal(mixed.toarray(), [[0, 0, 7], [1, 0, 2]])


def test_request_errors():
    with pytest.raises(BadRequest, match="disagree"):
        parse_request(json.dumps({"instances": [{"data": {"features": {"keys": [0], "shape": [3], "values": [1]}}},
                                                {"features": [1, 2]}]}).encode(), "application/json")
    with pytest.raises(BadRequest, match="no 'shape'"):
        parse_request(json.dumps({"data": {"features": {"keys": [0], "values": [1]}}}).encode(), "application/json")
    with pytest.raises(BadRequest, match="outside"):
        parse_request(json.dumps({"data": {"features": {"keys": [5], "shape": [3], "values": [1]}}}).encode(),
                      "application/json")
    with pytest.raises(BadRequest, match="same length"):
        parse_request(json.dumps([[1, 2], [3]]).encode(), "application/json")
    with pytest.raises(BadRequest, match="no features"):
        parse_request(json.dumps({"instances": [{"x": 1}]}).encode(), "application/json")
    with pytest.raises(BadRequest, match="NaN"):
        parse_request(b"[[1, NaN]]", "application/json")
    with pytest.raises(BadRequest, match="must be a number"):
        parse_request(b"1,nan", "text/csv")
    with pytest.raises(BadRequest, match="not JSON"):
        parse_request(b'{"features": [1]}\n{oops', "application/jsonlines")
    with pytest.raises(UnsupportedContentType):
        parse_request(b"1", "text/csv", accepted=("application/json",))


def test_csv_request_label_size_drops_leading_columns():
    x = parse_request(b"9,1,2\n8,3,4\n", "text/csv; label_size=1")
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    with pytest.raises(BadRequest, match="no features left"):
        parse_request(b"9\n", "text/csv;label_size=1")


def test_negotiate_accept_lists():
    offered = ("application/json", "text/csv")
    assert negotiate("text/csv, application/json", offered) == "text/csv"
    assert negotiate("application/xml, text/csv;q=0.9", offered) == "text/csv"
    assert negotiate("application/*", offered) == "application/json"
    with pytest.raises(UnsupportedContentType) as info:
        negotiate("application/xml", offered)
    assert info.value.status == 406


def test_response_encodings_one_answer_per_record():
    outputs = [Output("score", np.array([[0.1, 0.9], [0.7, 0.3]])), Output("predicted_label", np.array([1, 0]))]
    body, ct = encode_response(outputs, "application/json")
    assert json.loads(body) == {"predictions": [{"score": [0.1, 0.9], "predicted_label": 1},
                                                {"score": [0.7, 0.3], "predicted_label": 0}]}
    body, _ = encode_response(outputs, "text/csv")
    assert body.decode().splitlines() == ["0.1,0.9,1", "0.7,0.3,0"]
    body, _ = encode_response(outputs, "application/jsonlines")
    assert [json.loads(line)["predicted_label"] for line in body.decode().splitlines()] == [1, 0]
