"""S3 benchmark: the local stack's S3 against moto's S3 server, through boto3 on loopback, in one run.

Run: ``.venv/bin/python benchmarks/s3.py`` (``--mib``, ``--keys``, ``--repeats`` to change the sizes).

Cases (the same client code against both servers):

* PUT: ``put_object`` of one ``--mib`` MiB object (256 by default) from memory;
* GET: ``get_object`` of that object, the body streamed to the end in 1 MiB chunks (``iter_chunks``), with
  boto3's defaults (the CRC32 stored at upload comes back and the client verifies it);
* LIST: ``--keys`` keys (10,000) listed with the ``list_objects_v2`` paginator (1,000 keys per page);
* GET vs a direct file read: the object read whole into memory, ``Body.read()``, against the file read
  whole, ``open(...).read()``: the same result with and without S3 in between.

Why two GET forms: streaming measures the serving path (a 256 MiB allocation, the same work for both
servers, would dominate a whole-object GET); a file read in chunks into a reused buffer runs at memory
speed (~10-20 GB/s here, no allocation at all), so the whole-object read is the baseline with the same
result. The other two combinations are printed too, as information (no target).
Our stack runs as it runs for users (its own process, started with :func:`smspark_assets.local.process.start`);
moto runs as ``moto.server.ThreadedMotoServer(port=0)`` in this process. The keys for LIST are written
once per server before timing, with ``put_object`` from 8 threads, and listed once untimed. Times are wall-clock
seconds, best of ``--repeats`` rounds in which ours and moto alternate (a shared machine's load then
weighs on both alike). Targets (issue 8): ours at least 2x moto on PUT, GET and LIST, and GET at
least 0.25x the direct file read. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from smspark_assets.local import process
from smspark_assets.local.credentials import load_or_create
from smspark_assets.local.layout import LocalLayout  # noqa: E402

BUCKET = "bench"
CHUNK = 1 << 20


def client(url: str) -> Any:
    config = Config(max_pool_connections=16, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=config)


def best_alternating(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each case over ``repeats`` rounds in which the cases alternate, so that the
    load of a shared machine weighs on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(values) for name, values in times.items()}


def put(s3: Any, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key="big.bin", Body=data)


def get(s3: Any, size: int) -> None:
    got = len(s3.get_object(Bucket=BUCKET, Key="big.bin")["Body"].read())
    if got != size:
        raise SystemExit(f"GET returned {got} bytes, expected {size}")


def get_streamed(s3: Any, size: int) -> None:
    got = sum(len(chunk) for chunk in s3.get_object(Bucket=BUCKET, Key="big.bin")["Body"].iter_chunks(CHUNK))
    if got != size:
        raise SystemExit(f"GET returned {got} bytes, expected {size}")


def direct_read(path: Path, size: int) -> None:
    with open(path, "rb") as fh:
        got = len(fh.read())
    if got != size:
        raise SystemExit(f"direct read returned {got} bytes, expected {size}")


def direct_read_streamed(path: Path, size: int) -> None:
    buffer = bytearray(CHUNK)
    got = 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            got += n
    if got != size:
        raise SystemExit(f"direct read returned {got} bytes, expected {size}")


def list_all(s3: Any, keys: int) -> None:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="keys/"):
        count += page["KeyCount"]
    if count != keys:
        raise SystemExit(f"LIST counted {count} keys, expected {keys}")


def fill_keys(s3: Any, keys: int) -> None:
    def one(i: int) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"keys/{i:06d}.json", Body=b"{}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(keys)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    size = args.mib * 1024 * 1024
    data = os.urandom(size)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request would swamp the figures

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto_server.start()
    moto_url = f"http://127.0.0.1:{moto_server._server.server_port}"  # noqa: SLF001 - port=0 picks one
    root = Path(tempfile.mkdtemp(prefix="s3-bench-"))
    ours_url = process.start(root).url
    # The stack verifies SigV4 with its root's generated credentials (moto accepts any): boto3 reads them here.
    creds = load_or_create(LocalLayout.for_root(root))
    os.environ.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    try:
        clients = {"ours": client(ours_url), "moto": client(moto_url)}
        for s3 in clients.values():
            s3.create_bucket(Bucket=BUCKET)
        stored = root / "s3" / BUCKET / "big.bin"
        results = {
            "PUT": best_alternating({n: (lambda s3=s3: put(s3, data)) for n, s3 in clients.items()}, args.repeats),
            "GET": best_alternating({n: (lambda s3=s3: get_streamed(s3, size)) for n, s3 in clients.items()},
                                    args.repeats),
        }
        whole = best_alternating({n: (lambda s3=s3: get(s3, size)) for n, s3 in clients.items()}, args.repeats)
        direct = best_alternating({"direct": lambda: direct_read(stored, size),
                                   "direct streamed": lambda: direct_read_streamed(stored, size)}, args.repeats)
        for s3 in clients.values():
            fill_keys(s3, args.keys)
            list_all(s3, args.keys)  # untimed first listing (both servers warm up)
        results["LIST"] = best_alternating({name: (lambda s3=s3: list_all(s3, args.keys))
                                            for name, s3 in clients.items()}, args.repeats)
    finally:
        process.stop(root)
        moto_server.stop()

    failed = False
    mib = size / 2**20
    for case in ("PUT", "GET", "LIST"):
        ours, moto = results[case]["ours"], results[case]["moto"]
        ratio = moto / ours
        ok = ratio >= 2.0
        failed |= not ok
        what = f"{mib:.0f} MiB" if case != "LIST" else f"{args.keys} keys"
        rate = f"{mib / ours:7.0f} MiB/s" if case != "LIST" else f"{args.keys / ours:7.0f} keys/s"
        print(f"{case:<5} {what:>11}: ours {ours:7.3f} s ({rate}), moto {moto:7.3f} s -> {ratio:5.1f}x moto "
              f"(target >= 2x) {'ok' if ok else 'MISSED'}")
    ratio = direct["direct"] / whole["ours"]
    ok = ratio >= 0.25
    failed |= not ok
    print(f"GET whole object vs direct file read: ours {whole['ours']:.3f} s, file read {direct['direct']:.3f} s "
          f"-> {ratio:.2f}x (target >= 0.25x) {'ok' if ok else 'MISSED'}")
    print(f"(info) GET whole object: moto {whole['moto']:.3f} s -> {whole['moto'] / whole['ours']:.1f}x moto; "
          f"streamed GET vs chunked file read into one buffer ({direct['direct streamed']:.3f} s): "
          f"{direct['direct streamed'] / results['GET']['ours']:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
