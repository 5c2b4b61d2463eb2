"""Type checks of JSON request parameters against botocore's service model, before an API sees them.

AWS answers a request whose members have the wrong JSON type (``TrainingJobName: 5``,
``HyperParameters: []``) with a 400 ``SerializationException`` before any handler runs. The local APIs
trust the shapes botocore would have sent, so a raw request with wrong types used to reach them and fail
with a ``TypeError`` (answered 500). :func:`check_params` walks the operation's input shape (structures,
lists, maps, strings, numbers, booleans, timestamps, blobs), recursively, and raises the 400 first.

Only types are checked here: lengths, patterns and enums are the APIs' own business (they answer
``ValidationException`` with SageMaker's wording).
"""

from __future__ import annotations

import functools
from typing import Any

from smspark_assets.local.api_errors import ApiError

# JSON type names for messages ("expected a string, got a number").
_JSON_NAMES = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
               dict: "an object", type(None): "null"}


@functools.lru_cache(maxsize=8)
def _service_model(service: str) -> Any:
    """botocore's model of ``service`` (loading it costs ~100 ms: once per process)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@functools.lru_cache(maxsize=1024)
def input_shape(service: str, operation: str) -> Any:
    """The input shape of ``service``'s ``operation``, or ``None`` when the model does not know it (the API
    then answers its own UnknownOperation error). Cached per operation."""
    from botocore.model import OperationNotFoundError

    try:
        return _service_model(service).operation_model(operation).input_shape
    except (OperationNotFoundError, KeyError, ValueError):
        return None


def _describe(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _fail(path: str, expected: str, value: object) -> ApiError:
    return ApiError("SerializationException",
                    f"{path or 'the request body'} must be {expected}, got {_describe(value)}", 400)


def _check(shape: Any, value: object, path: str, depth: int) -> None:
    """Raise the first type mismatch under ``value`` (``path`` names it as a user would: ``A.B[0].C``)."""
    if depth > 64:  # botocore's models nest a few levels; deeper input is an attack on the recursion
        raise ApiError("SerializationException", f"{path} is nested too deeply", 400)
    kind = shape.type_name
    if value is None:
        return  # JSON null for an optional member: AWS treats it as absent
    if kind == "structure":
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        members = shape.members
        for key, item in value.items():
            member = members.get(key)
            if member is not None:  # unknown members are ignored, as the JSON protocol does
                _check(member, item, f"{path}.{key}" if path else key, depth + 1)
    elif kind == "list":
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", depth + 1)
    elif kind == "map":
        if not isinstance(value, dict):
            raise _fail(path, "an object (a map)", value)
        for key, item in value.items():
            _check(shape.value, item, f"{path}.{key}", depth + 1)
    elif kind in ("string", "blob"):
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
    elif kind in ("integer", "long"):
        # bool is an int in Python, not in JSON; a float with no fraction is what some clients send.
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float)
                                                                      and value.is_integer())):
            raise _fail(path, "an integer", value)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "a number", value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(path, "a boolean", value)
    elif kind == "timestamp":
        # JSON 1.1 sends epoch seconds; ISO 8601 strings are accepted by the services too.
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _fail(path, "a timestamp (epoch seconds)", value)


def check_params(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise ``ApiError(SerializationException, 400)`` when a member of ``params`` has the wrong JSON type
    for ``service``'s ``operation`` (botocore's model names: ``"sagemaker"``, ``"glue"``, ...)."""
    shape = input_shape(service, operation)
    if shape is not None:
        _check(shape, params, "", 0)
