"""Hyperparameter tuning jobs of the local service: the five SageMaker operations and the controller that runs
the trials.

A tuning job is a Describe document in the state store (kind ``hyper-parameter-tuning-job``) plus one controller
thread. The controller asks the search strategy (:mod:`.tuning_search`) for hyperparameters and starts each trial
as a real training job through the same ``CreateTrainingJob`` path a client uses (named
``<tuning-job>-<NNN>-<8 hex>`` as SageMaker names them, carrying ``TuningJobArn`` and the
``_tuning_objective_metric`` hyperparameter), never more than ``MaxParallelTrainingJobs`` at once. It reads the
objective from each finished trial's ``FinalMetricDataList``, feeds it back to the strategy, applies the median
stopping rule to running trials when ``TrainingJobEarlyStoppingType`` is ``Auto`` (:mod:`.tuning_early_stop`),
and keeps the counters and ``BestTrainingJob`` of the document current.

Warm start seeds the search with the parents' finished trials (their hyperparameters that lie in this job's
ranges, and their objective values). A restart of the service cannot resume a controller: tuning jobs that
were running are marked Failed (their trials are failed by the training runner's recovery), as the service does
for training jobs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Callable

from smspark_assets.local.api_errors import ApiError, not_found, validation
from smspark_assets.local.state import AlreadyExists, NotFound
from smspark_assets.local.tuning_early_stop import CurveReader, objective_pattern, should_stop
from smspark_assets.local.tuning_request import OBJECTIVE_METRIC, TuningPlan, check_request
from smspark_assets.local.tuning_search import GridSearcher, Searcher, make_searcher

KIND = "hyper-parameter-tuning-job"
TRAINING = "training-job"
TICK_SECONDS = 0.1  # how often the controller looks at its trials (a store read per running trial)
TUNING_STATUSES = ("Completed", "InProgress", "Failed", "Stopped", "Stopping", "Deleting", "DeleteFailed")
TRIAL_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
RUNNING = ("InProgress", "Stopping")
INTERRUPTED = (
    "InternalServerError: the local service stopped while the tuning job was running; create it again "
    "under a new name (or warm-start from it)"
)
# Keys of the stored document that are the controller's bookkeeping, not part of the Describe shape.
_TRIALS = "_Trials"


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _counters() -> tuple[dict[str, int], dict[str, int]]:
    return (
        {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0},
        {"Succeeded": 0, "Pending": 0, "Failed": 0},
    )


def trial_name(tuning_job: str, index: int, hyperparameters: dict[str, str]) -> str:
    """``<tuning-job>-<NNN>-<8 lowercase hex>``: 1-based index, hex from what the trial is (stable per trial)."""
    digest = hashlib.sha256(json.dumps([tuning_job, index, hyperparameters], sort_keys=True).encode()).hexdigest()
    return f"{tuning_job}-{index:03d}-{digest[:8]}"


class TuningApi:
    """CreateHyperParameterTuningJob and friends, on the SageMaker API object of the service."""

    def __init__(self, sagemaker: Any) -> None:
        self.sm = sagemaker
        self.store = sagemaker.store
        self._runs: dict[str, _Controller] = {}
        self._lock = threading.Lock()
        self._fail_interrupted()

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateHyperParameterTuningJob": self.create,
            "DescribeHyperParameterTuningJob": self.describe,
            "ListHyperParameterTuningJobs": self.list,
            "ListTrainingJobsForHyperParameterTuningJob": self.list_trials,
            "StopHyperParameterTuningJob": self.stop,
        }

    def _fail_interrupted(self) -> None:
        for doc in self.store.list(KIND):
            if doc["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
                def change(d: dict[str, Any]) -> None:
                    now = time.time()
                    d["HyperParameterTuningJobStatus"] = "Failed"
                    d["FailureReason"] = INTERRUPTED
                    d["HyperParameterTuningEndTime"] = d["LastModifiedTime"] = now

                self.store.update(KIND, doc["HyperParameterTuningJobName"], change,
                                  status_key="HyperParameterTuningJobStatus")

    # -- operations -------------------------------------------------------------------------------------

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        plan = check_request(p, self.sm._resolve, _check_s3_uri_of(self.sm))
        name = p["HyperParameterTuningJobName"]
        tags = _check_tags_of(self.sm)(p.get("Tags"))
        parents = self._parents(p.get("WarmStartConfig"), plan)
        arn = self.sm.arn("hyper-parameter-tuning-job", name)
        now = time.time()
        config = json.loads(json.dumps(p["HyperParameterTuningJobConfig"]))
        config.setdefault("TrainingJobEarlyStoppingType", "Off")
        ranges = config.setdefault("ParameterRanges", {})
        if p["TrainingJobDefinition"].get("HyperParameterRanges"):
            ranges = config["ParameterRanges"] = json.loads(json.dumps(p["TrainingJobDefinition"]["HyperParameterRanges"]))
        for key in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"):
            ranges.setdefault(key, [])
        config["ResourceLimits"].setdefault("MaxNumberOfTrainingJobs", plan.max_jobs)
        definition = json.loads(json.dumps(p["TrainingJobDefinition"]))
        definition["StaticHyperParameters"] = {
            **{str(k): str(v) for k, v in (definition.get("StaticHyperParameters") or {}).items()},
            OBJECTIVE_METRIC: plan.metric,  # SageMaker adds it; the SDK's attach() deletes it (KeyError if absent)
        }
        definition.setdefault("AlgorithmSpecification", {}).setdefault("MetricDefinitions", [])
        training_counters, objective_counters = _counters()
        doc: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": arn,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": definition,
            "HyperParameterTuningJobStatus": "InProgress",
            "CreationTime": now,
            "LastModifiedTime": now,
            "TrainingJobStatusCounters": training_counters,
            "ObjectiveStatusCounters": objective_counters,
            "ConsumedResources": {"RuntimeInSeconds": 0},
            _TRIALS: {},
        }
        if p.get("WarmStartConfig"):
            doc["WarmStartConfig"] = p["WarmStartConfig"]
        with self._lock:
            # Tuning job names are unique regardless of case.
            if any(d["HyperParameterTuningJobName"].lower() == name.lower() for d in self.store.list(KIND)):
                raise ApiError("ResourceInUse", f"A tuning job with the name {name} already exists ({arn})")
            try:
                self.store.create(KIND, name, arn, doc, status="InProgress")
            except AlreadyExists:
                raise ApiError("ResourceInUse", f"A tuning job with the name {name} already exists ({arn})") from None
            if tags:
                self.store.add_tags(arn, tags)
            controller = _Controller(self, name, plan, parents)
            self._runs[name] = controller
        controller.start()
        return {"HyperParameterTuningJobArn": arn}

    def _parents(self, warm: dict[str, Any] | None, plan: TuningPlan) -> list[dict[str, Any]]:
        if not warm:
            return []
        if warm.get("WarmStartType") not in ("IdenticalDataAndAlgorithm", "TransferLearning"):
            raise validation(
                f"1 validation error detected: Value '{warm.get('WarmStartType')}' at 'warmStartConfig."
                "warmStartType' failed to satisfy constraint: Member must satisfy enum value set: "
                "[IdenticalDataAndAlgorithm, TransferLearning]"
            )
        parents = warm.get("ParentHyperParameterTuningJobs") or []
        if not isinstance(parents, list) or not 1 <= len(parents) <= 5:
            raise validation("WarmStartConfig.ParentHyperParameterTuningJobs must name 1 to 5 tuning jobs")
        docs = []
        for item in parents:
            parent = str((item or {}).get("HyperParameterTuningJobName") or "")
            doc = self.store.get(KIND, parent)
            if doc is None:
                raise not_found(f"Amazon SageMaker can't find a tuning job with name {parent}")
            if doc["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
                raise validation(f"Parent tuning job {parent} is still {doc['HyperParameterTuningJobStatus']}; "
                                 "a warm start needs finished parents")
            objective = doc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
            if objective != plan.metric:
                raise validation(f"Parent tuning job {parent} optimizes {objective!r}, not {plan.metric!r}: a warm "
                                 "start needs the same objective metric")
            docs.append(doc)
        return docs

    def _doc(self, name: Any) -> dict[str, Any]:
        doc = self.store.get(KIND, str(name)) if isinstance(name, str) and name else None
        if doc is None:
            raise not_found(f"Amazon SageMaker can't find a tuning job with name {name}")
        return doc

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(p.get("HyperParameterTuningJobName"))
        out = _public(doc)
        trials = self.trial_summaries(doc)
        best = _best(trials, doc)
        if best:
            out["BestTrainingJob"] = best
        if (doc.get("WarmStartConfig") or {}).get("WarmStartType") == "IdenticalDataAndAlgorithm":
            candidates = [best] if best else []
            for item in doc["WarmStartConfig"]["ParentHyperParameterTuningJobs"]:
                parent = self.store.get(KIND, item["HyperParameterTuningJobName"])
                if parent is not None:
                    parent_best = _best(self.trial_summaries(parent), parent)
                    if parent_best:
                        candidates.append(parent_best)
            overall = _best(candidates, doc)
            if overall:
                out["OverallBestTrainingJob"] = overall
        return out

    def list(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _filter_and_sort, _Pager

        params = {"SortBy": "Name", "SortOrder": "Ascending", **p}
        docs = _filter_and_sort(
            self.store.list(KIND), params, "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
            TUNING_STATUSES,
            {"Name": "HyperParameterTuningJobName", "Status": "HyperParameterTuningJobStatus",
             "CreationTime": "CreationTime"},
        )
        page, token = _Pager.page(docs, params, default_size=100, name_key="HyperParameterTuningJobName")
        summaries = []
        for d in page:
            summary = {k: d[k] for k in (
                "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
                "CreationTime", "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters",
            )}
            summary["Strategy"] = d["HyperParameterTuningJobConfig"]["Strategy"]
            summary["ResourceLimits"] = d["HyperParameterTuningJobConfig"]["ResourceLimits"]
            if "HyperParameterTuningEndTime" in d:
                summary["HyperParameterTuningEndTime"] = d["HyperParameterTuningEndTime"]
            summaries.append(summary)
        out: dict[str, Any] = {"HyperParameterTuningJobSummaries": summaries}
        if token:
            out["NextToken"] = token
        return out

    def trial_summaries(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """``HyperParameterTrainingJobSummary`` of every trial, from the trials' own documents."""
        metric = doc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        out = []
        for name, record in doc.get(_TRIALS, {}).items():
            job = self.store.get(TRAINING, name)
            if job is None:
                continue
            summary: dict[str, Any] = {
                "TrainingJobName": name,
                "TrainingJobArn": job["TrainingJobArn"],
                "TuningJobName": doc["HyperParameterTuningJobName"],
                "CreationTime": job["CreationTime"],
                "TrainingJobStatus": job["TrainingJobStatus"],
                "TunedHyperParameters": record["Tuned"],
                "ObjectiveStatus": record.get("ObjectiveStatus", "Pending"),
            }
            for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
                if key in job:
                    summary[key] = job[key]
            if record.get("Objective") is not None:
                summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                    "Type": metric["Type"], "MetricName": metric["MetricName"], "Value": record["Objective"],
                }
            out.append(summary)
        return out

    def list_trials(self, p: dict[str, Any]) -> dict[str, Any]:
        from smspark_assets.local.sagemaker_api import _check_enum, _Pager

        doc = self._doc(p.get("HyperParameterTuningJobName"))
        sort_by = p.get("SortBy") or "Name"
        order = p.get("SortOrder") or "Ascending"
        _check_enum(sort_by, "sortBy", ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue"))
        _check_enum(order, "sortOrder", ("Ascending", "Descending"))
        _check_enum(p.get("StatusEquals"), "statusEquals", TRIAL_STATUSES)
        trials = self.trial_summaries(doc)
        if p.get("StatusEquals"):
            trials = [t for t in trials if t["TrainingJobStatus"] == p["StatusEquals"]]
        if sort_by == "FinalObjectiveMetricValue":
            # As SageMaker does: jobs without an objective value are left out of this ordering.
            trials = [t for t in trials if "FinalHyperParameterTuningJobObjectiveMetric" in t]
            key: Callable[[dict[str, Any]], Any] = lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        else:
            field = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}[sort_by]
            key = lambda t: t[field]  # noqa: E731
        trials.sort(key=lambda t: (key(t), t["TrainingJobName"]), reverse=order == "Descending")
        page, token = _Pager.page(trials, p, default_size=10, name_key="TrainingJobName")
        out: dict[str, Any] = {"TrainingJobSummaries": page}
        if token:
            out["NextToken"] = token
        return out

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("HyperParameterTuningJobName")
        doc = self._doc(name)
        if doc["HyperParameterTuningJobStatus"] != "InProgress":
            raise validation(
                f"The request was rejected because the tuning job is in status {doc['HyperParameterTuningJobStatus']}."
            )

        def change(d: dict[str, Any]) -> None:
            d["HyperParameterTuningJobStatus"] = "Stopping"
            d["LastModifiedTime"] = time.time()

        self.store.update(KIND, doc["HyperParameterTuningJobName"], change, status_key="HyperParameterTuningJobStatus")
        with self._lock:
            controller = self._runs.get(doc["HyperParameterTuningJobName"])
        if controller is not None:
            controller.stop_requested.set()
        return {}


