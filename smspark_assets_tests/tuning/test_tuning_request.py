"""Tuning requests for any built-in algorithm: the shape SageMaker's own service model accepts, and the settings
refused before any job exists, each with an error naming what is allowed."""

import datetime as dt
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters

from smspark_assets.assets.tuning import max_concurrent, trials_markdown
from smspark_assets.sagemaker.training import Channel
from smspark_assets.sagemaker.tuning import (
    ParameterRange,
    Trial,
    TuningRequest,
    TuningRequestError,
    TuningResult,
    objective_metrics,
)

pytestmark = pytest.mark.timeout(60)

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CSV_CHANNELS = {"train": Channel("s3://demo/channels/train", "text/csv"),
                "validation": Channel("s3://demo/channels/validation", "text/csv")}
RECORDIO = "application/x-recordio-protobuf"


def _input_shape() -> Any:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateHyperParameterTuningJob").input_shape


def _xgb(**overrides: Any) -> TuningRequest:
    fields: dict[str, Any] = dict(
        algorithm="xgboost", name_prefix="credit-default-tune", image=XGB_IMAGE,
        role_arn="arn:aws:iam::123456789012:role/sagemaker",
        static_hyperparameters={"objective": "binary:logistic", "num_round": "50"},
        ranges=(ParameterRange.continuous("eta", 0.03, 0.3, "Logarithmic"),
                ParameterRange.integer("max_depth", 2, 6, "Linear"),
                ParameterRange.categorical("grow_policy", ["depthwise", "lossguide"])),
        objective_metric="validation:auc", channels=CSV_CHANNELS, output_uri="s3://demo/models/tuning",
        data_fingerprint="fp-1", strategy="Bayesian", max_jobs=8, max_parallel=2)
    fields.update(overrides)
    return TuningRequest(**fields)


def test_the_request_passes_botocores_sagemaker_model_and_says_what_was_asked() -> None:
    request = _xgb(early_stopping="Auto", warm_start_parents=("credit-default-tune-0123456789",))
    request.validate()
    name = request.job_name()
    kwargs = request.create_kwargs(name)
    validate_parameters(kwargs, _input_shape())  # raises ParamValidationError on any shape error
    config = kwargs["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.03", "MaxValue": "0.3",
                                       "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "grow_policy", "Values": ["depthwise", "lossguide"]}],
    }
    assert kwargs["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "credit-default-tune-0123456789"}],
        "WarmStartType": "IdenticalDataAndAlgorithm"}
    # Channels are folder prefixes, as for training jobs.
    uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in kwargs["TrainingJobDefinition"]["InputDataConfig"]]
    assert uris == ["s3://demo/channels/train/", "s3://demo/channels/validation/"]


