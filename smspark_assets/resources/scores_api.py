"""The scores API as applications call it: ``GET /scores/{application_id}`` and ``GET /scores?ids=...``.

On AWS the API is API Gateway (``deploy/cloudformation/scores-api.yaml``); its base URL (with the stage,
e.g. ``https://abc123.execute-api.us-east-1.amazonaws.com/v1``) and an API key come from the environment:

* ``SMSPARK_SCORES_API_URL`` — the stack output ``ScoresApiUrl``;
* ``SMSPARK_SCORES_API_KEY`` — the value of the key ``ScoresApiKeyId``
  (``aws apigateway get-api-key --api-key <id> --include-value --query value --output text``).

Locally (``local_stack_root`` set) both come from the embedded stack, which serves the same API.
Reads follow the API's contract: 429 and 503 are retried with backoff, and ids a bulk read reports as
``unprocessed`` (DynamoDB's UnprocessedKeys) are asked for again.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from typing import Any, Iterable
from urllib.parse import quote

import dagster as dg
from pydantic import PrivateAttr

# A bulk read takes at most this many ids (one BatchGetItem).
MAX_IDS_PER_REQUEST = 100
_RETRYABLE = (429, 503)


class ScoresApiError(RuntimeError):
    """The API answered an error that retrying does not fix (or kept answering a retryable one)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ScoresApiResource(dg.ConfigurableResource):
    """Where the scores API is and its key; ``get_score``/``get_scores`` call it."""

    url: str | None = None
    api_key: str | None = None
    # The state root of the embedded stack ("local" environment): URL and key are read from the stack.
    local_stack_root: str | None = None
    region_name: str = "us-east-1"
    timeout_seconds: float = 10.0
    max_attempts: int = 6

    _endpoint: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    def endpoint(self) -> tuple[str, str]:
        """``(base URL, API key)``."""
        if not self._endpoint:
            if self.local_stack_root is not None:
                from smspark_assets.resources.local_stack import scores_api_access

                self._endpoint.append(scores_api_access(self.local_stack_root, self.region_name))
            else:
                if not self.url or not self.api_key:
                    raise ValueError("the scores API needs its URL and key: set SMSPARK_SCORES_API_URL and "
                                     "SMSPARK_SCORES_API_KEY (outputs of deploy/cloudformation/scores-api.yaml)")
                self._endpoint.append((self.url.rstrip("/"), self.api_key))
        return self._endpoint[0]

    def _get(self, path: str) -> tuple[int, Any]:
        """One GET with retries of 429/503 (exponential backoff with jitter); ``(status, JSON body)``."""
        base, key = self.endpoint()
        status, body = 0, None
        for attempt in range(self.max_attempts):
            request = urllib.request.Request(base + path, headers={"x-api-key": key, "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"message": raw.decode("utf-8", "replace")}
            if status not in _RETRYABLE:
                return status, body
            time.sleep(min(5.0, 0.1 * 2 ** attempt) * (0.5 + random.random()))
        raise ScoresApiError(f"GET {path}: still {status} after {self.max_attempts} attempts: {body}", status)

    def get_score(self, application_id: str) -> dict[str, Any] | None:
        """The latest score of ``application_id``; None when the API has none (404)."""
        status, body = self._get(f"/scores/{quote(application_id, safe='')}")
        if status == 200:
            return body
        if status == 404:
            return None
        raise ScoresApiError(f"GET /scores/{application_id}: {status} {body}", status)

    def get_scores(self, application_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The latest score of each id that has one (ids without are absent), 100 ids per request."""
        ids = list(dict.fromkeys(application_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
            pending = ids[start:start + MAX_IDS_PER_REQUEST]
            for attempt in range(self.max_attempts):
                status, body = self._get("/scores?ids=" + quote(",".join(pending), safe=","))
                if status != 200:
                    raise ScoresApiError(f"GET /scores?ids=...: {status} {body}", status)
                found.update({score["application_id"]: score for score in body["scores"]})
                pending = body["unprocessed"]
                if not pending:
                    break
                time.sleep(min(5.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
            else:
                raise ScoresApiError(f"{len(pending)} id(s) stayed unprocessed after {self.max_attempts} "
                                     f"attempts: {pending[:10]}", 503)
        return found
