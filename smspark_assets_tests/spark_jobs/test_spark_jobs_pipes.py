"""A job script run under Dagster Pipes in a subprocess, with ``s3://`` mapped as the embedded EMR maps it."""


import datetime as dt
import sys
from pathlib import Path

import dagster as dg
import pytest

from smspark_assets.datasets import credit
from smspark_assets_tests.file_store import FileStore
from smspark_assets.spark_jobs import prepare_features
from smspark_assets.spark_jobs.pipes_runner import check_params, to_plain

BUCKET = "s3://pipes-bkt"
DAYS = ["2026-11-03", "2026-11-04"]


def test_params_are_checked_against_the_job_signature() -> None:
    job = prepare_features.prepare_features
    ok = {"raw_prefix": "s3://b/raw/x", "partitions": ["2026-11-01"], "output_prefix": "s3://b/f"}
    assert check_params(job, ok) == ok
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['colour'\]; allowed: \['raw_prefix'"):
        check_params(job, {**ok, "colour": "red"})
    with pytest.raises(ValueError, match=r"missing required parameter\(s\) \['output_prefix'\]"):
        check_params(job, {"raw_prefix": "s3://b/raw/x", "partitions": ["2026-11-01"]})
    with pytest.raises(TypeError, match="must be a dict"):
        check_params(job, ["raw_prefix"])  # type: ignore[arg-type]


def test_metadata_is_made_plain() -> None:
    import numpy as np

    assert to_plain({"a": np.int64(3), "b": (1, 2), "c": float("nan"), "d": dt.date(2026, 1, 2)}) == {
        "a": 3, "b": [1, 2], "c": None, "d": "2026-01-02",
    }


@pytest.mark.integration
def test_prepare_features_under_pipes_subprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ROOT", str(tmp_path))
    monkeypatch.setenv("SMSPARK_ENV", "local")
    for day in DAYS:
        credit.write_day(FileStore(tmp_path / "s3"), BUCKET, dt.date.fromisoformat(day), 1500, seed=2)
    params = {
        "raw_prefix": f"{BUCKET}/raw/credit_applications",
        "partitions": DAYS,
        "output_prefix": f"{BUCKET}/features/credit_applications",
    }

    @dg.asset
    def features(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
        script = prepare_features.__file__
        return pipes.run(command=[sys.executable, script], context=context, extras={"params": params}).get_materialize_result()

    result = dg.materialize(
        [features], resources={"pipes": dg.PipesSubprocessClient(env={"SMSPARK_ROOT": str(tmp_path),
                                                           "SMSPARK_EMRFS_ROOT": str(tmp_path / "s3")})}
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("features")
    md = {k: v.value for k, v in mat.metadata.items()}
    expected = {d: credit.expected_malformed(dt.date.fromisoformat(d), 1500, seed=2) for d in DAYS}
    assert md["malformed_by_dt"] == expected
    assert md["rows_written"] == 3000 - sum(expected.values())
    assert md["feature_columns"] == prepare_features.FEATURE_COLUMNS
    assert (tmp_path / "s3" / "pipes-bkt" / "features" / "credit_applications" / f"dt={DAYS[0]}").is_dir()


_S3_CHILD = """
from smspark_assets.spark_jobs.pipes_runner import open_pipes
with open_pipes() as pipes:
    params = pipes.get_extra("params")
    pipes.report_asset_materialization(metadata={"doubled": params["n"] * 2})
"""


def _run_through_s3(child: str, include_stdio: bool = False) -> dg.ExecuteInProcessResult:
    """Run ``child`` (Python source) under Pipes with context and messages through S3 (moto S3 here), as
    the EMR Serverless runner passes them."""
    import boto3
    from dagster_aws.pipes import PipesS3ContextInjector, PipesS3MessageReader
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="pipes")

        @dg.asset
        def via_s3(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            client = dg.PipesSubprocessClient(
                env={**creds, "AWS_ENDPOINT_URL_S3": url},
                # With stdio in the messages, what reaches this process's stdout came through them only.
                forward_stdio=not include_stdio,
                context_injector=PipesS3ContextInjector(bucket="pipes", client=s3),
                message_reader=PipesS3MessageReader(bucket="pipes", client=s3, interval=0.2,
                                                    include_stdio_in_messages=include_stdio),
            )
            return client.run(command=[sys.executable, "-c", child], context=context,
                              extras={"params": {"n": 21}}).get_materialize_result()

        return dg.materialize([via_s3])
    finally:
        server.stop()


def test_open_pipes_uses_s3_when_the_client_injects_through_a_bucket() -> None:
    """The EMR Serverless runner passes context and messages through S3; the jobs must follow."""
    result = _run_through_s3(_S3_CHILD)
    assert result.success
    (mat,) = result.asset_materializations_for_node("via_s3")
    assert mat.metadata["doubled"].value == 42


_S3_CHATTY_CHILD = """
import sys
from smspark_assets.spark_jobs.pipes_runner import open_pipes
with open_pipes() as pipes:
    for i in range(300):
        print(f"driver line {i} on stdout")
    print("the driver's last words on stderr", file=sys.stderr)
    pipes.report_asset_materialization(metadata={"doubled": pipes.get_extra("params")["n"] * 2})
"""


def test_a_drivers_stdout_and_stderr_reach_dagster_whole_when_captured(capfd: pytest.CaptureFixture[str]) -> None:
    """With stdio in the messages (as the EMR runner asks), every line the driver printed up to its end
    arrives, its last words included: the writer's shortened flush and polls lose nothing."""
    result = _run_through_s3(_S3_CHATTY_CHILD, include_stdio=True)
    assert result.success
    (mat,) = result.asset_materializations_for_node("via_s3")
    assert mat.metadata["doubled"].value == 42
    out, err = capfd.readouterr()
    assert [line for line in out.splitlines() if line.startswith("driver line ")] == [
        f"driver line {i} on stdout" for i in range(300)]
    assert "the driver's last words on stderr" in err
