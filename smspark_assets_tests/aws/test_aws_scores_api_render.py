"""Issue 14: the bulk read's mapping templates are rendered without airspeed, byte for byte as airspeed
renders them (and with the same status), over generated requests and DynamoDB answers."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from smspark_assets.local.scores_api_render import render_batch_request, render_batch_response
from smspark_assets.local.scores_api_spec import Route, load_spec
from smspark_assets.local.scores_api_vtl import VelocityInput, escape_javascript, request_context

pytestmark = pytest.mark.timeout(120)

TABLE = "credit_scores_latest"
# Ids: valid ones, ones the id pattern refuses, and empty entries between commas.
GOOD = "ABCabc0189_.:-"
BAD = ["a b", "a'b", 'a"b', "é1", "-lead", "x" * 129, "a/b", "a\\b", "a\n"]
# Attribute text that needs every kind of escaping, including astral characters (two \u escapes).
NASTY = ["plain", "it's", 'say "hi"', "a/b\\c", "tab\there", "line\nbreak\r\x00\x1f\x7f", "é中", "emoji 😀",
         "\\'", "''", "</script>", ""]


def _route() -> Route:
    return next(r for r in load_spec().routes if r.resource_path == "/scores")


def _context() -> dict[str, Any]:
    return request_context("r", "GET", "/scores", "/scores", "v1", "k", "kid", "127.0.0.1", "", "", 0)


def _reference_escape(text: Any) -> str:
    """Java's StringEscapeUtils.escapeJavaScript, one character at a time, as its documentation states."""
    out = []
    for char in str(text):
        code = ord(char)
        if char in "\"'\\/":
            out.append("\\" + char)
        elif char in "\b\n\t\f\r":
            out.append({"\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r"}[char])
        elif code < 32 or code > 0x7E:
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


def _random_id(rng: random.Random) -> str:
    return rng.choice(GOOD[:6]) + "".join(rng.choice(GOOD) for _ in range(rng.randint(0, 12)))


def _case(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A query string and the DynamoDB answer to it: some ids stored, some unprocessed, some missing."""
    ids = [_random_id(rng) for _ in range(rng.choice([0, 1, 2, 5, 30, 99, 100, 101, 120]))]
    ids += rng.sample(ids, k=min(len(ids), rng.randint(0, 3)))  # duplicates
    ids += [""] * rng.randint(0, 2)
    if rng.random() < 0.15:
        ids.append(rng.choice(BAD))
    rng.shuffle(ids)
    unique = list(dict.fromkeys(i for i in ids if i))
    stored, pending = [], []
    for key in unique:
        draw = rng.random()
        if draw < 0.6:
            item: dict[str, Any] = {"application_id": {"S": key}}
            for name in ("model_name", "model_version", "scored_at"):
                if rng.random() < 0.8:
                    item[name] = {"S": rng.choice(NASTY) + rng.choice(NASTY)}
            if rng.random() < 0.9:
                item["prediction"] = {"N": str(rng.choice([0, 1, 0.5, 1e-7, 0.123456789]))}
            if rng.random() < 0.9:
                item["dt"] = {"S": "2026-11-0" + str(rng.randint(1, 9))}
            stored.append(item)
        elif draw < 0.75:
            pending.append({"application_id": {"S": key}})
    rng.shuffle(stored)  # BatchGetItem answers in no particular order
    answer: dict[str, Any] = {"Responses": {TABLE: stored}, "UnprocessedKeys": {}}
    if pending:
        answer["UnprocessedKeys"] = {TABLE: {"Keys": pending}}
    return ",".join(ids), answer


def test_escape_is_javas_escape_javascript() -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0, 0x80)] + ["é", "中", "\u2028", "😀", "\U0010ffff"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert escape_javascript(text) == _reference_escape(text), repr(text)
    assert escape_javascript(None) == ""


def test_deployed_bulk_templates_have_direct_renderers() -> None:
    """A changed template loses its renderer (airspeed renders it, slowly): update scores_api_render.py."""
    route = _route()
    assert route.request_template.direct is render_batch_request
    assert route.response_for(200).template.direct is render_batch_response


def test_bulk_request_and_answer_are_airspeeds_byte_for_byte() -> None:
    route, spec = _route(), load_spec()
    request_template, response_template = route.request_template, route.response_for(200).template
    rng = random.Random(14)
    rendered_direct = 0
    for _ in range(400):
        query, answer = _case(rng)
        params = {"ids": query}
        ours, theirs = _context(), _context()
        direct = request_template.direct(VelocityInput("", {}, params, {}), ours, spec.stage_variables)
        expected = request_template.render_with_airspeed(VelocityInput("", {}, params, {}), theirs,
                                                         spec.stage_variables)
        assert direct == expected, query
        body = json.dumps(answer)
        direct = response_template.direct(VelocityInput(body, {}, params, {}), ours, spec.stage_variables)
        expected = response_template.render_with_airspeed(VelocityInput(body, {}, params, {}), theirs,
                                                          spec.stage_variables)
        assert direct == expected, (query, answer)
        assert ours["responseOverride"] == theirs["responseOverride"]
        rendered_direct += 1
    assert rendered_direct == 400


@pytest.mark.parametrize("answer", [
    {"Responses": {TABLE: [{"application_id": {"S": "a"}, "prediction": {"NULL": True}}]}},
    {"Responses": {TABLE: [{"application_id": {"S": "a"}, "model_name": {"N": "3"}}]}},
    {"Responses": {}},
    {"Responses": {TABLE: []}, "UnprocessedKeys": []},
    "not json",
])
def test_other_shapes_are_left_to_airspeed(answer: Any) -> None:
    """An answer the direct renderer does not know is rendered by airspeed, with the context untouched."""
    route, spec = _route(), load_spec()
    template = route.response_for(200).template
    body = answer if isinstance(answer, str) else json.dumps(answer)
    context = _context()
    before = json.dumps(context)
    assert template.direct(VelocityInput(body, {}, {"ids": "a,b"}, {}), context, spec.stage_variables) is None
    assert json.dumps(context) == before
    try:
        expected = template.render_with_airspeed(VelocityInput(body, {}, {"ids": "a,b"}, {}), _context(),
                                                 spec.stage_variables)
    except Exception as exc:  # noqa: BLE001 - then render() must fail the same way
        with pytest.raises(type(exc)):
            template.render(VelocityInput(body, {}, {"ids": "a,b"}, {}), _context(), spec.stage_variables)
    else:
        assert template.render(VelocityInput(body, {}, {"ids": "a,b"}, {}), _context(), spec.stage_variables) == expected
