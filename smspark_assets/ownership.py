"""Who owns each asset, how to find it, what its columns are, and when it runs by itself.

Applied once, to every asset of the code location, in ``definitions.py`` (``Definitions.map_asset_specs``
and the code-reference helpers), so each asset module stays about what it computes:

* owners and tags by group: ``domain`` (credit / algorithms), ``layer`` (raw, prepared, model, serving,
  published) and ``tier`` (``1``: read by applications, ``2``: analysis and demos);
* column schemas (``dagster/column_schema``) of the tabular assets whose columns are known before a
  run (the runs of features, scores, DynamoDB items and performance also record what they wrote);
* declarative automation where the flow is declarative: a new raw day is scored, new data or new code
  retrains. The automation sensor Dagster adds for them ships STOPPED, so nothing runs by itself until a
  user turns it on; the ``raw_applications_sensor`` and the weekly schedule keep working either way
  (an unchanged training job is adopted, not rerun, so the two routes never train twice on the same data);
* links to the code: the source file and line of every asset, and, when ``SMSPARK_GIT_URL`` names the
  repository (``SMSPARK_GIT_BRANCH``, default ``main``), links to it on GitHub or GitLab.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from smspark_assets.spark_jobs.prepare_features import FEATURE_COLUMNS, ID_COLUMN, LABEL, RAW_SCHEMA

GIT_URL_VAR = "SMSPARK_GIT_URL"
GIT_BRANCH_VAR = "SMSPARK_GIT_BRANCH"

# group -> (owner, layer, tier)
_BY_GROUP: dict[str, tuple[str, str, str]] = {
    "raw": ("team:data-engineering", "raw", "2"),
    "features": ("team:data-engineering", "prepared", "2"),
    "training": ("team:ml-platform", "model", "2"),
    "serving": ("team:ml-platform", "serving", "1"),
    "scoring": ("team:ml-platform", "published", "1"),
    "outputs": ("team:credit-risk", "published", "1"),
    "algorithms": ("team:ml-platform", "model", "2"),
    "monitoring": ("team:ml-platform", "monitoring", "2"),
}
_DEFAULT = ("team:ml-platform", "model", "2")

# Score on a new raw day: the day's features, then its scores, then the DynamoDB items, as soon as the
# day before them is updated (eager: only the latest day; backfills stay explicit runs).
_SCORE_NEW_DAY = dg.AutomationCondition.eager()
# Retrain on new data or new code: once a week after the features changed (on_cron waits until every
# dependency was updated since the tick), at once when the asset's code version changed, or when missing.
_RETRAIN = (dg.AutomationCondition.on_cron("0 4 * * 1", cron_timezone="UTC").with_label("weekly after new features")
            | dg.AutomationCondition.code_version_changed().with_label("code changed")
            | dg.AutomationCondition.on_missing().with_label("missing")
            ).with_label("retrain: weekly after new features, new code, or missing")
# Follow the channels: a new model after new channels, a new endpoint after a new model.
_FOLLOW = dg.AutomationCondition.eager()

AUTOMATION: dict[str, dg.AutomationCondition] = {
    "credit_features": _SCORE_NEW_DAY,
    "credit_scores": _SCORE_NEW_DAY,
    "credit_scores_dynamodb": _SCORE_NEW_DAY,
    "credit_training_channels": _RETRAIN,
    "credit_default_model": _FOLLOW,
    "credit_default_endpoint": _FOLLOW,
    "credit_default_sklearn_model": _FOLLOW,
    "credit_default_sklearn_endpoint": _FOLLOW,
    "credit_model_performance": _FOLLOW,
    "model_registry_metrics": _FOLLOW,
    "credit_feature_baseline": _FOLLOW,
    "credit_drift_report": _SCORE_NEW_DAY,
}


def _schema(columns: Sequence[tuple[str, str, str | None]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in columns])


def _column_schemas() -> dict[str, dg.TableSchema]:
    """Columns known before any run (a run's own ``dagster/column_schema`` is what it wrote)."""
    raw = [(f.name, f.dataType.simpleString(), None) for f in RAW_SCHEMA.fields if not f.name.startswith("_")]
    channel = [(LABEL, "double", "label, first column (no header)"),
               *[(c, "double", None) for c in FEATURE_COLUMNS]]
    return {
        "raw_credit_applications": _schema(raw),
        "credit_training_channels": _schema(channel),
        "credit_scores_dynamodb": _schema([
            (ID_COLUMN, "string", "hash key"), ("prediction", "number", "probability of default"),
            ("model_name", "string", None), ("model_version", "string", "registry version, when known"),
            ("scored_at", "string", "UTC timestamp of the scoring run"), ("dt", "string", "the day scored")]),
        "credit_model_performance": _schema([
            ("decile", "bigint", "1 = lowest predicted risk"), ("applications", "bigint", None),
            ("mean_predicted_default", "double", None), ("observed_default_rate", "double", None),
            ("model_name", "string", None), ("model_version", "string", None)]),
    }


def _code_version(assets_def: dg.AssetsDefinition) -> str | None:
    """A hash of the module that computes the asset: a new version whenever its code changes."""
    try:
        source = inspect.getsourcefile(assets_def.op.compute_fn.decorated_fn)  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12] if source else None


