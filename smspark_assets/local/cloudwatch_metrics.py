"""The local CloudWatch (metrics and metric alarms) as botocore 1.44 speaks it.

botocore's ``cloudwatch`` model lists ``smithy-rpc-v2-cbor``, ``json`` and ``query``; boto3 1.44.8 sends
JSON 1.0 (``X-Amz-Target: GraniteServiceVersion20100801.<Operation>``, ``x-amzn-query-mode: true``,
timestamps as epoch seconds), so this is a JSON-target API. Operations: PutMetricData, GetMetricData,
GetMetricStatistics, ListMetrics, PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState.

Metric data lives in memory (:mod:`.metric_series`), the endpoints' invocation metrics are one of its
sources (:mod:`.endpoint_metrics`). Alarms are kept in memory and in the state store (written only when
one is put, deleted or changes state) and evaluated on a background tick
(:mod:`.cloudwatch_alarms`). The endpoints read alarm states from here for auto-rollback.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import threading
import time
from typing import Any, Callable

from smspark_assets.local.api_errors import ApiError
from smspark_assets.local.cloudwatch_alarms import STATES, check_alarm, check_period, evaluate, invalid
from smspark_assets.local.metric_series import STATISTICS, MetricKey, MetricStore, dimensions_key, percentile_of

log = logging.getLogger("smspark.local.cloudwatch")

TARGET_PREFIX = "GraniteServiceVersion20100801"
ALARM_KIND = "cloudwatch-alarm"
ACCOUNT = "123456789012"
# How often alarms are evaluated; CloudWatch evaluates about once a minute, locally every second so that
# deployments guarded by alarms react within the short bakes of tests.
TICK_SECONDS = 1.0
MAX_QUERIES = 500
MAX_DATAPOINTS_PER_STATISTICS_CALL = 1440
UNITS = ('Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes',
         'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count',
         'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second',
         'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second',
         'Count/Second', 'None')


def _epoch(value: Any, member: str) -> float:
    """A timestamp as botocore's JSON protocol sends it (epoch seconds), or ISO-8601."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            return parsed.timestamp()
    raise invalid(f"The parameter {member} must be a timestamp; got {value!r}.")


def _required(p: dict[str, Any], member: str) -> Any:
    if p.get(member) in (None, ""):
        raise ApiError("MissingParameter", f"The parameter {member} is required.")
    return p[member]


def _metric_key(namespace: Any, name: Any, dimensions: Any) -> MetricKey:
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255:
        raise invalid("The parameter Namespace must be 1-255 characters.")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise invalid("The parameter MetricName must be 1-255 characters.")
    if dimensions is not None and (not isinstance(dimensions, list) or len(dimensions) > 30 or not all(
            isinstance(d, dict) and isinstance(d.get("Name"), str) and isinstance(d.get("Value"), str)
            and d["Name"] and d["Value"] for d in dimensions)):
        raise invalid("Dimensions must be a list of at most 30 {Name, Value} objects with non-empty strings.")
    return namespace, name, dimensions_key(dimensions)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page_offset(token: Any) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("InvalidNextToken", "The NextToken is not one this service returned.") from None


