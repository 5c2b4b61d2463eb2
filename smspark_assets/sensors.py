"""Sensors: complete raw days in S3 start the daily flow.

What is new is decided by comparing the listing with the days recorded on the raw asset, not by a
cursor that only moves forward: a day that lands after later days (a late upstream export, a re-run
of yesterday) is picked up, and a folder that never gets its ``_SUCCESS`` marker is skipped by name
instead of holding back every day after it. A day left incomplete for longer than
``SMSPARK_RAW_INCOMPLETE_WARN_HOURS`` is reported where a Dagster user looks: a warning in the tick's
log, the skip reason of the tick, and one observation on that partition of the raw asset (its
history in the asset catalog), carrying the age and the objects seen so far.
"""


import json
import math
import os
import time
from dataclasses import dataclass

import dagster as dg

from smspark_assets.assets.raw import RAW_APPLICATIONS
from smspark_assets.jobs import daily_scoring_job
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.storage import ObjectStoreResource

# Enough for a backfill of a quarter in one tick, small enough to stay far inside the tick timeout.
MAX_DAYS_PER_TICK = 90
# Each unrecorded folder costs a HEAD and a LIST; this bounds a tick when many folders are incomplete.
MAX_FOLDERS_PROBED_PER_TICK = 2 * MAX_DAYS_PER_TICK
SUCCESS_MARKER = "_SUCCESS"
INCOMPLETE_WARN_HOURS_VAR = "SMSPARK_RAW_INCOMPLETE_WARN_HOURS"
# Upstream exports of a day take minutes; six hours without a marker means the export is stuck.
DEFAULT_INCOMPLETE_WARN_HOURS = 6.0


def incomplete_warn_hours() -> float:
    """How long a day folder may stay without ``_SUCCESS`` before the sensor warns (hours, > 0)."""
    text = os.environ.get(INCOMPLETE_WARN_HOURS_VAR, "").strip()
    if not text:
        return DEFAULT_INCOMPLETE_WARN_HOURS
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise ValueError(f"{INCOMPLETE_WARN_HOURS_VAR}={text!r} is not valid: expected a number of hours > 0 "
                         f"(default {DEFAULT_INCOMPLETE_WARN_HOURS:g})")
    return hours


def _now() -> float:
    """The current time (seconds since the epoch); a seam for tests of the age threshold."""
    return time.time()


@dataclass(frozen=True)
class _Incomplete:
    day: str
    objects: int
    oldest: float
    age_hours: float


def _describe(days: list[_Incomplete]) -> str:
    return ", ".join(f"dt={d.day} ({d.objects} object(s), {d.age_hours:.1f} h old)" for d in days)


@dg.sensor(job=daily_scoring_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def raw_applications_sensor(context: dg.SensorEvaluationContext, store: ObjectStoreResource
                            ) -> dg.SensorResult | dg.SkipReason:
    """Finds complete `dt=` folders (with `_SUCCESS`) that are not yet recorded on the raw asset, records
    them and asks for their runs; skips incomplete folders by name and warns when one stays incomplete
    longer than `SMSPARK_RAW_INCOMPLETE_WARN_HOURS` (default 6)."""
    warn_after_hours = incomplete_warn_hours()
    cursor = json.loads(context.cursor) if context.cursor else {}
    already_warned = set(cursor.get("warned", []))
    raw = layout().raw
    # One delimited listing returns the day folders only (1,000 per page), never their objects.
    folders = [f for f in store.list_prefixes(raw) if f.startswith("dt=")]
    valid_days = set(daily_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    # Days recorded on the raw asset (by an earlier tick, or by `smspark run`) are not new: the asset's
    # history, not the cursor, is the memory of what was seen.
    recorded = context.instance.get_materialized_partitions(RAW_APPLICATIONS)
    landed: list[tuple[str, int, int]] = []
    incomplete: list[_Incomplete] = []
    not_partitions: list[str] = []
    newest = cursor.get("last_dt")
    probed = 0
    for folder in folders:  # dt=YYYY-MM-DD sorts by date: the oldest unrecorded day is requested first
        day = folder[3:]
        if day in recorded:
            newest = max(newest or day, day)
            continue
        if day not in valid_days:
            not_partitions.append(folder)
            continue
        if len(landed) >= MAX_DAYS_PER_TICK or probed >= MAX_FOLDERS_PROBED_PER_TICK:
            break  # the rest waits for the next tick, oldest first
        probed += 1
        prefix = f"{raw}/{folder}"
        complete = store.exists(f"{prefix}/{SUCCESS_MARKER}")
        listed = store.list_objects(prefix + "/")
        if not complete:
            oldest = min((o.last_modified for o in listed), default=_now())
            incomplete.append(_Incomplete(day, len(listed), oldest, (_now() - oldest) / 3600))
            continue
        newest = max(newest or day, day)
        objects = [o for o in listed if o.uri.endswith(".csv")]
        landed.append((day, len(objects), sum(o.size for o in objects)))

    stale = [d for d in incomplete if d.age_hours >= warn_after_hours]
    fresh = [d for d in incomplete if d.age_hours < warn_after_hours]
    observations: list[dg.AssetObservation] = []
    if fresh:
        context.log.info(f"skipping incomplete day(s) still landing (no {SUCCESS_MARKER} yet): {_describe(fresh)}")
    if stale:
        context.log.warning(
            f"day(s) incomplete for more than {warn_after_hours:g} h ({INCOMPLETE_WARN_HOURS_VAR}), skipped: "
            f"{_describe(stale)}; their upstream export may be stuck: check it, then write {SUCCESS_MARKER} "
            f"(or remove the folder)")
        # One observation per stuck day (not one per tick): it lands on the day's partition of the raw
        # asset, so the asset catalog shows which day is stuck, since when, and what it holds.
        observations = [
            dg.AssetObservation(RAW_APPLICATIONS, partition=d.day, metadata={
                "status": "incomplete", "missing": SUCCESS_MARKER, "objects": d.objects,
                "age_hours": round(d.age_hours, 2), "warn_after_hours": warn_after_hours,
                "oldest_object_at": dg.MetadataValue.timestamp(d.oldest),
                "uri": dg.MetadataValue.path(f"{raw}/dt={d.day}/")})
            for d in stale if d.day not in already_warned]
    if not_partitions:
        context.log.warning(f"ignoring {', '.join(not_partitions)}: not day(s) of the partitions "
                            f"({daily_partitions.start:%Y-%m-%d} to today)")
    next_cursor: dict[str, object] = {"last_dt": newest} if newest else {}
    if stale:
        # Remembered so that a stuck day is observed once; a day that completes or is removed drops out.
        next_cursor["warned"] = sorted(d.day for d in stale)
    events: list[dg.AssetObservation | dg.AssetMaterialization] = [*observations]
    events += [dg.AssetMaterialization(asset_key=RAW_APPLICATIONS, partition=day,
                                       metadata={"files": files, "bytes": size})
               for day, files, size in landed]
    if not landed:
        reason = f"no new complete day under {raw}"
        if incomplete:
            reason += f"; skipped incomplete (no {SUCCESS_MARKER}): {_describe(incomplete)}"
        if stale:
            reason += f"; WARNING: {len(stale)} day(s) incomplete for more than {warn_after_hours:g} h"
        return dg.SensorResult(skip_reason=reason, asset_events=events,
                               cursor=json.dumps(next_cursor) if next_cursor else None)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=day, run_key=f"raw-{day}") for day, _, _ in landed],
        asset_events=events,
        cursor=json.dumps(next_cursor),
    )
