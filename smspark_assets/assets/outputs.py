"""Published outputs: the latest score per application in DynamoDB, and a model performance table."""


import io

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smspark_assets.assets.scoring import SCORES_TABLE, credit_scores
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.catalog import CatalogResource
from smspark_assets.resources.dynamodb_writes import invalid_item_reasons
from smspark_assets.resources.storage import ObjectStoreResource

LATEST_SCORES_TABLE = "credit_scores_latest"
SERVED_COLUMNS = ["application_id", "prediction", "model_name", "scored_at"]
QUARANTINE_FILE = "rejected.parquet"


@dg.asset(
    deps=[credit_scores],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="outputs",
    kinds={"dynamodb"},
    io_manager_key="dynamodb_io_manager",
    metadata={"dynamodb/table": LATEST_SCORES_TABLE, "dynamodb/key": "application_id",
              "dynamodb/partition_attribute": "dt"},
)
def credit_scores_dynamodb(context: dg.AssetExecutionContext, store: ObjectStoreResource) -> pd.DataFrame:
    """The latest score per application id, served to applications from the DynamoDB table
    `credit_scores_latest` (key `application_id`), upserted day by day with batch writes. Rows DynamoDB
    would refuse (an id over 2,048 bytes, an item over 400 KB, ...) are quarantined with their reason
    under `quarantine/credit_scores_dynamodb/dt=.../`; the rest of the day is written whole, and items
    that left a re-scored day are deleted."""
    frames = []
    quarantined: dict[str, int] = {}
    reasons_seen: dict[str, int] = {}
    for day in context.partition_keys:
        day_table = store.parquet_dataset(f"{layout().scores}/dt={day}").to_table(
            columns=SERVED_COLUMNS)
        day_frame = day_table.to_pandas().assign(dt=day)
        day_frame["scored_at"] = day_frame["scored_at"].astype(str)
        reasons = invalid_item_reasons(day_frame, "application_id", ["dt"])
        bad = reasons.notna()
        uri = f"{dynamodb_quarantine_prefix()}/dt={day}/{QUARANTINE_FILE}"
        if bad.any():
            # One PUT per day: the day's quarantine is replaced whole, never half-written.
            rejected = day_frame[bad].assign(quarantine_reason=reasons[bad])
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(rejected, preserve_index=False), sink)
            store.write_bytes(uri, sink.getvalue())
            quarantined[day] = int(bad.sum())
            for reason, count in reasons[bad].str.replace(r"\d+ bytes", "N bytes", regex=True).value_counts().items():
                reasons_seen[reason] = reasons_seen.get(reason, 0) + int(count)
            context.log.warning(f"{day}: {int(bad.sum())} row(s) quarantined, not written to DynamoDB: {uri}")
        elif store.exists(uri):
            store.delete(uri)  # a re-scored day without bad rows leaves no quarantine of its last run
        frames.append(day_frame[~bad])
    # One item per application: when an id appears on several days, the latest day's score wins.
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("application_id", keep="last")
    metadata: dict[str, object] = {"days": len(frames), "dagster/row_count": len(frame),
                                   "items_quarantined": sum(quarantined.values())}
    if quarantined:
        metadata["quarantine"] = dg.MetadataValue.path(dynamodb_quarantine_prefix())
        metadata["quarantined_by_day"] = dg.MetadataValue.json(quarantined)
        metadata["quarantine_reasons"] = dg.MetadataValue.json(reasons_seen)
    context.add_output_metadata(metadata)
    return frame


def dynamodb_quarantine_prefix() -> str:
    """Where rows DynamoDB would refuse are kept, by day (next to the raw rows' quarantine)."""
    return s3_uri(layout().bucket, "quarantine/credit_scores_dynamodb")


PERFORMANCE_SQL = f"""
SELECT decile,
       COUNT(*) AS applications,
       AVG(prediction) AS mean_predicted_default,
       AVG(CAST(defaulted_12m AS DOUBLE)) AS observed_default_rate
FROM (
  SELECT prediction, defaulted_12m, NTILE(10) OVER (ORDER BY prediction) AS decile
  FROM {SCORES_TABLE}
  WHERE split = 'test'
)
GROUP BY decile
ORDER BY decile
"""


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged."""
    labels = np.asarray(labels, dtype=bool)
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dg.asset(deps=[credit_scores], group_name="outputs", kinds={"athena", "parquet"},
          io_manager_key="parquet_io_manager")
def credit_model_performance(context: dg.AssetExecutionContext, catalog: CatalogResource) -> pd.DataFrame:
    """Calibration by decile on the held-out test split of every scored day, computed in SQL over the
    catalog table (Athena on AWS, DuckDB locally): predicted versus observed default rate."""
    deciles = catalog.query(PERFORMANCE_SQL)
    test = catalog.query(f"SELECT prediction, defaulted_12m FROM {SCORES_TABLE} WHERE split = 'test'")
    test_auc = auc(test["defaulted_12m"].to_numpy(), test["prediction"].to_numpy())
    context.add_output_metadata({
        "test_auc": test_auc,
        "test_applications": len(test),
        "sql": dg.MetadataValue.md(f"```sql\n{PERFORMANCE_SQL.strip()}\n```"),
        "deciles": dg.MetadataValue.md(deciles.to_markdown(index=False) if len(deciles) else "(empty)"),
    })
    return deciles
