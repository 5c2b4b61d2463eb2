"""The SparkSession every job uses: ``local[*]`` on this machine, the cluster's own session on EMR.

Locally the session is tuned for one machine: UTC, few shuffle partitions, Arrow on, the Python
workers on the interpreter of this process (otherwise they may pick a system Python without
pyarrow/boto3), no UI, quiet logs. Java is checked before the JVM is launched, because py4j's own
failure ("Java gateway process exited before sending its port number") does not say what to do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession


MIN_JAVA_MAJOR = 17

JAVA_INSTALL_HINT = (
    "Install a Java 17+ runtime and make sure `java` is on PATH (or set JAVA_HOME): "
    "Debian/Ubuntu `sudo apt-get install -y openjdk-17-jre-headless`, "
    "macOS `brew install openjdk@17`, or any Temurin 17/21 build from https://adoptium.net."
)

# Settings that keep a one-machine session small and reproducible; jobs may override per run.
LOCAL_CONF: dict[str, str] = {
    # Servers we start bind the loopback interface only (driver RPC, block manager).
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    # Partition values (dt=2026-11-01) stay strings; inferring dates would change the column type.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


class JavaNotFoundError(RuntimeError):
    """No usable Java runtime for Spark."""


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.path.exists(candidate):
            return candidate
    return shutil.which("java")


def check_java(min_major: int = MIN_JAVA_MAJOR) -> int:
    """The major version of the Java runtime Spark will use; raises with install instructions if unusable."""
    java = _java_executable()
    if java is None:
        raise JavaNotFoundError(f"Spark needs Java {min_major}+ but no `java` was found. {JAVA_INSTALL_HINT}")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(f"`{java} -version` failed ({exc}). {JAVA_INSTALL_HINT}") from exc
    text = out.stderr + out.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if out.returncode != 0 or match is None:
        raise JavaNotFoundError(f"`{java} -version` did not report a version: {text.strip()!r}. {JAVA_INSTALL_HINT}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < min_major:
        raise JavaNotFoundError(f"Spark needs Java {min_major}+, found Java {major} at {java}. {JAVA_INSTALL_HINT}")
    return major


def local_session(app_name: str = "smspark", conf: Mapping[str, str] | None = None, cores: str = "*") -> SparkSession:
    """A ``local[cores]`` session with :data:`LOCAL_CONF` plus ``conf``."""
    check_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in {**LOCAL_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def get_session(app_name: str = "smspark", conf: Mapping[str, str] | None = None) -> SparkSession:
    """The session a job runs in: the one spark-submit configured (EMR Serverless, real or embedded).

    The master and resources come from spark-submit; only runtime SQL settings the jobs rely on are
    applied. Run outside spark-submit (a plain ``python -m`` in a test), it is a local session.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # spark-submit starts Python drivers with a gateway
        return local_session(app_name, conf)
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    apply_runtime_conf(spark)
    for key, value in (conf or {}).items():
        spark.conf.set(key, value)
    return spark


def apply_runtime_conf(spark: SparkSession) -> None:
    """Runtime SQL settings every job depends on, whoever built the session."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")

