"""Raw credit applications as they land in S3: an external, daily-partitioned asset."""

import dagster as dg

from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions

RAW_APPLICATIONS = dg.AssetKey("raw_credit_applications")

raw_credit_applications = dg.AssetSpec(
    RAW_APPLICATIONS,
    description=(
        "Credit applications landed by the application systems as CSV, one folder per day "
        "(`raw/credit_applications/dt=YYYY-MM-DD/part-*.csv`). Observed by the `raw_applications_sensor`, "
        "which records each new day here and asks for the features and scores of that day."
    ),
    partitions_def=daily_partitions,
    group_name="raw",
    kinds={"s3", "csv"},
    metadata={"uri": dg.MetadataValue.path(layout().raw)},
)
