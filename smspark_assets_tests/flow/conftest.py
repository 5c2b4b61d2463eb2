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
        from smspark_assets_tests.stack_access import use_local_stack

        # Test clients sign with the stack's generated credentials (the resources read them themselves).
        use_local_stack(mp, root)
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
