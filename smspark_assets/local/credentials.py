"""The access key of one state root: generated once, stored 0600, required on every request.

``smspark local env`` prints it; the platform's resources read it through the stack starter. Another
local user cannot read the file, so cannot sign requests the stack accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from smspark_assets.local.layout import LocalLayout

_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


def _generate() -> Credentials:
    # Shaped like AWS's: 20-character access key ids, 40-character secrets.
    access = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return Credentials(access, secrets.token_urlsafe(30)[:40])


def load_or_create(layout: LocalLayout) -> Credentials:
    """The root's credentials, created (0600, atomically, first writer wins) when missing."""
    path = layout.credentials_json
    if not path.exists():
        layout.local_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(layout.local_dir, 0o700)
        creds = _generate()
        tmp = path.with_name(f".credentials.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"AccessKeyId": creds.access_key, "SecretAccessKey": creds.secret_key}, fh)
        try:
            os.link(tmp, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    doc = json.loads(Path(path).read_text())
    return Credentials(doc["AccessKeyId"], doc["SecretAccessKey"])


def role_credentials(root: Credentials, role_arn: str) -> Credentials:
    """The credentials a job or model running as ``role_arn`` gets, as AssumeRole would hand them out.

    Derived from the root secret (HMAC), so they are stable across restarts and never stored; the stack
    tells the role apart by the access key, which its action log records with the role's ARN.
    """
    digest = hmac.new(root.secret_key.encode(), f"role:{role_arn}".encode(), hashlib.sha256).digest()
    access = "ASIA" + base64.b32encode(digest[:10]).decode()[:16]
    secret = base64.urlsafe_b64encode(
        hmac.new(root.secret_key.encode(), f"secret:{role_arn}".encode(), hashlib.sha256).digest()).decode()[:40]
    return Credentials(access, secret)