class CloudWatchApi:
    """CloudWatch metrics and alarms of the local stack (``dispatch`` per operation)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.store = service.store
        self.region = "us-east-1"
        self.metrics = MetricStore(service.layout.local_dir / "cloudwatch-metrics.json")
        endpoints = getattr(service, "endpoints", None)
        if endpoints is not None:
            # The endpoints count their invocations; alarm states guard their deployments.
            self.metrics.add_source(endpoints.metrics)
            endpoints.alarm_state = self.alarm_state
        self._alarms: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "PutMetricData": self.put_metric_data,
            "GetMetricData": self.get_metric_data,
            "GetMetricStatistics": self.get_metric_statistics,
            "ListMetrics": self.list_metrics,
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "DeleteAlarms": self.delete_alarms,
            "SetAlarmState": self.set_alarm_state,
        }

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.metrics.load()
        with self._lock:
            for doc in self.store.list(ALARM_KIND):
                self._alarms[doc["AlarmName"]] = doc
        self._thread = threading.Thread(target=self._tick, name="cloudwatch-alarms", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        self.metrics.save()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.evaluate_all()
                self.metrics.prune()
            except Exception:  # noqa: BLE001 - one bad tick must not end alarm evaluation
                log.exception("alarm evaluation failed")

    def evaluate_all(self, now: float | None = None) -> None:
        """Evaluate every alarm against its metric now (also called by tests)."""
        now = time.time() if now is None else now
        with self._lock:
            alarms = list(self._alarms.values())
        for alarm in alarms:
            period = int(alarm["Period"])
            key = (alarm["Namespace"], alarm["MetricName"], dimensions_key(alarm.get("Dimensions")))
            # The current range and the range of complete periods before it (see evaluate).
            start = now - now % period - int(alarm["EvaluationPeriods"]) * period
            outcome = evaluate(alarm, self.metrics.periods(key, start, now + 1, period), now)
            if outcome is not None:
                self._set_state(alarm["AlarmName"], *outcome, now=now)

    def _set_state(self, name: str, state: str, reason: str, data: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            alarm = self._alarms.get(name)
            if alarm is None:
                return
            changed = alarm.get("StateValue") != state
            if not changed and alarm.get("StateReason") == reason:
                return
            alarm = {**alarm, "StateReason": reason, "StateUpdatedTimestamp": now}
            if data is not None:
                alarm["StateReasonData"] = data
            if changed:
                alarm["StateValue"] = state
                alarm["StateTransitionedTimestamp"] = now
                log.info("alarm %s -> %s: %s", name, state, reason)
            self._alarms[name] = alarm
        if changed:  # persisted on transitions only: the reason text changes every tick
            self._persist(alarm)

    def _persist(self, alarm: dict[str, Any]) -> None:
        name = alarm["AlarmName"]

        def replace(doc: dict[str, Any]) -> None:
            doc.clear()
            doc.update(alarm)

        if self.store.get(ALARM_KIND, name) is None:
            self.store.create(ALARM_KIND, name, alarm["AlarmArn"], alarm)
        else:
            self.store.update(ALARM_KIND, name, replace)

    def alarm_state(self, name: str) -> tuple[str, str] | None:
        """``(StateValue, StateReason)`` of an alarm, ``None`` when there is no such alarm."""
        alarm = self._alarms.get(name)
        return (alarm["StateValue"], alarm.get("StateReason", "")) if alarm else None

    # -- dispatch -----------------------------------------------------------------------------------------

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._ops.get(operation)
        if handler is None:
            raise ApiError("InvalidAction", f"The local CloudWatch does not implement {operation}; it "
                                            f"implements: {', '.join(sorted(self._ops))}.")
        return handler(params)

    # -- metrics ------------------------------------------------------------------------------------------

    def put_metric_data(self, p: dict[str, Any]) -> dict[str, Any]:
        namespace = _required(p, "Namespace")
        if namespace.startswith("AWS/"):
            raise invalid("The value AWS/ for parameter Namespace is invalid: namespaces starting with AWS/ "
                          "are reserved for AWS services.")
        data = p.get("MetricData") or []
        if not isinstance(data, list) or not 1 <= len(data) <= 1000:
            raise ApiError("MissingParameter" if not data else "InvalidParameterValue",
                           "The parameter MetricData must hold 1-1000 datums.")
        now = time.time()
        puts = []
        for i, datum in enumerate(data, 1):
            if not isinstance(datum, dict):
                raise invalid(f"MetricData.member.{i} must be an object.")
            key = _metric_key(namespace, datum.get("MetricName"), datum.get("Dimensions"))
            stamp = _epoch(datum["Timestamp"], f"MetricData.member.{i}.Timestamp") if "Timestamp" in datum \
                else now
            if stamp > now + 2 * 3600 or stamp < now - 14 * 86400:
                raise invalid(f"The parameter MetricData.member.{i}.Timestamp must be within the past two "
                              "weeks and at most two hours in the future.")
            unit = datum.get("Unit")
            if unit is not None and unit not in UNITS:
                raise invalid(f"The value {unit} for parameter MetricData.member.{i}.Unit is not a unit.")
            given = [m for m in ("Value", "Values", "StatisticValues") if datum.get(m) is not None]
            if len(given) != 1:
                raise ApiError("InvalidParameterCombination",
                               f"MetricData.member.{i} must give exactly one of Value, Values and StatisticValues.")
            second = int(stamp)
            if "Value" in given:
                value = self._number(datum["Value"], f"MetricData.member.{i}.Value")
                puts.append((key, second, 1.0, value, value, value, [value], unit))
            elif "Values" in given:
                values = [self._number(v, f"MetricData.member.{i}.Values") for v in datum["Values"]]
                counts = datum.get("Counts") or [1.0] * len(values)
                if len(counts) != len(values) or len(values) > 150:
                    raise invalid(f"MetricData.member.{i}: Values (at most 150) and Counts must have the same "
                                  "length.")
                counts = [self._number(c, f"MetricData.member.{i}.Counts") for c in counts]
                if not values:
                    continue
                expanded = [v for v, c in zip(values, counts) for _ in range(min(int(c), 1000))]
                puts.append((key, second, sum(counts), sum(v * c for v, c in zip(values, counts)),
                             min(values), max(values), expanded, unit))
            else:
                sv = datum["StatisticValues"]
                fields = [self._number(sv.get(m), f"MetricData.member.{i}.StatisticValues.{m}")
                          for m in ("SampleCount", "Sum", "Minimum", "Maximum")]
                if fields[0] <= 0 or fields[2] > fields[3]:
                    raise invalid(f"MetricData.member.{i}.StatisticValues: SampleCount must be positive and "
                                  "Minimum at most Maximum.")
                puts.append((key, second, *fields, None, unit))
        for key, second, count, total, minimum, maximum, values, unit in puts:  # all valid: apply all
            self.metrics.put(key, second, count, total, minimum, maximum, values, unit)
        return {}

    @staticmethod
    def _number(value: Any, member: str) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or abs(value) > 2 ** 360:
            raise invalid(f"The value {value!r} for parameter {member} is not a finite number in CloudWatch's range.")
        return float(value)

    def _datapoints(self, key: MetricKey, start: float, end: float, period: int, stat: str
                    ) -> list[tuple[int, float]]:
        out = []
        for slot, values in sorted(self.metrics.periods(key, start, end, period).items()):
            value = values.statistic(stat)
            if value is not None:
                out.append((slot, value))
        return out

    def get_metric_data(self, p: dict[str, Any]) -> dict[str, Any]:
        queries = _required(p, "MetricDataQueries")
        start = _epoch(_required(p, "StartTime"), "StartTime")
        end = _epoch(_required(p, "EndTime"), "EndTime")
        if end <= start:
            raise invalid("The parameter StartTime must be before EndTime.")
        if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
            raise invalid(f"MetricDataQueries must hold 1-{MAX_QUERIES} queries.")
        scan = p.get("ScanBy", "TimestampDescending")
        if scan not in ("TimestampDescending", "TimestampAscending"):
            raise invalid("ScanBy must be TimestampDescending or TimestampAscending.")
        max_points = p.get("MaxDatapoints", 100800)
        if not isinstance(max_points, int) or max_points < 1:
            raise invalid("MaxDatapoints must be a positive integer.")
        ids: set[str] = set()
        results = []
        for i, query in enumerate(queries, 1):
            qid = query.get("Id") if isinstance(query, dict) else None
            if not isinstance(qid, str) or not qid[:1].islower() or not qid.replace("_", "").isalnum():
                raise invalid(f"MetricDataQueries.member.{i}.Id must start with a lowercase letter and hold "
                              "letters, digits and underscores.")
            if qid in ids:
                raise invalid(f"The Id {qid} is used by more than one query.")
            ids.add(qid)
            if query.get("Expression"):
                raise invalid(f"Query {qid}: metric math expressions are not supported by the local stack; "
                              "use MetricStat.")
            stat_query = query.get("MetricStat")
            if not isinstance(stat_query, dict) or not isinstance(stat_query.get("Metric"), dict):
                raise ApiError("MissingParameter", f"Query {qid} needs MetricStat (Metric, Period, Stat).")
            metric = stat_query["Metric"]
            key = _metric_key(metric.get("Namespace"), metric.get("MetricName"), metric.get("Dimensions"))
            period = check_period(stat_query.get("Period"), f"MetricDataQueries.member.{i}.MetricStat.Period")
            stat = stat_query.get("Stat")
            if stat not in STATISTICS and percentile_of(str(stat)) is None:
                raise invalid(f"Query {qid}: Stat {stat!r} is not one of {', '.join(STATISTICS)} or a "
                              "percentile such as p99.")
            points = self._datapoints(key, start, end, period, stat)
            if scan == "TimestampDescending":
                points.reverse()
            if query.get("ReturnData", True) is False:
                continue
            results.append({
                "Id": qid, "Label": query.get("Label") or key[1],
                "Timestamps": [float(s) for s, _ in points], "Values": [v for _, v in points],
                "StatusCode": "Complete",
            })
        # NextToken pages over datapoints; the whole answer fits unless MaxDatapoints is exceeded.
        offset = _page_offset(p.get("NextToken"))
        total = sum(len(r["Values"]) for r in results)
        token = None
        if total > max_points or offset:
            remaining, skipped = max_points, offset
            for result in results:
                take_from = min(skipped, len(result["Values"]))
                skipped -= take_from
                take = min(remaining, len(result["Values"]) - take_from)
                result["Timestamps"] = result["Timestamps"][take_from:take_from + take]
                result["Values"] = result["Values"][take_from:take_from + take]
                remaining -= take
            if offset + max_points < total:
                token = _page_token(offset + max_points)
                for result in results:
                    result["StatusCode"] = "PartialData"
        out: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if token:
            out["NextToken"] = token
        return out

    def get_metric_statistics(self, p: dict[str, Any]) -> dict[str, Any]:
        key = _metric_key(_required(p, "Namespace"), _required(p, "MetricName"), p.get("Dimensions"))
        start = _epoch(_required(p, "StartTime"), "StartTime")
        end = _epoch(_required(p, "EndTime"), "EndTime")
        period = check_period(_required(p, "Period"))
        if end <= start:
            raise invalid("The parameter StartTime must be before EndTime.")
        statistics = p.get("Statistics") or []
        extended = p.get("ExtendedStatistics") or []
        if not statistics and not extended:
            raise ApiError("MissingParameter", "Give Statistics or ExtendedStatistics (or both).")
        bad = [s for s in statistics if s not in STATISTICS] + \
              [s for s in extended if percentile_of(str(s)) is None]
        if bad:
            raise invalid(f"Unknown statistics {bad}; Statistics are {', '.join(STATISTICS)}, "
                          "ExtendedStatistics percentiles such as p99.")
        if (end - start) / period > MAX_DATAPOINTS_PER_STATISTICS_CALL:
            raise invalid(f"You have requested up to {int((end - start) / period)} datapoints, which exceeds "
                          f"the limit of {MAX_DATAPOINTS_PER_STATISTICS_CALL}. Ask for a shorter range or a "
                          "longer period.")
        unit = p.get("Unit") or self.metrics.unit(key) or ("Microseconds" if key[1].endswith("Latency")
                                                            or key[1] == "ModelSetupTime" else "None")
        datapoints = []
        for slot, values in sorted(self.metrics.periods(key, start, end, period).items()):
            point: dict[str, Any] = {"Timestamp": float(slot), "Unit": unit}
            for name in statistics:
                value = values.statistic(name)
                if value is not None:
                    point[name] = value
            if extended:
                point["ExtendedStatistics"] = {
                    name: value for name in extended if (value := values.statistic(name)) is not None}
            datapoints.append(point)
        return {"Label": key[1], "Datapoints": datapoints}

    def list_metrics(self, p: dict[str, Any]) -> dict[str, Any]:
        namespace, name = p.get("Namespace"), p.get("MetricName")
        wanted = p.get("Dimensions") or []
        if not isinstance(wanted, list) or len(wanted) > 10:
            raise invalid("Dimensions (filters) must be a list of at most 10 {Name, Value?} objects.")
        out = []
        for key in self.metrics.keys():
            if namespace and key[0] != namespace or name and key[1] != name:
                continue
            dims = dict(key[2])
            if any(f.get("Name") not in dims or ("Value" in f and dims[f["Name"]] != f["Value"])
                   for f in wanted):
                continue
            out.append({"Namespace": key[0], "MetricName": key[1],
                        "Dimensions": [{"Name": n, "Value": v} for n, v in key[2]]})
        offset = _page_offset(p.get("NextToken"))
        page = out[offset:offset + 500]
        result: dict[str, Any] = {"Metrics": page}
        if offset + 500 < len(out):
            result["NextToken"] = _page_token(offset + 500)
        return result

    # -- alarms -------------------------------------------------------------------------------------------

    def put_metric_alarm(self, p: dict[str, Any]) -> dict[str, Any]:
        config = check_alarm(p)
        name = config["AlarmName"]
        now = time.time()
        with self._lock:
            old = self._alarms.get(name)
            alarm = {
                **config,
                "AlarmArn": f"arn:aws:cloudwatch:{self.region}:{ACCOUNT}:alarm:{name}",
                "AlarmConfigurationUpdatedTimestamp": now,
                # a new alarm starts in INSUFFICIENT_DATA; an update keeps the state it had
                "StateValue": old["StateValue"] if old else "INSUFFICIENT_DATA",
                "StateReason": old["StateReason"] if old else "Unchecked: Initial alarm creation",
                "StateUpdatedTimestamp": old["StateUpdatedTimestamp"] if old else now,
                "StateTransitionedTimestamp": old.get("StateTransitionedTimestamp", now) if old else now,
            }
            if old and old.get("StateReasonData"):
                alarm["StateReasonData"] = old["StateReasonData"]
            self._alarms[name] = alarm
        self._persist(alarm)
        return {}

    def describe_alarms(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("AlarmNames")
        prefix = p.get("AlarmNamePrefix")
        if names and prefix:
            raise ApiError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot both be given.")
        state = p.get("StateValue")
        if state is not None and state not in STATES:
            raise invalid(f"StateValue must be one of {', '.join(STATES)}.")
        types = p.get("AlarmTypes") or ["MetricAlarm"]
        size = p.get("MaxRecords", 50)
        if not isinstance(size, int) or not 1 <= size <= 100:
            raise invalid("MaxRecords must be between 1 and 100.")
        with self._lock:
            alarms = sorted(self._alarms.values(), key=lambda a: a["AlarmName"])
        selected = [
            a for a in alarms
            if (not names or a["AlarmName"] in names) and (not prefix or a["AlarmName"].startswith(prefix))
            and (state is None or a["StateValue"] == state)
            and (not p.get("ActionPrefix") or any(x.startswith(p["ActionPrefix"]) for x in a["AlarmActions"]))
        ] if "MetricAlarm" in types else []
        offset = _page_offset(p.get("NextToken"))
        out: dict[str, Any] = {"MetricAlarms": selected[offset:offset + size], "CompositeAlarms": []}
        if offset + size < len(selected):
            out["NextToken"] = _page_token(offset + size)
        return out

    def delete_alarms(self, p: dict[str, Any]) -> dict[str, Any]:
        names = _required(p, "AlarmNames")
        if not isinstance(names, list) or len(names) > 100:
            raise invalid("AlarmNames must be a list of at most 100 names.")
        with self._lock:
            missing = [n for n in names if n not in self._alarms]
            if missing:
                raise ApiError("ResourceNotFound", f"Alarms not found: {', '.join(map(str, missing))}", 404)
            for name in names:
                del self._alarms[name]
        for name in names:
            try:
                self.store.delete(ALARM_KIND, name)
            except Exception:  # noqa: BLE001 - not persisted yet: nothing to remove
                pass
        return {}

    def set_alarm_state(self, p: dict[str, Any]) -> dict[str, Any]:
        name = _required(p, "AlarmName")
        state = _required(p, "StateValue")
        reason = _required(p, "StateReason")
        if state not in STATES:
            raise invalid(f"StateValue must be one of {', '.join(STATES)}.")
        if len(reason) > 1023:
            raise invalid("StateReason must be at most 1023 characters.")
        data = p.get("StateReasonData")
        if data is not None:
            try:
                json.loads(data)
            except (TypeError, ValueError):
                raise invalid("StateReasonData must be JSON text.") from None
        if name not in self._alarms:
            raise ApiError("ResourceNotFound", f"Alarm {name} not found", 404)
        # Until the next evaluation, as on AWS: the alarm then returns to the state its metric says.
        self._set_state(name, state, reason, data)
        return {}
