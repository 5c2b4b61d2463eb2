"""``smspark local start | stop | status | logs <job>``: manage the local service from a shell."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from smspark_assets import environment
from smspark_assets.local import process
from smspark_assets.local.credentials import load_or_create
from smspark_assets.local.layout import LocalLayout


def stack_exports(layout: LocalLayout, url: str) -> dict[str, str]:
    """``AWS_*`` variables for the stack of ``layout`` listening at ``url`` (credentials of its root)."""
    creds = load_or_create(layout)
    region = environment.region()
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def scores_api_exports(layout: LocalLayout, url: str) -> dict[str, str]:
    """The scores API's base URL and key (the variables ``ScoresApiResource`` reads on AWS)."""
    from smspark_assets.local.api_keys import load_or_create_api_key
    from smspark_assets.local.scores_api import api_base_url

    return {"SMSPARK_SCORES_API_URL": api_base_url(url),
            "SMSPARK_SCORES_API_KEY": load_or_create_api_key(layout).value}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="smspark local", description="The embedded local AWS stack (S3, EMR Serverless, Glue, Athena, SageMaker, DynamoDB, CloudWatch Logs)."
    )
    parser.add_argument("--root", default=None, help="project root (default: SMSPARK_ROOT or ./.smspark)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start", help="start the service in the background (no-op when it runs)")
    sub.add_parser("stop", help="stop the service (its endpoints are served again on the next start)")
    sub.add_parser("status", help="print the service's URL and pid; exit code 1 when it is not running")
    sub.add_parser("env", help="print the shell exports with which boto3, the AWS CLI or pyarrow reach the stack "
                               "(starts it when needed): eval \"$(smspark local env)\"")
    logs = sub.add_parser("logs", help="print a training job's log, or an endpoint's model-server logs")
    logs.add_argument("job", help="training job name (or endpoint name)")
    args = parser.parse_args(argv)

    if args.command == "start":
        try:
            info = process.start(args.root)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"local service running at {info.url} (pid {info.pid}, root {info.root})")
        return 0
    if args.command == "stop":
        print("local service stopped" if process.stop(args.root) else "local service was not running")
        return 0
    if args.command == "status":
        info = process.status(args.root)
        if info is None:
            print("local service is not running")
            return 1
        doc = info.to_json()
        doc["scores_api_url"] = scores_api_exports(LocalLayout.for_root(args.root), info.url)["SMSPARK_SCORES_API_URL"]
        # Machine-readable (one JSON document); the API key is printed by `smspark local env` only.
        print(json.dumps(doc, indent=2))
        return 0
    if args.command == "env":
        try:
            info = process.start(args.root)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for key, value in stack_exports(LocalLayout.for_root(args.root), info.url).items():
            print(f"export {key}={shlex.quote(value)}")
        for key, value in scores_api_exports(LocalLayout.for_root(args.root), info.url).items():
            print(f"export {key}={shlex.quote(value)}")
        print('# scores API: curl -H "x-api-key: $SMSPARK_SCORES_API_KEY" "$SMSPARK_SCORES_API_URL/scores/<application_id>"')
        return 0
    if args.command == "logs":
        layout = LocalLayout.for_root(args.root)
        path = layout.training_log(args.job)
        if path.exists():
            sys.stdout.write(path.read_text(errors="replace"))
            return 0
        endpoint_logs = sorted((layout.endpoints_dir / args.job / "logs").rglob("*.log"))
        if endpoint_logs:
            for log in endpoint_logs:
                print(f"==> {log.relative_to(layout.endpoints_dir)} <==")
                sys.stdout.write(log.read_text(errors="replace"))
            return 0
        print(f"error: no training job or endpoint named {args.job!r} has logs under {layout.local_dir}",
              file=sys.stderr)
        return 1
    return 2  # unreachable: argparse requires a command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
