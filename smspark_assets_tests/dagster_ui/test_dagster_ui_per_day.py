"""What the Dagster UI shows after a two-day run of the daily job, read through Dagster's GraphQL API.

A real run of `daily_scoring_job` over a range of two days (one Spark application per asset, as a
backfill runs) on the embedded stack: Spark prepares the features, a real endpoint scores them, the
DynamoDB items are written. The UI must then show each day's own figures (not the run's totals), the
row check once per day, the partitions starting where the data starts, and every output as a table.

The endpoint is deployed by the test (an XGBoost model fitted here on the features, served by the
stack's model server) rather than by the training assets, which are tested elsewhere; its handle is
stored where the endpoint asset's IO manager keeps it, so the job loads it as in production.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest

DAYS = ["2026-11-01", "2026-11-02"]
ROWS = {"2026-11-01": 300, "2026-11-02": 240}  # different, so a day showing the other's figures fails
SEED = 11
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}


@pytest.fixture(scope="module")
def ran(local_stack: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    """Features, then (after the endpoint exists) scores and DynamoDB items, as two runs of the job."""
    root, url = local_stack
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_ROOT", str(root))
        mp.setenv("SMSPARK_ENV", "local")
        mp.setenv("SMSPARK_BUCKET", "dagster-ui")
        mp.delenv("SMSPARK_PARTITIONS_START", raising=False)
        from smspark_assets_tests.stack_access import sign_as_stack, stack_client

        sign_as_stack(mp, root)
        from smspark_assets.assets.raw import RAW_APPLICATIONS
        from smspark_assets.datasets.credit import write_day
        from smspark_assets.definitions import build_definitions
        from smspark_assets.layout import layout

        defs = build_definitions()
        store = defs.resources["store"]
        s3 = stack_client(root, url, "s3")
        s3.create_bucket(Bucket=layout().bucket)
        for day in DAYS:
            write_day(store, f"s3://{layout().bucket}", dt.date.fromisoformat(day), ROWS[day], SEED)
        job = defs.resolve_job_def("daily_scoring_job")
        with dg.instance_for_test() as instance:
            for day in DAYS:  # the raw asset is external: record what landed, as the sensor does
                instance.report_runless_asset_event(dg.AssetMaterialization(RAW_APPLICATIONS, partition=day))
            features = job.execute_in_process(instance=instance, tags=RANGE,
                                              asset_selection=[dg.AssetKey("credit_features")])
            assert features.success
            handle = _deploy_endpoint(store, stack_client(root, url, "sagemaker"), layout())
            store.write_bytes(f"{layout().io_manager_prefix}/credit_default_endpoint.json",
                              json.dumps(handle).encode())
            scores = job.execute_in_process(instance=instance, tags=RANGE, asset_selection=[
                dg.AssetKey("credit_scores"), dg.AssetKey("credit_scores_dynamodb")])
            assert scores.success
            yield {"instance": instance, "defs": defs, "store": store, "layout": layout(),
                   "features_run": features.run_id, "scores_run": scores.run_id}


def _deploy_endpoint(store: Any, sm: Any, paths: Any) -> dict[str, Any]:
    """An XGBoost model fitted on the features' train split, served by an endpoint of the stack."""
    import xgboost as xgb

    from smspark_assets_tests.local.local_service_helpers import deploy

    columns = json.loads(store.read_bytes(f"{paths.features}/_feature_columns.json"))["feature_columns"]
    table = store.parquet_dataset(paths.features).to_table(columns=[*columns, "defaulted_12m"])
    x = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in columns]).astype(float)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(x, label=table.column("defaulted_12m").to_numpy()), num_boost_round=5)
    model_file = io.BytesIO(booster.save_raw("ubj"))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(model_file.getvalue())
        tar.addfile(info, model_file)
    artifact = f"s3://{paths.bucket}/models/dagster-ui/model.tar.gz"
    store.write_bytes(artifact, archive.getvalue())
    deploy(sm, "dagster-ui-scores", artifact)
    return {"endpoint_name": "dagster-ui-scores", "model_name": "dagster-ui-scores", "feature_columns": columns}


@pytest.fixture(scope="module")
def graphql(ran: dict[str, Any]) -> Iterator[Any]:
    """A GraphQL context over the code location `smspark_assets.definitions` and the run's instance."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster_graphql.test.utils import execute_dagster_graphql

    origin = LoadableTargetOrigin(module_name="smspark_assets.definitions",
                                  working_directory=str(Path(__file__).resolve().parents[2]))
    with in_process_test_workspace(ran["instance"], origin) as context:
        yield lambda query, variables=None: execute_dagster_graphql(context, query, variables).data


MATERIALIZATIONS = """
query ($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId
        metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } }
      }
    }
  }
}"""

CHECKS = """
query ($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 10) {
    runId status partition
    evaluation { partition success metadataEntries { label ... on IntMetadataEntry { intValue } } }
  }
}"""

NODE = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionKeys jobNames
      owners { ... on TeamAssetOwner { team } }
      tags { key value }
      automationCondition { label }
      metadataEntries { label }
    }
  }
}"""


