from pathlib import Path

import pytest

from smspark_assets.environment import Environment, get_environment, local_path, split_s3_uri
from smspark_assets.sagemaker.naming import MAX_NAME, deterministic_name, derived_name, sanitize


def test_emrfs_mapping_inside_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Inside an embedded-EMR job s3:// maps to the store's files; elsewhere (EMRFS) the URI stays."""
    from smspark_assets.spark_jobs.storage import location

    monkeypatch.delenv("SMSPARK_EMRFS_ROOT", raising=False)
    assert location("s3://demo/raw/") == "s3://demo/raw"
    monkeypatch.setenv("SMSPARK_EMRFS_ROOT", str(tmp_path))
    assert location("s3://demo/raw/x.csv") == str(tmp_path / "demo" / "raw" / "x.csv")
    assert location("/already/local") == "/already/local"
    with pytest.raises(ValueError, match="escapes"):
        location("s3://demo/../other/x")


def test_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ENV", "aws")
    assert get_environment() is Environment.AWS


def test_unknown_environment_names_the_allowed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSPARK_ENV", "prod")
    with pytest.raises(ValueError, match="allowed: local, aws"):
        get_environment()


def test_keys_cannot_escape_their_bucket(smspark_root: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        local_path("s3://demo/../other/secret")
    with pytest.raises(ValueError, match="not an S3 URI"):
        split_s3_uri("http://demo/x")


def test_names_are_deterministic_and_valid() -> None:
    a = deterministic_name("credit_default.xgb", {"eta": "0.1"}, "fp1")
    assert a == deterministic_name("credit_default.xgb", {"eta": "0.1"}, "fp1")
    assert a != deterministic_name("credit_default.xgb", {"eta": "0.2"}, "fp1")
    long = deterministic_name("x" * 100, 1, suffix="r2")
    assert len(long) <= MAX_NAME and long.endswith("-r2")
    import re

    for name in (a, long, derived_name("m" * 70, "cfg"), sanitize("__a..b__")):
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name), name
        assert len(name) <= MAX_NAME
