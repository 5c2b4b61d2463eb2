"""Sensors: new raw days in S3 start the daily flow."""


import json

import dagster as dg

from smspark_assets.assets.raw import RAW_APPLICATIONS
from smspark_assets.jobs import daily_scoring_job
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.storage import ObjectStoreResource

# Enough for a backfill of a quarter in one tick, small enough to stay far inside the tick timeout.
MAX_DAYS_PER_TICK = 90


@dg.sensor(job=daily_scoring_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def raw_applications_sensor(context: dg.SensorEvaluationContext, store: ObjectStoreResource
                            ) -> dg.SensorResult | dg.SkipReason:
    """Finds complete `dt=` folders (with `_SUCCESS`) that landed since the last tick (the listing starts after the last day seen,
    so a tick never re-lists what it already saw), records them on the raw asset and asks for their runs."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    last_seen = cursor.get("last_dt")
    folders = store.list_prefixes(layout().raw, start_after=f"dt={last_seen}" if last_seen else None)
    valid_days = set(daily_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    # Days already recorded on the raw asset (by an earlier tick, or by `smspark run`) are not new.
    recorded = context.instance.get_materialized_partitions(RAW_APPLICATIONS)
    landed: list[tuple[str, int, int]] = []
    newest = last_seen
    for folder in folders[:MAX_DAYS_PER_TICK]:
        if not folder.startswith("dt="):
            continue
        day = folder[3:]
        listed = store.list_objects(f"{layout().raw}/{folder}")
        if not any(o.uri.endswith("/_SUCCESS") for o in listed):
            break  # the day is still landing (its _SUCCESS marker comes last): look again next tick
        objects = [o for o in listed if o.uri.endswith(".csv")]
        if day not in valid_days:
            context.log.warning(f"ignoring {folder}: not a day of the partitions ({daily_partitions.start:%Y-%m-%d} on)")
            continue
        newest = day
        if day not in recorded:
            landed.append((day, len(objects), sum(o.size for o in objects)))
    if not landed:
        return dg.SensorResult(skip_reason=f"no new day under {layout().raw} after {last_seen or 'the beginning'}",
                               cursor=json.dumps({"last_dt": newest}) if newest else context.cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=day, run_key=f"raw-{day}") for day, _, _ in landed],
        asset_events=[dg.AssetMaterialization(asset_key=RAW_APPLICATIONS, partition=day,
                                              metadata={"files": files, "bytes": size})
                      for day, files, size in landed],
        cursor=json.dumps({"last_dt": newest}),
    )
