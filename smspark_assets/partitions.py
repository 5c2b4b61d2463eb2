"""Partitions shared by the raw data, its sensor, the features and the scores."""

from collections.abc import Sequence

import dagster as dg

from smspark_assets.environment import PARTITIONS_START_VAR, partitions_start

# Applications land as one folder per day (dt=YYYY-MM-DD). end_offset=1 admits today's folder,
# which upstream systems may land before the day is over. The first day is where the data starts
# (SMSPARK_PARTITIONS_START, default the demo's first day), so no empty month precedes it in the UI.
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), end_offset=1)


def require_partition_days(days: Sequence[str]) -> None:
    """Refuse days that are not daily partitions, before any data lands for them: the sensor would
    ignore such folders, and a run over them would fail after landing the data."""
    first = daily_partitions.start.date().isoformat()
    early = [d for d in days if d < first]
    if early:
        raise ValueError(f"day(s) {early[0]}{' ...' if len(early) > 1 else ''} come before the first daily "
                         f"partition {first}; start at or after {first}, or set {PARTITIONS_START_VAR} "
                         f"to the first day of the data (YYYY-MM-DD)")
