"""Endpoint mode ``none``: the daily credit scores come from a batch transform job of the model.

On the embedded stack, a real XGBoost model (a ``model.tar.gz`` made here with the xgboost library, served
by the stack's XGBoost container) scores a day of feature Parquet laid out as the feature job writes it.
The predictions must equal the xgboost library's own on the same rows (computed here, independently), the
table must have the Spark scoring job's columns and types, a re-run adopts the completed job, and an
answer object that lost a line fails naming that object while the day keeps its previous scores.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smspark_assets.assets import batch_scoring
from smspark_assets.assets.batch_scoring import score_days_with_transform_jobs, work_prefix
from smspark_assets_tests.stack_access import stack_client, stack_credentials

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BUCKET = "batch-scores"
DAY = "2026-11-03"
FEATURES = [f"f{i}" for i in range(5)]
ROWS = 700
ROWS_PER_OBJECT = 250  # three input objects: 250 + 250 + 200 rows
MODEL = "credit-xgb-batch"


def _features_day(rng: np.random.Generator) -> pa.Table:
    """A day of features in the feature job's layout: id, date, split, label, then the feature columns."""
    x = rng.normal(size=(ROWS, len(FEATURES)))
    label = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, ROWS) > 0).astype(np.int32)
    ids = rng.permutation(np.arange(10_000, 10_000 + ROWS)).astype(np.int64)  # not in id order on purpose
    return pa.table({
        "application_id": ids,
        "application_date": pa.array([dt.date(2026, 11, 3)] * ROWS, pa.date32()),
        "split": pa.array(np.where(ids % 7 == 0, "test", "train")),
        "defaulted_12m": label,
        **{name: x[:, i] for i, name in enumerate(FEATURES)},
    })


@pytest.fixture(scope="module")
def batch_setup(local_stack: tuple[Path, str]) -> Iterator[dict[str, Any]]:
    import xgboost as xgb

    from smspark_assets.resources.storage import S3ObjectStoreResource
    from smspark_assets.sagemaker.images import image_uri

    root, url = local_stack
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMSPARK_BUCKET", BUCKET)  # the layout's bucket: features, scores, transform work
        mp.setenv("SMSPARK_ROOT", str(root))
        mp.setenv("SMSPARK_ENV", "local")
        for name, value in stack_credentials(root).items():  # what the definitions' resources sign with
            mp.setenv(name.upper(), value)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_SECURITY_TOKEN", raising=False)
        store = S3ObjectStoreResource(local_stack_root=str(root))
        s3 = store.client("s3")
        if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=BUCKET)
        rng = np.random.default_rng(12)
        table = _features_day(rng)
        features_prefix = f"s3://{BUCKET}/features/credit_applications"
        # Two files, as Spark writes a day: the row order is file order, then row order.
        for i, part in enumerate((table.slice(0, 400), table.slice(400))):
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink)
            store.write_bytes(f"{features_prefix}/dt={DAY}/part-0000{i}.snappy.parquet", sink.getvalue().to_pybytes())
        x = np.column_stack([table.column(c).to_numpy() for c in FEATURES])
        booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 1},
                            xgb.DMatrix(x, label=table.column("defaulted_12m").to_numpy()), 20)
        model_bytes = bytes(booster.save_raw(raw_format="ubj"))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # as the XGBoost container >= 1.3 writes it
            info = tarfile.TarInfo("xgboost-model")
            info.size = len(model_bytes)
            tar.addfile(info, io.BytesIO(model_bytes))
        store.write_bytes(f"s3://{BUCKET}/models/{MODEL}/model.tar.gz", buf.getvalue())
        sm = stack_client(root, url, "sagemaker")
        sm.create_model(ModelName=MODEL, ExecutionRoleArn="arn:aws:iam::000000000000:role/local",
                        PrimaryContainer={"Image": image_uri("xgboost", "us-east-1"),
                                          "ModelDataUrl": f"s3://{BUCKET}/models/{MODEL}/model.tar.gz"})
        yield {"store": store, "sm": sm, "table": table, "booster": booster, "x": x,
               "features_prefix": features_prefix, "scores_prefix": f"s3://{BUCKET}/scores/credit_applications"}


