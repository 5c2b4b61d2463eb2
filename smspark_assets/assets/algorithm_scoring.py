"""Score a held-out sample through an algorithm endpoint and turn the answers into test figures.

The request side is the SageMaker-Spark layer's:
:class:`~smspark_assets.sagemaker.serializers.RecordIOProtobufSerializer` (one Record per row, dense or
sparse), :func:`~smspark_assets.sagemaker.batching.transform` (bodies of at most 5 MiB, answers matched by
position) and :func:`~smspark_assets.sagemaker.deserializers.deserializer_for` (the algorithm's output
columns). The figures are computed from the endpoint's answers only, so they say
what the served model does, not what the training job reported. An endpoint in mode ``none`` is scored
by a batch transform job of its model instead (:func:`score_with_transform_job`), with the same figures.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Mapping

import numpy as np

from smspark_assets.assets.algorithm_catalog import DemoModel
# The platform's one AUC (rank-sum, ties at average ranks), named as the binary scores report it.
from smspark_assets.model_quality import auc as roc_auc
from smspark_assets.sagemaker.batching import BatchStats, transform
from smspark_assets.sagemaker.deserializers import deserializer_for
from smspark_assets.sagemaker.recordio import Sparse
from smspark_assets.sagemaker.serializers import Features, RecordIOProtobufSerializer
from smspark_assets.sagemaker.spark_channels import read_recordio_channel
from smspark_assets.sagemaker.transform import TransformRequest, output_uri_for, run_transform_job


def held_out_sample(channel_uri: str, rows: int, filesystem: Any = None) -> tuple[Features, np.ndarray | None]:
    """The first ``rows`` records of a recordIO channel: features (dense, or CSR when sparse) and labels."""
    decoded = read_recordio_channel(channel_uri, filesystem)
    if "values" not in decoded.features:
        raise ValueError(f"{channel_uri} has no features['values'] tensor; keys: {sorted(decoded.features)}")
    column = decoded.features["values"]
    n = min(rows, decoded.n_records)
    if n == 0:
        raise ValueError(f"{channel_uri} holds no records")
    if column.is_sparse:
        data, indices, indptr, width = column.to_csr()
        stop = int(indptr[n])
        features: Features = Sparse(np.asarray(data[:stop]), np.asarray(indices[:stop]),
                                    np.asarray(indptr[:n + 1]), int(width))
    else:
        features = column.to_dense()[:n]
    labels = decoded.label["values"].scalars()[:n] if "values" in decoded.label else None
    return features, labels


def _dense(features: Features) -> np.ndarray:
    if isinstance(features, Sparse):
        out = np.zeros((len(features.indptr) - 1, features.n_cols))
        rows = np.repeat(np.arange(len(features.indptr) - 1), np.diff(features.indptr))
        out[rows, features.indices] = features.data
        return out
    return np.asarray(features, dtype=np.float64)


def figures_for(model: DemoModel, columns: Mapping[str, np.ndarray], features: Features,
                labels: np.ndarray | None, data: Mapping[str, Any]) -> dict[str, float]:
    """Test figures of one algorithm from its endpoint's output columns (module docstring)."""
    algo, ptype = model.algorithm, model.predictor_type
    if algo == "kmeans":
        dist = columns["distance_to_cluster"]
        clusters = columns["closest_cluster"].astype(np.int64)
        return {"msd": float(np.mean(dist ** 2)), "clusters_used": float(np.unique(clusters).size),
                "largest_cluster_share": float(np.bincount(clusters).max() / clusters.size)}
    if algo == "pca":
        proj = columns["projection"]
        x = _dense(features)
        total = float(x.var(axis=0, ddof=1).sum())
        return {"components": float(proj.shape[1]),
                "variance_captured": (float(proj.var(axis=0, ddof=1).sum() / total) if total > 0
                                      else float("nan"))}
    if algo == "lda":
        mix = columns["topic_mixture"]
        return {"topics": float(mix.shape[1]), "mean_dominant_topic_share": float(mix.max(axis=1).mean()),
                "max_mixture_sum_error": float(np.abs(mix.sum(axis=1) - 1.0).max())}
    if labels is None:
        raise ValueError(f"{model.key}: the held-out sample has no labels to score against")
    score = columns["score"]
    if ptype == "binary_classifier":
        predicted = columns["predicted_label"]
        return {"auc": roc_auc(labels, score), "accuracy": float(np.mean(predicted == labels)),
                "positive_rate_predicted": float(np.mean(predicted))}
    if ptype == "multiclass_classifier":
        predicted = columns["predicted_label"]
        return {"accuracy": float(np.mean(predicted == labels)),
                "majority_share": float(data.get("test_majority_share", float("nan"))),
                "classes": float(score.shape[1])}
    rmse = float(np.sqrt(np.mean((score - labels) ** 2)))
    variance = float(np.var(labels))
    return {"rmse": rmse, "r2": 1.0 - rmse ** 2 / variance if variance > 0 else float("nan")}


