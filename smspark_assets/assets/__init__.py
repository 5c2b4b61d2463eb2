"""Software-defined assets, by domain: raw data, features, training, serving, scoring, outputs."""

import warnings

import dagster as dg

# Single-run backfills (one Spark application for a range of days) are a deliberate choice; the
# parameter is marked beta in Dagster 1.13, and the warning would repeat on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
