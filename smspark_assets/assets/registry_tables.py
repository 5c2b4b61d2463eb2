"""The model registry's metrics as a catalog table (``smspark.model_registry_metrics``).

Every version of a model package group, one row per figure of its ``ModelMetrics.ModelQuality.Statistics``
report (SageMaker Model Monitor's model-quality layout: ``<section>_metrics.<name>.value``), with its
approval status and training job: which model served when, and how good it was, joinable in SQL with the
scores (``credit_scores.model_version``) and the performance table.
"""


import json
import math
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pyarrow as pa

from smspark_assets.assets.day_metadata import table_schema
from smspark_assets.assets.serving import credit_default_endpoint
from smspark_assets.assets.training import MODEL_PACKAGE_GROUP, credit_default_model
from smspark_assets.environment import s3_uri
from smspark_assets.layout import layout
from smspark_assets.resources.aws import SageMakerResource
from smspark_assets.resources.catalog import CatalogResource, publish_parquet_table
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker import registry

REGISTRY_METRICS_TABLE = "model_registry_metrics"
METRICS_SCHEMA = pa.schema([
    ("model_package_group", pa.string()), ("model_version", pa.string()), ("approval_status", pa.string()),
    ("training_job", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
    ("model_package_arn", pa.string())])


def report_figures(report: Mapping[str, Any]) -> dict[str, float]:
    """``{"binary_classification_metrics": {"auc": {"value": 0.8}}}`` -> ``{"auc": 0.8}`` (finite numbers)."""
    figures: dict[str, float] = {}
    for section, entries in report.items():
        if not section.endswith("_metrics") or not isinstance(entries, Mapping):
            continue
        for name, entry in entries.items():
            value = entry.get("value") if isinstance(entry, Mapping) else entry
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                figures[name] = float(value)
    return figures


def metrics_table(sm: Any, store: Any, group: str) -> pa.Table:
    """One row per version and figure of ``group``; a version without a readable report gives no rows."""
    rows: dict[str, list[Any]] = {name: [] for name in METRICS_SCHEMA.names}
    for version in registry.list_versions(sm, group):
        described = sm.describe_model_package(ModelPackageName=version.arn)
        uri = (((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
        if not uri or not store.exists(uri):
            continue
        for metric, value in sorted(report_figures(json.loads(store.read_bytes(uri))).items()):
            rows["model_package_group"].append(group)
            rows["model_version"].append(str(version.version))
            rows["approval_status"].append(described.get("ModelApprovalStatus") or version.approval_status)
            rows["training_job"].append(version.training_job_name)
            rows["metric"].append(metric)
            rows["value"].append(value)
            rows["model_package_arn"].append(version.arn)
    return pa.table(rows, schema=METRICS_SCHEMA)


def publish_registry_metrics(catalog: CatalogResource, store: Any, sm: Any, group: str) -> str:
    """Rebuild the group's rows of the table (one object per group) after a registration or an approval
    decision; returns ``db.table``."""
    publish_parquet_table(catalog, store, REGISTRY_METRICS_TABLE,
                          s3_uri(layout().bucket, "tables", REGISTRY_METRICS_TABLE), metrics_table(sm, store, group),
                          file_name=f"{group}.parquet",
                          description="Model registry versions with their quality figures and approval status")
    return f"{catalog.database}.{REGISTRY_METRICS_TABLE}"


@dg.asset(deps=[credit_default_model, credit_default_endpoint], group_name="outputs", kinds={"athena", "parquet"},
          metadata={"dagster/table_name": f"smspark.{REGISTRY_METRICS_TABLE}"})
def model_registry_metrics(context: dg.AssetExecutionContext, sagemaker: SageMakerResource,
                           catalog: CatalogResource, store: ObjectStoreResource) -> dg.MaterializeResult:
    """Every registered version of the credit model with its approval status and the figures of its
    quality report (test AUC, calibration error...), as the catalog table `smspark.model_registry_metrics`.
    Rebuilt after training and after the endpoint changed (an approval decision redeploys it)."""
    table = metrics_table(sagemaker.sagemaker, store, MODEL_PACKAGE_GROUP)
    publish_parquet_table(catalog, store, REGISTRY_METRICS_TABLE,
                          s3_uri(layout().bucket, "tables", REGISTRY_METRICS_TABLE), table,
                          file_name=f"{MODEL_PACKAGE_GROUP}.parquet",
                          description="Model registry versions with their quality figures and approval status")
    versions = sorted(set(table.column("model_version").to_pylist()), key=int)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": table.num_rows, "model_package_group": MODEL_PACKAGE_GROUP,
        "versions": dg.MetadataValue.json(versions), "table": f"{catalog.database}.{REGISTRY_METRICS_TABLE}",
        "dagster/column_schema": table_schema(table.schema)})
