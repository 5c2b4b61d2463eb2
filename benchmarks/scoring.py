"""Benchmark: rows/s of Spark scoring through a SageMaker endpoint vs. an in-process pandas UDF.

Both sides run in the same Spark session over the same feature partitions and write the same
Parquet layout; the only difference is how a prediction is made:

* **endpoint** -- the project's scoring job (``spark_jobs/score_endpoint.py``): executors serialize
  rows to CSV, send requests of at most 5 MiB to ``InvokeEndpoint`` and parse the answers. The
  endpoint is the project's local SageMaker service when it can be started (``--endpoint local``,
  the model deployed from ``model.tar.gz`` as a real SageMaker model), otherwise (or with
  ``--endpoint test``) the small Booster HTTP endpoint of ``spark_jobs/booster_endpoint.py``. The
  output says which one was used.
* **baseline** -- a pandas UDF calling the same xgboost Booster inside the Python workers.

Printed: rows/s of each (best of ``--repeats`` timed runs after a warm-up; the two sides alternate)
and the ratio endpoint / baseline: the median over the alternating pairs (target >= 0.5).

    .venv/bin/python benchmarks/scoring.py --days 4 --rows 20000 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BUCKET = "s3://bench"
RAW = f"{BUCKET}/raw/credit_applications"
FEATURES = f"{BUCKET}/features/credit_applications"
CHANNELS = f"{BUCKET}/channels/credit_default/bench"
MODEL_TAR = f"{BUCKET}/models/bench-xgb/output/model.tar.gz"
ENDPOINT_NAME = "bench-credit-default"


def train_booster(channel_dir: Path, rounds: int) -> Any:
    """An XGBoost model of the size the flow trains (binary:logistic, depth 5)."""
    import pandas as pd
    import xgboost as xgb

    frames = [pd.read_csv(p, header=None) for p in sorted(channel_dir.glob("part-*.csv"))]
    data = pd.concat(frames, ignore_index=True).to_numpy(dtype=np.float32)
    dtrain = xgb.DMatrix(data[:, 1:], label=data[:, 0])
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.1, "subsample": 0.8, "seed": 7}
    return xgb.train(params, dtrain, rounds)


def baseline_score(spark: Any, booster: Any, partitions: list[str], feature_columns: list[str], output: str) -> int:
    """The in-process baseline: a pandas UDF predicting with the same Booster; same output layout."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from smspark_assets.spark_jobs import storage
    from smspark_assets.spark_jobs.write_channels import read_features

    raw_model = bytes(booster.save_raw(raw_format="ubj"))
    loaded: dict[str, Any] = {}  # shipped with the UDF, so the Booster is loaded once per task

    @pandas_udf("double")
    def predict(features: pd.DataFrame) -> pd.Series:
        import xgboost as xgb

        model = loaded.get("booster")
        if model is None:
            model = loaded["booster"] = xgb.Booster()
            model.load_model(bytearray(raw_model))
        matrix = features.to_numpy(dtype=np.float32)
        return pd.Series(model.inplace_predict(matrix), dtype="float64")

    df = read_features(spark, FEATURES, partitions, "baseline")
    keep = ["application_id", "application_date", "split", "defaulted_12m", "dt"]
    scored = df.select(
        *keep,
        predict(F.struct(*[F.col(c) for c in feature_columns])).alias("prediction"),
        F.lit("baseline").alias("model_name"),
        F.current_timestamp().alias("scored_at"),
    )
    storage.overwrite_partitions(scored, output, partitions, "parquet", sort_by=["application_id"])
    return spark.read.parquet(storage.location(output)).count()


