"""Where Spark jobs run: a local Spark in a subprocess, or EMR Serverless. Both through Dagster Pipes.

The job scripts in ``smspark_assets/spark_jobs`` are the same in both places; they read their
parameters from the Pipes extras and report metadata back to the asset that launched them.
"""


import os
import sys
from abc import ABC, abstractmethod
from typing import Any

import dagster as dg

JOBS_PACKAGE = "smspark_assets.spark_jobs"


class SparkJobRunner(dg.ConfigurableResource, ABC):
    """Runs one of our Spark job scripts for an asset and returns the Pipes invocation."""

    @abstractmethod
    def run(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any]
            ) -> dg.PipesClientCompletedInvocation: ...


class LocalSparkJobRunner(SparkJobRunner):
    """``local[*]`` Spark in a child process (``python -m smspark_assets.spark_jobs.<job>``)."""

    root: str
    driver_memory: str = "4g"

    def run(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any]
            ) -> dg.PipesClientCompletedInvocation:
        env = {
            "SMSPARK_ENV": "local",
            "SMSPARK_ROOT": self.root,
            "SMSPARK_SPARK_DRIVER_MEMORY": self.driver_memory,
            # Executors must run the interpreter that has pyarrow, xgboost and this package.
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p),
        }
        client = dg.PipesSubprocessClient(env=env)
        return client.run(command=[sys.executable, "-m", f"{JOBS_PACKAGE}.{job}"], context=context,
                          extras={"params": params})


class EmrServerlessSparkJobRunner(SparkJobRunner):
    """EMR Serverless: the job script and a zip of this package are read from ``code_uri``.

    Upload them with ``smspark package-code s3://bucket/code`` (see the README).
    """

    application_id: str
    execution_role_arn: str
    code_uri: str
    pipes_bucket: str
    region_name: str = "us-east-1"

    def run(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any]
            ) -> dg.PipesClientCompletedInvocation:
        import boto3
        from dagster_aws.pipes import PipesEMRServerlessClient, PipesS3ContextInjector, PipesS3MessageReader

        s3 = boto3.client("s3", region_name=self.region_name)
        client = PipesEMRServerlessClient(
            client=boto3.client("emr-serverless", region_name=self.region_name),
            context_injector=PipesS3ContextInjector(bucket=self.pipes_bucket, client=s3),
            message_reader=PipesS3MessageReader(bucket=self.pipes_bucket, client=s3, include_stdio_in_messages=True),
        )
        code = self.code_uri.rstrip("/")
        submit = " ".join([
            f"--py-files {code}/smspark_assets.zip",
            "--conf spark.emr-serverless.driverEnv.SMSPARK_ENV=aws",
            "--conf spark.executorEnv.SMSPARK_ENV=aws",
        ])
        return client.run(
            context=context,
            start_job_run_params={
                "applicationId": self.application_id,
                "executionRoleArn": self.execution_role_arn,
                "name": f"{job}-{context.run.run_id[:8]}",
                "jobDriver": {"sparkSubmit": {"entryPoint": f"{code}/spark_jobs/{job}.py",
                                              "sparkSubmitParameters": submit}},
            },
            extras={"params": params},
        )
