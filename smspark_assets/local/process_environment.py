"""The environment of the processes the service starts for users: training workers, model servers.

Two rules keep a request from choosing what those processes run:

* **Environment maps are checked at create** (CreateTrainingJob, CreateModel's containers,
  CreateTransformJob): keys and values as SageMaker's service model allows them, and never a variable
  that makes an interpreter, the dynamic loader or a shell load or run something (``PYTHON*``, ``LD_*``,
  ``BASH_ENV``, ``BROWSER``, ...). The request is refused with a ``ValidationException`` naming the key,
  before anything exists.
* **A child's environment is built from an allow-list**: the few variables of the service's own
  environment a process needs to run (``PATH``, ``HOME``, locale, thread counts, ...), then the user's
  checked map, then what the container contract sets (``SM_*``, the stack's endpoint), which always wins.
  Nothing else of the service's environment (its credentials, its interpreter settings) reaches a job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from smspark_assets.local.api_errors import ApiError, validation

# Every process the service starts creates private files (the state folder is 0700, its files 0600).
PRIVATE_UMASK = 0o077

# Of the service's own environment, only these reach a child (names, then prefixes).
INHERITED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "JAVA_HOME", "VIRTUAL_ENV",
    "PYTHONDONTWRITEBYTECODE", "SMSPARK_ENV", "SMSPARK_RECORDIO_NUMBA", "AWS_REGION", "AWS_DEFAULT_REGION",
})  # fmt: skip
# Locale and thread-count settings of the operator (a 2-core laptop sets OMP_NUM_THREADS=1, say).
INHERITED_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "NUMBA_")

# Variables no request may set: each makes an interpreter, the loader, a shell or a library load or run
# code or files the request names, or redirects where the process reads its settings and credentials.
# Compared case-insensitively (``http_proxy`` is read as well as ``HTTP_PROXY``).
DENIED_NAMES = frozenset({
    "BASH_ENV", "ENV", "BROWSER", "PERLLIB", "RUBYOPT", "RUBYLIB", "CLASSPATH", "IFS", "PATH", "HOME",
    "SHELL", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "GCONV_PATH", "LOCPATH", "NLSPATH",
    "HOSTALIASES", "RESOLV_HOST_CONF", "TMPDIR", "EDITOR", "VISUAL", "PAGER", "TERMINFO", "TERMINFO_DIRS",
    "MPLBACKEND", "MPLCONFIGDIR", "IPYTHONDIR", "VIRTUAL_ENV", "CONDA_PREFIX", "SSL_CERT_FILE",
    "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "WGETRC", "CURL_HOME",
})  # fmt: skip
DENIED_PREFIXES = (
    "PYTHON",  # PYTHONSTARTUP, PYTHONPATH, PYTHONWARNINGS (imports a module), PYTHONHOME, PYTHONBREAKPOINT
    "LD_", "DYLD_", "GLIBC_", "MALLOC_",  # the dynamic loader and glibc tunables
    "PERL5", "NODE_", "JAVA_", "_JAVA_", "JDK_", "PYSPARK_", "SPARK_", "HADOOP_", "GIT_",  # other runtimes
    "BASH_FUNC_", "NUMBA_", "XDG_", "JUPYTER_",  # exported functions, JIT caches, config folders
    "SMSPARK_",  # the service's own control variables (state root, parent pid)
)  # fmt: skip
DENIED_SUFFIXES = ("_PROXY",)  # HTTP(S)_PROXY would send the job's requests through a host the request names
# AWS_* are set by the stack (endpoint, credentials, config files); the region is the caller's choice.
ALLOWED_AWS = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION"})

KEY_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class MapLimits:
    """SageMaker's limits of one Environment map (botocore's service model for the operation)."""

    max_entries: int
    max_key: int
    max_value: int


# TrainingEnvironmentMap, EnvironmentMap (ContainerDefinition), TransformEnvironmentMap.
TRAINING_LIMITS = MapLimits(max_entries=100, max_key=512, max_value=512)
CONTAINER_LIMITS = MapLimits(max_entries=100, max_key=1024, max_value=1024)
TRANSFORM_LIMITS = MapLimits(max_entries=16, max_key=1024, max_value=10240)


def denied_reason(key: str) -> str | None:
    """Why ``key`` may not be set by a request, or ``None`` when it may."""
    upper = key.upper()
    if upper.startswith("AWS_") and upper not in ALLOWED_AWS:
        return "AWS_* variables are set by the platform (endpoint, credentials, configuration files)"
    if (upper in DENIED_NAMES or upper.startswith(DENIED_PREFIXES) or upper.endswith(DENIED_SUFFIXES)):
        return ("it changes what an interpreter, the dynamic loader or a shell loads or runs, or where the "
                "process reads its settings")
    return None


def check_environment(env: Any, member: str, limits: MapLimits) -> dict[str, str]:
    """The Environment map of a create request, checked; raises a ``ValidationException`` naming the key.

    ``member`` is where the map is in the request as AWS names it (``environment``,
    ``primaryContainer.environment``).
    """
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise validation(f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                         "Member must be a map of strings to strings")
    if len(env) > limits.max_entries:
        raise validation(
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must "
            f"have length less than or equal to {limits.max_entries} (it has {len(env)} entries)")
    for key, value in env.items():
        if not KEY_RE.fullmatch(key) or len(key) > limits.max_key:
            raise validation(
                f"1 validation error detected: Value '{key[:64]}' at '{member}' failed to satisfy "
                f"constraint: Map keys must satisfy constraint: [Member must satisfy regular expression "
                f"pattern: {KEY_RE.pattern}, Member must have length less than or equal to {limits.max_key}]")
        if not isinstance(value, str):
            raise validation(f"1 validation error detected: Value of '{key}' at '{member}' failed to satisfy "
                             "constraint: Map values must be strings")
        if len(value) > limits.max_value:
            raise validation(
                f"1 validation error detected: Value of '{key}' at '{member}' failed to satisfy constraint: "
                f"Map values must have length less than or equal to {limits.max_value}")
        reason = denied_reason(key)
        if reason is not None:
            raise validation(f"Environment variable '{key}' at '{member}' is not allowed: {reason}.")
    return dict(env)


def checked_or_error(env: Any, member: str, limits: MapLimits) -> dict[str, str]:
    """:func:`check_environment` for maps stored before the check existed: a refused map is an error the
    job or endpoint reports (its FailureReason), never passed to a process."""
    try:
        return check_environment(env, member, limits)
    except ApiError as exc:
        raise ValueError(exc.message) from None


def child_environment(
    user: Mapping[str, str] | None = None,
    contract: Mapping[str, str] | None = None,
    parent: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a child process: the allow-listed part of ``parent`` (default: this process's),
    then the (already checked) ``user`` map, then ``contract``, which wins."""
    parent = os.environ if parent is None else parent
    env = {k: v for k, v in parent.items() if k in INHERITED_NAMES or k.startswith(INHERITED_PREFIXES)}
    for key, value in (user or {}).items():
        if denied_reason(key) is None:  # defence in depth: checked at create, checked again here
            env[str(key)] = str(value)
    env.update(contract or {})
    return env
