"""The resources of the platform: one set, the AWS ones. The environment only chooses their settings.

``aws``: the account's endpoints, names from environment variables (see the README), AWS poll intervals.
``local``: the same resources pointed at the embedded stack of ``SMSPARK_ROOT`` (started on first use),
with its generated credentials, the demo bucket and short poll intervals. Assets never branch on the
environment; this module does, once, and only for settings.
"""


import os
from dataclasses import dataclass
from typing import Any

import dagster as dg

from smspark_assets.environment import (Environment, default_bucket, get_environment, kms_key_arn, project_root,
                                        region, s3_uri, security_group_ids, subnet_ids)
from smspark_assets.layout import layout
from smspark_assets.resources.aws import DynamoDBResource, SageMakerResource
from smspark_assets.resources.catalog import GlueAthenaCatalogResource
from smspark_assets.resources.io_managers import DynamoDBTableIOManager, JsonObjectIOManager, ParquetObjectIOManager
from smspark_assets.resources.spark import EmrServerlessSparkJobRunner
from smspark_assets.resources.spark_emr_cluster import EmrClusterSparkJobRunner
from smspark_assets.resources.scores_api import ScoresApiResource
from smspark_assets.resources.storage import S3ObjectStoreResource
from smspark_assets.sagemaker.training import SecuritySettings

# One-machine Spark for jobs on the stack's EMR: loopback only, UTC, few shuffle partitions, Arrow on.
LOCAL_SPARK_CONF: dict[str, str] = {
    "spark.driver.memory": "4g",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Running tasks' metrics reach the driver with each heartbeat: the scoring job's rows-scored progress
    # line moves every 2 s rather than every 10 s (a heartbeat is a small local RPC).
    "spark.executor.heartbeatInterval": "2s",
}


@dataclass(frozen=True)
class Settings:
    """What differs between the environments: where the clients point, names, and how often to poll."""

    connection: dict[str, Any]
    bucket: Any
    sagemaker_role_arn: Any
    emr: dict[str, Any]
    athena_output: Any
    sagemaker_poll_seconds: float
    emr_poll_seconds: float
    athena_poll_seconds: float
    # Which Spark runner: "emr-serverless", or "emr-cluster" (an existing cluster; ``emr`` names it).
    spark_runner: str = "emr-serverless"
    # Where Dagster Pipes exchanges context and messages with Spark jobs (its own bucket on AWS: dagster-aws
    # writes under random prefixes at the bucket root, which no prefix-scoped policy of the data bucket allows).
    pipes_bucket: Any = None
    athena_workgroup: Any = "primary"
    # The scores API (API Gateway): URL and key on AWS; the stack's own locally.
    scores_api: dict[str, Any] | None = None
    # SageMaker's KMS key and VPC (SageMakerResource fields kms_key_id, subnet_ids, security_group_ids).
    sagemaker_security: dict[str, Any] | None = None


def local_settings() -> Settings:
    root = str(project_root())
    bucket = default_bucket()
    return Settings(
        connection={"region_name": region(), "local_stack_root": root},
        bucket=bucket,
        sagemaker_role_arn="arn:aws:iam::000000000000:role/smspark-local",
        emr={"application_name": "smspark-local",
             "execution_role_arn": "arn:aws:iam::000000000000:role/smspark-emr-local",
             "code_uri": s3_uri(bucket, "code"), "log_uri": s3_uri(bucket, "logs", "emr"),
             "spark_conf": LOCAL_SPARK_CONF},
        athena_output=s3_uri(bucket, "athena"),
        # The stack answers in milliseconds: polls this often cost nothing and end short waits sooner.
        sagemaker_poll_seconds=0.25, emr_poll_seconds=0.25, athena_poll_seconds=0.2,
        scores_api={"local_stack_root": root, "region_name": region()},
    )


