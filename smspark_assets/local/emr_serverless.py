"""EMR Serverless of the local stack (rest-json, SigV4 signing name ``emr-serverless``).

Applications: CreateApplication, GetApplication, ListApplications, StartApplication, StopApplication,
DeleteApplication. Job runs: StartJobRun, GetJobRun, ListJobRuns, CancelJobRun, GetDashboardForJobRun.
Tags: TagResource, UntagResource, ListTagsForResource.

Requests are checked here (shapes, the submit rule of :mod:`.emr_submit`, S3 URIs of
:mod:`.emr_store_paths`) and stored in :mod:`.emr_state`; :mod:`.emr_runner` runs them for real. Answers
use the API's casing: an application created with ``type="SPARK"`` answers ``"Spark"`` (dagster-aws
compares with ``"Spark"``/``"Hive"`` exactly).

GetDashboardForJobRun answers a ``file://`` URL of the driver's stderr in the run's folder (the local
stack has no Spark History Server; the live Spark UI is off by default).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
import time
from typing import Any
from urllib.parse import unquote

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.emr_runner import (DEFAULT_MAX_CONCURRENT, TERMINAL, JobRunner)
from smspark_assets.local.emr_state import EmrState
from smspark_assets.local.emr_store_paths import prefix_path, split_uri
from smspark_assets.local.emr_submit import SubmitPlan, add_conf, parse_submit_parameters
from smspark_assets.local.wire import Request, Response

ACCOUNT = "123456789012"
REGION = "us-east-1"
MAX_BODY_BYTES = 1024 * 1024
MAX_LIST = 50
DEFAULT_TIMEOUT_MINUTES = 720
_ID_ALPHABET = string.ascii_lowercase + string.digits
_RELEASE_RE = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._/#-]{1,64}$")
_ROLE_RE = re.compile(r"^arn:aws[A-Za-z0-9-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 /_.:=+@-]{1,128}$")
_TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9 /_.:=+@-]{0,256}$")
APP_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
RUN_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS", "FAILED", "CANCELLING", "CANCELLED",
              "QUEUED")
ENGINES = {"SPARK": "Spark", "HIVE": "Hive"}
_APP_SUMMARY_KEYS = ("name", "arn", "releaseLabel", "type", "state", "stateDetails", "createdAt", "updatedAt",
                     "architecture")
_RUN_SUMMARY_KEYS = ("applicationId", "name", "mode", "arn", "createdBy", "createdAt", "updatedAt",
                     "executionRole", "state", "stateDetails", "releaseLabel", "attempt", "attemptCreatedAt",
                     "attemptUpdatedAt")


def _new_id() -> str:
    """16 characters of ``[0-9a-z]``, like the IDs EMR Serverless hands out."""
    return "00" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def _invalid(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _check_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or len(tags) > 200:
        raise _invalid("tags must be a map of at most 200 entries")
    for key, value in tags.items():
        if not isinstance(value, str) or not _TAG_KEY_RE.match(key) or not _TAG_VALUE_RE.match(value):
            raise _invalid(f"tag {key!r}: keys and values may only use letters, digits, spaces and _.:/=+-@")
    return dict(tags)


def _timestamp_param(value: str | None, name: str) -> float | None:
    """A timestamp query parameter (botocore sends ISO 8601; epoch seconds are accepted too)."""
    if value is None:
        return None
    try:
        return float(value) if re.fullmatch(r"\d+(\.\d+)?", value) else dt.datetime.fromisoformat(
            value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _invalid(f"{name}: {value!r} is not a timestamp") from None


def _page(items: list[dict[str, Any]], request: Request) -> tuple[list[dict[str, Any]], str | None]:
    """``maxResults``/``nextToken`` paging over an ordered list (the token is the next offset)."""
    raw_max = request.param("maxResults")
    try:
        limit = int(raw_max) if raw_max is not None else MAX_LIST
    except ValueError:
        raise _invalid(f"maxResults: {raw_max!r} is not an integer") from None
    if not 1 <= limit <= MAX_LIST:
        raise _invalid(f"maxResults must be between 1 and {MAX_LIST}")
    token = request.param("nextToken")
    offset = 0
    if token is not None:
        if not token.isdigit():
            raise _invalid("nextToken is invalid")
        offset = int(token)
    end = offset + limit
    return items[offset:end], (str(end) if end < len(items) else None)


class EmrServerlessApi:
    """The EMR Serverless REST API of the local stack."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.layout = service.layout
        self.state = EmrState(self.layout.local_dir / "emr-serverless.sqlite")
        self.jobs_dir = self.layout.local_dir / "emr-jobs"
        logs = service.target_apis.get("Logs_20140328")
        config = getattr(service, "config", {}) or {}
        self.runner = JobRunner(
            self.state, self.jobs_dir, self.layout.s3_root, service.client_environment,
            getattr(logs, "append", None), self.monitoring_for, self.plan_for,
            int(config.get("max_concurrent_emr_jobs", DEFAULT_MAX_CONCURRENT)),
        )

    def start(self) -> None:
        self.runner.start()

    def shutdown(self) -> None:
        self.runner.shutdown()
        for doc in self.state.runs_in_states(("SCHEDULED", "RUNNING", "CANCELLING")):
            # The runner marks what it stopped; anything left (a run between states) fails the same way.
            self.state.update_run(doc["applicationId"], doc["jobRunId"], _fail_stopped)
        self.state.close()

    # -- what the runner asks ---------------------------------------------------------------------------

    def monitoring_for(self, run: dict[str, Any]) -> dict[str, Any]:
        """The application's monitoringConfiguration overridden by the run's (as EMR and dagster merge them)."""
        app = self.state.application(run["applicationId"]) or {}
        overrides = (run.get("configurationOverrides") or {}).get("monitoringConfiguration") or {}
        return _deep_merge(app.get("monitoringConfiguration") or {}, overrides)

    def plan_for(self, run: dict[str, Any]) -> SubmitPlan:
        """spark-defaults of the application, then of the run, then ``sparkSubmitParameters`` (later wins)."""
        app = self.state.application(run["applicationId"]) or {}
        plan = SubmitPlan()
        for configs in (app.get("runtimeConfiguration"), (run.get("configurationOverrides") or {}).get(
                "applicationConfiguration")):
            for config in configs or []:
                if isinstance(config, dict) and config.get("classification") == "spark-defaults":
                    for key, value in (config.get("properties") or {}).items():
                        add_conf(plan, str(key), str(value))
        return parse_submit_parameters(run["jobDriver"]["sparkSubmit"].get("sparkSubmitParameters") or "", plan)

    # -- routing ----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.raw_path.strip("/").split("/")] if request.raw_path.strip("/") else []
        method = request.method
        if parts[:1] == ["tags"] and len(parts) >= 2:
            arn = unquote("/".join(request.raw_path.strip("/").split("/")[1:]))
            routes = {"GET": "ListTagsForResource", "POST": "TagResource", "DELETE": "UntagResource"}
            return self._answer(routes.get(method, ""), request, arn=arn)
        if parts[:1] != ["applications"]:
            raise ApiError("UnknownOperationException", f"{method} {request.raw_path} is not an EMR Serverless API", 404)
        app = parts[1] if len(parts) > 1 else None
        action = {
            (1, "POST"): "CreateApplication", (1, "GET"): "ListApplications",
            (2, "GET"): "GetApplication", (2, "DELETE"): "DeleteApplication",
            (3, "POST"): {"start": "StartApplication", "stop": "StopApplication", "jobruns": "StartJobRun"},
            (3, "GET"): {"jobruns": "ListJobRuns"},
            (4, "GET"): {"jobruns": "GetJobRun"}, (4, "DELETE"): {"jobruns": "CancelJobRun"},
            (5, "GET"): {"jobruns": "GetDashboardForJobRun"},
        }.get((len(parts), method), "")
        if isinstance(action, dict):
            action = action.get(parts[2], "")
        if action == "GetDashboardForJobRun" and parts[4] != "dashboard":
            action = ""
        run = parts[3] if len(parts) > 3 else None
        return self._answer(action, request, app=app, run=run)

    def _answer(self, action: str, request: Request, **kwargs: Any) -> Response:
        handler = getattr(self, f"_op_{action}", None) if action else None
        if handler is None:
            raise ApiError("UnknownOperationException",
                           f"{request.method} {request.raw_path} is not an EMR Serverless API", 404)
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH"):
            raw = request.body(limit=MAX_BODY_BYTES)
            try:
                body = json.loads(raw) if raw else {}
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError("ValidationException", f"request body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise _invalid("request body must be a JSON object")
        result = handler(request, body, **kwargs)
        return Response(200, json.dumps(result).encode(), content_type="application/json", action=action)

    # -- applications -----------------------------------------------------------------------------------

    def _application(self, app_id: str | None) -> dict[str, Any]:
        doc = self.state.application(app_id or "")
        if doc is None:
            raise ApiError("ResourceNotFoundException", f"Application {app_id} does not exist", 404)
        return doc

    def _op_CreateApplication(self, request: Request, body: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N802
        release, engine, name = body.get("releaseLabel"), body.get("type"), body.get("name")
        if not isinstance(release, str) or not _RELEASE_RE.match(release):
            raise _invalid("releaseLabel is required (for example emr-7.5.0)")
        if not isinstance(engine, str) or engine.upper() not in ENGINES:
            raise _invalid(f"Unsupported engine {engine}: the local EMR Serverless knows SPARK and HIVE")
        if name is not None and (not isinstance(name, str) or not _NAME_RE.match(name)):
            raise _invalid("name must be 1-64 characters of letters, digits and ._/#-")
        monitoring = body.get("monitoringConfiguration") or {}
        self._check_monitoring(monitoring)
        runtime = body.get("runtimeConfiguration") or []
        self._check_configurations(runtime, "runtimeConfiguration")
        now = time.time()
        app_id = _new_id()
        doc: dict[str, Any] = {
            "applicationId": app_id,
            "arn": f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{app_id}",
            "releaseLabel": release,
            "type": ENGINES[engine.upper()],
            "state": "CREATED",
            "stateDetails": "",
            "createdAt": now,
            "updatedAt": now,
            "tags": _check_tags(body.get("tags")),
            "autoStartConfiguration": {"enabled": True, **(body.get("autoStartConfiguration") or {})},
            "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15,
                                      **(body.get("autoStopConfiguration") or {})},
            "architecture": body.get("architecture") or "X86_64",
        }
        if name is not None:
            doc["name"] = name
        for key in ("initialCapacity", "maximumCapacity", "networkConfiguration", "imageConfiguration",
                    "workerTypeSpecifications", "interactiveConfiguration", "schedulerConfiguration"):
            if body.get(key) is not None:
                doc[key] = body[key]
        if runtime:
            doc["runtimeConfiguration"] = runtime
        if monitoring:
            doc["monitoringConfiguration"] = monitoring
        doc = self.state.add_application(doc, body.get("clientToken"))
        out = {"applicationId": doc["applicationId"], "arn": doc["arn"]}
        if doc.get("name"):
            out["name"] = doc["name"]
        return out

    def _op_GetApplication(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        return {"application": self._application(app)}

    def _op_ListApplications(self, request: Request, body: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N802
        states = request.query.get("states") or []
        for state in states:
            if state not in APP_STATES:
                raise _invalid(f"states: {state!r} is not one of {', '.join(APP_STATES)}")
        apps = [a for a in self.state.applications() if not states or a["state"] in states]
        page, token = _page(apps, request)
        out: dict[str, Any] = {"applications": [
            {"id": a["applicationId"], **{k: a[k] for k in _APP_SUMMARY_KEYS if k in a}} for a in page]}
        if token:
            out["nextToken"] = token
        return out

    def _set_app_state(self, app: str | None, allowed: tuple[str, ...], target: str) -> dict[str, Any]:
        doc = self._application(app)
        if doc["state"] not in allowed:
            raise _invalid(f"Application {app} must be in one of the following statuses [{', '.join(allowed)}]. "
                           f"Current status: {doc['state']}")

        def change(d: dict[str, Any]) -> None:
            d["state"] = target
            d["updatedAt"] = time.time()

        return self.state.update_application(doc["applicationId"], change) or doc

    def _op_StartApplication(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        self._set_app_state(app, ("CREATED", "STOPPED", "STARTED"), "STARTED")
        return {}

    def _op_StopApplication(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        active = [r["jobRunId"] for r in self.state.runs(app or "") if r["state"] not in TERMINAL]
        if active:
            raise _invalid(f"Application {app} has job runs that are not finished ({', '.join(active[:5])}); "
                           "cancel them or wait before stopping it")
        self._set_app_state(app, ("CREATED", "STARTED", "STOPPED"), "STOPPED")
        return {}

    def _op_DeleteApplication(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        self._set_app_state(app, ("CREATED", "STOPPED"), "TERMINATED")
        return {}

    # -- job runs ---------------------------------------------------------------------------------------

    def _run(self, app: str | None, run: str | None) -> dict[str, Any]:
        self._application(app)
        doc = self.state.run(app or "", run or "")
        if doc is None:
            raise ApiError("ResourceNotFoundException", f"Job run {run} of application {app} does not exist", 404)
        return doc

    def _check_monitoring(self, monitoring: Any) -> None:
        if not isinstance(monitoring, dict):
            raise _invalid("monitoringConfiguration must be an object")
        log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
        if log_uri is not None:
            prefix_path(self.layout.s3_root, log_uri, "logUri")
        cw = monitoring.get("cloudWatchLoggingConfiguration")
        if cw is not None:
            if not isinstance(cw, dict) or not isinstance(cw.get("enabled"), bool):
                raise _invalid("cloudWatchLoggingConfiguration.enabled is required")
            group = cw.get("logGroupName")
            if group is not None and not re.fullmatch(r"[.\-_/#A-Za-z0-9]{1,512}", str(group)):
                raise _invalid(f"cloudWatchLoggingConfiguration.logGroupName {group!r} is not a valid log group name")
            prefix = cw.get("logStreamNamePrefix")
            if prefix is not None and not re.fullmatch(r"[^:*]{1,512}", str(prefix)):
                raise _invalid("cloudWatchLoggingConfiguration.logStreamNamePrefix may not contain ':' or '*'")

    def _check_configurations(self, configs: Any, field: str) -> None:
        if not isinstance(configs, list):
            raise _invalid(f"{field} must be a list of configurations")
        plan = SubmitPlan()
        for config in configs:
            if not isinstance(config, dict) or not isinstance(config.get("classification"), str):
                raise _invalid(f"{field}: every configuration needs a classification")
            props = config.get("properties") or {}
            if not isinstance(props, dict):
                raise _invalid(f"{field}: properties must be a map of strings")
            if config["classification"] == "spark-defaults":
                for key, value in props.items():
                    add_conf(plan, str(key), str(value))

    def _op_StartJobRun(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        application = self._application(app)
        role = body.get("executionRoleArn")
        if not isinstance(role, str) or not _ROLE_RE.match(role):
            raise _invalid(f"executionRoleArn {role!r} is not an IAM role ARN")
        driver = body.get("jobDriver")
        if not isinstance(driver, dict) or len([k for k in ("sparkSubmit", "hive") if driver.get(k)]) != 1:
            raise _invalid("jobDriver must hold exactly one of sparkSubmit and hive")
        if "sparkSubmit" not in driver or not driver["sparkSubmit"]:
            raise _invalid("The local EMR Serverless runs Spark jobs only (jobDriver.sparkSubmit)")
        if application["type"] != "Spark":
            raise _invalid(f"Application {app} is a {application['type']} application; sparkSubmit needs Spark")
        spark = driver["sparkSubmit"]
        if not isinstance(spark, dict) or not isinstance(spark.get("entryPoint"), str):
            raise _invalid("jobDriver.sparkSubmit.entryPoint is required")
        split_uri(spark["entryPoint"], "entryPoint")
        args = spark.get("entryPointArguments") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise _invalid("entryPointArguments must be a list of strings")
        overrides = body.get("configurationOverrides") or {}
        if not isinstance(overrides, dict):
            raise _invalid("configurationOverrides must be an object")
        self._check_monitoring(overrides.get("monitoringConfiguration") or {})
        self._check_configurations(overrides.get("applicationConfiguration") or [], "applicationConfiguration")
        timeout = body.get("executionTimeoutMinutes", DEFAULT_TIMEOUT_MINUTES)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise _invalid("executionTimeoutMinutes must be a non-negative integer (0: no timeout)")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 256):
            raise _invalid("name must be a string of at most 256 characters")
        if application["state"] == "TERMINATED":
            raise _invalid(f"Application {app} is terminated")
        if application["state"] != "STARTED":
            if not (application.get("autoStartConfiguration") or {}).get("enabled", True):
                raise _invalid(f"Application {app} is {application['state']} and auto-start is disabled; "
                               "start it first")
            self._set_app_state(app, ("CREATED", "STOPPED", "STARTED"), "STARTED")
        now = time.time()
        run_id = _new_id()
        doc: dict[str, Any] = {
            "applicationId": application["applicationId"],
            "jobRunId": run_id,
            "arn": f"{application['arn']}/jobruns/{run_id}",
            "createdBy": f"arn:aws:iam::{ACCOUNT}:user/local",
            "createdAt": now,
            "updatedAt": now,
            "executionRole": role,
            "state": "SUBMITTED",
            "stateDetails": "",
            "releaseLabel": application["releaseLabel"],
            "jobDriver": {"sparkSubmit": spark},
            "tags": _check_tags(body.get("tags")),
            "executionTimeoutMinutes": timeout,
            "mode": body.get("mode") or "BATCH",
            "attempt": 1,
            "attemptCreatedAt": now,
            "attemptUpdatedAt": now,
        }
        if overrides:
            doc["configurationOverrides"] = overrides
        if name is not None:
            doc["name"] = name
        for key in ("networkConfiguration", "retryPolicy"):
            if body.get(key) is not None:
                doc[key] = body[key]
        self.plan_for(doc)  # refuse what the submit rule forbids before the run exists
        doc, created = self.state.add_run(doc, body.get("clientToken"))
        if created:
            self.runner.submit()
        return {"applicationId": doc["applicationId"], "jobRunId": doc["jobRunId"], "arn": doc["arn"]}

    def _op_GetJobRun(self, request: Request, body: dict[str, Any], app: str, run: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        return {"jobRun": _public(self._run(app, run))}

    def _op_ListJobRuns(self, request: Request, body: dict[str, Any], app: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        self._application(app)
        states = request.query.get("states") or []
        for state in states:
            if state not in RUN_STATES:
                raise _invalid(f"states: {state!r} is not one of {', '.join(RUN_STATES)}")
        runs = self.state.runs(app, states, _timestamp_param(request.param("createdAtAfter"), "createdAtAfter"),
                               _timestamp_param(request.param("createdAtBefore"), "createdAtBefore"))
        mode = request.param("mode")
        if mode:
            runs = [r for r in runs if r.get("mode", "BATCH") == mode]
        page, token = _page(runs, request)
        out: dict[str, Any] = {"jobRuns": [
            {"id": r["jobRunId"], "type": "Spark", **{k: r[k] for k in _RUN_SUMMARY_KEYS if k in r}} for r in page]}
        if token:
            out["nextToken"] = token
        return out

    def _op_CancelJobRun(self, request: Request, body: dict[str, Any], app: str, run: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        doc = self._run(app, run)
        if doc["state"] in TERMINAL:
            raise _invalid(f"Job run {run} is {doc['state']} and cannot be cancelled")
        raw = request.param("shutdownGracePeriodInSeconds")
        grace = None
        if raw is not None:
            if not raw.isdigit():
                raise _invalid("shutdownGracePeriodInSeconds must be a non-negative integer")
            grace = int(raw)
        self.runner.cancel(doc["applicationId"], doc["jobRunId"], grace)
        return {"applicationId": doc["applicationId"], "jobRunId": doc["jobRunId"]}

    def _op_GetDashboardForJobRun(self, request: Request, body: dict[str, Any], app: str, run: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        doc = self._run(app, run)
        # The driver's stderr in the run's folder: what the Spark UI / History Server would show first.
        return {"url": (self.jobs_dir / doc["jobRunId"] / "stderr").as_uri()}

    # -- tags -------------------------------------------------------------------------------------------

    def _tagged(self, arn: str) -> tuple[str, str | None]:
        match = re.fullmatch(r"arn:aws:emr-serverless:[^:]*:\d{12}:/applications/([0-9a-z]+)(?:/jobruns/([0-9a-z]+))?",
                             arn)
        if match is None:
            raise _invalid(f"resourceArn {arn!r} is not an EMR Serverless application or job run ARN")
        app, run = match.group(1), match.group(2)
        if run is None:
            self._application(app)
        else:
            self._run(app, run)
        return app, run

    def _op_ListTagsForResource(self, request: Request, body: dict[str, Any], arn: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        app, run = self._tagged(arn)
        doc = self._application(app) if run is None else self._run(app, run)
        return {"tags": doc.get("tags") or {}}

    def _op_TagResource(self, request: Request, body: dict[str, Any], arn: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        app, run = self._tagged(arn)
        tags = _check_tags(body.get("tags"))

        def change(d: dict[str, Any]) -> None:
            d["tags"] = {**(d.get("tags") or {}), **tags}

        if run is None:
            self.state.update_application(app, change)
        else:
            self.state.update_run(app, run, change)
        return {}

    def _op_UntagResource(self, request: Request, body: dict[str, Any], arn: str, **_: Any) -> dict[str, Any]:  # noqa: N802
        app, run = self._tagged(arn)
        keys = set(request.query.get("tagKeys") or [])

        def change(d: dict[str, Any]) -> None:
            d["tags"] = {k: v for k, v in (d.get("tags") or {}).items() if k not in keys}

        if run is None:
            self.state.update_application(app, change)
        else:
            self.state.update_run(app, run, change)
        return {}


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """The GetJobRun document without the runner's private bookkeeping."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _fail_stopped(doc: dict[str, Any]) -> None:
    if doc["state"] in TERMINAL:
        return
    doc["state"] = "FAILED"
    doc["updatedAt"] = doc["endedAt"] = time.time()
    doc["stateDetails"] = ("Job run failed: the local EMR Serverless service was stopped while the job was "
                           "running; start the job again")
    doc.pop("_local", None)
