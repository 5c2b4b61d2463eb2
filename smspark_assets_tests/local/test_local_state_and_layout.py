"""Unit tests: the SQLite state store, S3 prefix semantics of channel staging, and the training worker."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from smspark_assets.local.algorithms.train import package_model
from smspark_assets.local.layout import LocalLayout
from smspark_assets.local.state import AlreadyExists, NotFound, StateStore
from smspark_assets.local.training import ChannelDataError, stage_channel, transition


def test_state_store_round_trip_and_errors(tmp_path: Path):
    store = StateStore(tmp_path / "state.sqlite")
    store.create("model", "m", "arn:m", {"ModelName": "m", "CreationTime": 2.0})
    store.create("model", "a", "arn:a", {"ModelName": "a", "CreationTime": 1.0})
    with pytest.raises(AlreadyExists):
        store.create("model", "m", "arn:m", {"ModelName": "m"})
    assert [d["ModelName"] for d in store.list("model")] == ["a", "m"]  # creation order
    store.update("model", "m", lambda d: d.update(Extra=1))
    assert store.get("model", "m")["Extra"] == 1
    with pytest.raises(NotFound):
        store.update("model", "zz", lambda d: None)
    store.add_tags("arn:m", [{"Key": "k", "Value": "v"}])
    assert store.kind_of_arn("arn:m") == ("model", "m")
    assert store.delete("model", "m")["Extra"] == 1
    assert store.get("model", "m") is None and store.list_tags("arn:m") == []  # tags go with the resource
    # a failing change leaves the document untouched
    with pytest.raises(RuntimeError):
        store.update("model", "a", lambda d: (d.update(Broken=True), (_ for _ in ()).throw(RuntimeError())))
    assert "Broken" not in store.get("model", "a")
    store.close()
    # durable: a new connection sees what was committed
    assert StateStore(tmp_path / "state.sqlite").get("model", "a")["CreationTime"] == 1.0


def test_state_store_concurrent_updates_are_atomic(tmp_path: Path):
    store = StateStore(tmp_path / "state.sqlite")
    store.create("endpoint", "e", "arn:e", {"n": 0})

    def bump() -> None:
        for _ in range(200):
            store.update("endpoint", "e", lambda d: d.update(n=d["n"] + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("endpoint", "e")["n"] == 800


def test_secondary_status_transitions_close_the_previous_entry():
    doc: dict = {}
    transition(doc, "Starting", "s", now=1.0)
    transition(doc, "Training", "t", now=2.0)
    transition(doc, "Completed", "c", now=3.0)
    assert doc["SecondaryStatus"] == "Completed"
    assert [(t["Status"], t["StartTime"], t.get("EndTime")) for t in doc["SecondaryStatusTransitions"]] == [
        ("Starting", 1.0, 2.0),
        ("Training", 2.0, 3.0),
        ("Completed", 3.0, 3.0),
    ]


def test_stage_channel_follows_s3_prefix_semantics(tmp_path: Path):
    layout = LocalLayout(tmp_path)
    base = layout.s3_root / "bkt" / "data"
    for rel in (
        "train/part-0.csv",
        "train/sub/part-1.csv",
        "train/.part-0.csv.crc",
        "training-extra.csv",
        "validation/part-0.csv",
    ):
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(rel)
    target = tmp_path / "channel"
    files, size = stage_channel(layout, "s3://bkt/data/train", target)
    staged = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    # the directory's files keep their paths; a sibling sharing the prefix comes too; dot-files never do
    assert staged == ["part-0.csv", "sub/part-1.csv", "training-extra.csv"]
    assert files == 3 and size == sum(
        len(s) for s in ("train/part-0.csv", "train/sub/part-1.csv", "training-extra.csv")
    )
    # hard links, not copies
    # A copy, not a link: a job that rewrites its input cannot change the stored object.
    assert (target / "part-0.csv").read_bytes() == (base / "train" / "part-0.csv").read_bytes()
    assert (target / "part-0.csv").stat().st_ino != (base / "train" / "part-0.csv").stat().st_ino
    single = tmp_path / "single"
    assert stage_channel(layout, "s3://bkt/data/validation/part-0.csv", single)[0] == 1
    with pytest.raises(ChannelDataError, match="No S3 objects found"):
        stage_channel(layout, "s3://bkt/nothing/here", tmp_path / "none")
    with pytest.raises(ValueError, match="escapes"):
        stage_channel(layout, "s3://bkt/../../etc", tmp_path / "escape")


def test_package_model_keeps_relative_paths(tmp_path: Path):
    model = tmp_path / "model"
    (model / "nested").mkdir(parents=True)
    (model / "xgboost-model").write_bytes(b"m")
    (model / "nested" / "extra.json").write_text("{}")
    package_model(model, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(tmp_path / "out" / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["nested", "nested/extra.json", "xgboost-model"]


def test_training_worker_usage_errors_and_failure_file(tmp_path: Path):
    worker = [sys.executable, "-m", "smspark_assets.local.algorithms.train"]
    assert subprocess.run(worker, capture_output=True).returncode == 2
    assert subprocess.run(worker + [str(tmp_path)], capture_output=True).returncode == 2
    config = tmp_path / "job" / "input" / "config"
    config.mkdir(parents=True)
    (config / "algorithm.json").write_text(json.dumps({"algorithm": "no-such-algorithm", "image": "x"}))
    result = subprocess.run(worker + [str(tmp_path / "job")], capture_output=True, text=True)
    assert result.returncode == 1
    failure = (tmp_path / "job" / "output" / "failure").read_text()
    assert failure.startswith("AlgorithmError: KeyError") and "no-such-algorithm" in failure


def test_paging_is_stable_when_resources_are_created_between_pages():
    from smspark_assets.local.api_errors import ApiError
    from smspark_assets.local.sagemaker_api import _Pager

    newest_first = [{"ModelName": n} for n in ("c", "b", "a")]
    first, token = _Pager.page(newest_first, {"MaxResults": 2}, name_key="ModelName")
    assert [d["ModelName"] for d in first] == ["c", "b"] and token
    # "d" is created before the next page is asked for: it sorts first, and shifts nothing
    now = [{"ModelName": "d"}] + newest_first
    second, token = _Pager.page(now, {"MaxResults": 2, "NextToken": token}, name_key="ModelName")
    assert [d["ModelName"] for d in second] == ["a"] and token is None
    with pytest.raises(ApiError, match="Invalid pagination token"):
        _Pager.page(now, {"NextToken": "garbage"}, name_key="ModelName")
    with pytest.raises(ApiError, match="between 1 and 100"):
        _Pager.page(now, {"MaxResults": 0})