# The handle credit_default_endpoint returns in endpoint mode none (assets/serving.py).
HANDLE = {"endpoint_name": None, "endpoint_mode": "none", "model_name": MODEL, "status": "NotDeployed",
          "feature_columns": FEATURES, "model_version": 4}


def _score(setup: dict[str, Any]) -> dict[str, Any]:
    return score_days_with_transform_jobs(setup["sm"], setup["store"], [DAY], HANDLE, setup["features_prefix"],
                                          setup["scores_prefix"], "ml.m5.large", 0.2,
                                          rows_per_object=ROWS_PER_OBJECT, log=lambda _: None)


def _scores(setup: dict[str, Any]) -> tuple[list[str], pa.Table]:
    day_uri = f"{setup['scores_prefix']}/dt={DAY}"
    files = sorted(o.uri for o in setup["store"].list_objects(day_uri))
    return files, setup["store"].parquet_dataset(day_uri).to_table()


@pytest.mark.parametrize("body", [b"0.25\n0.5\n0.75\n", b"0.25,0.5\n0.75\n", b"0.25,0.5,0.75"])
def test_an_answer_is_read_one_line_per_row_or_per_request(body: bytes) -> None:
    np.testing.assert_array_equal(batch_scoring.predictions_of(body, 3), [0.25, 0.5, 0.75])


@pytest.mark.parametrize("body", [b"0.25\n0.5\n", b"0.25,0.5\n0.75,1\n", b""])
def test_an_answer_with_another_count_is_refused(body: bytes) -> None:
    from smspark_assets.sagemaker.deserializers import ResponseMismatch

    with pytest.raises(ResponseMismatch, match="for 3 rows"):
        batch_scoring.predictions_of(body, 3)


def test_the_constants_are_the_spark_jobs() -> None:
    from smspark_assets.spark_jobs import score_endpoint

    assert batch_scoring.DEFAULT_PASSTHROUGH == score_endpoint.DEFAULT_PASSTHROUGH
    assert batch_scoring.SCORE_COLUMNS == score_endpoint.SCORE_COLUMNS


def test_a_transform_job_scores_the_day_like_the_library_and_is_adopted_again(batch_setup: dict[str, Any]) -> None:
    setup = batch_setup
    first = _score(setup)
    assert first["rows_scored_by_dt"] == {DAY: ROWS} and first["requests"] == 3  # three input objects
    assert first["adopted_days"] == [] and first["transform_jobs"][DAY].startswith("credit-scores-")
    files, scored = _scores(setup)
    assert len(files) == 3 and scored.num_rows == ROWS
    # The columns and types the Spark scoring job writes, as pyarrow reads them (measured on Spark's
    # output: nullable feature columns, required scores, INT96 scored_at read as timestamp[ns]).
    expected = pa.schema([
        pa.field("application_id", pa.int64()), pa.field("application_date", pa.date32()),
        pa.field("split", pa.string()), pa.field("defaulted_12m", pa.int32()),
        pa.field("prediction", pa.float64(), nullable=False), pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string()), pa.field("scored_at", pa.timestamp("ns"), nullable=False),
    ])
    assert scored.schema.remove_metadata().equals(expected), scored.schema
    assert pq.read_metadata(setup["store"].arrow_filesystem().open_input_file(files[0].removeprefix("s3://"))
                            ).schema.column(7).physical_type == "INT96"
    # Independent: the xgboost library's predictions on the same rows, matched by id.
    source = setup["table"]
    expected_pred = setup["booster"].inplace_predict(setup["x"])
    by_id = dict(zip(source.column("application_id").to_pylist(), expected_pred))
    got_ids = scored.column("application_id").to_pylist()
    assert sorted(got_ids) == sorted(by_id)
    np.testing.assert_allclose(scored.column("prediction").to_numpy(), [by_id[i] for i in got_ids],
                               rtol=1e-5, atol=1e-6)
    src_split = dict(zip(source.column("application_id").to_pylist(), source.column("split").to_pylist()))
    assert scored.column("split").to_pylist() == [src_split[i] for i in got_ids]
    assert set(scored.column("model_name").to_pylist()) == {MODEL}
    assert set(scored.column("model_version").to_pylist()) == {"4"}
    assert scored.column("scored_at").unique().to_pylist() == [dt.datetime.fromisoformat(first["scored_at"])
                                                               .replace(tzinfo=None)]

    again = _score(setup)
    assert again["adopted_days"] == [DAY] and again["transform_jobs"] == first["transform_jobs"]
    files_again, scored_again = _scores(setup)
    assert len(files_again) == 3 and not set(files_again) & set(files)  # replaced, not added to
    assert scored_again.num_rows == ROWS  # the re-read objects line up with the adopted job's answers
    again_ids = scored_again.column("application_id").to_pylist()
    np.testing.assert_allclose(scored_again.column("prediction").to_numpy(), [by_id[i] for i in again_ids],
                               rtol=1e-5, atol=1e-6)
    jobs = setup["sm"].list_transform_jobs(NameContains="credit-scores")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in jobs] == [first["transform_jobs"][DAY]]


