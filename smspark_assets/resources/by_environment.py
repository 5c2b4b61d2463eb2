"""The resources of each environment. Assets never branch on the environment; this module does, once."""


from typing import Any

import dagster as dg

from smspark_assets.environment import (Environment, get_environment, local_s3_root, project_root, region,
                                        sklearn_image_uri)
from smspark_assets.local.script_examples import SKLEARN_ENTRY_POINT
from smspark_assets.layout import layout
from smspark_assets.resources.aws import DynamoDBResource, SageMakerResource
from smspark_assets.resources.catalog import GlueAthenaCatalogResource, LocalCatalogResource
from smspark_assets.resources.io_managers import DynamoDBTableIOManager, JsonObjectIOManager, ParquetObjectIOManager
from smspark_assets.resources.spark import EmrServerlessSparkJobRunner, LocalSparkJobRunner
from smspark_assets.resources.storage import LocalObjectStoreResource, S3ObjectStoreResource


def _io_managers(store: Any, dynamodb: DynamoDBResource) -> dict[str, Any]:
    prefix = layout().io_manager_prefix
    return {
        "json_io_manager": JsonObjectIOManager(store=store, prefix=prefix),
        "parquet_io_manager": ParquetObjectIOManager(store=store, prefix=prefix),
        "dynamodb_io_manager": DynamoDBTableIOManager(dynamodb=dynamodb),
    }


def local_resources() -> dict[str, Any]:
    """Everything on this machine: files for S3, local Spark, the local SageMaker/DynamoDB service, DuckDB."""
    root = str(project_root())
    store = LocalObjectStoreResource(root=str(local_s3_root()))
    dynamodb = DynamoDBResource(region_name=region(), local_stack=True, local_root=root)
    return {
        "store": store,
        "spark": LocalSparkJobRunner(root=root),
        "sagemaker": SageMakerResource(region_name=region(), local_stack=True, local_root=root, poll_seconds=1.0,
                                       custom_images={sklearn_image_uri(): SKLEARN_ENTRY_POINT}),
        "dynamodb": dynamodb,
        "catalog": LocalCatalogResource(root=root),
        **_io_managers(store, dynamodb),
    }


def aws_resources() -> dict[str, Any]:
    """Real AWS: S3, EMR Serverless through Pipes, SageMaker, DynamoDB, Glue + Athena.

    Account-specific settings come from environment variables at launch (see the README).
    """
    store = S3ObjectStoreResource(region_name=region())
    dynamodb = DynamoDBResource(region_name=region())
    return {
        "store": store,
        "spark": EmrServerlessSparkJobRunner(
            application_id=dg.EnvVar("SMSPARK_EMR_APPLICATION_ID"),
            execution_role_arn=dg.EnvVar("SMSPARK_EMR_EXECUTION_ROLE_ARN"),
            code_uri=dg.EnvVar("SMSPARK_CODE_URI"),
            pipes_bucket=dg.EnvVar("SMSPARK_BUCKET"),
            region_name=region(),
        ),
        "sagemaker": SageMakerResource(region_name=region(), role_arn=dg.EnvVar("SMSPARK_SAGEMAKER_ROLE_ARN"),
                                       poll_seconds=30.0),
        "dynamodb": dynamodb,
        "catalog": GlueAthenaCatalogResource(region_name=region(),
                                             output_location=dg.EnvVar("SMSPARK_ATHENA_OUTPUT")),
        **_io_managers(store, dynamodb),
    }


def resources_for(environment: Environment | None = None) -> dict[str, Any]:
    env = environment or get_environment()
    return local_resources() if env is Environment.LOCAL else aws_resources()
