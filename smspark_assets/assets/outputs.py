"""Published outputs: the latest score per application in DynamoDB, and a model performance table."""


import dagster as dg
import numpy as np
import pandas as pd

from smspark_assets.assets.scoring import SCORES_TABLE, credit_scores
from smspark_assets.layout import layout
from smspark_assets.partitions import daily_partitions
from smspark_assets.resources.catalog import CatalogResource
from smspark_assets.resources.storage import ObjectStoreResource

LATEST_SCORES_TABLE = "credit_scores_latest"
SERVED_COLUMNS = ["application_id", "prediction", "model_name", "scored_at"]


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
    `credit_scores_latest` (key `application_id`), upserted day by day with batch writes."""
    frames = []
    for day in context.partition_keys:
        day_table = store.parquet_dataset(f"{layout().scores}/dt={day}").to_table(
            columns=SERVED_COLUMNS)
        frames.append(day_table.to_pandas().assign(dt=day))
    # One item per application: when an id appears on several days, the latest day's score wins.
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("application_id", keep="last")
    frame["scored_at"] = frame["scored_at"].astype(str)
    context.add_output_metadata({"days": len(frames), "dagster/row_count": len(frame)})
    return frame


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
