"""The embedded local stack: a SageMaker (+ runtime) and DynamoDB service on 127.0.0.1 that really trains and
serves.

Public API (what resources and the CLI call)::

    from smspark_assets.local import ensure_running, start, stop, status, ServiceInfo
    url = ensure_running()            # starts the service for SMSPARK_ROOT (default .smspark) if needed
    boto3.client("sagemaker", endpoint_url=url)          # also "sagemaker-runtime" and "dynamodb"

``smspark local start|stop|status|logs <job>`` is :func:`smspark_assets.local.cli.main`. Optional
configuration lives in ``<root>/local/config.json``::

    {"custom_images": {"<image uri, or prefix ending in *>": "<module or path/to/script.py>"},
     "max_concurrent_training_jobs": 2}

Modules: ``process`` (lifecycle), ``server`` (HTTP routing), ``sagemaker_api`` (control plane),
``training`` (job runner), ``endpoints`` / ``model_servers`` / ``model_server`` (serving), ``transform``
(batch transform), ``dynamodb`` (moto's DynamoDB, journaled and snapshotted), ``state`` (SQLite),
``script_mode`` (custom algorithms), ``layout`` (files under the root).
"""

from smspark_assets.local.process import ServiceInfo, ensure_running, start, status, stop

__all__ = ["ServiceInfo", "ensure_running", "start", "status", "stop"]
