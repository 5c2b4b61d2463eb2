"""Captured traffic back into features: files written by the stack's data-capture writer (SageMaker's
format, CSV / JSON / BASE64 encodings) decode to the rows and scores that were sent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from smspark_assets.local.deployment_capture import DataCapture
from smspark_assets.monitoring.capture import decode_capture, hour_prefixes
from smspark_assets.sagemaker.serializers import CSVSerializer

COLUMNS = ["age", "annual_income", "credit_score"]


def _capture(tmp_path: Path, header: dict | None) -> DataCapture:
    (tmp_path / "s3" / "bkt").mkdir(parents=True, exist_ok=True)
    config = {"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bkt/capture",
              "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]}
    if header:
        config["CaptureContentTypeHeader"] = header
    return DataCapture("credit-default", config, tmp_path / "s3", tmp_path / "staging")


def _files(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp_path / "s3" / "bkt" / "capture").rglob("*.jsonl"))]


def test_csv_and_json_requests_decode_to_the_rows_sent(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = np.column_stack([rng.integers(18, 80, 250), rng.lognormal(11, 0.5, 250).round(-2),
                            rng.integers(300, 850, 250)]).astype(np.float64)
    capture = _capture(tmp_path, {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]})
    table = pa.table({c: rows[:, i] for i, c in enumerate(COLUMNS)})
    records = CSVSerializer().serialize_table(table, COLUMNS)  # the scoring job's wire format
    for start in range(0, 200, 50):  # four CSV requests of 50 rows
        body = records.body(start, start + 50)
        answer = "\n".join(f"{v:.6f}" for v in rows[start:start + 50, 2] / 1000).encode()
        capture.record("AllTraffic", None, "text/csv", bytes(body), "text/csv; charset=utf-8", answer)
    instances = {"instances": [{"features": r.tolist()} for r in rows[200:]]}
    scores = {"predictions": [{"score": float(s)} for s in rows[200:, 2] / 1000]}
    capture.record("AllTraffic", "req-1", "application/json", json.dumps(instances).encode(), "application/json",
                   json.dumps(scores).encode())
    capture.flush(force=True)

    traffic = decode_capture(_files(tmp_path), COLUMNS)
    assert traffic.invocations == 5 and traffic.skipped == {}
    assert traffic.features.column_names == COLUMNS and traffic.features.num_rows == 250
    decoded = np.column_stack([traffic.features.column(c).to_numpy() for c in COLUMNS])
    np.testing.assert_allclose(decoded, rows.astype(np.float32), rtol=1e-7)  # CSV carries float32
    np.testing.assert_allclose(traffic.scores, rows[:, 2] / 1000, atol=1e-6)


def test_base64_bodies_unknown_types_and_a_wrong_width(tmp_path: Path) -> None:
    capture = _capture(tmp_path, None)  # no content-type header: SageMaker captures BASE64
    capture.record("AllTraffic", None, "text/csv", b"30,50000,700\n41,62000,655", "text/csv", b"0.1\n0.2")
    capture.record("AllTraffic", None, "application/x-recordio-protobuf", b"\x0a\x0b", "text/csv", b"0.3")
    capture.flush(force=True)
    files = _files(tmp_path)
    assert json.loads(files[0].splitlines()[0])["captureData"]["endpointInput"]["encoding"] == "BASE64"
    traffic = decode_capture(files, COLUMNS)
    assert traffic.features.to_pydict() == {"age": [30.0, 41.0], "annual_income": [50000.0, 62000.0],
                                            "credit_score": [700.0, 655.0]}
    assert traffic.skipped == {"input application/x-recordio-protobuf": 1}
    with pytest.raises(ValueError, match="3 values per row; the model has 2"):
        decode_capture(files, COLUMNS[:2])


def test_hour_prefixes_follow_the_capture_layout() -> None:
    end = dt.datetime(2026, 11, 2, 1, 30, tzinfo=dt.timezone.utc)
    assert hour_prefixes("s3://b/capture/", "credit-default", "AllTraffic", end, 3) == [
        "s3://b/capture/credit-default/AllTraffic/2026/11/01/23/",
        "s3://b/capture/credit-default/AllTraffic/2026/11/02/00/",
        "s3://b/capture/credit-default/AllTraffic/2026/11/02/01/"]
    with pytest.raises(ValueError, match="at least 1"):
        hour_prefixes("s3://b/c", "e", "v", end, 0)
