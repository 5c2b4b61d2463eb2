"""The data of the algorithm demo models: two generated data sets and every model's training channels.

* ``algorithm_interactions``: user-item ratings with a known low-rank truth (Factorization Machines);
* ``algorithm_documents``: bag-of-words documents with known topics (LDA);
* ``algorithm_training_channels``: one Spark job (Dagster Pipes) writes the recordIO-protobuf channels of
  all seven demo models from the credit features and the two generated data sets.
"""


from typing import Any

import dagster as dg
from pydantic import Field

from smspark_assets.assets.algorithm_catalog import GROUP
from smspark_assets.assets.features import credit_features
from smspark_assets.datasets.documents import DocumentsSpec, generate_documents, unigram_pwll
from smspark_assets.datasets.interactions import InteractionsSpec, generate_interactions, to_parquet_bytes
from smspark_assets.environment import default_bucket, s3_uri
from smspark_assets.resources.spark import SparkJobRunner
from smspark_assets.resources.storage import ObjectStoreResource
from smspark_assets.sagemaker.naming import content_hash


def datasets_prefix() -> str:
    return s3_uri(default_bucket(), "datasets")


def channels_prefix() -> str:
    return s3_uri(default_bucket(), "channels/algorithms")


def models_prefix() -> str:
    return s3_uri(default_bucket(), "models/algorithms")


class InteractionsConfig(dg.Config):
    """Size and noise of the generated interactions (defaults: 40,000 ratings of 400 users x 300 items)."""

    users: int = 400
    items: int = 300
    rank: int = Field(default=4, description="Rank of the true user-item interaction.")
    interactions: int = 40_000
    noise_std: float = Field(default=0.4, description="Noise of the ratings: the RMSE no model can beat.")
    seed: int = 11


class DocumentsConfig(dg.Config):
    """Size of the generated corpus (defaults: 2,000 documents of about 80 words, 300-word vocabulary)."""

    vocabulary: int = 300
    topics: int = 5
    documents: int = 2_000
    words_per_doc: int = 80
    alpha: float = Field(default=0.2, description="Dirichlet concentration of the documents' topic mixtures.")
    seed: int = 13


def _spec_or_failure(build: Any, **kwargs: Any) -> Any:
    try:
        return build(**kwargs)
    except ValueError as exc:  # a bad size or rate: say what is allowed, before anything is written
        raise dg.Failure(str(exc)) from exc


@dg.asset(group_name=GROUP, kinds={"python", "parquet", "s3"}, io_manager_key="json_io_manager")
def algorithm_interactions(context: dg.AssetExecutionContext, config: InteractionsConfig,
                           store: ObjectStoreResource) -> dg.Output[dict[str, Any]]:
    """Generated user-item ratings whose truth is biases plus a low-rank interaction (one Parquet file),
    with the noise floor and the best bias-only RMSE that the Factorization Machines gate compares against."""
    spec = _spec_or_failure(InteractionsSpec, users=config.users, items=config.items, rank=config.rank,
                            interactions=config.interactions, noise_std=config.noise_std, seed=config.seed)
    data = generate_interactions(spec)
    version = content_hash(spec.to_dict())
    uri = f"{datasets_prefix()}/interactions/{version}/interactions.parquet"
    if not store.exists(uri):
        store.write_bytes(uri, to_parquet_bytes(data.table))
    test = data.split_mask("test")
    handle = {"uri": uri, "version": version, "spec": spec.to_dict(), "feature_dim": spec.feature_dim,
              "noise_floor_rmse": data.noise_floor_rmse("test"),
              "bias_only_rmse": data.bias_only_rmse("test"),
              "test_rows": int(test.sum()), "train_rows": int((~test).sum())}
    return dg.Output(handle, metadata={**{k: v for k, v in handle.items() if k != "spec"},
                                       "spec": dg.MetadataValue.json(spec.to_dict()),
                                       "uri": dg.MetadataValue.path(uri)})