def _check_s3_uri_of(sm: Any) -> Callable[[Any, str], str]:
    from smspark_assets.local.model_registry import check_s3_uri

    return check_s3_uri


def _check_tags_of(sm: Any) -> Callable[[Any], list[dict[str, str]]]:
    from smspark_assets.local.sagemaker_api import _check_tags

    return _check_tags


def _best(summaries: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, Any] | None:
    """The summary with the best objective (ties: the earliest trial)."""
    maximize = doc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] == "Maximize"
    scored = [s for s in summaries if s.get("ObjectiveStatus") == "Succeeded"
              and "FinalHyperParameterTuningJobObjectiveMetric" in s]
    if not scored:
        return None
    sign = -1.0 if maximize else 1.0
    return min(scored, key=lambda s: (sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                                      s["CreationTime"], s["TrainingJobName"]))


class _Controller:
    """Runs one tuning job's trials in a thread."""

    def __init__(self, api: TuningApi, name: str, plan: TuningPlan, parents: list[dict[str, Any]]) -> None:
        self.api = api
        self.store = api.store
        self.name = name
        self.plan = plan
        self.parents = parents
        self.stop_requested = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"tuning-{name}", daemon=True)
        self.searcher: Searcher = self._searcher()
        self.curves: list[list[float]] = []  # objective per epoch of each finished trial (median rule)
        self.readers: dict[str, CurveReader] = {}
        self.early_stopped: dict[str, float] = {}
        self.launched = 0
        self.best: float | None = None
        self.not_improving = 0
        self.started = time.time()

    def start(self) -> None:
        self.thread.start()

    def _searcher(self) -> Searcher:
        seed = self.plan.seed
        if seed is None:  # deterministic per name when the request gives no seed
            seed = int(hashlib.sha256(self.name.encode()).hexdigest()[:8], 16)
        previous = [(r["Tuned"], r.get("Objective")) for parent in self.parents
                    for r in parent.get(_TRIALS, {}).values() if r.get("ObjectiveStatus") == "Succeeded"]
        if self.plan.strategy == "Grid":
            return GridSearcher(self.plan.space, [h for h, _ in previous])
        searcher = make_searcher(self.plan.strategy, self.plan.space, self.plan.maximize, seed)
        for hps, value in previous:  # warm start: the parents' trials as if this search had run them
            if self.plan.space.contains(hps):
                searcher.observe(hps, value)
        return searcher

    def _service_stopping(self) -> bool:
        flag = getattr(self.api.sm.training, "_shutting_down", None)
        return bool(flag is not None and flag.is_set())

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - a bug here must still end the tuning job visibly
            if not self._service_stopping():
                self._end("Failed", f"InternalServerError: the tuning controller failed: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        doc = self.store.get(KIND, self.name)
        assert doc is not None
        definition = doc["TrainingJobDefinition"]
        pattern = objective_pattern(
            self.plan.metric, definition["AlgorithmSpecification"].get("MetricDefinitions") or [], self.plan.algorithm
        ) if self.plan.early_stopping else None
        running: dict[str, dict[str, str]] = {}
        exhausted = False
        failure: str | None = None
        while True:
            if self._service_stopping():
                return
            stopping = self.stop_requested.is_set()
            timed_out = self.plan.max_runtime is not None and time.time() - self.started >= self.plan.max_runtime
            if stopping or timed_out:
                for trial in running:
                    self._stop_trial(trial)
            # finished trials
            for trial in list(running):
                job = self.store.get(TRAINING, trial)
                if job is None or job["TrainingJobStatus"] in RUNNING:
                    continue
                self._finished(trial, running.pop(trial), job)
            # the median rule on running trials
            if pattern is not None and not (stopping or timed_out):
                for trial in running:
                    reader = self.readers.setdefault(
                        trial, CurveReader(self.api.sm.layout.training_log(trial), pattern))
                    values = reader.read()
                    if trial not in self.early_stopped and should_stop(values, self.curves, self.plan.maximize):
                        self.early_stopped[trial] = values[-1]
                        self._stop_trial(trial)
            done_launching = stopping or timed_out or exhausted or self._criteria_met()
            while not done_launching and len(running) < self.plan.max_parallel and self.launched < self.plan.max_jobs:
                tuned = self.searcher.suggest()
                if tuned is None:
                    exhausted = True
                    break
                self.launched += 1
                trial = trial_name(self.name, self.launched, tuned)
                try:
                    self._launch(trial, tuned, definition, doc["HyperParameterTuningJobArn"])
                except ApiError as exc:
                    failure = f"ClientError: training job {trial} was refused: {exc.message}"
                    done_launching = True
                    break
                running[trial] = tuned
            self._publish_counters()
            if not running and (done_launching or failure or self.launched >= self.plan.max_jobs):
                break
            self.stop_requested.wait(TICK_SECONDS)
        if failure:
            self._end("Failed", failure)
        elif self.stop_requested.is_set():
            self._end("Stopped", None)
        else:
            doc = self.store.get(KIND, self.name) or {}
            if doc.get(_TRIALS) and not any(r.get("ObjectiveStatus") == "Succeeded" for r in doc[_TRIALS].values()):
                first = next(iter(doc[_TRIALS]))
                job = self.store.get(TRAINING, first) or {}
                self._end("Failed", "No training job reported the objective metric "
                          f"{self.plan.metric!r}; first trial {first}: {job.get('FailureReason', 'no objective')}")
            else:
                self._end("Completed", None)

    def _criteria_met(self) -> bool:
        if self.plan.target is not None and self.best is not None:
            if (self.best >= self.plan.target) if self.plan.maximize else (self.best <= self.plan.target):
                return True
        return self.plan.not_improving is not None and self.not_improving >= self.plan.not_improving

    def _launch(self, trial: str, tuned: dict[str, str], definition: dict[str, Any], arn: str) -> None:
        request = {k: v for k, v in definition.items()
                   if k not in ("StaticHyperParameters", "HyperParameterRanges", "DefinitionName",
                                "TuningObjective", "HyperParameterTuningResourceConfig")}
        request["TrainingJobName"] = trial
        request["HyperParameters"] = {**definition["StaticHyperParameters"], **tuned}
        request["TuningJobArn"] = arn  # stored on the trial's document: DescribeTrainingJob shows it
        # Recorded before the job exists, so a trial is never running without the tuning job knowing it.
        self.store.update(KIND, self.name, lambda d: d[_TRIALS].__setitem__(
            trial, {"Tuned": tuned, "ObjectiveStatus": "Pending"}))
        try:
            self.api.sm.create_training_job(request)
        except ApiError:
            self.store.update(KIND, self.name, lambda d: d[_TRIALS].pop(trial, None))
            raise

    def _stop_trial(self, trial: str) -> None:
        try:
            self.api.sm.stop_training_job({"TrainingJobName": trial})
        except ApiError:
            pass  # it ended meanwhile (or is stopping already)

    def _objective(self, job: dict[str, Any]) -> float | None:
        for item in job.get("FinalMetricDataList") or []:
            if item.get("MetricName") == self.plan.metric:
                return float(item["Value"])
        return None

    def _finished(self, trial: str, tuned: dict[str, str], job: dict[str, Any]) -> None:
        value = self._objective(job)
        if value is None and job["TrainingJobStatus"] == "Stopped" and trial in self.early_stopped:
            value = self.early_stopped[trial]  # an early-stopped trial counts with its last reported value
        reader = self.readers.pop(trial, None)
        if reader is not None:
            curve = reader.read()
            if curve:
                self.curves.append(list(curve))
        self.searcher.observe(tuned, value)
        if value is not None:
            improved = self.best is None or (value > self.best if self.plan.maximize else value < self.best)
            self.best = value if improved else self.best
            self.not_improving = 0 if improved else self.not_improving + 1
        status = "Succeeded" if value is not None else "Failed"

        def change(d: dict[str, Any]) -> None:
            d[_TRIALS][trial].update({"Objective": value, "ObjectiveStatus": status})

        self.store.update(KIND, self.name, change)

    def _publish_counters(self) -> None:
        doc = self.store.get(KIND, self.name)
        if doc is None:
            return
        training, objective = _counters()
        for trial, record in doc[_TRIALS].items():
            job = self.store.get(TRAINING, trial) or {}
            status = job.get("TrainingJobStatus", "InProgress")
            if status in RUNNING:
                training["InProgress"] += 1
            elif status == "Failed":
                retryable = str(job.get("FailureReason", "")).startswith("InternalServerError")
                training["RetryableError" if retryable else "NonRetryableError"] += 1
            else:
                training[status] += 1
            objective[record.get("ObjectiveStatus", "Pending")] += 1
        if training == doc["TrainingJobStatusCounters"] and objective == doc["ObjectiveStatusCounters"]:
            return

        def change(d: dict[str, Any]) -> None:
            d["TrainingJobStatusCounters"] = training
            d["ObjectiveStatusCounters"] = objective
            d["LastModifiedTime"] = time.time()
            d["ConsumedResources"] = {"RuntimeInSeconds": int(time.time() - self.started)}
            if self.plan.not_improving is not None:
                d["TuningJobCompletionDetails"] = {"NumberOfTrainingJobsObjectiveNotImproving": self.not_improving}

        self.store.update(KIND, self.name, change)

    def _end(self, status: str, reason: str | None) -> None:
        self._publish_counters()

        def change(d: dict[str, Any]) -> None:
            now = time.time()
            d["HyperParameterTuningJobStatus"] = status
            d["HyperParameterTuningEndTime"] = d["LastModifiedTime"] = now
            d["ConsumedResources"] = {"RuntimeInSeconds": int(now - self.started)}
            if reason:
                d["FailureReason"] = reason
            if self.plan.not_improving is not None:
                d["TuningJobCompletionDetails"] = {"NumberOfTrainingJobsObjectiveNotImproving": self.not_improving}

        try:
            self.store.update(KIND, self.name, change, status_key="HyperParameterTuningJobStatus")
        except NotFound:
            pass