def test_an_answer_missing_a_line_fails_naming_the_object_and_keeps_the_day(batch_setup: dict[str, Any]) -> None:
    setup = batch_setup
    store = setup["store"]
    _score(setup)
    before, _ = _scores(setup)
    outs = sorted(o.uri for o in store.list_objects(f"{work_prefix()}/output/dt={DAY}") if o.uri.endswith(".out"))
    assert len(outs) == 3
    body = store.read_bytes(outs[1])
    lines = body.decode().strip().splitlines()
    assert len(lines) == ROWS_PER_OBJECT  # one answer line per row
    store.write_bytes(outs[1], ("\n".join(lines[:-1]) + "\n").encode())
    with pytest.raises(dg.Failure, match=r"part-00001\.csv\.out.*\(250 rows\)"):
        _score(setup)  # adopts the completed job, then reads the damaged answer
    after, table = _scores(setup)
    assert after == before and table.num_rows == ROWS
    store.write_bytes(outs[1], body)


def test_credit_scores_dispatches_to_transform_jobs_in_endpoint_mode_none(batch_setup: dict[str, Any]) -> None:
    """The asset itself: with the endpoint handle of mode none, a run of `credit_scores` writes the day
    through a transform job (no Spark, no endpoint) and its per-day check passes."""
    import json

    from smspark_assets.definitions import build_definitions
    from smspark_assets.layout import layout

    setup = batch_setup
    assert setup["features_prefix"] == layout().features and setup["scores_prefix"] == layout().scores
    defs = build_definitions()
    setup["store"].write_bytes(f"{layout().io_manager_prefix}/credit_default_endpoint.json",
                               json.dumps(HANDLE).encode())
    job = defs.resolve_job_def("daily_scoring_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, partition_key=DAY,
                                        asset_selection=[dg.AssetKey("credit_scores")])
        assert result.success
        materialization = result.asset_materializations_for_node("credit_scores")[-1]
        meta = materialization.metadata
        assert meta["endpoint_name"].value == "none (batch transform)"
        assert json.loads(json.dumps(meta["transform_jobs"].value))[DAY].startswith("credit-scores-")
        checks = [e.asset_check_evaluation_data for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert [(c.check_name, c.passed) for c in checks] == [("every_feature_row_scored", True)]
        assert checks[0].metadata["scored_rows"].value == ROWS
    _, scored = _scores(setup)
    assert scored.num_rows == ROWS
