"""Endpoint health in the UI: observations on the endpoint assets, recorded without re-deploying anything.

Every few minutes the sensor describes each platform endpoint (tag ``project=smspark_assets``) and reads its
last hour of SageMaker metrics, then records a ``dg.AssetObservation`` on the endpoint asset (tag
``asset``): status, variants with their current weights and capacity, invocations, 4xx and 5xx errors (and
the error rate), and ModelLatency. On AWS the observation links to the endpoint's console page and to its
CloudWatch metrics.

Latency: the hour is read as twelve 5-minute periods (periods align to the clock on CloudWatch, so a
single 1-hour period would not cover "the last hour"); the average is exact (weighted by invocations) and
p50 / p99 are the highest 5-minute value in the hour, the figure an alarm on that statistic would see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from smspark_assets.endpoint_inventory import PlatformEndpoint, metric_query, metric_values, platform_endpoints
from smspark_assets.environment import Environment, get_environment, region
from smspark_assets.resources.aws import SageMakerResource

HEALTH_INTERVAL_SECONDS = 5 * 60
WINDOW_SECONDS = 3600
PERIOD_SECONDS = 300


def console_links(endpoint_name: str) -> dict[str, str]:
    """The endpoint's SageMaker console page and its CloudWatch metrics (AWS only)."""
    r = region()
    return {
        "console": f"https://{r}.console.aws.amazon.com/sagemaker/home?region={r}#/endpoints/{endpoint_name}",
        "metrics": (f"https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#metricsV2:graph=~();"
                    f"search={endpoint_name};namespace=AWS/SageMaker;dimensions=EndpointName,VariantName"),
    }


def _variants(desc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for v in desc.get("ProductionVariants", []):
        entry: dict[str, Any] = {"variant": v["VariantName"], "weight": v.get("CurrentWeight")}
        if v.get("CurrentServerlessConfig"):
            entry["serverless"] = v["CurrentServerlessConfig"]
        else:
            entry["instances"] = v.get("CurrentInstanceCount")
        out.append(entry)
    return out


def endpoint_health(cloudwatch: Any, endpoint: PlatformEndpoint, now: dt.datetime | None = None
                    ) -> dict[str, Any]:
    """Status, variants and the last hour's invocation metrics of ``endpoint`` (plain values)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(seconds=WINDOW_SECONDS)
    queries: list[dict[str, Any]] = []
    for i, variant in enumerate(endpoint.variants):
        for metric, stat, qid in (("Invocations", "Sum", "n"), ("Invocation4XXErrors", "Sum", "e4"),
                                  ("Invocation5XXErrors", "Sum", "e5"), ("ModelLatency", "Average", "avg"),
                                  ("ModelLatency", "SampleCount", "cnt"), ("ModelLatency", "p50", "p50"),
                                  ("ModelLatency", "p99", "p99")):
            queries.append(metric_query(f"{qid}_{i}", endpoint.name, variant, metric, stat, PERIOD_SECONDS))
    values = metric_values(cloudwatch, queries, start, now) if queries else {}

    def total(qid: str) -> float:
        return float(sum(sum(values.get(f"{qid}_{i}", [])) for i in range(len(endpoint.variants))))

    def worst(qid: str) -> float | None:
        found = [v for i in range(len(endpoint.variants)) for v in values.get(f"{qid}_{i}", [])]
        return max(found) if found else None

    calls, e4, e5 = total("n"), total("e4"), total("e5")
    weighted = sum(a * c for i in range(len(endpoint.variants))
                   for a, c in zip(values.get(f"avg_{i}", []), values.get(f"cnt_{i}", [])))
    samples = total("cnt")
    health: dict[str, Any] = {
        "endpoint_name": endpoint.name, "status": endpoint.status,
        "endpoint_config": endpoint.description.get("EndpointConfigName", ""),
        "variants": _variants(endpoint.description),
        "invocations_last_hour": int(calls), "errors_4xx_last_hour": int(e4), "errors_5xx_last_hour": int(e5),
        "error_rate_last_hour": round((e4 + e5) / calls, 6) if calls else 0.0,
    }
    if samples:
        # SageMaker publishes microseconds; the UI shows milliseconds.
        health["model_latency_avg_ms"] = round(weighted / samples / 1000.0, 3)
        health["model_latency_p50_ms"] = round((worst("p50") or 0.0) / 1000.0, 3)
        health["model_latency_p99_ms"] = round((worst("p99") or 0.0) / 1000.0, 3)
    if endpoint.description.get("FailureReason"):
        health["failure_reason"] = endpoint.description["FailureReason"]
    return health


def health_observation(endpoint: PlatformEndpoint, health: dict[str, Any]) -> dg.AssetObservation | None:
    if endpoint.asset_key is None:
        return None
    metadata: dict[str, Any] = {k: v for k, v in health.items() if k != "variants"}
    metadata["variants"] = dg.MetadataValue.json(health["variants"])
    if get_environment() == Environment.AWS:
        metadata.update({k: dg.MetadataValue.url(u) for k, u in console_links(endpoint.name).items()})
    return dg.AssetObservation(asset_key=endpoint.asset_key, metadata=metadata)


@dg.sensor(minimum_interval_seconds=HEALTH_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Records the health of every platform endpoint (status, variants and weights, "
                       "invocations, 4xx/5xx errors, ModelLatency over the last hour) as an observation on its "
                       "endpoint asset, without re-deploying; on AWS with links to the console and metrics.")
def endpoint_health_sensor(context: dg.SensorEvaluationContext, sagemaker: SageMakerResource
                           ) -> dg.SensorResult | dg.SkipReason:
    """Observe endpoint health (module docstring)."""
    cloudwatch = sagemaker.client("cloudwatch")
    events = []
    for endpoint in platform_endpoints(sagemaker.sagemaker):
        observation = health_observation(endpoint, endpoint_health(cloudwatch, endpoint))
        if observation is not None:
            events.append(observation)
    if not events:
        return dg.SkipReason("no platform endpoint to observe")
    return dg.SensorResult(asset_events=events)
