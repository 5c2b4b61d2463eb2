"""Amazon Athena in the local stack (JSON 1.1, ``X-Amz-Target: AmazonAthena.<Operation>``).

StartQueryExecution queues the query on a small thread pool and answers at once; a worker runs it on
DuckDB over the Glue tables of the query's database (:mod:`.athena_engine`), writes
``<OutputLocation>/<qid>.csv`` and ``.csv.metadata`` into the store (:mod:`.athena_results`) and moves
the execution QUEUED -> RUNNING -> SUCCEEDED | FAILED (with Athena's ``StateChangeReason``) |
CANCELLED. Executions persist in ``athena.sqlite``; queries that were running when the service stopped
end FAILED on the next start. Only the ``primary`` workgroup exists, with no default output location
(as in a new AWS account): callers pass ``ResultConfiguration.OutputLocation``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import duckdb

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.athena_engine import QueryFailed, run_query
from smspark_assets.local.athena_executions import ExecutionStore
from smspark_assets.local.athena_results import MAX_PAGE, ResultPages, write_result
from smspark_assets.local.athena_storage import LocationError, resolve, split_location

log = logging.getLogger("smspark.local.athena")

WORKGROUP = "primary"
WORKERS = 2
MAX_QUERY_CHARS = 262144
_FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
_ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
INTERRUPTED = (
    "INTERNAL_ERROR_QUERY_ENGINE: the local service stopped while the query was running; "
    "run the query again"
)


def invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message)


class AthenaApi:
    """Athena's query calls; reads the catalog of the stack's Glue API."""

    def __init__(self, service: Any) -> None:
        glue = service.target_apis.get("AWSGlue")
        if glue is None:
            raise RuntimeError("the Athena API needs the Glue API (load AWSGlue first)")
        self.catalog = glue.store
        self.s3_root = service.layout.s3_root
        self.executions = ExecutionStore(service.layout.local_dir / "athena.sqlite")
        self.pages = ResultPages()
        self.created = time.time()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="athena-query")
        self._running: dict[str, duckdb.DuckDBPyConnection] = {}
        self._lock = threading.Lock()
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            name: getattr(self, "op_" + name)
            for name in (
                "StartQueryExecution",
                "GetQueryExecution",
                "BatchGetQueryExecution",
                "GetQueryResults",
                "StopQueryExecution",
                "ListQueryExecutions",
                "GetWorkGroup",
                "ListWorkGroups",
            )
        }

    def start(self) -> None:
        """Queries cut off by a stop or crash of the service end FAILED (their results are incomplete)."""
        for qid in self.executions.unfinished():
            self.executions.update(qid, lambda d: _finish(d, "FAILED", INTERRUPTED))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for con in self._running.values():
                con.interrupt()
        for qid in self.executions.unfinished():
            self.executions.update(qid, lambda d: _finish(d, "FAILED", INTERRUPTED))
        self.executions.close()

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._operations.get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"The local Athena does not implement {operation}; it serves {', '.join(self._operations)}",
            )
        return handler(params)

    # -- queries ------

    def op_StartQueryExecution(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - AWS operation names
        sql = p.get("QueryString")
        if not isinstance(sql, str) or not 1 <= len(sql) <= MAX_QUERY_CHARS:
            raise invalid(f"QueryString is required: 1 to {MAX_QUERY_CHARS} characters")
        workgroup = _workgroup(p.get("WorkGroup"))
        context = p.get("QueryExecutionContext") or {}
        if not isinstance(context, dict):
            raise invalid("QueryExecutionContext must be a structure")
        database = str(context.get("Database") or "default").lower()
        catalog = str(context.get("Catalog") or "AwsDataCatalog")
        if catalog.lower() != "awsdatacatalog":
            raise invalid(f"Catalog {catalog} is not found; the local Athena has AwsDataCatalog only")
        result_config = p.get("ResultConfiguration") or {}
        output = result_config.get("OutputLocation") if isinstance(result_config, dict) else None
        if not output:
            raise invalid(
                "No output location provided. An output location is required either through the "
                "Workgroup result configuration setting or as an API input."
            )
        try:
            split_location(output)
        except LocationError as exc:
            raise invalid(f"OutputLocation is not valid: {exc}") from None
        token = p.get("ClientRequestToken")
        if token is not None and (not isinstance(token, str) or not 32 <= len(token) <= 128):
            raise invalid("ClientRequestToken must be 32 to 128 characters")
        if token:
            earlier = self.executions.by_token(token)
            if earlier is not None:
                if earlier["Query"] != sql or earlier["WorkGroup"] != workgroup:
                    raise invalid(
                        "Idempotent parameters do not match the query execution of this " "ClientRequestToken"
                    )
                return {"QueryExecutionId": earlier["QueryExecutionId"]}
        qid = str(uuid.uuid4())
        doc = {
            "QueryExecutionId": qid,
            "Query": sql,
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": f"{output.rstrip('/')}/{qid}.csv"},
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": {"Database": database, "Catalog": "awsdatacatalog"},
            "Status": {"State": "QUEUED", "SubmissionDateTime": time.time()},
            "Statistics": {
                "TotalExecutionTimeInMillis": 0,
                "QueryQueueTimeInMillis": 0,
                "ServicePreProcessingTimeInMillis": 0,
                "ResultReuseInformation": {"ReusedPreviousResult": False},
            },
            "WorkGroup": workgroup,
            "EngineVersion": dict(_ENGINE),
            "SubstatementType": "SELECT",
        }
        try:
            self.executions.insert(doc, token)
        except sqlite3.IntegrityError:  # a concurrent start with the same token won the race
            if token:
                winner = self.executions.by_token(token)
                if winner is not None:
                    return {"QueryExecutionId": winner["QueryExecutionId"]}
            raise
        self._pool.submit(self._run, qid)
        return {"QueryExecutionId": qid}

    def _run(self, qid: str) -> None:
        """The worker: run one query and record how it ended (never raises)."""
        doc = self.executions.update(qid, _to_running)
        if doc is None or doc["Status"]["State"] != "RUNNING":
            return  # cancelled while queued
        started = time.time()

        def register(con: duckdb.DuckDBPyConnection) -> None:
            with self._lock:
                self._running[qid] = con

        try:
            database = doc["QueryExecutionContext"]["Database"]
            result = run_query(
                doc["Query"],
                database,
                self.catalog.table_with_partitions,
                lambda db: self.catalog.database(db) is not None,
                self.s3_root,
                register,
            )
            names = [c["Name"] for c in result.columns]
            csv_path = resolve(self.s3_root, doc["ResultConfiguration"]["OutputLocation"])
            if self._state(qid) == "CANCELLED":
                return
            write_result(
                csv_path,
                names,
                result.table,
                {"QueryExecutionId": qid, "ColumnInfo": result.columns, "RowCount": result.table.num_rows},
            )
            engine_ms = int((time.time() - started) * 1000)
            self.executions.update(
                qid,
                lambda d: _finish(d, "SUCCEEDED", None, engine_ms, result.scanned_bytes),
                columns=result.columns,
            )
        except QueryFailed as exc:
            self.executions.update(
                qid, lambda d: _finish(d, "FAILED", exc.reason, int((time.time() - started) * 1000))
            )
        except LocationError as exc:
            reason = f"INVALID_OUTPUT_LOCATION: the output location is not valid: {exc}"
            self.executions.update(qid, lambda d: _finish(d, "FAILED", reason))
        except Exception as exc:  # noqa: BLE001 - a bug fails the query with its reason, never the service
            log.exception("query %s failed", qid)
            reason = f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
            self.executions.update(qid, lambda d: _finish(d, "FAILED", reason))
        finally:
            with self._lock:
                self._running.pop(qid, None)

    def _state(self, qid: str) -> str | None:
        doc = self.executions.get(qid)
        return doc["Status"]["State"] if doc else None

    def _execution(self, p: dict[str, Any]) -> dict[str, Any]:
        qid = p.get("QueryExecutionId")
        if not isinstance(qid, str) or not qid:
            raise invalid("QueryExecutionId is required")
        doc = self.executions.get(qid)
        if doc is None:
            raise invalid(f"QueryExecution {qid} was not found")
        return doc

    def op_GetQueryExecution(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return {"QueryExecution": self._execution(p)}

    def op_BatchGetQueryExecution(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        ids = p.get("QueryExecutionIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 50:
            raise invalid("QueryExecutionIds must list 1 to 50 ids")
        found, missing = [], []
        for qid in ids:
            doc = self.executions.get(str(qid))
            if doc is None:
                missing.append(
                    {
                        "QueryExecutionId": str(qid),
                        "ErrorCode": "INVALID_INPUT",
                        "ErrorMessage": f"QueryExecution {qid} was not found",
                    }
                )
            else:
                found.append(doc)
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def op_GetQueryResults(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        doc = self._execution(p)
        state = doc["Status"]["State"]
        if state in ("QUEUED", "RUNNING"):
            raise invalid(f"Query has not yet finished. Current state: {state}")
        if state != "SUCCEEDED":
            raise invalid(
                f"Query did not finish successfully. Final query state: {state}\n"
                f"{doc['Status'].get('StateChangeReason', '')}".rstrip()
            )
        max_results = p.get("MaxResults", MAX_PAGE)
        if (
            not isinstance(max_results, int)
            or isinstance(max_results, bool)
            or not 1 <= max_results <= MAX_PAGE
        ):
            raise invalid(f"MaxResults must be between 1 and {MAX_PAGE}")
        qid = doc["QueryExecutionId"]
        columns = self.executions.columns(qid) or []
        csv_path = resolve(self.s3_root, doc["ResultConfiguration"]["OutputLocation"])
        if not csv_path.is_file():
            raise invalid(
                f"The result of query {qid} is no longer at "
                f"{doc['ResultConfiguration']['OutputLocation']}"
            )
        token = p.get("NextToken")
        return self.pages.page(qid, csv_path, columns, max_results, str(token) if token else None)

    def op_StopQueryExecution(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        qid = self._execution(p)["QueryExecutionId"]
        self.executions.update(
            qid,
            lambda d: (
                _finish(d, "CANCELLED", "Query was cancelled by user")
                if d["Status"]["State"] not in _FINAL
                else False
            ),
        )
        with self._lock:
            con = self._running.get(qid)
        if con is not None:
            con.interrupt()
        return {}

    def op_ListQueryExecutions(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        workgroup = _workgroup(p.get("WorkGroup"))
        limit = p.get("MaxResults", 50)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 50:
            raise invalid("MaxResults must be between 0 and 50")
        limit = limit or 50
        token = p.get("NextToken")
        try:
            offset = int(token) if token else 0
        except ValueError:
            raise invalid("The NextToken is not valid") from None
        ids = self.executions.ids(workgroup, offset, limit + 1)
        out: dict[str, Any] = {"QueryExecutionIds": ids[:limit]}
        if len(ids) > limit:
            out["NextToken"] = str(offset + limit)
        return out

    # -- workgroups ------

    def op_GetWorkGroup(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        name = _workgroup(p.get("WorkGroup"), required=True)
        return {
            "WorkGroup": {
                "Name": name,
                "State": "ENABLED",
                "Description": "",
                "CreationTime": self.created,
                "Configuration": {
                    "ResultConfiguration": {},
                    "EnforceWorkGroupConfiguration": False,
                    "PublishCloudWatchMetricsEnabled": False,
                    "RequesterPaysEnabled": False,
                    "EnableMinimumEncryptionConfiguration": False,
                    "EngineVersion": dict(_ENGINE),
                },
            }
        }

    def op_ListWorkGroups(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return {
            "WorkGroups": [
                {
                    "Name": WORKGROUP,
                    "State": "ENABLED",
                    "Description": "",
                    "CreationTime": self.created,
                    "EngineVersion": dict(_ENGINE),
                }
            ]
        }


def _workgroup(name: Any, required: bool = False) -> str:
    if name is None and not required:
        return WORKGROUP
    if name != WORKGROUP:
        raise invalid(f"WorkGroup {name} is not found.")
    return WORKGROUP


def _to_running(doc: dict[str, Any]) -> bool:
    if doc["Status"]["State"] != "QUEUED":
        return False
    doc["Status"]["State"] = "RUNNING"
    doc["Statistics"]["QueryQueueTimeInMillis"] = int(
        (time.time() - doc["Status"]["SubmissionDateTime"]) * 1000
    )
    return True


def _finish(
    doc: dict[str, Any], state: str, reason: str | None, engine_ms: int = 0, scanned: int = 0
) -> bool:
    """Move ``doc`` to a final state (a final state is never left: a late worker cannot undo a cancel)."""
    status = doc["Status"]
    if status["State"] in _FINAL:
        return False
    now = time.time()
    status["State"] = state
    status["CompletionDateTime"] = now
    if reason:
        status["StateChangeReason"] = reason
        if state == "FAILED":
            status["AthenaError"] = {
                "ErrorCategory": 2 if not reason.startswith(("INTERNAL", "GENERIC")) else 1,
                "ErrorType": 1000,
                "Retryable": False,
                "ErrorMessage": reason,
            }
    stats = doc["Statistics"]
    total = int((now - status["SubmissionDateTime"]) * 1000)
    stats.update(
        EngineExecutionTimeInMillis=engine_ms,
        DataScannedInBytes=scanned,
        TotalExecutionTimeInMillis=total,
        QueryPlanningTimeInMillis=0,
        ServiceProcessingTimeInMillis=max(0, total - engine_ms - stats["QueryQueueTimeInMillis"]),
    )
    return True
