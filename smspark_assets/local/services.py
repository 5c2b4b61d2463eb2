"""The AWS services the stack serves next to SageMaker and DynamoDB, and how requests reach them.

REST services are chosen by the SigV4 signing name of the request (``s3``, ``emr-serverless``);
JSON 1.1 services by the ``X-Amz-Target`` prefix. Each API is built with the running
:class:`~smspark_assets.local.server.LocalService` (its layout, URL and the other APIs) and may define
``start()`` (after the state is loaded) and ``shutdown()``.
"""

from __future__ import annotations

import importlib
from typing import Any

# signing name -> "module:Class"
REST_APIS = {
    "s3": "smspark_assets.local.s3_api:S3Api",
    "emr-serverless": "smspark_assets.local.emr_serverless:EmrServerlessApi",
}
# X-Amz-Target prefix -> "module:Class"
TARGET_APIS = {
    "Logs_20140328": "smspark_assets.local.cloudwatch_logs:LogsApi",
    "AWSGlue": "smspark_assets.local.glue_api:GlueApi",
    "AmazonAthena": "smspark_assets.local.athena_api:AthenaApi",
    # CloudWatch: boto3 1.44 sends JSON 1.0 with this target prefix (see cloudwatch_metrics.py)
    "GraniteServiceVersion20100801": "smspark_assets.local.cloudwatch_metrics:CloudWatchApi",
}


def _load(spec: str, service: Any) -> Any:
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)(service)


def load_apis(service: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build every API in order (Logs before EMR and Glue before Athena: later ones look earlier ones up)."""
    rest: dict[str, Any] = {}
    target: dict[str, Any] = {}
    service.rest_apis, service.target_apis = rest, target
    for prefix in ("Logs_20140328", "AWSGlue", "AmazonAthena", "GraniteServiceVersion20100801"):
        target[prefix] = _load(TARGET_APIS[prefix], service)
    for name in ("s3", "emr-serverless"):
        rest[name] = _load(REST_APIS[name], service)
    return rest, target
