"""Schedules: retrain weekly on everything prepared so far (an unchanged model is adopted, not retrained).

Its declarative twin is the automation condition of `credit_training_channels` (`smspark_assets.ownership`):
weekly after new features, or on a code change. That one acts only when the automation sensor is turned
on; running both starts no second training, because an unchanged training job is adopted.
"""

import dagster as dg

from smspark_assets.jobs import training_job

weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    description="Mondays 04:00 UTC: channels, training behind the quality gate, endpoint update.",
)
