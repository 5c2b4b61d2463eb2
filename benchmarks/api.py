"""Scores API benchmark: single and 100-id bulk reads through the API against boto3 GetItem, one run.

Run: ``.venv/bin/python benchmarks/api.py`` (``--requests`` to change the count).

The stack runs as for users (its own process, :func:`smspark_assets.local.process.start`, a temporary
state root) with the usage plan raised for the run (``config.json``: the default plan would throttle a
benchmark). On loopback, one client at a time, keep-alive connections on both sides:

* API single read: ``GET /scores/{id}`` with ``http.client`` (what a plain application does);
* API bulk read: ``GET /scores?ids=<100 ids>``;
* baseline: boto3 ``get_item`` of the same ids on the same stack.

Prints p50 and p99 (milliseconds) of each. Target (issue 14): API single-read p50 at most 1.5x the
GetItem p50. Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smspark_assets.local import process  # noqa: E402
from smspark_assets.local.api_keys import load_or_create_api_key  # noqa: E402
from smspark_assets.local.layout import LocalLayout  # noqa: E402
from smspark_assets.local.scores_api import api_base_url  # noqa: E402
from smspark_assets_tests.stack_access import stack_client  # noqa: E402

TABLE = "credit_scores_latest"
TARGET_RATIO = 1.5


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="smspark-api-bench-"))
    os.environ.update(SMSPARK_ROOT=str(root), AWS_DEFAULT_REGION="us-east-1")
    layout = LocalLayout.for_root(root)
    layout.local_dir.mkdir(parents=True, exist_ok=True)
    layout.config_json.write_text(json.dumps({"scores_api": {"rate_limit": 1e6, "burst_limit": 1_000_000,
                                                             "quota_limit": 10_000_000}}))
    url = process.start(root).url
    try:
        ddb = stack_client(root, url, "dynamodb")
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "application_id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "application_id", "KeyType": "HASH"}])
        ids = [f"CA-20240115-{n:06d}" for n in range(args.items)]
        for start in range(0, len(ids), 25):
            ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {
                "application_id": {"S": i}, "prediction": {"N": str(n / 1000)}, "model_name": {"S": "m"},
                "scored_at": {"S": "2024-01-16 02:00:00+00:00"}, "dt": {"S": "2024-01-15"}}}}
                for n, i in enumerate(ids[start:start + 25], start)]})
        base = urlsplit(api_base_url(url))
        key = load_or_create_api_key(layout).value
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)

        def api_get(path: str) -> None:
            connection.request("GET", base.path + path, headers={"x-api-key": key})
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")

        def timed(call, n: int) -> list[float]:
            for i in range(min(50, n)):  # warm-up: connections, template compilation
                call(i)
            out = []
            for i in range(n):
                started = time.perf_counter()
                call(i)
                out.append(time.perf_counter() - started)
            return out

        getitem = timed(lambda i: ddb.get_item(TableName=TABLE, Key={"application_id": {"S": ids[i % len(ids)]}}),
                        args.requests)
        single = timed(lambda i: api_get(f"/scores/{ids[i % len(ids)]}"), args.requests)
        bulk = timed(lambda i: api_get("/scores?ids=" + ",".join(ids[(i * 100) % len(ids):][:100])),
                     max(50, args.requests // 10))
    finally:
        process.stop(root)
    rows = {"boto3 GetItem": getitem, "API single read": single, "API bulk read (100 ids)": bulk}
    for name, samples in rows.items():
        p50, p99 = percentiles(samples)
        print(f"{name:26s} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({len(samples)} requests)")
    ratio = percentiles(single)[0] / percentiles(getitem)[0]
    ok = ratio <= TARGET_RATIO
    print(f"API single-read p50 / GetItem p50 = {ratio:.2f} (target <= {TARGET_RATIO}): {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