@pytest.mark.parametrize("request_", [
    TuningRequest(algorithm="linear-learner", name_prefix="algo-ll-tune", image="ll:1",
                  role_arn="arn:aws:iam::1:role/r",
                  static_hyperparameters={"predictor_type": "binary_classifier", "feature_dim": "10"},
                  ranges=(ParameterRange.continuous("learning_rate", 1e-4, 1.0),
                          ParameterRange.integer("mini_batch_size", 100, 5000, "Logarithmic")),
                  objective_metric="validation:roc_auc_score",
                  channels={"train": Channel("s3://d/t", RECORDIO), "validation": Channel("s3://d/v", RECORDIO)},
                  output_uri="s3://d/o", data_fingerprint="f", strategy="Random", max_jobs=5, max_parallel=5),
    TuningRequest(algorithm="kmeans", name_prefix="algo-kmeans-tune", image="km:1", role_arn="arn:aws:iam::1:role/r",
                  static_hyperparameters={"feature_dim": "4"},
                  ranges=(ParameterRange.categorical("k", [2, 3, 4]),
                          ParameterRange.categorical("init_method", ["random", "kmeans++"])),
                  objective_metric="test:msd",
                  channels={"train": Channel("s3://d/t", RECORDIO), "test": Channel("s3://d/s", RECORDIO)},
                  output_uri="s3://d/o", data_fingerprint="f", strategy="Grid", max_jobs=None, max_parallel=3),
])
def test_other_builtin_algorithms_build_valid_requests(request_: TuningRequest) -> None:
    request_.validate()
    kwargs = request_.create_kwargs(request_.job_name())
    validate_parameters(kwargs, _input_shape())
    objective = kwargs["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    # Directions from the algorithms' documentation: AUC is maximized, mean squared distance minimized.
    expected = {"validation:roc_auc_score": "Maximize", "test:msd": "Minimize"}
    assert objective["Type"] == expected[objective["MetricName"]]
    if request_.strategy == "Grid":  # no MaxNumberOfTrainingJobs: the grid decides (3 x 2 combinations)
        assert "MaxNumberOfTrainingJobs" not in kwargs["HyperParameterTuningJobConfig"]["ResourceLimits"]
        assert request_.grid_size() == 6


def test_the_name_fits_sagemakers_32_characters_and_follows_what_determines_the_job() -> None:
    request = _xgb(name_prefix="a-very-long-prefix-for-a-tuning-job-of-credit")
    name = request.job_name()
    assert len(name) <= 32 and name[0].isalnum() and name[-1].isalnum()
    assert request.job_name() == name  # deterministic
    assert _xgb(name_prefix=request.name_prefix, data_fingerprint="fp-2").job_name() != name
    assert _xgb(name_prefix=request.name_prefix, max_jobs=9).job_name() != name
    assert _xgb(name_prefix=request.name_prefix, ranges=request.ranges[:2]).job_name() != name
    assert request.job_name(2).endswith("-r2") and len(request.job_name(2)) <= 32


@pytest.mark.parametrize("overrides, message", [
    ({"objective_metric": "validation:aucc"}, "does not publish the objective metric 'validation:aucc'; allowed: "),
    ({"objective_type": "Minimize"}, "validation:auc is better when higher: its type is Maximize, not Minimize"),
    ({"strategy": "Hyperband"}, "strategy 'Hyperband' is not one of Bayesian, Random, Grid"),
    ({"ranges": (ParameterRange.continuous("etaa", 0.1, 0.2),)},
     "xgboost has no hyperparameter 'etaa' to tune; allowed: "),
    ({"ranges": (ParameterRange.continuous("eta", 0.1, 2.0),)},
     r"eta='2.0' is out of range; allowed: a number in \[0, 1\]"),
    ({"ranges": (ParameterRange.continuous("max_depth", 2, 6),)},
     "max_depth is an integer; tune it with an Integer or Categorical range"),
    ({"ranges": (ParameterRange.continuous("eta", 0.0, 0.3, "Logarithmic"),)},
     "Logarithmic scaling needs a range above 0"),
    ({"ranges": (ParameterRange.integer("max_depth", 6, 2),)}, "low 6 is above high 2"),
    ({"ranges": (ParameterRange.continuous("eta", 0.1, 0.3, "Exponential"),)},
     "scaling 'Exponential' is not one of Auto, Linear"),
    ({"ranges": (ParameterRange.categorical("booster", ["gbtree", "forest"]),)},
     "booster='forest' is not valid; allowed: one of gbtree"),
    ({"ranges": (ParameterRange.continuous("num_round", 10, 20),)}, "both static and tuned: num_round"),
    ({"ranges": ()}, "name at least one hyperparameter range"),
    ({"strategy": "Grid", "max_jobs": None}, "Grid strategy takes categorical ranges only; eta, max_depth are numeric"),
    ({"strategy": "Grid", "max_jobs": 3, "ranges": (ParameterRange.categorical("max_depth", [2, 4]),)},
     r"number of combinations \(2\)"),
    ({"max_jobs": 0}, r"max_jobs must be an integer in \[1, 500\]"),
    ({"max_parallel": 101}, r"max_parallel must be in \[1, 100\]"),
    ({"early_stopping": "Median"}, "early stopping 'Median' is not one of Off, Auto"),
    ({"channels": {"train": Channel("s3://d/t", "image/png")}},
     "channel 'train' has content type 'image/png'; allowed: "),
    ({"static_hyperparameters": {"objective": "binary:logistic"}}, "missing required hyperparameter.*num_round"),
    ({"warm_start_parents": ("a",) * 6}, "1 to 5 parent tuning jobs"),
    ({"algorithm": "pca", "objective_metric": "test:x"}, "pca publishes no metric SageMaker can tune on"),
    ({"algorithm": "random-forest"}, "no built-in algorithm 'random-forest'; known: "),
])
def test_bad_settings_are_refused_naming_what_is_allowed(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TuningRequestError, match=message):
        _xgb(**overrides).validate()


def test_objective_metrics_follow_the_algorithms_contracts() -> None:
    xgb = objective_metrics("xgboost")
    # XGBoost's tuning page: accuracy/auc/f1/map/ndcg are maximized; error/logloss/mae/rmse minimized.
    for metric in ("accuracy", "auc", "f1", "map", "ndcg"):
        assert xgb[f"validation:{metric}"] == "Maximize"
    for metric in ("error", "logloss", "mae", "merror", "mlogloss", "mse", "rmse"):
        assert xgb[f"validation:{metric}"] == "Minimize"
    assert objective_metrics("lda") == {"test:pwll": "Maximize"}
    assert "test:rmse" not in objective_metrics("linear-learner")  # rmse is a validation-only metric
    assert objective_metrics("pca") == {}


def _trial(name: str, start: float, end: float, objective: float | None = 0.5) -> Trial:
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    return Trial(name, "Completed", {"eta": "0.1"}, objective, "Succeeded" if objective is not None else "Failed",
                 t0 + dt.timedelta(seconds=start), t0 + dt.timedelta(seconds=end))


def test_concurrency_is_counted_from_start_and_end_times() -> None:
    # By hand: [0,10] and [5,12] overlap (2); [10,15] starts when the first ends (no overlap with it) but
    # overlaps [5,12] (2); [11,13] overlaps [5,12] and [10,15] (3).
    assert max_concurrent([_trial("a", 0, 10), _trial("b", 5, 12)]) == 2
    assert max_concurrent([_trial("a", 0, 10), _trial("b", 10, 15)]) == 1
    assert max_concurrent([_trial("a", 0, 10), _trial("b", 5, 12), _trial("c", 10, 15), _trial("d", 11, 13)]) == 3
    assert max_concurrent([]) == 0


def test_the_trials_table_marks_the_best_trial() -> None:
    trials = [_trial("t-001", 0, 1, 0.7), _trial("t-002", 0, 1, 0.8), _trial("t-003", 0, 1, None)]
    result = TuningResult("t", "Completed", "Bayesian", "validation:auc", "Maximize", "t-002", 0.8, {}, "", trials,
                          adopted=False, seconds=1.0)
    table = trials_markdown(result).splitlines()
    assert table[0] == "| # | training job | eta | validation:auc | status | seconds |"
    assert len(table) == 2 + 3
    assert "**t-002** (best)" in table[3] and "**0.8**" in table[3]
    assert "t-003" in table[4] and "| Completed |" in table[4]


def test_the_credit_tuning_defaults_are_the_models_own_and_valid() -> None:
    from smspark_assets.assets.training import DEFAULT_HYPERPARAMETERS
    from smspark_assets.assets.tuning import CREDIT_STATIC_HYPERPARAMETERS, CREDIT_TUNING_RANGES

    tuned = {r.name for r in CREDIT_TUNING_RANGES}
    assert CREDIT_STATIC_HYPERPARAMETERS == {k: v for k, v in DEFAULT_HYPERPARAMETERS.items() if k not in tuned}
    request = _xgb(static_hyperparameters=CREDIT_STATIC_HYPERPARAMETERS,
                   ranges=tuple(r.to_range() for r in CREDIT_TUNING_RANGES))
    request.validate()
    validate_parameters(request.create_kwargs(request.job_name()), _input_shape())


def test_security_settings_reach_every_trial_without_renaming_the_job() -> None:
    from smspark_assets.sagemaker.training import SecuritySettings

    plain = _xgb()
    secured = _xgb(security=SecuritySettings(kms_key_id="alias/smspark", subnet_ids=("subnet-1",),
                                             security_group_ids=("sg-1",)))
    assert secured.job_name() == plain.job_name()  # a completed job stays adoptable
    kwargs = secured.create_kwargs(secured.job_name())
    validate_parameters(kwargs, _input_shape())
    definition = kwargs["TrainingJobDefinition"]
    assert definition["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert definition["ResourceConfig"]["VolumeKmsKeyId"] == "alias/smspark"
    assert definition["OutputDataConfig"]["KmsKeyId"] == "alias/smspark"
    assert definition["EnableNetworkIsolation"] is True  # a built-in algorithm's image needs no network


def test_trial_summaries_use_sagemakers_field_names() -> None:
    from smspark_assets.assets.tuning import trial_summaries

    handle = {"objective_metric": "validation:auc", "objective_type": "Maximize", "trials": [
        {"training_job_name": "t-001", "status": "Completed", "hyperparameters": {"eta": "0.1"}, "objective": 0.8,
         "objective_status": "Succeeded"},
        {"training_job_name": "t-002", "status": "Failed", "hyperparameters": {"eta": "0.2"}, "objective": None,
         "objective_status": "Failed"}]}
    assert trial_summaries(handle) == [
        {"TrainingJobName": "t-001", "TrainingJobStatus": "Completed", "TunedHyperParameters": {"eta": "0.1"},
         "ObjectiveStatus": "Succeeded", "FinalHyperParameterTuningJobObjectiveMetric": {
             "Type": "Maximize", "MetricName": "validation:auc", "Value": 0.8}},
        {"TrainingJobName": "t-002", "TrainingJobStatus": "Failed", "TunedHyperParameters": {"eta": "0.2"},
         "ObjectiveStatus": "Failed"}]