def deploy_on_local_service(root: Path, booster: Any, region: str) -> tuple[str, Any]:
    """Start the project's local service on ``root`` and serve the Booster as a real SageMaker model."""
    import boto3

    from smspark_assets.environment import local_path
    from smspark_assets.local import process
    from smspark_assets.local.credentials import load_or_create
    from smspark_assets.local.layout import LocalLayout
    from smspark_assets.sagemaker.endpoints import EndpointSettings, deploy_model
    from smspark_assets.sagemaker.images import image_uri

    url = process.ensure_running(root)
    # The stack verifies SigV4 with its root's generated credentials; boto3 (here and in the job) reads them.
    creds = load_or_create(LocalLayout.for_root(root))
    os.environ.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    # The artifact exactly as the XGBoost container >= 1.3 writes it: model.tar.gz holding xgboost-model.
    model_bytes = bytes(booster.save_raw(raw_format="ubj"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(model_bytes)
        tar.addfile(info, io.BytesIO(model_bytes))
    target = local_path(MODEL_TAR)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buf.getvalue())
    sm = boto3.client("sagemaker", endpoint_url=url, region_name=region)
    model_name = "bench-xgb-model"
    sm.create_model(
        ModelName=model_name,
        PrimaryContainer={"Image": image_uri("xgboost", region), "ModelDataUrl": MODEL_TAR},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/local",
    )
    deploy_model(sm, ENDPOINT_NAME, model_name, EndpointSettings(instance_type="ml.m5.large"), poll_seconds=1, log=lambda m: None)
    return url, sm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=4, help="days of demo data (default 4)")
    parser.add_argument("--rows", type=int, default=20000, help="rows per day (default 20000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side; the best is kept")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds of the model (default 100)")
    parser.add_argument("--endpoint", choices=("auto", "local", "test"), default="auto",
                        help="auto: the local service if it starts, else the test endpoint")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per Spark task")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="smspark-scoring-bench-"))
    os.environ["SMSPARK_ROOT"] = str(root)
    os.environ["SMSPARK_ENV"] = "local"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    region = "us-east-1"

    from smspark_assets.datasets import credit
    from smspark_assets.environment import local_path
    from smspark_assets.spark_jobs.booster_endpoint import BoosterEndpointServer
    from smspark_assets.spark_jobs.prepare_features import prepare_features
    from smspark_assets.spark_jobs.score_endpoint import score_endpoint
    from smspark_assets.spark_jobs.session import local_session
    from smspark_assets.spark_jobs.write_channels import write_channels

    start = dt.date(2026, 11, 1)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    server: BoosterEndpointServer | None = None
    service_started = False
    try:
        credit.write_days(BUCKET, start, args.days, args.rows, seed=7)
        spark = local_session("smspark-bench")
        feats = prepare_features(spark, RAW, days, FEATURES)
        write_channels(spark, FEATURES, days, CHANNELS)
        booster = train_booster(local_path(f"{CHANNELS}/train"), args.rounds)
        cols = feats["feature_columns"]

        endpoint_kind, endpoint_url = "", ""
        if args.endpoint in ("auto", "local"):
            try:
                endpoint_url, _ = deploy_on_local_service(root, booster, region)
                service_started = True
                endpoint_kind = "local SageMaker service (smspark_assets.local)"
            except Exception as exc:  # noqa: BLE001 -- any failure means: use the fallback, and say why
                if args.endpoint == "local":
                    raise
                print(f"[bench] local service not usable ({type(exc).__name__}: {exc}); using the test endpoint")
        if not endpoint_url:
            server = BoosterEndpointServer(booster, ENDPOINT_NAME).start()
            endpoint_url = server.url
            endpoint_kind = "test endpoint (spark_jobs/booster_endpoint.py, not the local service)"

        def run_endpoint(parts: list[str]) -> float:
            t0 = time.perf_counter()
            meta = score_endpoint(spark, FEATURES, parts, ENDPOINT_NAME, f"{BUCKET}/scores/endpoint",
                                  endpoint_url=endpoint_url, region=region, model_name="bench",
                                  max_concurrency=args.concurrency)
            return meta["rows_scored"] / (time.perf_counter() - t0)

        def run_baseline(parts: list[str]) -> float:
            t0 = time.perf_counter()
            rows = baseline_score(spark, booster, parts, cols, f"{BUCKET}/scores/baseline")
            return rows / (time.perf_counter() - t0)

        # Warm-up (JIT, Python workers, first connections) on one day, not timed.
        run_endpoint(days[:1])
        run_baseline(days[:1])
        endpoint_rates, baseline_rates = [], []
        for _ in range(args.repeats):  # interleaved, so machine load affects both sides alike
            endpoint_rates.append(run_endpoint(days))
            baseline_rates.append(run_baseline(days))

        # Same predictions on both sides (float32 features on the wire are exact for XGBoost).
        a = pd.read_parquet(local_path(f"{BUCKET}/scores/endpoint"), columns=["application_id", "prediction"])
        b = pd.read_parquet(local_path(f"{BUCKET}/scores/baseline"), columns=["application_id", "prediction"])
        merged = a.merge(b, on="application_id", suffixes=("_endpoint", "_baseline"))
        max_diff = float(np.max(np.abs(merged["prediction_endpoint"] - merged["prediction_baseline"])))

        rows = feats["rows_written"]
        best_ep, best_base = max(endpoint_rates), max(baseline_rates)
        # Each endpoint run is paired with the baseline run right after it; the median of the pairs'
        # ratios is robust to load that other processes put on the machine during one pair.
        pair_ratios = [e / b for e, b in zip(endpoint_rates, baseline_rates)]
        ratio = float(np.median(pair_ratios))
        print(f"scoring benchmark: {rows} rows ({args.days} days x {args.rows}, {len(cols)} features, "
              f"{args.rounds} trees), Spark local[*] on {os.cpu_count()} cores")
        print(f"endpoint used     : {endpoint_kind} at {endpoint_url}")
        print(f"endpoint rows/s   : {best_ep:,.0f}  (runs: {', '.join(f'{r:,.0f}' for r in endpoint_rates)})")
        print(f"baseline rows/s   : {best_base:,.0f}  (pandas UDF, same Booster; runs: "
              f"{', '.join(f'{r:,.0f}' for r in baseline_rates)})")
        print(f"ratio endpoint/baseline: {ratio:.2f}  (median of paired runs: "
              f"{', '.join(f'{r:.2f}' for r in pair_ratios)}; best vs best {best_ep / best_base:.2f}; "
              f"target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
        print(f"max |prediction difference| between the two: {max_diff:.2e} over {len(merged)} rows")
        if args.json:
            print(json.dumps({"rows": rows, "endpoint": endpoint_kind, "endpoint_rows_per_s": round(best_ep, 1),
                              "baseline_rows_per_s": round(best_base, 1), "ratio": round(ratio, 3),
                              "pair_ratios": [round(r, 3) for r in pair_ratios],
                              "max_prediction_diff": max_diff}))
        spark.stop()
        return 0
    finally:
        if server is not None:
            server.stop()
        if service_started:
            from smspark_assets.local import process

            process.stop(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
