"""Partitions shared by the raw data, its sensor, the features and the scores."""

import dagster as dg

from smspark_assets.environment import partitions_start

# Applications land as one folder per day (dt=YYYY-MM-DD). end_offset=1 admits today's folder,
# which upstream systems may land before the day is over.
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), end_offset=1)
