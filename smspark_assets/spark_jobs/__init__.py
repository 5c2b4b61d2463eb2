"""The Spark jobs of the flow, each a standalone script run through Dagster Pipes (locally or on EMR).

Each job module has a pure function ``job(spark, **params) -> metadata`` (testable without Dagster)
and a ``main()`` that opens Pipes, reads the extra ``params`` and reports one materialization. The
credit flow's jobs:

* ``prepare_features`` -- raw CSV partitions -> features (Parquet by ``dt``), malformed rows quarantined;
* ``write_channels``   -- features -> ``train``/``validation`` CSV channels for the XGBoost container;
* ``score_endpoint``   -- features -> predictions through a live SageMaker endpoint (Parquet by ``dt``).

Run one as ``python -m smspark_assets.spark_jobs.<job>`` (locally) or as the entry point script of a
spark-submit (EMR). Shared pieces: ``session`` (the SparkSession), ``storage`` (files through
Hadoop's FileSystem), ``pipes_runner`` (the common ``main``), ``endpoint_client`` (CSV requests of at
most 5 MiB) and ``booster_endpoint`` (a Booster-backed test endpoint).
"""
