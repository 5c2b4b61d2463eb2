"""Direct renderers for the scores API's bulk-read mapping templates: airspeed's output, without airspeed.

Rendering the bulk templates with airspeed (a tree-walking Velocity interpreter) costs about 0.3 ms per
item, 30 ms for a 100-id read: most of the request's time once DynamoDB answered. The two templates of
``GET /scores`` are fixed text in ``deploy/api/scores-openapi.yaml``, so each has a renderer here that
builds the same bytes with string operations, registered under the SHA-256 of the exact template text:

* a template whose text changed has no renderer and is rendered by airspeed, as before (correct, slower;
  ``smspark_assets_tests/aws/test_aws_scores_api_render.py`` then fails until its renderer is updated);
* an input outside the shapes the renderer knows (a DynamoDB answer that is not the table's typed items,
  a missing stage variable) returns None *before touching the context*, and airspeed renders it.

Equality with airspeed, byte for byte and including the status a template sets, is proven by that test
over generated ids and items (escaping, non-ASCII, duplicates, bad and empty ids, unprocessed keys).
Whitespace follows airspeed's: one newline per ``#foreach`` iteration over the ids, then the branch.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from smspark_assets.local.scores_api_vtl import VelocityInput, escape_javascript

# (input, context, stage variables) -> the rendered text, or None: "not handled, render with airspeed".
DirectRenderer = Callable[[VelocityInput, dict[str, Any], dict[str, str]], str | None]

# The id pattern of the templates' ``$id.matches(...)`` (and of the OpenAPI schema).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_MAX_IDS = 100
_PROJECTION = ('  "ProjectionExpression": "#i, #p, #m, #v, #s, #d",\n'
               '  "ExpressionAttributeNames": {"#i": "application_id", "#p": "prediction", "#m": "model_name",\n'
               '                               "#v": "model_version", "#s": "scored_at", "#d": "dt"}}}}\n')
_BAD_IDS = ('{"message": "ids must be 1 to 100 comma-separated application ids of 1 to 128 characters: '
            'letters, digits, _ . : - (starting with a letter or digit)"}\n')


def _ids(input_: VelocityInput) -> tuple[int, list[str], bool] | None:
    """The templates' ``#foreach`` over ``ids``: (parts iterated, unique good ids in order, any bad id)."""
    raw = input_.params("ids")
    if not isinstance(raw, str):
        return None
    parts = raw.split(",")
    keys = list(dict.fromkeys(part for part in parts if part != ""))
    bad = any(_ID.fullmatch(part) is None for part in keys)
    if bad:
        keys = [part for part in keys if _ID.fullmatch(part) is not None]
    return len(parts), keys, bad


def _usable(bad: bool, keys: list[str]) -> bool:
    return not bad and 0 < len(keys) <= _MAX_IDS


def render_batch_request(input_: VelocityInput, context: dict[str, Any], stage_variables: dict[str, str]) -> str | None:
    """The BatchGetItem request of ``GET /scores?ids=...``."""
    table = stage_variables.get("tableName")
    found = _ids(input_)
    if not isinstance(table, str) or found is None:
        return None
    parts, keys, bad = found
    if not _usable(bad, keys):
        return "\n" * (parts + 1) + '{"RequestItems": {}}\n'
    listed = ",".join(f'{{"application_id": {{"S": "{key}"}}}}' for key in keys)
    return "\n" * parts + f'{{"RequestItems": {{"{table}": {{\n  "Keys": [{listed}],\n' + _PROJECTION


class _OtherShape(Exception):
    """An item this renderer does not know how the template would write: airspeed renders the answer."""


def _text(item: dict[str, Any], name: str) -> str:
    """``"<escaped S>"`` of attribute ``name``, or ``null`` when the item lacks it."""
    value = item.get(name)
    if value is None:
        return "null"
    if not isinstance(value, dict) or not isinstance(value.get("S"), str):
        raise _OtherShape(name)
    # $util.escapeJavaScript(...).replaceAll("\\'", "'"): JSON has no \' escape.
    return '"' + escape_javascript(value["S"]).replace("\\'", "'") + '"'


def _raw(item: dict[str, Any], name: str, kind: str) -> str | None:
    """The ``kind`` value of attribute ``name`` as stored (the template writes it unescaped), or None."""
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get(kind), str):
        raise _OtherShape(name)
    return value[kind]


def _score(item: dict[str, Any]) -> str:
    """One element of ``scores``, as the template writes it."""
    if "application_id" not in item:
        raise _OtherShape("application_id")
    prediction, day = _raw(item, "prediction", "N"), _raw(item, "dt", "S")
    day_text = f'"{day}"' if day is not None else "null"
    return (f'\n  {{"application_id": {_text(item, "application_id")},\n'
            f'   "prediction": {prediction if prediction is not None else "null"},\n'
            f'   "model_name": {_text(item, "model_name")},\n'
            f'   "model_version": {_text(item, "model_version")},\n'
            f'   "scored_at": {_text(item, "scored_at")},\n'
            f'   "dt": {day_text}}}')


def _key_id(key: Any) -> str | None:
    if isinstance(key, dict):
        value = key.get("application_id")
        if isinstance(value, dict) and isinstance(value.get("S"), str):
            return value["S"]
    return None


def render_batch_response(input_: VelocityInput, context: dict[str, Any], stage_variables: dict[str, str]) -> str | None:
    """The answer of ``GET /scores?ids=...`` from DynamoDB's BatchGetItem answer (status 200)."""
    table = stage_variables.get("tableName")
    found_ids = _ids(input_)
    if not isinstance(table, str) or found_ids is None:
        return None
    parts, keys, bad = found_ids
    if not _usable(bad, keys):
        context["responseOverride"]["status"] = 400
        return "\n" * parts + _BAD_IDS
    root = input_.path("$")
    if not isinstance(root, dict) or not isinstance(root.get("Responses"), dict):
        return None
    items = root["Responses"].get(table)
    if not isinstance(items, list):
        return None
    found: dict[str, str] = {}
    for item in items:
        key = _key_id(item)
        if key is None:
            return None
        try:
            found[key] = _score(item)
        except _OtherShape:
            return None
    pending: set[str] = set()
    if "UnprocessedKeys" in root:
        unprocessed = root["UnprocessedKeys"]
        if not isinstance(unprocessed, dict):
            return None
        if table in unprocessed:
            entry = unprocessed[table]
            listed = entry.get("Keys") if isinstance(entry, dict) else None
            if not isinstance(listed, list):
                return None
            for key in listed:
                name = _key_id(key)
                if name is None:
                    return None
                pending.add(name)
    scores = ",".join(found[key] for key in keys if key in found)
    missing = ",".join(f'"{key}"' for key in keys if key not in found and key not in pending)
    unprocessed_ids = ",".join(f'"{key}"' for key in keys if key in pending)
    return ("\n" * (parts + 1) + f'{{"scores": [{scores}],\n "missing": [{missing}],\n'
            f' "unprocessed": [{unprocessed_ids}]}}\n')


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


# SHA-256 of each template's exact text (deploy/api/scores-openapi.yaml) -> its renderer.
_RENDERERS: dict[str, DirectRenderer] = {
    "6e958d61113d09a581321365d2e98954af7f934b8342c04be8cbb4c9d2963576": render_batch_request,   # GET /scores request
    "1c689c710bac1fc021038b145dae77d63fd672279177144f5dc324b0fd3e38bd": render_batch_response,  # GET /scores 200
}


def direct_renderer(source: str) -> DirectRenderer | None:
    """The renderer of the template whose text is ``source``, or None (airspeed renders it)."""
    return _RENDERERS.get(_digest(source))
