"""The endpoints the platform created, and their invocation metrics (what the reaper and health sensors read).

An endpoint belongs to the platform when it carries the tag ``project=smspark_assets`` (``deploy_model``
tags every endpoint it creates); the tag ``asset`` names the Dagster asset that deployed it, so sensors can
record observations on that asset. Nothing without the project tag is ever touched.

Metrics are SageMaker's (``AWS/SageMaker``, per ``EndpointName`` + ``VariantName``), read with one
GetMetricData call per endpoint.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from smspark_assets.sagemaker.endpoints import PROJECT_TAG

NAMESPACE = "AWS/SageMaker"
COUNTS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")


@dataclass(frozen=True)
class PlatformEndpoint:
    name: str
    arn: str
    status: str
    asset_key: dg.AssetKey | None
    created: dt.datetime
    last_modified: dt.datetime
    variants: tuple[str, ...]
    description: dict[str, Any] = field(default_factory=dict, compare=False)


def _tags(sm: Any, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"ResourceArn": arn}
    while True:
        page = sm.list_tags(**kwargs)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        kwargs["NextToken"] = page["NextToken"]


def platform_endpoints(sm: Any) -> list[PlatformEndpoint]:
    """Every endpoint tagged ``project=smspark_assets``, described (in ListEndpoints' order)."""
    out: list[PlatformEndpoint] = []
    for page in sm.get_paginator("list_endpoints").paginate():
        for summary in page.get("Endpoints", []):
            tags = _tags(sm, summary["EndpointArn"])
            if tags.get(PROJECT_TAG[0]) != PROJECT_TAG[1]:
                continue
            try:
                desc = sm.describe_endpoint(EndpointName=summary["EndpointName"])
            except sm.exceptions.ClientError:  # deleted between the listing and now
                continue
            asset = tags.get("asset")
            out.append(PlatformEndpoint(
                name=desc["EndpointName"], arn=desc["EndpointArn"], status=desc["EndpointStatus"],
                asset_key=dg.AssetKey.from_user_string(asset) if asset else None,
                created=desc["CreationTime"], last_modified=desc["LastModifiedTime"],
                variants=tuple(v["VariantName"] for v in desc.get("ProductionVariants", [])),
                description=desc))
    return out


def metric_query(qid: str, endpoint: str, variant: str, metric: str, stat: str, period: int) -> dict[str, Any]:
    return {"Id": qid, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                   "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                  {"Name": "VariantName", "Value": variant}]},
        "Period": period, "Stat": stat}}


def metric_values(cloudwatch: Any, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
                  ) -> dict[str, list[float]]:
    """Query id -> datapoint values (every page of GetMetricData)."""
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
    while True:
        page = cloudwatch.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            values[result["Id"]].extend(float(v) for v in result.get("Values", []))
        if not page.get("NextToken"):
            return values
        kwargs["NextToken"] = page["NextToken"]


def invocations(cloudwatch: Any, endpoint: PlatformEndpoint, start: dt.datetime, end: dt.datetime,
                period: int = 60) -> float:
    """Invocations of every variant of ``endpoint`` in ``[start, end)``."""
    if not endpoint.variants:
        return 0.0
    queries = [metric_query(f"v{i}", endpoint.name, v, "Invocations", "Sum", period)
               for i, v in enumerate(endpoint.variants)]
    return float(sum(sum(vals) for vals in metric_values(cloudwatch, queries, start, end).values()))
