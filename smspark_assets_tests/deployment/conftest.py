"""Fixtures of the deployment tests: one stack with the guarded script-mode model trained three ways.

The stack side's helpers (``smspark_assets_tests/local/deployment_helpers.py``: a model that answers 500 on
some inputs) are reused, so the asset side is tested against the same faulty model as the stack.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "local"))

from deployment_helpers import configure_guarded_algorithm, train_model  # noqa: E402

from smspark_assets_tests.stack_access import sign_as_stack, stack_client  # noqa: E402


class GuardedStack:
    """A running stack with models ``w1`` (sum * 1), ``w3`` (sum * 3) and ``faulty`` (500 when x0 >= 5)."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.sm = stack_client(root, url, "sagemaker")
        self.runtime = stack_client(root, url, "sagemaker-runtime")
        self.cloudwatch = stack_client(root, url, "cloudwatch")

    def resource(self, poll_seconds: float = 0.5) -> Any:
        from smspark_assets.resources.aws import SageMakerResource

        return SageMakerResource(local_stack_root=str(self.root), poll_seconds=poll_seconds)


@pytest.fixture(scope="module")
def guarded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedStack]:
    from smspark_assets.local import process

    root = tmp_path_factory.mktemp("deploy-assets") / "smspark"
    root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        mp.setenv("SMSPARK_ENV", "local")
        sign_as_stack(mp, root)
        configure_guarded_algorithm(root)
        info = process.start(root)
        try:
            stack = GuardedStack(root, info.url)
            train_model(stack.sm, "w1", w=1)
            train_model(stack.sm, "w3", w=3)
            train_model(stack.sm, "faulty", w=3, fail_at=5)
            yield stack
        finally:
            process.stop(root)