@dg.asset(group_name=GROUP, kinds={"python", "parquet", "s3"}, io_manager_key="json_io_manager")
def algorithm_documents(context: dg.AssetExecutionContext, config: DocumentsConfig,
                        store: ObjectStoreResource) -> dg.Output[dict[str, Any]]:
    """A generated bag-of-words corpus drawn from LDA's generative model with known topics (one Parquet
    file), with the unigram and true-model per-word log-likelihoods that the LDA gate compares against."""
    spec = _spec_or_failure(DocumentsSpec, vocabulary=config.vocabulary, topics=config.topics,
                            documents=config.documents, words_per_doc=config.words_per_doc,
                            alpha=config.alpha, seed=config.seed)
    data = generate_documents(spec)
    version = content_hash(spec.to_dict())
    uri = f"{datasets_prefix()}/documents/{version}/documents.parquet"
    if not store.exists(uri):
        store.write_bytes(uri, to_parquet_bytes(data.table))
    train, test = data.split_mask("train"), data.split_mask("test")
    handle = {"uri": uri, "version": version, "spec": spec.to_dict(), "vocabulary": spec.vocabulary,
              "unigram_pwll": unigram_pwll(data.counts[train], data.counts[test]),
              "true_pwll": data.true_pwll("test"), "test_documents": int(test.sum()),
              "train_documents": int(train.sum()), "words": int(data.counts.sum())}
    return dg.Output(handle, metadata={**{k: v for k, v in handle.items() if k != "spec"},
                                       "spec": dg.MetadataValue.json(spec.to_dict()),
                                       "uri": dg.MetadataValue.path(uri)})


class AlgorithmChannelsConfig(dg.Config):
    max_credit_rows: int = Field(default=20_000, description="At most this many credit rows (sampled by id "
                                                             "hash) feed the credit demo models.")


def _plain(value: Any) -> Any:
    """Metadata values reported through Pipes arrive wrapped; the handle stores plain JSON."""
    return getattr(value, "value", value)


@dg.asset(deps=[credit_features], group_name=GROUP, kinds={"spark", "s3"}, io_manager_key="json_io_manager")
def algorithm_training_channels(context: dg.AssetExecutionContext, config: AlgorithmChannelsConfig,
                                algorithm_interactions: dict[str, Any], algorithm_documents: dict[str, Any],
                                spark: SparkJobRunner, store: ObjectStoreResource
                                ) -> dg.Output[dict[str, Any]]:
    """The training channels of the seven algorithm demo models, written by one Spark job as recordIO-protobuf
    (the codec's Spark channel writer): standardized credit features for K-means and PCA, credit features
    with three targets for Linear Learner, sparse one-hot interactions for FM and word counts for LDA.
    Each model gets a content fingerprint (its training job name derives from it) and the baselines its
    gate uses."""
    days = sorted(context.instance.get_materialized_partitions(credit_features.key))
    if not days:
        raise dg.Failure("no day of credit_features is materialized yet; materialize some days first")
    out = channels_prefix()
    invocation = spark.run(context, "algorithm_channels", {
        "features_prefix": s3_uri(default_bucket(), "features/credit_applications"),
        "partitions": days,
        "output_prefix": out,
        "interactions_uri": algorithm_interactions["uri"],
        "documents_uri": algorithm_documents["uri"],
        "vocabulary": int(algorithm_documents["vocabulary"]),
        "max_rows": config.max_credit_rows,
    })
    reported = {k: _plain(v) for k, v in (invocation.get_materialize_result().metadata or {}).items()}
    models: dict[str, dict[str, Any]] = reported["models"]
    # Gate baselines that only the generators know (the truth behind the generated data).
    models["fm"].update(noise_floor_rmse=algorithm_interactions["noise_floor_rmse"],
                        bias_only_rmse=algorithm_interactions["bias_only_rmse"])
    models["lda"].update(unigram_pwll=algorithm_documents["unigram_pwll"],
                         true_pwll=algorithm_documents["true_pwll"])
    for name, model in models.items():
        model["fingerprint"] = store.fingerprint(f"{out}/{name}/")[:24]
    handle = {"models": models, "days": days, "content_type": reported.get("content_type"),
              "credit_rows_used": reported.get("credit_rows_used")}
    return dg.Output(handle, metadata={
        "records_by_model": dg.MetadataValue.json(reported.get("records_by_model", {})),
        "credit_rows_used": reported.get("credit_rows_used"),
        "days": len(days), "first_day": days[0], "last_day": days[-1],
        "spark_seconds": reported.get("duration_s"),
        "fingerprints": dg.MetadataValue.json({k: m["fingerprint"] for k, m in models.items()}),
    })