def with_ownership(spec: dg.AssetSpec, schemas: Mapping[str, dg.TableSchema] | None = None) -> dg.AssetSpec:
    """Owners, tags, column schema and automation condition of one asset."""
    name = spec.key.to_user_string()
    owner, layer, tier = _BY_GROUP.get(spec.group_name or "", _DEFAULT)
    if name.endswith("_endpoint"):
        layer = "serving"
    domain = "algorithms" if spec.group_name == "algorithms" else "credit"
    attributes: dict[str, Any] = {"owners": [owner], "tags": {"domain": domain, "layer": layer, "tier": tier}}
    schema = (schemas if schemas is not None else _column_schemas()).get(name)
    if schema is not None and "dagster/column_schema" not in spec.metadata:
        attributes["metadata"] = {"dagster/column_schema": schema}
    spec = spec.merge_attributes(**attributes)
    if name in AUTOMATION and spec.automation_condition is None:
        spec = spec.replace_attributes(automation_condition=AUTOMATION[name])
    return spec


def apply_ownership(assets: Sequence[Any]) -> list[Any]:
    """Every asset with its owners, tags, schema, automation, code version (training) and code references."""
    schemas = _column_schemas()
    mapped = list(dg.map_asset_specs(lambda spec: with_ownership(spec, schemas), assets))
    # code_version_changed() needs a code version on the assets it retrains.
    mapped = [_with_code_version(a) if isinstance(a, dg.AssetsDefinition) and
              a.key.to_user_string() == "credit_training_channels" else a for a in mapped]
    with warnings.catch_warnings():
        # Both code-reference helpers are @beta in 1.13; the warning would repeat at every load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _with_code_references(mapped)


def _with_code_references(mapped: list[Any]) -> list[Any]:
    with_code = dg.with_source_code_references(mapped)
    git_url = os.environ.get(GIT_URL_VAR, "").strip()
    if not git_url:
        return list(with_code)
    return list(dg.link_code_references_to_git(
        with_code, git_url=git_url, git_branch=os.environ.get(GIT_BRANCH_VAR, "main").strip() or "main",
        # This file sits in the package folder, which is `smspark_assets/` at the repository's root.
        file_path_mapping=dg.AnchorBasedFilePathMapping(local_file_anchor=Path(__file__).parent,
                                                        file_anchor_path_in_repository="smspark_assets/")))


def _with_code_version(assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
    version = _code_version(assets_def)
    if version is None or assets_def.code_versions_by_key.get(assets_def.key):
        return assets_def
    return dg.map_asset_specs(lambda s: s.replace_attributes(code_version=version), [assets_def])[0]
