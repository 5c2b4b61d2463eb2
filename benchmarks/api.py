"""Scores API benchmark: single and 100-id bulk reads through the API against boto3 GetItem, one run.

Run: ``.venv/bin/python benchmarks/api.py`` (``--requests`` to change the count).

The stack runs as for users (its own process, :func:`smspark_assets.local.process.start`, a temporary
state root) with the usage plan raised for the run (``config.json``: the default plan would throttle a
benchmark). On loopback, one client at a time, keep-alive connections on both sides:

* API single read: ``GET /scores/{id}`` with ``http.client`` (what a plain application does);
* API bulk read: ``GET /scores?ids=<100 ids>``;
* baselines: boto3 ``get_item`` of the same ids, and boto3 ``batch_get_item`` of the same 100 ids (with
  the API's projection), on the same stack.

Prints p50 and p99 (milliseconds) of each, and the bulk read's two mapping templates rendered in this
process by airspeed and by their direct renderers (``local/scores_api_render.py``) for the same 100 items.
Targets (issue 14): API single-read p50 at most 1.5x the GetItem p50; API bulk-read p50 at most 1.5x the
BatchGetItem p50 (what API Gateway adds to DynamoDB: routing, key, usage plan, both mapping templates,
access log); the direct renderers at least 10x faster than airspeed. Exits 1 when one is missed.
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
from smspark_assets.local.scores_api_spec import load_spec  # noqa: E402
from smspark_assets.local.scores_api_vtl import VelocityInput, request_context  # noqa: E402
from smspark_assets_tests.stack_access import stack_client  # noqa: E402

TABLE = "credit_scores_latest"
TARGET_RATIO = 1.5
BULK_TARGET_RATIO = 1.5
# The direct renderers must stay at least this much faster than airspeed on the same 100 items.
TEMPLATE_SPEEDUP_TARGET = 10.0
# The projection of the API's BatchGetItem mapping template (deploy/api/scores-openapi.yaml).
PROJECTION = {"ProjectionExpression": "#i, #p, #m, #v, #s, #d",
              "ExpressionAttributeNames": {"#i": "application_id", "#p": "prediction", "#m": "model_name",
                                           "#v": "model_version", "#s": "scored_at", "#d": "dt"}}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def template_render_ms(items: list[dict], ids: list[str], repeat: int = 20) -> tuple[float, float]:
    """p50 milliseconds of rendering the bulk read's request and 200 templates: (airspeed, direct)."""
    spec = load_spec()
    route = next(r for r in spec.routes if r.resource_path == "/scores")
    answer = json.dumps({"Responses": {TABLE: items}, "UnprocessedKeys": {}})
    query = {"ids": ",".join(ids)}

    def render(airspeed: bool) -> None:
        context = request_context("r", "GET", "/scores", "/scores", spec.stage, "k", "kid", "127.0.0.1", "", "", 0)
        for template, body in ((route.request_template, ""), (route.response_for(200).template, answer)):
            (template.render_with_airspeed if airspeed else template.render)(
                VelocityInput(body, {}, query, {}), context, spec.stage_variables)

    out = []
    for airspeed in (True, False):
        render(airspeed)
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            render(airspeed)
            samples.append(time.perf_counter() - started)
        out.append(statistics.median(samples) * 1000)
    return out[0], out[1]


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
        items = [{"application_id": {"S": i}, "prediction": {"N": str(n / 1000)}, "model_name": {"S": "m"},
                  "scored_at": {"S": "2024-01-16 02:00:00+00:00"}, "dt": {"S": "2024-01-15"}}
                 for n, i in enumerate(ids)]
        for start in range(0, len(ids), 25):
            ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}}
                                                       for item in items[start:start + 25]]})
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
        batches = [ids[(i * 100) % len(ids):][:100] for i in range(max(1, len(ids) // 100))]
        bulk_requests = max(50, args.requests // 10)
        batch_get = timed(lambda i: ddb.batch_get_item(RequestItems={TABLE: {
            "Keys": [{"application_id": {"S": k}} for k in batches[i % len(batches)]], **PROJECTION}}),
            bulk_requests)
        bulk = timed(lambda i: api_get("/scores?ids=" + ",".join(batches[i % len(batches)])), bulk_requests)
    finally:
        process.stop(root)
    airspeed_ms, direct_ms = template_render_ms(items[:100], ids[:100])
    rows = {"boto3 GetItem": getitem, "API single read": single,
            "boto3 BatchGetItem (100)": batch_get, "API bulk read (100 ids)": bulk}
    for name, samples in rows.items():
        p50, p99 = percentiles(samples)
        print(f"{name:26s} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   ({len(samples)} requests)")
    speedup = airspeed_ms / direct_ms
    speedup_ok = speedup >= TEMPLATE_SPEEDUP_TARGET
    print(f"bulk templates (100 items) airspeed {airspeed_ms:7.3f} ms   direct {direct_ms:7.3f} ms   "
          f"speed-up {speedup:.0f}x (target >= {TEMPLATE_SPEEDUP_TARGET:.0f}x): {'ok' if speedup_ok else 'MISSED'}")
    ratio = percentiles(single)[0] / percentiles(getitem)[0]
    ok = ratio <= TARGET_RATIO
    print(f"API single-read p50 / GetItem p50 = {ratio:.2f} (target <= {TARGET_RATIO}): {'ok' if ok else 'MISSED'}")
    bulk_ratio = percentiles(bulk)[0] / percentiles(batch_get)[0]
    bulk_ok = bulk_ratio <= BULK_TARGET_RATIO
    print(f"API bulk-read p50 / BatchGetItem p50 = {bulk_ratio:.2f} (target <= {BULK_TARGET_RATIO}): "
          f"{'ok' if bulk_ok else 'MISSED'}")
    return 0 if ok and bulk_ok and speedup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
