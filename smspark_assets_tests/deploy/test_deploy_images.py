"""The images' build files (Docker is not available here, so they are parsed): base image, Python, pins."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from smspark_assets_tests.deploy.iam_policy_eval import REPO, load_template

pytestmark = pytest.mark.timeout(60)

EMR = REPO / "deploy" / "emr-serverless"


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in (l.strip() for l in joined.splitlines()) if line and not line.startswith("#")]


def _pins(path) -> dict[str, Requirement]:
    reqs = [Requirement(l.strip()) for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_emr_image_is_the_applications_release_with_python_311() -> None:
    steps = _instructions((EMR / "Dockerfile").read_text())
    args = dict(s[1].split("=", 1) for s in steps if s[0] == "ARG")
    release = load_template()["Parameters"]["EmrReleaseLabel"]["Default"]
    assert args["EMR_RELEASE"] == release
    from smspark_assets.resources.spark import EmrServerlessSparkJobRunner
    assert EmrServerlessSparkJobRunner.model_fields["release_label"].default == release
    assert [s[1] for s in steps if s[0] == "FROM"] == ["public.ecr.aws/emr-serverless/spark/${EMR_RELEASE}:latest"]
    env = " ".join(s[1] for s in steps if s[0] == "ENV")
    assert "PYSPARK_PYTHON=/usr/bin/python3.11" in env
    runs = " ".join(s[1] for s in steps if s[0] == "RUN")
    assert "dnf install -y python3.11" in runs and "python3.11 -m pip install" in runs
    assert [s for s in steps if s[0] == "USER"][-1][1] == "hadoop:hadoop"  # EMR Serverless runs as hadoop


def test_emr_image_pins_satisfy_the_project_and_cover_the_jobs_imports() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {Requirement(r).name.lower(): Requirement(r) for r in project}
    pins = _pins(EMR / "requirements.txt")
    for name, pin in pins.items():
        (version,) = [s.version for s in pin.specifier if s.operator == "=="]
        if name in ranges:
            assert ranges[name].specifier.contains(version), (name, version, str(ranges[name].specifier))
    # What the job scripts and the sagemaker/ modules they import need at run time on EMR.
    assert {"dagster-pipes", "boto3", "pyarrow", "pandas", "numpy"} <= set(pins)
    assert "pyspark" not in pins  # EMR's own Spark


def test_orchestrator_image_installs_the_project_and_postgres_storage() -> None:
    steps = _instructions((REPO / "deploy" / "orchestrator" / "Dockerfile").read_text())
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    copies = [s[1] for s in steps if s[0] == "COPY"]
    assert "deploy/orchestrator/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in copies
    pins = _pins(REPO / "deploy" / "orchestrator" / "requirements.txt")
    dagster_aws = next(Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                       ["dependencies"] if r.startswith("dagster-aws"))
    assert str(pins["dagster-postgres"].specifier) == str(dagster_aws.specifier)  # lockstep with dagster-aws
    assert [s[1] for s in steps if s[0] == "USER"] == ["dagster"]
