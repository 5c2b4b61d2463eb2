"""Where Spark jobs run: EMR Serverless, through Dagster Pipes (on AWS, or the embedded stack's EMR API).

The job scripts in ``smspark_assets/spark_jobs`` read their parameters from the Pipes extras and report
metadata back to the asset that launched them. The code they run is uploaded to ``code_uri`` under a
content hash, so a job always runs the code of the launching process and an unchanged package is not
uploaded again.
"""


from typing import Any

import dagster as dg

from smspark_assets.code_package import ensure_code_uploaded
from smspark_assets.resources.aws import AwsServiceResource


class SparkJobFailed(dg.Failure):
    """A Spark job failed or ended without reporting its result."""


def _pipes_client_class() -> type:
    """dagster-aws's EMR Serverless client, failing with the job's own error instead of "job failed"."""
    from dagster_aws.pipes import PipesEMRServerlessClient

    class _Client(PipesEMRServerlessClient):
        def _wait_for_completion(self, context: Any, start_response: Any) -> Any:
            try:
                return super()._wait_for_completion(context, start_response)
            except RuntimeError as exc:
                run = self.client.get_job_run(applicationId=start_response["applicationId"],
                                              jobRunId=start_response["jobRunId"])["jobRun"]
                raise SparkJobFailed(
                    description=f"EMR Serverless job run {run.get('name') or run['jobRunId']} ended "
                                f"{run['state']}: {run.get('stateDetails') or 'no details given'}",
                    metadata={"job_run_id": run["jobRunId"], "application_id": run["applicationId"],
                              "state": run["state"]},
                ) from exc

    return _Client


class SparkRunnerBase(AwsServiceResource):
    """What every Spark runner shares: the code upload, the Pipes channel through S3, the Spark settings,
    and the rule that a job which reported nothing fails. Subclasses launch and wait (:meth:`_launch`)."""

    code_uri: str
    pipes_bucket: str
    # Where the service writes the driver's logs: named in failure messages.
    log_uri: str = ""
    # Spark settings of every job (e.g. the local stack's one-machine tuning, or the cluster's Python).
    spark_conf: dict[str, str] = {}
    poll_seconds: float = 5.0
    execution_timeout_minutes: int = 120

    def _launch(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any], code: str,
                run_name: str, s3: Any) -> tuple[dg.PipesClientCompletedInvocation, str]:
        """Run ``<code>/spark_jobs/<job>.py`` with ``<code>/smspark_assets.zip`` on the path, ``params`` as
        the Pipes extra ``params``; returns the invocation and where the driver's logs are."""
        raise NotImplementedError

    def _pipes_channel(self, s3: Any) -> tuple[Any, Any]:
        """The context injector and message reader: both through the Pipes bucket, stdout/stderr included
        in the messages (so the job's own error reaches the Dagster failure)."""
        from dagster_aws.pipes import PipesS3ContextInjector, PipesS3MessageReader

        return (PipesS3ContextInjector(bucket=self.pipes_bucket, client=s3),
                PipesS3MessageReader(bucket=self.pipes_bucket, client=s3, include_stdio_in_messages=True,
                                     interval=min(self.poll_seconds, 10.0)))

    def _conf_pairs(self) -> list[str]:
        return [f"{key}={value}" for key, value in sorted(self.spark_conf.items())]

    def run(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any]
            ) -> dg.PipesClientCompletedInvocation:
        """Run ``job`` with ``params``; fail with the job's own error, or when it reported nothing."""
        s3 = self.client("s3")
        code = ensure_code_uploaded(s3, self.code_uri)
        run_name = f"{job}-{context.run.run_id[:8]}"
        invocation, where = self._launch(context, job, params, code, run_name, s3)
        # Without implicit materializations: by default Pipes invents one for an asset that reported nothing.
        if not invocation.get_results(implicit_materializations=False):
            raise SparkJobFailed(
                description=f"Spark job {job!r} ({where}) ended without reporting its result: the script "
                            "did not call Dagster Pipes' report_asset_materialization.")
        return invocation


class EmrServerlessSparkJobRunner(SparkRunnerBase):
    """Runs one of our Spark job scripts on EMR Serverless and returns the Pipes invocation."""

    # The application: by id, or (when the id is empty) by name, created on first use.
    application_id: str = ""
    application_name: str = "smspark"
    release_label: str = "emr-7.5.0"
    execution_role_arn: str

    def _application_id(self, emr: Any) -> str:
        if self.application_id:
            return self.application_id
        for page in emr.get_paginator("list_applications").paginate():
            for app in page.get("applications", []):
                if app["name"] == self.application_name and app["state"] not in ("TERMINATED", "STOPPING"):
                    return app["id"]
        created = emr.create_application(name=self.application_name, releaseLabel=self.release_label, type="SPARK")
        return created["applicationId"]

    def _launch(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any], code: str,
                run_name: str, s3: Any) -> tuple[dg.PipesClientCompletedInvocation, str]:
        emr = self.client("emr-serverless")
        injector, reader = self._pipes_channel(s3)
        # forward_termination (dagster-aws's default) cancels the job run when the Dagster run is cancelled.
        client = _pipes_client_class()(client=emr, context_injector=injector, message_reader=reader,
                                       poll_interval=self.poll_seconds, forward_termination=True)
        confs = [f"--conf {pair}" for pair in self._conf_pairs()]
        submit = " ".join([f"--py-files {code}/smspark_assets.zip", *confs])
        params_out: dict[str, Any] = {
            "applicationId": self._application_id(emr),
            "executionRoleArn": self.execution_role_arn,
            "name": run_name,
            "executionTimeoutMinutes": self.execution_timeout_minutes,
            "jobDriver": {"sparkSubmit": {"entryPoint": f"{code}/spark_jobs/{job}.py",
                                          "sparkSubmitParameters": submit}},
        }
        if self.log_uri:
            params_out["configurationOverrides"] = {
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": self.log_uri}}}
        invocation = client.run(context=context, start_job_run_params=params_out, extras={"params": params})
        where = f"EMR Serverless run {run_name}"
        if self.log_uri:
            where += f"; driver logs: {self.log_uri.rstrip('/')}/applications/<app>/jobs/<run>/SPARK_DRIVER/"
        return invocation, where


# The type the assets ask for: any of the platform's Spark runners (EMR Serverless, or an existing EMR
# cluster from :mod:`smspark_assets.resources.spark_emr_cluster`), chosen by the settings.
SparkJobRunner = SparkRunnerBase
