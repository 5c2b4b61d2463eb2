"""The ``main()`` shared by every job script: Dagster Pipes in, one materialization out.

A job is a pure function ``job(spark, **params) -> dict`` (its metadata). Under Pipes (the
``PipesSubprocessClient`` locally, EMR Serverless on AWS) the parameters arrive as the extra
``params`` (a dict); unknown or missing parameters are refused by name before Spark starts. The
metadata is reported once, with values converted to plain JSON types.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

JobFn = Callable[..., dict[str, Any]]
# How often a job on EMR Serverless uploads its buffered Pipes messages (logs, metadata) to S3: the
# progress the Dagster run shows lags by at most this (plus the reader's poll). dagster-pipes' default is
# 10 s; an upload happens only when there are messages, a few per job.
MESSAGE_UPLOAD_SECONDS = 1.0


def to_plain(value: Any) -> Any:
    """``value`` with NumPy scalars, tuples, dates and non-finite floats turned into JSON-safe values."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value) if isinstance(value, set) else value
        return [to_plain(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Pipes accepts scalars as they are; dicts and lists must be declared as JSON metadata."""
    out: dict[str, Any] = {}
    for key, value in to_plain(metadata).items():
        out[key] = {"raw_value": value, "type": "json"} if isinstance(value, (dict, list)) else value
    return out


def check_params(job: JobFn, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` checked against the job's signature (everything after ``spark``)."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"the Pipes extra 'params' must be a dict, got {type(params).__name__}")
    sig = inspect.signature(job)
    names = [n for n in sig.parameters if n != "spark"]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"{job.__name__}: unknown parameter(s) {unknown}; allowed: {names}")
    required = [
        n for n in names if sig.parameters[n].default is inspect.Parameter.empty and n not in params
    ]
    if required:
        raise ValueError(f"{job.__name__}: missing required parameter(s) {required}; allowed: {names}")
    return dict(params)


def open_pipes() -> Any:
    """``open_dagster_pipes`` with the loader/writer the launching client asked for.

    Locally ``PipesSubprocessClient`` passes a temp file for the context and the messages (the defaults).
    On EMR Serverless our runner injects the context and reads the messages through an S3 bucket
    (``PipesS3ContextInjector`` / ``PipesS3MessageReader``); the bootstrap parameters then name a
    ``bucket`` and the S3 loader/writer are needed. Decided from those parameters, not from
    SMSPARK_ENV, so any client configuration works.
    """
    from dagster_pipes import (
        PipesDefaultContextLoader,
        PipesDefaultMessageWriter,
        PipesEnvVarParamsLoader,
        PipesS3ContextLoader,
        open_dagster_pipes,
    )

    from smspark_assets.spark_jobs.pipes_writer import PromptS3MessageWriter

    params_loader = PipesEnvVarParamsLoader()
    if not params_loader.is_dagster_pipes_process():
        return open_dagster_pipes(params_loader=params_loader)
    context_params = params_loader.load_context_params()
    messages_params = params_loader.load_messages_params()
    s3 = None
    if "bucket" in context_params or "bucket" in messages_params:
        import boto3

        s3 = boto3.client("s3")
    return open_dagster_pipes(
        params_loader=params_loader,
        context_loader=PipesS3ContextLoader(s3) if "bucket" in context_params else PipesDefaultContextLoader(),
        message_writer=(PromptS3MessageWriter(s3, interval=MESSAGE_UPLOAD_SECONDS) if "bucket" in messages_params
                        else PipesDefaultMessageWriter()),
    )


def run_under_pipes(job: JobFn, app_name: str) -> None:
    """Open Pipes, run ``job`` in a session from :func:`~.session.get_session`, report its metadata."""
    from smspark_assets.spark_jobs.progress import StageProgress, live_node_rows
    from smspark_assets.spark_jobs.session import get_session

    with open_pipes() as pipes:
        params = check_params(job, pipes.get_extra("params") if "params" in pipes.extras else {})
        pipes.log.info(f"{app_name}: starting with params {sorted(params)}")
        spark = get_session(app_name)
        try:
            progress = StageProgress(spark.sparkContext.statusTracker(),
                                     lambda line: pipes.log.info(f"{app_name}: {line}"),
                                     node_rows=lambda node: live_node_rows(spark, node))
            with progress:
                metadata = job(spark, **params)
        finally:
            # On EMR the application ends with the script anyway; locally this frees the JVM promptly.
            spark.stop()
        pipes.report_asset_materialization(metadata=pipes_metadata(metadata))
        pipes.log.info(f"{app_name}: done")
