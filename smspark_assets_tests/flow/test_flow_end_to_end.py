"""The whole graph, for real, on two small days: local Spark, real training, a real HTTP endpoint,
DuckDB over the scored Parquet, DynamoDB in the local service."""

import datetime as dt

import boto3

from smspark_assets_tests.stack_access import stack_credentials
import dagster as dg
import pytest

from smspark_assets.datasets.credit import expected_malformed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]  # the first test pays for the shared demo run



@pytest.fixture
def flow(demo_flow: dict) -> dict:
    return demo_flow


def _client(flow: dict, service: str):
    return boto3.client(service, endpoint_url=flow["url"], region_name="us-east-1", **stack_credentials(flow["root"]))


def test_every_well_formed_raw_row_is_scored_and_served(flow: dict) -> None:
    md = flow["report"].metadata
    days, rows, start = flow["days"], flow["rows"], flow["start"]
    raw_rows = days * rows
    malformed = sum(expected_malformed(start + dt.timedelta(days=d), rows) for d in range(days))
    assert md["credit_features"]["rows_read"] == raw_rows
    assert md["credit_features"]["malformed_rows"] == malformed  # counted and quarantined, never silent
    scored = md["credit_scores"]["rows_scored"]
    assert scored == raw_rows - malformed
    dynamo = _client(flow, "dynamodb")
    items = dynamo.scan(TableName="credit_scores_latest", Select="COUNT")
    count = items["Count"]
    while "LastEvaluatedKey" in items:
        items = dynamo.scan(TableName="credit_scores_latest", Select="COUNT",
                            ExclusiveStartKey=items["LastEvaluatedKey"])
        count += items["Count"]
    assert count == scored == md["credit_scores_dynamodb"]["items_written"]
    assert all(flow["report"].checks.values()), flow["report"].checks


def test_model_passes_its_gate_and_the_endpoint_serves(flow: dict) -> None:
    md = flow["report"].metadata
    assert md["credit_default_model"]["validation_auc"] > 0.7
    assert flow["report"].checks["credit_default_model:validation_auc_gate"] is True
    sm = _client(flow, "sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="credit-default")
    assert endpoint["EndpointStatus"] == "InService"
    columns = md["credit_training_channels"]["feature_columns"]
    body = ",".join(["0"] * len(columns)) + "\n" + ",".join(["1"] * len(columns)) + "\n"
    answer = _client(flow, "sagemaker-runtime").invoke_endpoint(
        EndpointName="credit-default", ContentType="text/csv", Body=body.encode())
    predictions = [float(x) for x in answer["Body"].read().decode().split()]
    assert len(predictions) == 2 and all(0.0 <= p <= 1.0 for p in predictions)


def test_custom_script_mode_model_is_gated_and_served(flow: dict) -> None:
    md = flow["report"].metadata
    assert md["credit_default_sklearn_model"]["validation_auc"] > 0.7  # parsed from the log by MetricDefinitions
    assert flow["report"].checks["credit_default_sklearn_model:sklearn_validation_auc_gate"] is True
    columns = md["credit_training_channels"]["feature_columns"]
    body = "\n".join([",".join(["0"] * len(columns)), ",".join(["1"] * len(columns))]) + "\n"
    answer = _client(flow, "sagemaker-runtime").invoke_endpoint(
        EndpointName="credit-default-sklearn", ContentType="text/csv", Accept="text/csv", Body=body.encode())
    predictions = [float(x) for x in answer["Body"].read().decode().split()]
    assert len(predictions) == 2 and all(0.0 <= p <= 1.0 for p in predictions)


def test_sql_answers_over_the_scored_table(flow: dict) -> None:
    from smspark_assets.resources.by_environment import resources_for

    result = flow["report"].query
    assert result["dt"].tolist() == ["2026-11-01", "2026-11-02"]
    assert int(result["applications"].sum()) == flow["report"].metadata["credit_scores"]["rows_scored"]
    perf = resources_for()["catalog"].query(
        "SELECT COUNT(*) AS n FROM smspark.credit_scores WHERE split = 'test' AND prediction BETWEEN 0 AND 1")
    assert int(perf["n"].iloc[0]) > 0
    assert flow["report"].lookup["application_id"].startswith("CA-20261101-")


def test_a_second_materialization_starts_no_new_training_job(flow: dict) -> None:
    from smspark_assets.assets.serving import credit_default_endpoint
    from smspark_assets.assets.training import credit_default_model, credit_training_channels
    from smspark_assets.definitions import ASSETS
    from smspark_assets.resources.by_environment import resources_for

    sm = _client(flow, "sagemaker")
    before = sm.list_training_jobs()["TrainingJobSummaries"]
    result = dg.materialize(ASSETS, selection=[credit_training_channels, credit_default_model,
                                               credit_default_endpoint],
                            instance=flow["instance"], resources=resources_for())
    assert result.success
    model_md = result.asset_materializations_for_node("credit_default_model")[0].metadata
    assert model_md["adopted_existing_job"].value is True
    assert sm.list_training_jobs()["TrainingJobSummaries"] == before
    endpoint_md = result.asset_materializations_for_node("credit_default_endpoint")[0].metadata
    assert endpoint_md["action"].value == "unchanged"


def test_bad_hyperparameters_are_refused_before_any_job(flow: dict) -> None:
    from smspark_assets.assets.training import DEFAULT_HYPERPARAMETERS, credit_default_model
    from smspark_assets.definitions import ASSETS
    from smspark_assets.resources.by_environment import resources_for

    sm = _client(flow, "sagemaker")
    before = len(sm.list_training_jobs()["TrainingJobSummaries"])
    bad = {**DEFAULT_HYPERPARAMETERS, "max_depth": "-1"}
    result = dg.materialize(ASSETS, selection=[credit_default_model], instance=flow["instance"],
                            resources=resources_for(), raise_on_error=False,
                            run_config={"ops": {"credit_default_model": {"config": {"hyperparameters": bad}}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "max_depth" in str(failure.event_specific_data.error.message)
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == before
