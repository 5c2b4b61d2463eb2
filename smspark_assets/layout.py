"""Where each stage of the flow keeps its data, as ``s3://`` URIs under one bucket.

::

    s3://<bucket>/raw/credit_applications/dt=YYYY-MM-DD/part-*.csv        landed by upstream systems
    s3://<bucket>/quarantine/credit_applications/dt=.../                   malformed raw rows, kept
    s3://<bucket>/features/credit_applications/dt=.../*.parquet            Spark-prepared features
    s3://<bucket>/channels/credit_default/{train,validation}/              XGBoost training channels (CSV)
    s3://<bucket>/models/credit_default/<job>/output/model.tar.gz           training job output
    s3://<bucket>/scores/credit_applications/dt=.../*.parquet              scored table (catalog: smspark.credit_scores)
    s3://<bucket>/dagster/<asset key>.json|.parquet                        IO-manager objects
"""

from __future__ import annotations

from dataclasses import dataclass

from smspark_assets.environment import default_bucket, s3_uri


@dataclass(frozen=True)
class Layout:
    bucket: str

    @property
    def raw(self) -> str:
        return s3_uri(self.bucket, "raw/credit_applications")

    @property
    def quarantine(self) -> str:
        return s3_uri(self.bucket, "quarantine/credit_applications")

    @property
    def features(self) -> str:
        return s3_uri(self.bucket, "features/credit_applications")

    @property
    def channels(self) -> str:
        return s3_uri(self.bucket, "channels/credit_default")

    @property
    def model_output(self) -> str:
        return s3_uri(self.bucket, "models/credit_default")

    @property
    def scores(self) -> str:
        return s3_uri(self.bucket, "scores/credit_applications")

    @property
    def io_manager_prefix(self) -> str:
        return s3_uri(self.bucket, "dagster")


def layout() -> Layout:
    return Layout(default_bucket())