def aws_settings() -> Settings:
    """Account-specific settings come from environment variables at launch (see the README).

    ``SMSPARK_EMR_CLUSTER_ID`` set: Spark jobs run as steps of that existing EMR cluster; otherwise on
    the EMR Serverless application ``SMSPARK_EMR_APPLICATION_ID``.
    """
    if os.environ.get("SMSPARK_EMR_CLUSTER_ID"):
        runner = "emr-cluster"
        emr: dict[str, Any] = {"cluster_id": dg.EnvVar("SMSPARK_EMR_CLUSTER_ID"),
                               "code_uri": dg.EnvVar("SMSPARK_CODE_URI")}
    else:
        runner = "emr-serverless"
        emr = {"application_id": dg.EnvVar("SMSPARK_EMR_APPLICATION_ID"),
               "execution_role_arn": dg.EnvVar("SMSPARK_EMR_EXECUTION_ROLE_ARN"),
               "code_uri": dg.EnvVar("SMSPARK_CODE_URI")}
    return Settings(
        connection={"region_name": region()},
        bucket=dg.EnvVar("SMSPARK_BUCKET"),
        sagemaker_role_arn=dg.EnvVar("SMSPARK_SAGEMAKER_ROLE_ARN"),
        emr=emr,
        athena_output=dg.EnvVar("SMSPARK_ATHENA_OUTPUT"),
        sagemaker_poll_seconds=30.0, emr_poll_seconds=5.0, athena_poll_seconds=1.0,
        spark_runner=runner,
        pipes_bucket=dg.EnvVar("SMSPARK_PIPES_BUCKET"),
        athena_workgroup=os.environ.get("SMSPARK_ATHENA_WORKGROUP", "primary"),
        scores_api={"url": dg.EnvVar("SMSPARK_SCORES_API_URL"), "api_key": dg.EnvVar("SMSPARK_SCORES_API_KEY")},
        sagemaker_security=sagemaker_security(),
    )


def sagemaker_security() -> dict[str, Any]:
    """The SageMakerResource's KMS key and VPC from the environment, checked now (a VPC needs subnets and
    security groups): bad settings fail when the code location loads, before any job starts."""
    security = SecuritySettings(kms_key_id=kms_key_arn(), subnet_ids=subnet_ids(),
                                security_group_ids=security_group_ids())
    return {"kms_key_id": security.kms_key_id, "subnet_ids": list(security.subnet_ids),
            "security_group_ids": list(security.security_group_ids)}


def build_resources(settings: Settings) -> dict[str, Any]:
    """The platform's resources for ``settings``: the same classes in every environment."""
    connection = settings.connection
    store = S3ObjectStoreResource(**connection)
    dynamodb = DynamoDBResource(**connection)
    prefix = layout().io_manager_prefix
    return {
        "store": store,
        "spark": (EmrClusterSparkJobRunner if settings.spark_runner == "emr-cluster" else EmrServerlessSparkJobRunner)(
            **connection, **settings.emr, pipes_bucket=settings.pipes_bucket or settings.bucket,
            poll_seconds=settings.emr_poll_seconds),
        "sagemaker": SageMakerResource(**connection, role_arn=settings.sagemaker_role_arn,
                                       poll_seconds=settings.sagemaker_poll_seconds,
                                       **(settings.sagemaker_security or {})),
        "dynamodb": dynamodb,
        "catalog": GlueAthenaCatalogResource(**connection, output_location=settings.athena_output,
                                             workgroup=settings.athena_workgroup,
                                             poll_seconds=settings.athena_poll_seconds),
        "scores_api": ScoresApiResource(**(settings.scores_api or {})),
        "json_io_manager": JsonObjectIOManager(store=store, prefix=prefix),
        "parquet_io_manager": ParquetObjectIOManager(store=store, prefix=prefix),
        "dynamodb_io_manager": DynamoDBTableIOManager(dynamodb=dynamodb),
    }


def resources_for(environment: Environment | None = None) -> dict[str, Any]:
    env = environment or get_environment()
    return build_resources(local_settings() if env is Environment.LOCAL else aws_settings())

