"""The ``smspark`` command.

::

    smspark run [--days 14 --rows 20000 --start 2026-11-01]   land demo data, materialize everything, summarise
    smspark query "SELECT ... FROM credit_scores ..."          Athena SQL (DuckDB locally)
    smspark dev [--port 3000]                                  the Dagster UI on the same instance
    smspark local start|stop|status|logs <job>                 the embedded local stack
    smspark demo-data --days N --rows R                        only write demo data
    smspark package-code s3://bucket/code                      upload the Spark jobs for EMR Serverless
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Sequence


def _cmd_run(args: argparse.Namespace) -> int:
    from smspark_assets.demo import format_report, run_demo

    report = run_demo(days=args.days, rows=args.rows, start=args.start, seed=args.seed)
    print(format_report(report))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    import pandas as pd

    from smspark_assets.resources.by_environment import resources_for

    frame = resources_for()["catalog"].query(args.sql)
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 160):
        print(frame.to_string(index=False, max_rows=args.max_rows))
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI on the instance ``smspark run`` used (same DAGSTER_HOME)."""
    import os

    from smspark_assets.demo import prepare_dagster_home

    prepare_dagster_home()
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port)])
    return 0


def _cmd_local(args: argparse.Namespace) -> int:
    from smspark_assets.local.cli import main as local_main

    return local_main(args.rest)


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from smspark_assets.datasets.credit import main as data_main

    return data_main(args.rest)


def _cmd_package_code(args: argparse.Namespace) -> int:
    """Zip the package for ``--py-files`` and upload it with the job scripts as EMR entry points."""
    import boto3

    from smspark_assets.code_package import upload_code

    base = upload_code(boto3.client("s3"), args.code_uri, versioned=False)
    print(f"uploaded smspark_assets.zip and spark_jobs/*.py to {base}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smspark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="land demo data and materialize the whole asset graph")
    run.add_argument("--days", type=int, default=14)
    run.add_argument("--rows", type=int, default=20_000, help="rows per day")
    run.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    run.add_argument("--seed", type=int, default=7)
    run.set_defaults(func=_cmd_run)

    query = sub.add_parser("query", help="run Athena-dialect SQL against the catalog")
    query.add_argument("sql")
    query.add_argument("--max-rows", type=int, default=50)
    query.set_defaults(func=_cmd_query)

    dev = sub.add_parser("dev", help="the Dagster UI on the instance `smspark run` used")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_cmd_dev)

    local = sub.add_parser("local", help="start, stop or inspect the embedded local stack", add_help=False)
    local.add_argument("rest", nargs=argparse.REMAINDER)
    local.set_defaults(func=_cmd_local)

    data = sub.add_parser("demo-data", help="write demo credit applications", add_help=False)
    data.add_argument("rest", nargs=argparse.REMAINDER)
    data.set_defaults(func=_cmd_demo_data)

    package = sub.add_parser("package-code", help="upload the Spark jobs for EMR Serverless")
    package.add_argument("code_uri")
    package.set_defaults(func=_cmd_package_code)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `local` and `demo-data` hand their arguments (options included) to their own parsers.
    passthrough = {"local": _cmd_local, "demo-data": _cmd_demo_data}
    if argv and argv[0] in passthrough:
        return int(passthrough[argv[0]](argparse.Namespace(rest=argv[1:])) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and (args.days < 1 or args.rows < 1):
        parser.error("--days and --rows must be at least 1")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
