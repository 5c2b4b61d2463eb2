"""API Gateway's mapping-template language, locally: Velocity (airspeed-ext) with ``$input``, ``$util``,
``$context`` and ``$stageVariables`` as API Gateway defines them.

The templates are the ones in ``deploy/api/scores-openapi.yaml``, which API Gateway runs on AWS; this
module only supplies the variables API Gateway puts in scope (the "API Gateway mapping template and
access logging variable reference"):

* ``$input.params()`` (map of ``path``/``querystring``/``header``), ``$input.params('x')`` (path, then
  query string, then header), ``$input.path('$.a.b')`` (an object), ``$input.json('$.a')`` (JSON text),
  ``$input.body``;
* ``$util.escapeJavaScript`` (Java's ``StringEscapeUtils.escapeJavaScript``: ``'`` becomes ``\\'``, as on
  AWS), ``parseJson``, ``urlEncode``/``urlDecode``, ``base64Encode``/``base64Decode``;
* ``$context``: request id, method, resource path, stage, identity (API key, source IP),
  ``responseOverride.status``/``header`` (read back after rendering), ``error.message[String]`` for
  gateway responses.

Maps answer Java's ``Map`` methods that API Gateway templates use (``containsKey``, ``isEmpty``, ``size``):
API Gateway's maps are Java maps, so templates written for it call them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any, Callable
from urllib.parse import quote, unquote_plus

from functools import lru_cache

# `$.a.b`, `$['a'].b`, `$.a[0]`: the JSONPath subset API Gateway templates use.
_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]")


@lru_cache(maxsize=1)
def _airspeed() -> Any:
    """The Velocity engine (``airspeed-ext``, imported on first use: the rest of the stack runs without it)."""
    try:
        import airspeed
        from airspeed import operators
    except ImportError as exc:  # pragma: no cover - a missing dependency, reported to the caller
        raise TemplateError("the scores API needs the airspeed-ext package (pip install 'airspeed-ext==0.6.9')") from exc
    # Java's Map methods on the dicts templates build ({} literals) and read ($input.path): added to
    # airspeed's table of Java-compatible methods, without replacing any it defines.
    for name, method in {
        "containsKey": lambda self, key: key in self,
        "isEmpty": lambda self: len(self) == 0,
        "size": lambda self: len(self),
    }.items():
        operators.__additional_methods__[dict].setdefault(name, method)
    return airspeed


class TemplateError(ValueError):
    """A template could not be parsed or rendered (API Gateway answers 500 Internal server error)."""


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$``, ``$.a.b``, ``$['a']``, ``$.a[0]``) in ``document``, else None."""
    if not path.startswith("$"):
        raise TemplateError(f"JSONPath must start with '$': {path!r}")
    value, position = document, 1
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise TemplateError(f"unsupported JSONPath {path!r}")
        name, quoted, index = match.groups()
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            value = value.get(name if name is not None else quoted) if isinstance(value, dict) else None
        if value is None:
            return None
        position = match.end()
    return value


class VelocityInput:
    """``$input``: the request parameters and the body being mapped (the request's, or the integration's
    answer in a response template)."""

    def __init__(self, body: str, path: dict[str, str], querystring: dict[str, str], header: dict[str, str]) -> None:
        self.body = body
        self._params = {"path": path, "querystring": querystring, "header": header}
        self._parsed: Any = None
        self._parsed_done = False

    def _document(self) -> Any:
        if not self._parsed_done:
            try:
                self._parsed = json.loads(self.body) if self.body else {}
            except ValueError:
                self._parsed = None
            self._parsed_done = True
        return self._parsed

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring"):
            if name in self._params[where]:
                return self._params[where][name]
        # Header names are case-insensitive (the map keeps the client's spelling).
        lowered = name.lower()
        for key, value in self._params["header"].items():
            if key.lower() == lowered:
                return value
        return None

    def path(self, expression: str) -> Any:
        return json_path(self._document(), expression)

    def json(self, expression: str) -> str:
        return json.dumps(json_path(self._document(), expression), separators=(",", ":"))


