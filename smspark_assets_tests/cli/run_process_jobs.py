"""A small code location for the child-process run tests: one asset that logs, then waits for a release
file; if it is interrupted first, it records what stopped it (as a step stopping its remote work would)."""

import os
import time
from pathlib import Path

import dagster as dg

# The folder the test and the child process share (the child inherits the environment).
FOLDER_VARIABLE = "RUN_PROCESS_TEST_DIR"


@dg.asset
def waits_for_release(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    folder = Path(os.environ[FOLDER_VARIABLE])
    context.log.info(f"waiting for {folder / 'release'}")
    try:
        while not (folder / "release").exists():
            time.sleep(0.05)
    except BaseException as exc:
        (folder / "stopped").write_text(type(exc).__name__)
        raise
    return dg.MaterializeResult(metadata={"pid": os.getpid()})


defs = dg.Definitions(assets=[waits_for_release],
                      jobs=[dg.define_asset_job("wait_job", selection=[waits_for_release])])
