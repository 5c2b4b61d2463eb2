"""smspark_assets: Spark prepares the data, SageMaker trains and serves, Spark scores, as Dagster assets."""
