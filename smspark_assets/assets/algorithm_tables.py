"""The algorithm endpoints' test figures as a catalog table (``smspark.algorithm_endpoint_scores``).

One row per endpoint and figure (long format: the algorithms report different figures: AUC, RMSE,
captured variance...), so they can be compared and joined in SQL with the other outputs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from smspark_assets.assets.algorithm_catalog import BY_KEY
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.resources.catalog import CatalogResource, publish_parquet_table

ALGORITHM_SCORES_TABLE = "algorithm_endpoint_scores"
FIGURES_SCHEMA = pa.schema([("model", pa.string()), ("algorithm", pa.string()), ("endpoint_name", pa.string()),
                            ("figure", pa.string()), ("value", pa.float64()),
                            ("scored_at", pa.timestamp("us", tz="UTC"))])


def figures_table(results: Mapping[str, Mapping[str, Any]], scored_at: dt.datetime) -> pa.Table:
    """``results`` (model key -> {"endpoint_name", "figures"}) as rows; non-numeric figures are left out."""
    rows: dict[str, list[Any]] = {name: [] for name in FIGURES_SCHEMA.names}
    for key, result in results.items():
        for figure, value in (result.get("figures") or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            rows["model"].append(key)
            rows["algorithm"].append(BY_KEY[key].algorithm if key in BY_KEY else None)
            rows["endpoint_name"].append(result.get("endpoint_name"))
            rows["figure"].append(figure)
            rows["value"].append(float(value))
            rows["scored_at"].append(scored_at)
    return pa.table(rows, schema=FIGURES_SCHEMA)


def publish_endpoint_figures(catalog: CatalogResource, store: Any, results: Mapping[str, Mapping[str, Any]]) -> str:
    """Replace the table's one object with this run's figures; returns ``db.table``."""
    table = figures_table(results, dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    publish_parquet_table(catalog, store, ALGORITHM_SCORES_TABLE,
                          s3_uri(layout().bucket, "tables", ALGORITHM_SCORES_TABLE), table,
                          description="Test figures of every algorithm endpoint, one row per figure")
    return f"{catalog.database}.{ALGORITHM_SCORES_TABLE}"
