"""Schedules: retrain weekly on everything prepared so far (an unchanged model is adopted, not retrained)."""

import dagster as dg

from smspark_assets.jobs import training_job

weekly_training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    description="Mondays 04:00 UTC: channels, training behind the quality gate, endpoint update.",
)
