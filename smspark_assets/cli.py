"""The ``smspark`` command.

::

    smspark run [--days 14 --rows 20000 --start 2026-11-01]   land demo data, materialize everything, summarise
    smspark query "SELECT ... FROM credit_scores ..."          Athena SQL (DuckDB locally)
          [--format table|csv|json] [--max-rows 50]            also SHOW PARTITIONS <table>
    smspark dev [--port 3000]                                  the Dagster UI on the same instance
    smspark local start|stop|status|logs <job>                 the embedded local stack
    smspark demo-data --days N --rows R                        only write demo data
    smspark package-code s3://bucket/code                      upload the Spark jobs for EMR Serverless

Errors are one line, ``error: <cause>``, with exit code 1 (2 for bad arguments); ``--debug`` (anywhere
on the line) adds the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import traceback
import warnings
from pathlib import Path
from typing import Sequence

DEBUG_FLAG = "--debug"


class CommandError(Exception):
    """A failure the user can fix: printed as ``error: <message>`` without a traceback."""


def _cmd_run(args: argparse.Namespace) -> int:
    from smspark_assets.demo import format_report, run_demo

    report = run_demo(days=args.days, rows=args.rows, start=args.start, seed=args.seed,
                      write=lambda line: print(line, flush=True))
    print(format_report(report))
    return 0


def _require_local_stack() -> None:
    """Locally, queries need the stack a run left running: say how to start it rather than start it here
    (a fresh stack has no tables to query)."""
    from smspark_assets.environment import Environment, get_environment, project_root

    if get_environment() is not Environment.LOCAL:
        return
    from smspark_assets.local.process import status

    if status(project_root()) is None:
        raise CommandError(f"the local stack is not running (state root {project_root()}); start it with "
                           "`smspark local start`, or run `make run` to create the tables")


def _cmd_query(args: argparse.Namespace) -> int:
    from smspark_assets.query_output import render
    from smspark_assets.resources.by_environment import resources_for

    if not args.sql.strip():
        raise CommandError('the SQL is empty; e.g. smspark query "SELECT * FROM credit_scores LIMIT 5"')
    if args.max_rows < 0:
        raise CommandError(f"--max-rows must be 0 (all rows) or more, got {args.max_rows}")
    _require_local_stack()
    frame = resources_for()["catalog"].query(args.sql)
    rendered = render(frame, args.format, args.max_rows)
    print(rendered.text)
    # The table is for reading: its notes follow it. CSV and JSON stay parseable: notes go to stderr.
    notes_to = sys.stdout if args.format == "table" else sys.stderr
    print("(" + "; ".join(rendered.notes) + ")", file=notes_to)
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
    parser.add_argument(DEBUG_FLAG, action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="land demo data and materialize the whole asset graph")
    run.add_argument("--days", type=int, default=14)
    run.add_argument("--rows", type=int, default=20_000, help="rows per day")
    run.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    run.add_argument("--seed", type=int, default=7)
    run.set_defaults(func=_cmd_run)

    query = sub.add_parser("query", help="run Athena-dialect SQL against the catalog")
    query.add_argument("sql", help="one query (SELECT / WITH / VALUES) or SHOW PARTITIONS <table>; tables may "
                                   "be named <table>, <db>.<table> or AwsDataCatalog.<db>.<table>")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.add_argument("--max-rows", type=int, default=50, help="rows to print (0: all); default 50")
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


def describe_error(exc: BaseException) -> str:
    """One line naming the cause: Athena's reason, the endpoint that did not answer, or the message."""
    from smspark_assets.resources.catalog import AthenaQueryFailed

    if isinstance(exc, AthenaQueryFailed):
        # "Athena query <id> FAILED: TABLE_NOT_FOUND: line 1:15: ..." -> the reason, which is what to fix.
        text = str(exc)
        reason = text.split(": ", 1)[1] if ": " in text else text
        return f"query failed: {reason.splitlines()[0] if reason else 'no reason given'}"
    try:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
    except ImportError:  # pragma: no cover - botocore is a dependency
        BotoCoreError = ClientError = EndpointConnectionError = NoCredentialsError = ()  # type: ignore[misc,assignment]
    if isinstance(exc, EndpointConnectionError):
        return (f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')} (is the local stack running? "
                "`smspark local status`)")
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials (SMSPARK_ENV=aws needs them; locally, unset SMSPARK_ENV)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    if isinstance(exc, BotoCoreError):
        return str(exc).replace("\n", " ")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    return message if isinstance(exc, (CommandError, ValueError, RuntimeError, OSError)) \
        else f"{type(exc).__name__}: {message}"


def _quiet_dagster_warnings() -> None:
    """Dagster's preview/beta/supersession notices repeat for every definition load: not the user's to act on."""
    import dagster as dg

    for category in (dg.PreviewWarning, dg.BetaWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        if not debug:
            _quiet_dagster_warnings()
        # `local` and `demo-data` hand their arguments (options included) to their own parsers.
        passthrough = {"local": _cmd_local, "demo-data": _cmd_demo_data}
        if argv and argv[0] in passthrough:
            return int(passthrough[argv[0]](argparse.Namespace(rest=argv[1:])) or 0)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "run" and (args.days < 1 or args.rows < 1):
            parser.error("--days and --rows must be at least 1")
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line (the traceback with --debug)
        if debug:
            traceback.print_exc()
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