def _report(endpoint_name: str, model: DemoModel, columns: Mapping[str, np.ndarray], features: Features,
            labels: np.ndarray | None, data: Mapping[str, Any], rows: int, requests: int, seconds: float
            ) -> dict[str, Any]:
    figures = figures_for(model, columns, features, labels, data)
    figures.update(rows=float(rows), requests=float(requests),
                   rows_per_second=round(rows / seconds, 1) if seconds > 0 else float("nan"))
    shapes = {name: (list(values.shape[1:]) or "scalar") for name, values in columns.items()}
    shown = ", ".join(f"{k}={v:.4g}" for k, v in figures.items()
                      if k not in ("rows", "requests", "rows_per_second"))
    return {"endpoint_name": endpoint_name, "figures": figures, "columns": shapes,
            "summary": f"{rows} rows in {requests} request(s): {shown}"}


def score_endpoint(runtime: Any, endpoint_name: str, model: DemoModel, channel_uri: str, sample_rows: int,
                   max_request_bytes: int, data: Mapping[str, Any], filesystem: Any = None) -> dict[str, Any]:
    """Send the held-out sample to ``endpoint_name``; return figures, output columns and a summary line."""
    features, labels = held_out_sample(channel_uri, sample_rows, filesystem)
    records = RecordIOProtobufSerializer().serialize(features)
    deserializer = deserializer_for(model.algorithm, predictor_type=model.predictor_type)

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        answer = runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType=content_type, Accept=accept,
                                         Body=body)
        return answer["Body"].read()

    stats = BatchStats()
    started = time.perf_counter()
    columns = transform(records, invoke, deserializer, max_bytes=max_request_bytes, stats=stats)
    seconds = time.perf_counter() - started
    return _report(endpoint_name, model, columns, features, labels, data, int(stats.records), stats.requests,
                   seconds)


def score_with_transform_job(sm: Any, store: Any, model: DemoModel, model_name: str, channel_uri: str,
                             sample_rows: int, data: Mapping[str, Any], work_prefix: str,
                             poll_seconds: float = 30.0, instance_type: str = "ml.m5.large",
                             log: Callable[[str], None] = print) -> dict[str, Any]:
    """The same figures as :func:`score_endpoint`, from a batch transform job of ``model_name`` (endpoint
    mode ``none``): the sample is written as one recordIO-protobuf object, SageMaker splits it by record,
    and the ``.out`` object (the recordIO answers of its requests, back to back) is read as one answer.
    """
    features, labels = held_out_sample(channel_uri, sample_rows, store.arrow_filesystem())
    records = RecordIOProtobufSerializer().serialize(features)
    deserializer = deserializer_for(model.algorithm, predictor_type=model.predictor_type)
    body = records.body()
    fingerprint = hashlib.sha256(body).hexdigest()[:16]
    input_uri = f"{work_prefix.rstrip('/')}/input/{fingerprint}/sample.rec"
    output_uri = f"{work_prefix.rstrip('/')}/output/{fingerprint}"
    if not store.exists(input_uri):
        store.write_bytes(input_uri, body)
    request = TransformRequest(
        model_name=model_name, input_uri=input_uri, output_uri=output_uri, content_type=records.content_type,
        input_fingerprint=fingerprint, accept=deserializer.accept, split_type="RecordIO",
        batch_strategy="MultiRecord", assemble_with="None", max_payload_mb=5, instance_type=instance_type,
        tags={"project": "smspark_assets"})
    started = time.perf_counter()
    result = run_transform_job(sm, request, f"algo-{model.key.replace('_', '-')}-scores", poll_seconds, log)
    answer = store.read_bytes(output_uri_for(input_uri, input_uri, output_uri))
    columns = deserializer.deserialize(answer, len(records))
    seconds = time.perf_counter() - started
    report = _report(f"transform job {result.job_name}", model, columns, features, labels, data, len(records),
                     1, seconds)
    report["transform_job"] = result.job_name
    report["adopted"] = result.adopted
    return report