# Java's StringEscapeUtils.escapeJavaScript for the ASCII range (str.translate: one C-level pass).
_JS_ESCAPES: dict[int, str] = {code: f"\\u{code:04X}" for code in (*range(32), 0x7F)}
_JS_ESCAPES.update({ord(c): "\\" + c for c in "\"'\\/"})
_JS_ESCAPES.update({8: "\\b", 10: "\\n", 9: "\\t", 12: "\\f", 13: "\\r"})
_JS_PLAIN = re.compile(r"[ !#-&(-.0-\[\]-~]*")  # printable ASCII but for quotes, / and backslash: nothing to escape
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _unicode_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # Java strings are UTF-16: one escape per surrogate
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04X}"


def escape_javascript(text: Any) -> str:
    """Java's ``StringEscapeUtils.escapeJavaScript`` (commons-lang 2), which ``$util.escapeJavaScript`` is:
    quotes, backslash and ``/`` escaped, control characters and everything past ASCII as ``\\uXXXX``."""
    if text is None:
        return ""
    value = str(text)
    if _JS_PLAIN.fullmatch(value):
        return value
    value = value.translate(_JS_ESCAPES)
    return value if value.isascii() else _NON_ASCII.sub(_unicode_escape, value)


class VelocityUtil:
    """``$util``."""

    @staticmethod
    def escapeJavaScript(text: Any) -> str:  # noqa: N802 - API Gateway's name
        return escape_javascript(text)

    @staticmethod
    def parseJson(text: str) -> Any:  # noqa: N802
        return json.loads(text)

    @staticmethod
    def urlEncode(text: str) -> str:  # noqa: N802
        return quote(str(text), safe="-_.*").replace("%20", "+")

    @staticmethod
    def urlDecode(text: str) -> str:  # noqa: N802
        return unquote_plus(str(text))

    @staticmethod
    def base64Encode(text: str) -> str:  # noqa: N802
        return base64.b64encode(str(text).encode()).decode()

    @staticmethod
    def base64Decode(text: str) -> str:  # noqa: N802
        return base64.b64decode(str(text)).decode()


_UTIL = VelocityUtil()


class CompiledTemplate:
    """One mapping template, parsed once (parsing costs more than rendering).

    ``direct``: a renderer that produces airspeed's output for this exact text without airspeed (see
    :mod:`.scores_api_render`); it answers None for inputs it does not handle, which airspeed renders.
    """

    def __init__(self, source: str, name: str,
                 direct: Callable[[VelocityInput, dict[str, Any], dict[str, str]], str | None] | None = None) -> None:
        self.source = source
        self.name = name
        self.direct = direct
        self._template = _airspeed().Template(source, filename=name)
        self._lock = threading.Lock()
        self._compiled = False

    def render(self, input_: VelocityInput, context: dict[str, Any], stage_variables: dict[str, str]) -> str:
        """The template's output; ``context`` is changed in place (``responseOverride``)."""
        if self.direct is not None:
            out = self.direct(input_, context, stage_variables)
            if out is not None:
                return out
        return self.render_with_airspeed(input_, context, stage_variables)

    def render_with_airspeed(self, input_: VelocityInput, context: dict[str, Any],
                             stage_variables: dict[str, str]) -> str:
        """The template's output from airspeed (what :attr:`direct` is proven equal to)."""
        if not self._compiled:
            with self._lock:  # airspeed compiles lazily and is not safe to compile from two threads
                self._template.ensure_compiled()
                self._compiled = True
        namespace = {"input": input_, "util": _UTIL, "context": context, "stageVariables": stage_variables}
        try:
            return self._template.merge(namespace)
        except _airspeed().operators.TemplateError as exc:
            raise TemplateError(f"mapping template {self.name}: {exc}") from exc


def request_context(request_id: str, method: str, resource_path: str, path: str, stage: str, api_key: str,
                    api_key_id: str, source_ip: str, user_agent: str, request_time: str,
                    request_time_epoch: int) -> dict[str, Any]:
    """``$context`` for one request (with an empty ``responseOverride`` the templates may fill)."""
    return {
        "requestId": request_id, "extendedRequestId": request_id, "httpMethod": method,
        "resourcePath": resource_path, "path": path, "stage": stage, "apiId": "local",
        "protocol": "HTTP/1.1", "requestTime": request_time, "requestTimeEpoch": request_time_epoch,
        "identity": {"apiKey": api_key, "apiKeyId": api_key_id, "sourceIp": source_ip, "userAgent": user_agent},
        "responseOverride": {"status": None, "header": {}},
        "error": {"message": "", "messageString": '""', "responseType": ""},
    }
