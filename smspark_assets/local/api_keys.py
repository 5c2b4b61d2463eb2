"""The scores API's key of one state root: generated once, stored 0600, required on every API request.

The local counterpart of an API Gateway API key in the usage plan of the API's stage (see
``deploy/cloudformation/scores-api.yaml``). ``smspark local env`` prints it; the platform's
``ScoresApiResource`` reads it through the stack starter. Another local user cannot read the file, so
cannot call the API.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass

from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.private_files import private_dir

_ALPHANUMERIC = string.ascii_letters + string.digits
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class ApiKey:
    """``key_id`` names the key in logs (``$context.identity.apiKeyId``); ``value`` is the secret sent as
    ``x-api-key``."""

    key_id: str
    value: str


def api_key_path(layout: LocalLayout):  # -> Path
    return layout.local_dir / "scores-api-key.json"


def _generate() -> ApiKey:
    # Shaped like API Gateway's: a 10-character id, a 40-character alphanumeric value.
    return ApiKey("".join(secrets.choice(_ID_ALPHABET) for _ in range(10)),
                  "".join(secrets.choice(_ALPHANUMERIC) for _ in range(40)))


def load_or_create_api_key(layout: LocalLayout) -> ApiKey:
    """The root's API key, created (0600, atomically, first writer wins) when missing."""
    path = api_key_path(layout)
    if not path.exists():
        private_dir(layout.local_dir)
        key = _generate()
        tmp = path.with_name(f".scores-api-key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"id": key.key_id, "value": key.value}, fh)
        try:
            os.link(tmp, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    doc = json.loads(path.read_text())
    return ApiKey(doc["id"], doc["value"])
