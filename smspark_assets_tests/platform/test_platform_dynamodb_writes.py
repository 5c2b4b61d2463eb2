"""Batch writes retry UnprocessedItems (moto never returns them, so botocore's Stubber plays DynamoDB)."""

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from smspark_assets.resources.dynamodb_writes import (UnprocessedItemsError, WriteProgress, ensure_table,
                                                      last_occurrence, to_attribute_values, write_batch,
                                                      write_items)


def _items(n: int) -> list[dict]:
    return to_attribute_values(pd.DataFrame({"id": [f"a{i}" for i in range(n)], "score": [i / 10 for i in range(n)]}))


def test_unprocessed_items_are_retried_until_written() -> None:
    client = boto3.client("dynamodb")
    items = _items(3)
    leftover = {"scores": [{"PutRequest": {"Item": items[2]}}]}
    with Stubber(client) as stub:
        stub.add_response("batch_write_item", {"UnprocessedItems": leftover}, {"RequestItems": ANY})
        stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": leftover})
        retries = write_batch(client, "scores", items, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert retries == 1


def test_items_still_unprocessed_after_the_budget_fail_loudly() -> None:
    client = boto3.client("dynamodb")
    items = _items(2)
    leftover = {"scores": [{"PutRequest": {"Item": items[0]}}]}
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("batch_write_item", {"UnprocessedItems": leftover}, {"RequestItems": ANY})
        with pytest.raises(UnprocessedItemsError, match="1 item"):
            write_batch(client, "scores", items, max_retries=2, sleep=lambda _: None)


def test_attribute_values_keep_types_and_skip_nulls() -> None:
    frame = pd.DataFrame({"id": ["x", "y"], "p": [0.25, None], "n": [3, 4], "ok": [True, False]})
    first, second = to_attribute_values(frame)
    assert first == {"id": {"S": "x"}, "p": {"N": "0.25"}, "n": {"N": "3"}, "ok": {"BOOL": True}}
    assert "p" not in second


def test_bulk_write_lands_every_item_in_batches_of_25() -> None:
    with mock_aws():
        client = boto3.client("dynamodb")
        assert ensure_table(client, "scores", "id", poll_seconds=0)
        assert not ensure_table(client, "scores", "id", poll_seconds=0)
        stats = write_items(lambda: boto3.client("dynamodb"), "scores", _items(260), threads=3)
        assert stats == {"items": 260, "batches": 11, "retries": 0}
        assert client.scan(TableName="scores", Select="COUNT")["Count"] == 260
        assert client.get_item(TableName="scores", Key={"id": {"S": "a7"}})["Item"]["score"] == {"N": "0.7"}


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_write_progress_reports_at_most_every_interval_and_always_the_end() -> None:
    now = [0.0]
    log = _Log()
    progress = WriteProgress(log, "scores", 100_000, every_seconds=10.0, clock=lambda: now[0])
    for done, at in ((10_000, 4.0), (20_000, 8.0), (30_000, 12.0), (40_000, 15.0), (100_000, 16.0)):
        now[0] = at
        progress.rows_done(done)
    # 4 s and 8 s are inside the first 10 s; 15 s is 3 s after the 12 s line; the end is always reported.
    assert log.lines == ["DynamoDB scores: 30,000 of 100,000 rows written (2,500 rows/s)",
                         "DynamoDB scores: 100,000 of 100,000 rows written (6,250 rows/s)"]



@pytest.mark.parametrize("size,distinct", [(0, 1), (1, 1), (2, 1), (5_000, 40), (5_000, 5_000), (20_000, 7_000)])
def test_last_occurrence_marks_what_pandas_keeps_as_the_last_duplicate(size: int, distinct: int) -> None:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(size + distinct)
    keys = [f"k{v}" for v in rng.integers(0, distinct, size)]
    expected = ~pd.Series(keys, dtype=object).duplicated(keep="last").to_numpy()
    chunked = pa.chunked_array([pa.array(keys[:size // 3], pa.string()), pa.array(keys[size // 3:], pa.string())])
    assert last_occurrence(chunked).tolist() == expected.tolist()
