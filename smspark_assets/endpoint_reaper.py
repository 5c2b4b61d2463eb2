"""The idle reaper: deletes the platform's endpoints that nobody called for a while, and says so in the UI.

A real-time endpoint bills every hour it exists. The sensor looks at every endpoint tagged
``project=smspark_assets`` (nothing else is touched) that is ``InService`` and was not created or updated
within the idle time (``SMSPARK_ENDPOINT_IDLE_HOURS``, default 24 h; 0 turns the reaper off): when
CloudWatch counts no ``Invocations`` for it over that time, it is deleted (its endpoint config and model
stay, so re-deploying is one CreateEndpoint) and an ``AssetObservation`` with ``reaped: true`` and the
reason is recorded on the endpoint asset named by its ``asset`` tag.

The endpoint comes back when needed: the endpoint asset's ``deploy_model`` creates an endpoint that does
not exist, and the scoring path fails with a message that says to re-materialize it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

import dagster as dg

from smspark_assets.endpoint_inventory import PlatformEndpoint, invocations, platform_endpoints
from smspark_assets.environment import endpoint_idle_seconds
from smspark_assets.resources.aws import SageMakerResource

REAPER_INTERVAL_SECONDS = 15 * 60
# CloudWatch keeps 1-minute datapoints for 15 days: a longer idle time could not be proven from metrics.
MAX_IDLE_SECONDS = 15 * 86400


@dataclass(frozen=True)
class Reaped:
    endpoint: PlatformEndpoint
    idle_seconds: float
    reason: str


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def reap_idle_endpoints(sm: Any, cloudwatch: Any, idle_seconds: float, now: dt.datetime | None = None,
                        log: Callable[[str], None] = print) -> list[Reaped]:
    """Delete every platform endpoint without invocations for ``idle_seconds``; what was deleted and why."""
    if idle_seconds <= 0:
        return []
    if idle_seconds > MAX_IDLE_SECONDS:
        raise ValueError(f"idle time must be at most {MAX_IDLE_SECONDS / 86400:g} days (CloudWatch's retention "
                         f"of 1-minute datapoints), got {idle_seconds / 3600:g} h")
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(seconds=idle_seconds)
    reaped: list[Reaped] = []
    for endpoint in platform_endpoints(sm):
        if endpoint.status != "InService":
            continue  # creating, updating, failed...: not ours to judge now
        if _as_utc(endpoint.last_modified) > start:
            continue  # deployed within the idle time: no chance to be called yet
        calls = invocations(cloudwatch, endpoint, start, now)
        if calls > 0:
            continue
        reason = (f"no invocations for {idle_seconds / 3600:g} h (CloudWatch AWS/SageMaker Invocations sum = 0 "
                  f"since {start.isoformat(timespec='seconds')}); deleted by the idle reaper, its config "
                  f"{endpoint.description.get('EndpointConfigName')} is kept for re-deploying")
        log(f"deleting idle endpoint {endpoint.name}: {reason}")
        try:
            sm.delete_endpoint(EndpointName=endpoint.name)
        except sm.exceptions.ClientError as exc:  # e.g. it began updating since it was described
            log(f"could not delete endpoint {endpoint.name}: {exc}")
            continue
        reaped.append(Reaped(endpoint, idle_seconds, reason))
    return reaped


def reaped_observation(item: Reaped) -> dg.AssetObservation | None:
    if item.endpoint.asset_key is None:
        return None
    return dg.AssetObservation(asset_key=item.endpoint.asset_key, metadata={
        "reaped": True, "endpoint_name": item.endpoint.name, "reason": item.reason,
        "idle_hours": round(item.idle_seconds / 3600, 3),
        "endpoint_config": item.endpoint.description.get("EndpointConfigName", ""),
        "status": "Deleting"})


@dg.sensor(minimum_interval_seconds=REAPER_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Deletes the platform's endpoints (tag project=smspark_assets) that had no invocations "
                       "for SMSPARK_ENDPOINT_IDLE_HOURS (default 24; 0 = off) and records `reaped: true` on "
                       "their endpoint asset. Re-materializing the endpoint asset creates it again.")
def endpoint_idle_reaper(context: dg.SensorEvaluationContext, sagemaker: SageMakerResource
                         ) -> dg.SensorResult | dg.SkipReason:
    """Reap idle endpoints (module docstring)."""
    idle = endpoint_idle_seconds()
    if idle <= 0:
        return dg.SkipReason("the idle reaper is off (SMSPARK_ENDPOINT_IDLE_HOURS=0)")
    reaped = reap_idle_endpoints(sagemaker.sagemaker, sagemaker.client("cloudwatch"), idle, log=context.log.info)
    if not reaped:
        return dg.SkipReason(f"no platform endpoint was idle for {idle / 3600:g} h")
    events = [o for o in map(reaped_observation, reaped) if o is not None]
    return dg.SensorResult(asset_events=events)
