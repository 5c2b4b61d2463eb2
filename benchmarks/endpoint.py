"""Endpoint benchmark: the local service's real-time inference path against in-process prediction.

Trains an XGBoost model through the local service, deploys it, then measures in one run:

* latency of 1-row ``invoke_endpoint`` calls (plain boto3, ``endpoint_url`` set): p50 / p99, beside the
  same request without boto3 (raw keep-alive HTTP) and the model alone in this process, which shows what
  the service itself adds;
* rows/s of 5 MiB ``text/csv`` invocations, against the same model predicting in this process
  (the algorithm's own ``Predictor.invoke`` on the same bytes, and ``Booster.predict`` on a ready array).

* data capture (issue 12): the same model behind a second endpoint whose config captures 100 % of
  requests and responses; throughput of 1-row and 5 MiB invocations with capture over without it,
  measured in alternating rounds (the median ratio), and the capture files checked for completeness.

Targets (issue 4): p50 < 5 ms; big requests at >= 0.7 of in-process throughput. Issue 12: capture at 100 %
costs at most 10 % of throughput (ratio >= 0.9); the script exits non-zero on a miss.

    .venv/bin/python benchmarks/endpoint.py [--rows 60000] [--features 20] [--requests 12]
                                            [--latency-calls 1000] [--capture-only]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PAYLOAD = 5 * 1024 * 1024


def csv_bytes(x: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, x, delimiter=",", fmt="%.6g")
    return buffer.getvalue().encode()


def body_of_at_most(x: np.ndarray, limit: int) -> tuple[bytes, int]:
    """The largest prefix of rows of ``x`` whose CSV fits in ``limit`` bytes."""
    data = csv_bytes(x)
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    rows = int(np.searchsorted(ends, limit, side="right"))
    return data[: int(ends[rows - 1])], rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60000, help="training rows")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--num-round", type=int, default=100)
    parser.add_argument("--requests", type=int, default=12, help="5 MiB requests per side")
    parser.add_argument("--latency-calls", type=int, default=1000)
    parser.add_argument("--capture-only", action="store_true", help="only the data capture case")
    parser.add_argument("--capture-rounds", type=int, default=5)
    args = parser.parse_args(argv)

    import boto3

    from smspark_assets.local import process
    from smspark_assets.local.credentials import load_or_create
    from smspark_assets.local.layout import LocalLayout
    from smspark_assets.local.algorithms import get_algorithm

    root = Path(tempfile.mkdtemp(prefix="smspark-bench-"))
    os.environ.update(
        SMSPARK_ROOT=str(root),
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
    )
    rng = np.random.default_rng(7)
    x = rng.normal(size=(args.rows, args.features))
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + rng.normal(size=args.rows) > 0).astype(int)
    train_dir = root / "s3" / "bench" / "train"
    train_dir.mkdir(parents=True)
    (train_dir / "part-0.csv").write_bytes(csv_bytes(np.column_stack([y, x])))

    info = process.start(root)
    # The stack verifies SigV4 with its root's generated credentials; boto3 reads them from the environment.
    creds = load_or_create(LocalLayout.for_root(root))
    os.environ.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
    try:
        sm = boto3.client("sagemaker", endpoint_url=info.url)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=info.url)
        started = time.perf_counter()
        sm.create_training_job(
            TrainingJobName="bench",
            RoleArn="arn:aws:iam::123456789012:role/local",
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            HyperParameters={
                "objective": "binary:logistic",
                "num_round": str(args.num_round),
                "max_depth": "6",
            },
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bench/train"}},
                }
            ],
            OutputDataConfig={"S3OutputPath": "s3://bench/models"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        )
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="bench", WaiterConfig={"Delay": 0.5, "MaxAttempts": 1200}
        )
        job = sm.describe_training_job(TrainingJobName="bench")
        if job["TrainingJobStatus"] != "Completed":
            raise SystemExit(f"training failed: {job.get('FailureReason')}")
        train_seconds = time.perf_counter() - started
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        sm.create_model(
            ModelName="bench",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/local",
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": artifact},
        )
        sm.create_endpoint_config(
            EndpointConfigName="bench",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "bench",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        started = time.perf_counter()
        sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="bench", WaiterConfig={"Delay": 0.1, "MaxAttempts": 1200}
        )
        deploy_seconds = time.perf_counter() - started
        if args.capture_only:
            capture = capture_case(sm, runtime, root, x, args)
            print(json.dumps({"capture": capture}, indent=2))
            return _capture_verdict(capture)

        # 1-row latency through boto3 -> service -> model server
        one_row = csv_bytes(x[:1])
        for _ in range(50):
            runtime.invoke_endpoint(EndpointName="bench", ContentType="text/csv", Body=one_row)["Body"].read()
        latencies = []
        for i in range(args.latency_calls):
            row = csv_bytes(x[i % len(x):i % len(x) + 1])
            t = time.perf_counter()
            runtime.invoke_endpoint(EndpointName="bench", ContentType="text/csv", Body=row)["Body"].read()
            latencies.append(time.perf_counter() - t)
        lat = np.asarray(latencies) * 1000

        # Where 1-row time goes: the same request without boto3 (raw keep-alive HTTP to the service), and the
        # model alone in this process.
        import http.client

        raw = http.client.HTTPConnection("127.0.0.1", info.port)
        raw_latencies = []
        for i in range(args.latency_calls):
            row = csv_bytes(x[i % len(x):i % len(x) + 1])
            t = time.perf_counter()
            raw.request("POST", "/endpoints/bench/invocations", body=row,
                        headers={"Content-Type": "text/csv"})
            raw.getresponse().read()
            raw_latencies.append(time.perf_counter() - t)
        raw.close()

        # 5 MiB requests: endpoint vs in-process with the same model
        body, rows = body_of_at_most(np.tile(x, (max(1, 80000 // args.rows + 1), 1))[:80000], PAYLOAD)
        model_dir = root / "bench-model"
        with tarfile.open(root / "s3" / "bench" / "models" / "bench" / "output" / "model.tar.gz") as tar:
            tar.extractall(model_dir, filter="data")
        predictor = get_algorithm("xgboost").load(model_dir)
        model_latencies = []
        for i in range(args.latency_calls):
            row = csv_bytes(x[i % len(x):i % len(x) + 1])
            t = time.perf_counter()
            predictor.invoke(row, "text/csv", None)
            model_latencies.append(time.perf_counter() - t)
        expected, _ = predictor.invoke(body, "text/csv", None)
        answer = runtime.invoke_endpoint(EndpointName="bench", ContentType="text/csv", Body=body)[
            "Body"
        ].read()
        assert answer == expected, "the endpoint and the in-process predictor disagree"

        def timed(fn) -> float:
            fn()  # warm-up
            t = time.perf_counter()
            for _ in range(args.requests):
                fn()
            return args.requests * rows / (time.perf_counter() - t)

        endpoint_rps = timed(
            lambda: runtime.invoke_endpoint(EndpointName="bench", ContentType="text/csv", Body=body)[
                "Body"
            ].read()
        )
        inprocess_rps = timed(lambda: predictor.invoke(body, "text/csv", None))
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray((model_dir / "xgboost-model").read_bytes()))
        array = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)
        array_rps = timed(lambda: booster.predict(xgb.DMatrix(array)))

        result = {
            "train_seconds": round(train_seconds, 2),
            "deploy_seconds": round(deploy_seconds, 2),
            "latency_1_row_ms": {
                "p50": round(float(np.percentile(lat, 50)), 3),
                "p99": round(float(np.percentile(lat, 99)), 3),
                "mean": round(float(statistics.fmean(lat)), 3),
                "calls": args.latency_calls,
                "p50_without_boto3": round(float(np.percentile(raw_latencies, 50)) * 1000, 3),
                "p50_model_in_process": round(float(np.percentile(model_latencies, 50)) * 1000, 3),
            },
            "big_request": {
                "bytes": len(body),
                "rows": rows,
                "requests": args.requests,
                "endpoint_rows_per_s": round(endpoint_rps),
                "in_process_rows_per_s": round(inprocess_rps),
                "booster_on_array_rows_per_s": round(array_rps),
                "ratio_vs_in_process": round(endpoint_rps / inprocess_rps, 3),
                "ratio_vs_booster_on_array": round(endpoint_rps / array_rps, 3),
            },
        }
        result["capture"] = capture_case(sm, runtime, root, x, args)
        print(json.dumps(result, indent=2))
        print(
            f"1-row p50 {result['latency_1_row_ms']['p50']} ms (target < 5), "
            f"p99 {result['latency_1_row_ms']['p99']} ms; 5 MiB requests: endpoint/in-process = "
            f"{result['big_request']['ratio_vs_in_process']} (target >= 0.7)"
        )
        return _capture_verdict(result["capture"])
    finally:
        process.stop(root)


def capture_case(sm, runtime, root: Path, x: np.ndarray, args: argparse.Namespace) -> dict:
    """Throughput with 100 % data capture over without it, same model, alternating rounds."""
    sm.create_endpoint_config(
        EndpointConfigName="bench-capture",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1,
                             "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": "s3://bench/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}},
    )
    sm.create_endpoint(EndpointName="bench-capture", EndpointConfigName="bench-capture")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="bench-capture", WaiterConfig={"Delay": 0.1, "MaxAttempts": 1200}
    )
    rows = [csv_bytes(x[i:i + 1]) for i in range(200)]
    big, big_rows = body_of_at_most(np.tile(x, (max(1, 80000 // len(x) + 1), 1))[:80000], PAYLOAD)
    calls = {"plain": 0, "captured": 0}

    def small_round(endpoint: str) -> float:
        started = time.perf_counter()
        for body in rows:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read()
        calls["captured" if endpoint == "bench-capture" else "plain"] += len(rows)
        return len(rows) / (time.perf_counter() - started)

    def big_round(endpoint: str) -> float:
        started = time.perf_counter()
        for _ in range(2):
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=big)["Body"].read()
        calls["captured" if endpoint == "bench-capture" else "plain"] += 2
        return 2 * big_rows / (time.perf_counter() - started)

    out = {}
    for name, one_round in (("one_row_requests_per_s", small_round), ("big_request_rows_per_s", big_round)):
        one_round("bench"), one_round("bench-capture")  # warm-up
        ratios, plain, captured = [], [], []
        for i in range(args.capture_rounds):
            # alternate which side goes first: drift of a shared machine hits both sides alike
            order = ("bench", "bench-capture") if i % 2 == 0 else ("bench-capture", "bench")
            speeds = {endpoint: one_round(endpoint) for endpoint in order}
            plain.append(speeds["bench"])
            captured.append(speeds["bench-capture"])
            ratios.append(speeds["bench-capture"] / speeds["bench"])
        out[name] = {"plain": round(statistics.median(plain), 1), "captured": round(statistics.median(captured), 1),
                     "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}
    # every captured request was delivered once the deployment stops (delete flushes the buffer)
    sm.delete_endpoint(EndpointName="bench-capture")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="bench-capture", WaiterConfig={"Delay": 0.2,
                                                                                     "MaxAttempts": 600})
    files = list((root / "s3" / "bench" / "capture").rglob("*.jsonl"))
    lines = sum(sum(1 for _ in open(f, "rb")) for f in files)
    out["captured_records"] = lines
    out["captured_invocations"] = calls["captured"]
    out["capture_files"] = len(files)
    return out


def _capture_verdict(capture: dict) -> int:
    small, big = capture["one_row_requests_per_s"]["ratio"], capture["big_request_rows_per_s"]["ratio"]
    complete = capture["captured_records"] == capture["captured_invocations"]
    print(f"data capture at 100 %: throughput ratio captured/plain = {small} (1-row requests), {big} (5 MiB "
          f"requests) (target >= 0.9); {capture['captured_records']} of {capture['captured_invocations']} "
          "invocations captured")
    return 0 if small >= 0.9 and big >= 0.9 and complete else 1


if __name__ == "__main__":
    sys.exit(main())
