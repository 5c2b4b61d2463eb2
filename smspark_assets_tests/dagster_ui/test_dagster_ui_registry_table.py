"""The registry's metrics are a catalog table: versions, approval and figures, queried in SQL on the stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_registry_versions_and_their_figures_are_a_table(local_stack: tuple[Path, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = local_stack
    from smspark_assets_tests.stack_access import stack_client, stack_credentials

    creds = stack_credentials(root)
    for name, value in {"SMSPARK_ROOT": str(root), "SMSPARK_ENV": "local", "SMSPARK_BUCKET": "registry-table",
                        "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
                        "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    from smspark_assets.assets.registry_tables import publish_registry_metrics
    from smspark_assets.resources.by_environment import resources_for
    from smspark_assets.sagemaker import registry

    resources = resources_for()
    store, catalog = resources["store"], resources["catalog"]
    sm = stack_client(root, url, "sagemaker")
    stack_client(root, url, "s3").create_bucket(Bucket="registry-table")
    group = "registry-table-test"
    registry.ensure_group(sm, group, "test group")
    figures = {"job-a": {"auc": 0.81, "expected_calibration_error": 0.02},
               "job-b": {"auc": 0.84, "expected_calibration_error": float("nan")}}
    for job, values in figures.items():
        uri = f"s3://registry-table/reports/{job}.json"
        store.write_bytes(uri, json.dumps({"dataset": {"item_count": 10}, "binary_classification_metrics": {
            k: {"value": v, "standard_deviation": "NaN"} for k, v in values.items()}}).encode())
        registry.register_version(
            sm, group, training_job_name=job, image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            model_data_url=f"s3://registry-table/models/{job}/model.tar.gz",
            approval_status=registry.APPROVED if job == "job-a" else registry.PENDING,
            model_metrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}})

    assert publish_registry_metrics(catalog, store, sm, group) == "smspark.model_registry_metrics"
    rows = catalog.query("SELECT model_version, approval_status, training_job, metric, value "
                         f"FROM model_registry_metrics WHERE model_package_group = '{group}' "
                         "ORDER BY model_version, metric")
    got = [tuple(r) for r in rows.itertuples(index=False)]
    # The NaN figure is left out: Athena has no NaN for a DOUBLE column users compare with.
    assert got == [(1, "Approved", "job-a", "auc", 0.81), (1, "Approved", "job-a", "expected_calibration_error", 0.02),
                   (2, "PendingManualApproval", "job-b", "auc", 0.84)]


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_asset_publishes_the_credit_models_versions(local_stack: tuple[Path, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    root, url = local_stack
    from smspark_assets_tests.stack_access import stack_client, stack_credentials

    creds = stack_credentials(root)
    for name, value in {"SMSPARK_ROOT": str(root), "SMSPARK_ENV": "local", "SMSPARK_BUCKET": "registry-asset",
                        "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
                        "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    from smspark_assets.assets.registry_tables import model_registry_metrics
    from smspark_assets.assets.training import MODEL_PACKAGE_GROUP
    from smspark_assets.resources.by_environment import resources_for
    from smspark_assets.sagemaker import registry

    resources = resources_for()
    sm = stack_client(root, url, "sagemaker")
    stack_client(root, url, "s3").create_bucket(Bucket="registry-asset")
    registry.ensure_group(sm, MODEL_PACKAGE_GROUP, "credit model")
    before = len(registry.list_versions(sm, MODEL_PACKAGE_GROUP))
    uri = "s3://registry-asset/reports/job-c.json"
    resources["store"].write_bytes(uri, json.dumps({"binary_classification_metrics": {"auc": {"value": 0.77}}}).encode())
    registry.register_version(sm, MODEL_PACKAGE_GROUP, training_job_name="registry-asset-job-c",
                              image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                              model_data_url="s3://registry-asset/models/c/model.tar.gz", approval_status=registry.APPROVED,
                              model_metrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}})
    result = dg.materialize([model_registry_metrics], resources=resources)
    assert result.success
    metadata = result.asset_materializations_for_node("model_registry_metrics")[0].metadata
    assert metadata["versions"].value[-1] == str(before + 1)
    rows = resources["catalog"].query("SELECT metric, value FROM model_registry_metrics "
                                      "WHERE training_job = 'registry-asset-job-c'")
    assert rows.values.tolist() == [["auc", 0.77]]
