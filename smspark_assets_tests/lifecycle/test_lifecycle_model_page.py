"""The model page: learning curves parsed from the container's log lines, small embedded PNGs, the gate's
champion/challenger judgement."""

import base64
import re
import time

import numpy as np
import pytest
from moto import mock_aws

from smspark_assets.assets import model_page
from smspark_assets.assets.champion_challenger import Margins, judge, side

LOG = """\
Train matrix has 1000 rows and 12 columns; validation matrix has 200 rows (read in 0.01s)
[0]#011train-auc:0.71000#011validation-auc:0.70000
[1]#011train-auc:0.75000#011validation-auc:0.72500
[2]\ttrain-auc:0.80000\tvalidation-auc:0.73000
[1]#011train-auc:0.76000#011validation-auc:0.72600
Early stopping: best iteration 2 of 3 rounds
"""


def test_learning_curve_is_parsed_per_round_and_channel() -> None:
    curves = model_page.parse_learning_curve(LOG.splitlines())
    # Round 1 was logged twice (a re-attached log): the last value wins, rounds stay in order.
    assert curves == {"train-auc": [0.71, 0.76, 0.80], "validation-auc": [0.70, 0.726, 0.73]}
    assert model_page.parse_learning_curve(["no rounds here"]) == {}


def test_missing_training_log_gives_no_lines() -> None:
    import boto3

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        assert model_page.training_log_lines(logs, "no-such-job") == []
        logs.create_log_group(logGroupName=model_page.TRAINING_LOG_GROUP)
        logs.create_log_stream(logGroupName=model_page.TRAINING_LOG_GROUP, logStreamName="job-a/algo-1-1")
        logs.put_log_events(logGroupName=model_page.TRAINING_LOG_GROUP, logStreamName="job-a/algo-1-1",
                            logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": line}
                                       for i, line in enumerate(LOG.splitlines())])
        lines = model_page.training_log_lines(logs, "job-a")
    assert model_page.parse_learning_curve(lines)["validation-auc"][-1] == 0.73


def _png_bytes(markdown: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    data = base64.b64decode(match.group(1))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


@pytest.mark.timeout(120)
def test_page_sections_are_small_pngs_and_tables() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(3000) < 0.2).astype(int)
    challenger = np.clip(0.2 + 0.3 * labels + rng.normal(0, 0.15, 3000), 0.001, 0.999)
    champion = np.clip(0.2 + 0.2 * labels + rng.normal(0, 0.15, 3000), 0.001, 0.999)
    page = model_page.model_page(
        labels, {"challenger": challenger, "champion": champion}, {"income": 10.0, "age": 3.0},
        model_page.parse_learning_curve(LOG.splitlines()), 2,
        [{"figure": "test AUC", "challenger": 0.81, "champion": 0.77}],
        {"registry version": 3, "serving": True, "decision": "approved"},
        tuning_trials=[{"TrainingJobName": "t-1", "TrainingJobStatus": "Completed",
                        "FinalHyperParameterTuningJobObjectiveMetric": {"Value": 0.8},
                        "TunedHyperParameters": {"eta": "0.1"}}])
    for key in ("roc_and_precision_recall", "calibration_by_decile", "score_histogram", "feature_importance",
                "learning_curve"):
        size = len(_png_bytes(page[key]))
        assert 5_000 < size < 80_000, (key, size)
    assert "| test AUC | 0.8100 | 0.7700 |" in page["summary"]
    assert "| t-1 | Completed | 0.8000 | eta=0.1 |" in page["tuning_trials"]


def test_challenger_is_judged_against_the_champion_within_margins() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(4000) < 0.25).astype(int)
    good = np.clip(0.2 + 0.35 * labels + rng.normal(0, 0.12, 4000), 0.001, 0.999)
    noisy = np.clip(good + rng.normal(0, 0.3, 4000), 0.001, 0.999)
    margins = Margins(min_test_auc=0.7, max_auc_drop=0.01, max_ece_increase=0.02, max_score_psi=0.25)

    first = judge(side("challenger", labels, good), None, margins)
    assert first.passed and first.champion is None and "absolute threshold" in first.describe()

    worse = judge(side("challenger", labels, noisy), side("champion v1", labels, good), margins)
    assert not worse.passed
    assert worse.details["champion_test_auc"] > worse.details["challenger_test_auc"] + 0.01
    assert any("below the champion's" in f for f in worse.failures)
    assert "champion v1" in worse.describe()

    same = judge(side("challenger", labels, good), side("champion v1", labels, good), margins)
    assert same.passed and same.details["test_score_psi"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="max_auc_drop must be >= 0"):
        Margins(max_auc_drop=-0.1)