def _by_partition(graphql: Any, asset: str, run_id: str) -> dict[str, dict[str, Any]]:
    events = graphql(MATERIALIZATIONS, {"path": [asset], "partitions": DAYS})["assetOrError"]["assetMaterializations"]
    return {e["partition"]: {m["label"]: m.get("intValue", m.get("text")) for m in e["metadataEntries"]}
            for e in events if e["runId"] == run_id}


def _expected_per_day(ran: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(feature rows, raw data rows) of each day, counted from the files (not from the run's metadata)."""
    store, paths = ran["store"], ran["layout"]
    out = {}
    for day in DAYS:
        features = store.parquet_dataset(f"{paths.features}/dt={day}").count_rows()
        raw = sum(len(store.read_bytes(o.uri).decode().splitlines()) - 1  # minus the header line
                  for o in store.list_objects(f"{paths.raw}/dt={day}/") if o.uri.endswith(".csv"))
        out[day] = (features, raw)
    return out


@pytest.mark.integration
@pytest.mark.timeout(480)  # runs the module's fixture: two Spark jobs and an endpoint (~3 min on a loaded machine)
def test_each_day_shows_its_own_figures(ran: dict[str, Any], graphql: Any) -> None:
    expected = _expected_per_day(ran)
    assert expected[DAYS[0]][0] != expected[DAYS[1]][0], "the two days must differ for the test to mean anything"
    features = _by_partition(graphql, "credit_features", ran["features_run"])
    scores = _by_partition(graphql, "credit_scores", ran["scores_run"])
    items = _by_partition(graphql, "credit_scores_dynamodb", ran["scores_run"])
    assert sorted(features) == sorted(scores) == sorted(items) == DAYS
    for day in DAYS:
        feature_rows, raw_rows = expected[day]
        assert features[day]["rows_written"] == features[day]["dagster/row_count"] == feature_rows
        assert features[day]["rows_read"] == raw_rows
        assert scores[day]["rows_scored"] == scores[day]["dagster/row_count"] == feature_rows
        assert items[day]["scored_rows"] == items[day]["items_written"] == feature_rows
        # The run's totals are there too, under their own name, on every day.
        assert scores[day]["run_rows_scored"] == sum(f for f, _ in expected.values())
        assert features[day]["run_partitions"] == f"{DAYS[0]}..{DAYS[-1]} (2 days)"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_row_check_is_evaluated_once_per_day(ran: dict[str, Any], graphql: Any) -> None:
    expected = _expected_per_day(ran)
    executions = [e for e in graphql(CHECKS, {"path": ["credit_scores"], "name": "every_feature_row_scored"})
                  ["assetCheckExecutions"] if e["runId"] == ran["scores_run"]]
    assert sorted(e["partition"] for e in executions) == DAYS
    for execution in executions:
        evaluation = execution["evaluation"]
        assert execution["status"] == "SUCCEEDED" and evaluation["success"]
        figures = {m["label"]: m["intValue"] for m in evaluation["metadataEntries"]}
        assert figures["feature_rows"] == figures["scored_rows"] == expected[evaluation["partition"]][0]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_partitions_start_where_the_data_starts_and_assets_say_who_owns_them(graphql: Any) -> None:
    node = graphql(NODE, {"path": ["credit_scores"]})["assetNodeOrError"]
    assert node["partitionKeys"][0] == DAYS[0]  # the demo's first day, not a month before it
    assert "daily_scoring_job" in node["jobNames"]
    assert [o["team"] for o in node["owners"]] == ["ml-platform"]
    assert {t["key"]: t["value"] for t in node["tags"]}.items() >= {"domain": "credit", "tier": "1"}.items()
    assert node["automationCondition"]["label"] == "eager"
    assert "dagster/code_references" in {m["label"] for m in node["metadataEntries"]}


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_outputs_are_tables_to_join(ran: dict[str, Any]) -> None:
    catalog = ran["defs"].resources["catalog"]
    expected = _expected_per_day(ran)
    joined = catalog.query(
        "SELECT f.dt, COUNT(*) AS n, COUNT(s.prediction) AS scored FROM credit_features f "
        "LEFT JOIN credit_scores s ON s.application_id = f.application_id AND s.dt = f.dt GROUP BY f.dt ORDER BY f.dt")
    assert joined["dt"].tolist() == DAYS
    assert joined["n"].tolist() == joined["scored"].tolist() == [expected[d][0] for d in DAYS]
    # Rows the feature job refused: every raw row is either a feature row or in the quarantine table.
    quarantined = catalog.query("SELECT dt, COUNT(*) AS n FROM credit_applications_quarantine GROUP BY dt ORDER BY dt")
    got = dict(zip(quarantined["dt"], quarantined["n"]))
    assert {d: got.get(d, 0) for d in DAYS} == {d: raw - rows for d, (rows, raw) in expected.items()}
    assert int(catalog.query("SELECT COUNT(*) AS n FROM credit_scores_dynamodb_quarantine")["n"].iloc[0]) == 0
