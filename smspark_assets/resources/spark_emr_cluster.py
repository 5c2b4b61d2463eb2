"""Spark jobs on an existing EMR cluster: one step per job (AddJobFlowSteps), through Dagster Pipes.

The same job scripts and ``--py-files`` zip as on EMR Serverless (the content-addressed code upload),
submitted with ``spark-submit --deploy-mode cluster`` by ``command-runner.jar``. dagster-aws's
``PipesEMRClient`` starts a new cluster per run; here the cluster is shared and long-lived, so the
client is adapted: it adds a step instead of a cluster, waits for that step, and on cancellation cancels
that step, never the cluster.

The cluster must run Python >= 3.10 with ``dagster-pipes`` for the driver (a bootstrap action, or
``spark.yarn.appMasterEnv.PYSPARK_PYTHON`` in ``spark_conf``): EMR 7's system Python is 3.9.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from smspark_assets.interruption import stopped_if_abandoned
from smspark_assets.resources.spark import SparkJobFailed, SparkRunnerBase

STEP_ENDED = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")


def _cluster_client_class() -> type:
    """dagster-aws's EMR client, adapted to run one step on an existing cluster."""
    from dagster_aws.pipes import PipesEMRClient

    class _ExistingClusterClient(PipesEMRClient):
        def __init__(self, *, poll_seconds: float, timeout_seconds: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.poll_seconds = poll_seconds
            self.timeout_seconds = timeout_seconds
            self.step_id = ""

        def _enrich_params(self, session: Any, params: Any) -> Any:
            # A step cannot carry cluster Configurations: the Pipes bootstrap variables go to the driver's
            # environment (the YARN application master in cluster mode) as spark-submit settings.
            step = params["Steps"][0]
            args = list(step["HadoopJarStep"]["Args"])
            env = [arg for var, value in sorted(session.get_bootstrap_env_vars().items())
                   for arg in ("--conf", f"spark.yarn.appMasterEnv.{var}={value}")]
            args[-1:-1] = env  # options go before the entry point, which is last
            return {**params, "Steps": [{**step, "HadoopJarStep": {**step["HadoopJarStep"], "Args": args}}]}

        def _start(self, context: Any, session: Any, params: Any) -> dict[str, str]:
            cluster_id = params["JobFlowId"]
            response = self._client.add_job_flow_steps(JobFlowId=cluster_id, Steps=params["Steps"])
            self.step_id = response["StepIds"][0]
            session.report_launched({"extras": {"cluster_id": cluster_id, "step_id": self.step_id}})
            context.log.info(f"[pipes] EMR step {self.step_id} added to cluster {cluster_id}")
            return {"JobFlowId": cluster_id, "StepId": self.step_id}

        def _add_log_readers(self, context: Any, response: Any) -> None:
            # The driver's stdout/stderr arrive in the Pipes messages; the base class would attach a
            # reader to every step the long-lived cluster ever ran.
            return None

        def _cancel(self, cluster_id: str, step_id: str) -> str:
            """Cancel the step unless it ended; returns what happened."""
            state = self._client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
            if state in STEP_ENDED or state == "CANCEL_PENDING":
                return f"step {step_id} was already {state}"
            answer = self._client.cancel_steps(ClusterId=cluster_id, StepIds=[step_id],
                                               StepCancellationOption="SEND_INTERRUPT")
            info = (answer.get("CancelStepsInfoList") or [{}])[0]
            state = self._client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
            return (f"cancelled step {step_id} (request {info.get('Status', 'sent')}"
                    f"{': ' + info['Reason'] if info.get('Reason') else ''}; now {state})")

        def _wait_for_completion(self, context: Any, response: Any) -> Any:
            cluster_id, step_id = response["JobFlowId"], response["StepId"]
            deadline = time.monotonic() + self.timeout_seconds
            # A poll that fails, Ctrl-C or the timeout cancel the step; Dagster's run termination
            # (DagsterExecutionInterruptedError) is also handled by the base class through _terminate,
            # which then finds the step CANCEL_PENDING and leaves it.
            with stopped_if_abandoned(f"EMR step {step_id} on cluster {cluster_id}",
                                      lambda: self._cancel(cluster_id, step_id),
                                      lambda message: SparkJobFailed(description=message), context.log.warning):
                while True:
                    step = self._client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
                    if step["Status"]["State"] in STEP_ENDED:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"it ran longer than {self.timeout_seconds:.0f}s")
                    time.sleep(self.poll_seconds)
            state = step["Status"]["State"]
            if state != "COMPLETED":
                details = step["Status"].get("FailureDetails", {})
                reason = "; ".join(str(details[k]) for k in ("Reason", "Message") if details.get(k))
                raise SparkJobFailed(
                    description=f"EMR step {step.get('Name', step_id)} ({step_id}) on cluster {cluster_id} "
                                f"ended {state}: {reason or 'no details given'}"
                                + (f" (log: {details['LogFile']})" if details.get("LogFile") else ""),
                    metadata={"cluster_id": cluster_id, "step_id": step_id, "state": state})
            return self._client.describe_cluster(ClusterId=cluster_id)

        def _extract_dagster_metadata(self, response: Any) -> Any:
            return {**super()._extract_dagster_metadata(response), "AWS EMR Step ID": self.step_id}

        def _terminate(self, context: Any, start_response: Any) -> None:
            # Never terminate_job_flows (the base class's choice): the cluster is shared.
            context.log.warning(self._cancel(start_response["JobFlowId"], start_response["StepId"]))

    return _ExistingClusterClient


class EmrClusterSparkJobRunner(SparkRunnerBase):
    """Runs one of our Spark job scripts as a step of an existing EMR cluster and returns the Pipes
    invocation; a cancelled Dagster run cancels the step."""

    cluster_id: str

    def _launch(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any], code: str,
                run_name: str, s3: Any) -> tuple[dg.PipesClientCompletedInvocation, str]:
        emr = self.client("emr")
        injector, reader = self._pipes_channel(s3)
        client = _cluster_client_class()(
            client=emr, context_injector=injector, message_reader=reader, forward_termination=True,
            poll_seconds=self.poll_seconds, timeout_seconds=self.execution_timeout_minutes * 60.0)
        confs = [arg for pair in self._conf_pairs() for arg in ("--conf", pair)]
        step = {
            "Name": run_name,
            # A shared cluster: a failed job must never take it down.
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [
                "spark-submit", "--deploy-mode", "cluster", "--py-files", f"{code}/smspark_assets.zip", *confs,
                f"{code}/spark_jobs/{job}.py"]},
        }
        invocation = client.run(context=context, run_job_flow_params={"JobFlowId": self.cluster_id, "Steps": [step]},
                                extras={"params": params})
        where = f"EMR step {client.step_id} ({run_name}) on cluster {self.cluster_id}"
        if self.log_uri:
            where += f"; step logs: {self.log_uri.rstrip('/')}/{self.cluster_id}/steps/{client.step_id}/"
        return invocation, where
