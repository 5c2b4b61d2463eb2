"""One real end-to-end demo run (two small days), shared by the flow tests: it is the expensive part."""

import datetime as dt
from typing import Iterator

import dagster as dg
import pytest

DAYS, ROWS = 2, 1500
START = dt.date(2026, 11, 1)
# The algorithm endpoints score their whole held-out sets, so their figures compare with the jobs' metrics.
RUN_CONFIGS = {"algorithms": {"ops": {"algorithm_endpoint_scores": {"config": {"sample_rows": 100_000}}}}}


@pytest.fixture(scope="session")
def demo_flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("flow") / "smspark"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        mp.setenv("SMSPARK_ENV", "local")
        mp.setenv("DAGSTER_HOME", str(root / "dagster"))
        # Test clients sign with the stack's generated credentials (the resources read them themselves).
        from smspark_assets_tests.stack_access import stack_credentials

        creds = stack_credentials(root)
        mp.setenv("AWS_ACCESS_KEY_ID", creds["aws_access_key_id"])
        mp.setenv("AWS_SECRET_ACCESS_KEY", creds["aws_secret_access_key"])
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_SECURITY_TOKEN", raising=False)
        from smspark_assets.demo import run_demo
        from smspark_assets.local import process

        try:
            with dg.instance_for_test() as instance:
                report = run_demo(days=DAYS, rows=ROWS, start=START, instance=instance, run_configs=RUN_CONFIGS)
                url = process.ensure_running(root)
                yield {"report": report, "instance": instance, "root": root, "url": url,
                       "days": DAYS, "rows": ROWS, "start": START}
        finally:
            process.stop(root)
