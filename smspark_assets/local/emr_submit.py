"""What a StartJobRun's ``sparkSubmit`` driver asks for, parsed and checked before anything runs.

``sparkSubmitParameters`` is a shell-like string (parsed with :mod:`shlex`, never run by a shell). Each
``--conf K=V`` is split on the FIRST ``=`` (dagster's base64 values contain ``=``).

The safety rule (the request chooses what Spark computes, never which programs, interpreters or local
files run it):

* ``spark.emr-serverless.driverEnv.K=V`` becomes the driver's environment and ``spark.executorEnv.K=V``
  the executors'; ``K`` must be a plain name (``[A-Za-z_][A-Za-z0-9_]*``) and not an interpreter, loader,
  shell or toolchain variable (:data:`REFUSED_ENV_PREFIXES`, :data:`REFUSED_ENV_NAMES`) nor one the service
  sets itself (``AWS_*``, ``SPARK_*``, ``PYSPARK_*``, ``SMSPARK_EMRFS_ROOT``).
* Files come from the store only: ``--py-files``, ``--jars``, ``--files``, ``spark.submit.pyFiles``,
  ``spark.jars`` and ``spark.files`` must list ``s3://`` objects, which are copied into the job's folder.
* Refused outright (:data:`REFUSED_CONFS`, :data:`REFUSED_CONF_SUFFIXES`): class paths, native library
  paths, package downloads, interpreter choices, resource discovery scripts, Python worker modules, the
  master and deploy mode (the stack runs ``local[*]``), and directories Spark would write outside the job.
* ``spark.{driver,executor}.{extra,default}JavaOptions`` may only hold ``-Dname=value`` system properties,
  and not ones under ``java.``/``jdk.``/``javax.``/``sun.``/``com.sun.``/``log4j`` (which load code or
  configuration); no ``-XX:OnError=...``, ``-javaagent`` or other JVM flags.
* ``spark.emr-serverless.*`` settings (worker sizes, disks) are kept on the run and not passed to Spark;
  every other ``spark.*`` setting (``spark.driver.memory``, ``spark.sql.*``...) passes through.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from smspark_assets.local.api_errors import ApiError

DRIVER_ENV = "spark.emr-serverless.driverEnv."
EXECUTOR_ENV = "spark.executorEnv."
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
REFUSED_ENV_PREFIXES = (
    "PYTHON", "LD_", "DYLD_", "PERL", "RUBY", "NODE_", "BASH_", "JAVA_", "JDK_", "_JAVA", "SPARK_", "PYSPARK_",
    "HADOOP_", "AWS_", "GIT_", "LC_", "MALLOC_", "GLIBC_", "GCONV_", "OPENSSL_", "SSL_", "PKG_CONFIG", "R_",
)
REFUSED_ENV_NAMES = frozenset({
    "ENV", "BROWSER", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "SPARK_SUBMIT_OPTS", "PATH",
    "HOME", "SHELL", "SHELLOPTS", "BASHOPTS", "IFS", "PS4", "PROMPT_COMMAND", "CDPATH", "GLOBIGNORE",
    "CLASSPATH", "TMPDIR", "LANG", "LANGUAGE", "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF",
    "EDITOR", "VISUAL", "PAGER", "TERMINFO", "LESSOPEN", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "SMSPARK_EMRFS_ROOT", "SMSPARK_ROOT", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "MPLCONFIGDIR",
})
REFUSED_CONFS = frozenset({
    "spark.master", "spark.submit.deployMode", "spark.driver.supervise",
    "spark.driver.extraClassPath", "spark.executor.extraClassPath",
    "spark.driver.extraLibraryPath", "spark.executor.extraLibraryPath",
    "spark.jars.packages", "spark.jars.repositories", "spark.jars.ivy", "spark.jars.ivySettings",
    "spark.jars.excludes", "spark.archives", "spark.yarn.dist.archives", "spark.yarn.dist.files",
    "spark.yarn.dist.jars", "spark.pyspark.python", "spark.pyspark.driver.python", "spark.r.command",
    "spark.r.driver.command", "spark.sparkr.r.command", "spark.python.worker.module",
    "spark.python.daemon.module", "spark.local.dir", "spark.eventLog.dir", "spark.driver.log.dfsDir",
    "spark.history.fs.logDirectory", "spark.sql.warehouse.dir", "spark.checkpoint.dir",
    "spark.kubernetes.file.upload.path", "spark.redaction.regex",
})
REFUSED_CONF_SUFFIXES = (".discoveryScript", ".discoveryPlugin")
JAVA_OPTION_CONFS = frozenset({
    "spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions",
    "spark.driver.defaultJavaOptions", "spark.executor.defaultJavaOptions",
})
_JAVA_PROP_RE = re.compile(r"^-D([A-Za-z0-9_.\-]+)=(.*)$", re.S)
_REFUSED_PROP_PREFIXES = ("java.", "jdk.", "javax.", "sun.", "com.sun.", "log4j", "spark.", "jna.", "jnr.")
# Confs whose value is a comma-separated list of files: accepted as s3:// objects only.
FILE_LIST_CONFS = {"spark.submit.pyFiles": "py_files", "spark.jars": "jars", "spark.files": "files"}
# spark-submit flags EMR Serverless accepts and the spark.* setting each stands for.
FLAG_CONFS = {
    "--driver-memory": "spark.driver.memory", "--driver-cores": "spark.driver.cores",
    "--executor-memory": "spark.executor.memory", "--executor-cores": "spark.executor.cores",
    "--num-executors": "spark.executor.instances", "--name": "spark.app.name",
}
FILE_FLAGS = {"--py-files": "py_files", "--jars": "jars", "--files": "files"}
MAX_ENV_VALUE = 128 * 1024
MAX_SUBMIT_PARAMETERS = 102_400  # the API's limit


@dataclass
class SubmitPlan:
    """The checked content of ``sparkSubmitParameters``."""

    confs: dict[str, str] = field(default_factory=dict)  # passed to spark-submit as --conf
    driver_env: dict[str, str] = field(default_factory=dict)
    executor_env: dict[str, str] = field(default_factory=dict)
    emr_settings: dict[str, str] = field(default_factory=dict)  # spark.emr-serverless.* (not for Spark)
    py_files: list[str] = field(default_factory=list)  # s3:// URIs
    jars: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    main_class: str | None = None


def _refuse(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def check_env_name(name: str, where: str) -> None:
    """Refuse a variable a request may not set (see the module docstring), naming it."""
    upper = name.upper()
    if not _ENV_NAME_RE.match(name):
        raise _refuse(f"{where}{name}: environment variable names must match [A-Za-z_][A-Za-z0-9_]*")
    if upper in REFUSED_ENV_NAMES or upper.startswith(REFUSED_ENV_PREFIXES):
        raise _refuse(f"{where}{name}: the environment variable {name} may not be set by a job (interpreter, "
                      "loader, shell and service variables are reserved)")


def _check_env_value(key: str, value: str) -> None:
    if "\x00" in value or len(value) > MAX_ENV_VALUE:
        raise _refuse(f"{key}: the value must be at most {MAX_ENV_VALUE} characters without NUL bytes")


def _check_java_options(key: str, value: str) -> None:
    try:
        tokens = shlex.split(value)
    except ValueError as exc:
        raise _refuse(f"{key}: cannot parse {value!r}: {exc}") from None
    for token in tokens:
        match = _JAVA_PROP_RE.match(token)
        if match is None:
            raise _refuse(f"{key}: only -Dname=value system properties are allowed locally, got {token!r}")
        if match.group(1).lower().startswith(_REFUSED_PROP_PREFIXES):
            raise _refuse(f"{key}: the system property {match.group(1)} may not be set by a job")


def _split_files(value: str, field_name: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if not item.startswith("s3://"):
            raise _refuse(f"{field_name}: {item!r} is not an s3:// URI; jobs may only use files from S3")
    return items


def add_conf(plan: SubmitPlan, key: str, value: str) -> None:
    """Classify one ``--conf key=value`` into the plan, refusing what the rule forbids."""
    if not key.startswith("spark."):
        raise _refuse(f"--conf {key}: only spark.* settings are accepted")
    if key.startswith(DRIVER_ENV):
        name = key[len(DRIVER_ENV):]
        check_env_name(name, DRIVER_ENV)
        _check_env_value(key, value)
        plan.driver_env[name] = value
    elif key.startswith(EXECUTOR_ENV):
        name = key[len(EXECUTOR_ENV):]
        check_env_name(name, EXECUTOR_ENV)
        _check_env_value(key, value)
        plan.executor_env[name] = value
    elif key.startswith("spark.emr-serverless."):
        plan.emr_settings[key] = value
    elif key in REFUSED_CONFS or key.endswith(REFUSED_CONF_SUFFIXES) or key.startswith("spark.yarn."):
        raise _refuse(f"--conf {key}: this setting is not accepted by the local EMR Serverless (it would choose "
                      "programs, code or directories outside the job)")
    elif key in JAVA_OPTION_CONFS:
        _check_java_options(key, value)
        plan.confs[key] = value
    elif key in FILE_LIST_CONFS:
        getattr(plan, FILE_LIST_CONFS[key]).extend(_split_files(value, key))
    else:
        plan.confs[key] = value


def parse_submit_parameters(text: str, plan: SubmitPlan | None = None) -> SubmitPlan:
    """Parse ``sparkSubmitParameters`` into ``plan`` (a new one by default; later settings win);
    ValidationException (naming the culprit) for anything refused."""
    if len(text or "") > MAX_SUBMIT_PARAMETERS:
        raise _refuse(f"sparkSubmitParameters is longer than {MAX_SUBMIT_PARAMETERS} characters")
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise _refuse(f"sparkSubmitParameters cannot be parsed: {exc}") from None
    plan = plan if plan is not None else SubmitPlan()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        flag, eq, inline = token.partition("=")
        if not token.startswith("--"):
            raise _refuse(f"sparkSubmitParameters: unexpected argument {token!r} (use entryPointArguments)")
        known = flag == "--conf" or flag == "--class" or flag in FLAG_CONFS or flag in FILE_FLAGS
        if not known:
            raise _refuse(f"sparkSubmitParameters: the option {flag} is not supported "
                          f"(supported: --conf, --class, {', '.join([*FILE_FLAGS, *FLAG_CONFS])})")
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(tokens):
                raise _refuse(f"sparkSubmitParameters: {flag} needs a value")
            value = tokens[i + 1]
            i += 2
        if flag == "--conf":
            key, has_eq, conf_value = value.partition("=")
            if not has_eq or not key:
                raise _refuse(f"--conf {value!r}: expected key=value")
            add_conf(plan, key.strip(), conf_value)
        elif flag == "--class":
            plan.main_class = value
        elif flag in FILE_FLAGS:
            getattr(plan, FILE_FLAGS[flag]).extend(_split_files(value, flag))
        else:
            plan.confs[FLAG_CONFS[flag]] = value
    return plan
