"""Per-day figures of daily assets that one run materializes over a range of days.

A range of days runs as one step (``BackfillPolicy.single_run``: one Spark application, not one JVM per
day), and Dagster then records one materialization per day. Metadata returned by the step is copied onto
every one of them, so each day would show the run's totals. Two Dagster 1.13 mechanisms give each day its
own figures instead:

* ``context.add_asset_metadata(..., partition_key=day)``: partition-scoped metadata, merged over the
  step's metadata on that day's materialization only (a day's key wins over the run's key of the same name).
* partitioned asset checks: an ``AssetCheckSpec`` with ``partitions_def`` (a *preview* parameter in 1.13)
  plans one execution per day of the run; the step yields one ``AssetCheckEvaluation`` per day carrying
  ``partition=day``. ``AssetCheckResult`` has no partition field, and a range step resolves it to no
  partition at all, hence the evaluations.

Run-wide figures keep distinct names (``run_*``), so the per-day and run figures never shadow each other.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pyarrow as pa
# Not re-exported at the top level in 1.13; it is the type of AssetCheckEvaluation's public field.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)


def plain(value: Any) -> Any:
    """The Python value of a metadata entry (Pipes hands back ``MetadataValue`` objects)."""
    return getattr(value, "value", value)


def run_range(days: Sequence[str]) -> str:
    """``2026-11-01..2026-11-14 (14 days)``: which days one run covered."""
    if not days:
        return "(no days)"
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def add_day_metadata(context: dg.AssetExecutionContext, per_day: Mapping[str, Mapping[str, Any]]) -> None:
    """Attach each day's own figures to that day's materialization."""
    for day, metadata in per_day.items():
        context.add_asset_metadata(dict(metadata), partition_key=day)


def daily_check_spec(name: str, asset: str, partitions_def: dg.PartitionsDefinition,
                     description: str) -> dg.AssetCheckSpec:
    """A check evaluated once per day. ``partitions_def`` on a check spec is a 1.13 preview: its warning
    is silenced here, once, because the behaviour it guards is what this module relies on (and tested)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions_def, description=description)


def day_check_events(context: dg.AssetExecutionContext, check_name: str,
                     results: Mapping[str, tuple[bool, Mapping[str, Any]]]) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """The events of a per-day check: the check's (empty) output, then one evaluation per day.

    The output satisfies the step's check output, which a generator must yield itself; the evaluations
    carry the day, so the UI shows the check's result on each partition.
    """
    assets_def = context.assets_def
    output_name = next(name for name, spec in assets_def.check_specs_by_output_name.items()
                       if spec.name == check_name)
    spec = assets_def.check_specs_by_output_name[output_name]
    yield dg.Output(None, output_name=output_name)
    # Called after the materializations were yielded: each evaluation names the day's new materialization
    # as its target, as Dagster does for a single-partition AssetCheckResult (the UI marks a check whose
    # target is not the latest materialization as outdated).
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=spec.asset_key, asset_partitions=list(results)), limit=len(results)).records
    targets: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for record in records:  # newest first
        day = record.partition_key
        if day is not None and day not in targets and record.run_id == context.run_id:
            targets[day] = AssetCheckEvaluationTargetMaterializationData(
                run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp)
    for day, (passed, metadata) in results.items():
        yield dg.AssetCheckEvaluation(asset_key=spec.asset_key, check_name=check_name, passed=passed,
                                      metadata=dict(metadata), partition=day, blocking=spec.blocking,
                                      target_materialization_data=targets.get(day))


def table_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """A Parquet/Arrow schema as Dagster's column schema (``dagster/column_schema``)."""
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type), description=descriptions.get(f.name))
                                   for f in schema])
