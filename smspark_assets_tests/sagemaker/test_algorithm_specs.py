"""The SageMaker contract of the built-in algorithms: lookup, hyperparameter and channel checks, images,
and the rule that the contract and the assets never load the emulator."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smspark_assets.sagemaker.algorithms import ChannelError, algorithm_spec, builtin_algorithms
from smspark_assets.sagemaker.errors import HyperparameterError

pytestmark = pytest.mark.timeout(120)

# SageMaker's names of its first-party algorithms plus XGBoost (the image repositories of the DG's
# "Docker registry paths" page).
SAGEMAKER_NAMES = {"xgboost", "kmeans", "linear-learner", "pca", "factorization-machines", "lda"}


def test_every_builtin_algorithm_has_a_contract() -> None:
    assert set(builtin_algorithms()) == SAGEMAKER_NAMES
    for name in SAGEMAKER_NAMES:
        assert algorithm_spec(name).name == name
    with pytest.raises(KeyError, match="known: factorization-machines, kmeans"):
        algorithm_spec("random-cut-forest")


def test_importing_assets_and_the_contract_loads_no_emulator_module() -> None:
    code = ("import sys\n"
            "import smspark_assets.assets, smspark_assets.sagemaker, smspark_assets.sagemaker.algorithms\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('smspark_assets.local'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []


@pytest.mark.parametrize("name, raw, message", [
    # Ranges from the DG's hyperparameter tables.
    ("kmeans", {"k": "1", "feature_dim": "4"}, r"k='1' is out of range; allowed: an integer in \[2, inf\)"),
    ("kmeans", {"k": "3"}, "missing required hyperparameter.*feature_dim"),
    ("pca", {"feature_dim": "4", "num_components": "5", "mini_batch_size": "10"}, "exceeds feature_dim=4"),
    ("linear-learner", {"predictor_type": "multiclass_classifier"}, "num_classes is required"),
    ("linear-learner", {"predictor_type": "regressor", "loss": "logistic"}, "does not fit predictor_type"),
    ("factorization-machines", {"feature_dim": "9", "num_factors": "2", "predictor_type": "regressor",
                                "bias_init_method": "constant"}, "needs bias_init_value"),
    ("lda", {"num_topics": "3", "feature_dim": "9", "mini_batch_size": "10", "alpha0": "0"}, "alpha0"),
    ("xgboost", {"num_round": "10", "eta": "2"}, r"eta='2' is out of range; allowed: a number in \[0, 1\]"),
    ("xgboost", {"num_round": "10", "objective": "multi:softmax"}, "requires num_class"),
])
def test_bad_hyperparameters_are_refused_naming_what_is_allowed(name: str, raw: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        algorithm_spec(name).validate_hyperparameters(raw)


def test_good_hyperparameters_parse_in_either_sdks_form() -> None:
    # The Spark SDK renders Scala values (1.0E-4, [msd,ssd]); the Python SDK sends JSON-ish strings.
    parsed = algorithm_spec("kmeans").validate_hyperparameters(
        {"k": "3", "feature_dim": "4", "local_lloyd_tol": "1.0E-4", "eval_metrics": "[msd,ssd]",
         "force_dense": "True", "_tuning_objective_metric": "test:msd"})
    assert (parsed["k"], parsed["local_lloyd_tol"], parsed["eval_metrics"]) == (3, 1e-4, ["msd", "ssd"])
    xgb = algorithm_spec("xgboost").validate_hyperparameters({"num_round": "5", "learning_rate": "0.1"})
    assert xgb["eta"] == 0.1 and xgb["_given"] == ["eta", "num_round"]


def test_channels_follow_each_algorithms_contract() -> None:
    recordio, csv = "application/x-recordio-protobuf", "text/csv"
    ll = algorithm_spec("linear-learner")
    assert ll.validate_channels({"train": csv + ";label_size=1", "validation": recordio}) == {
        "train": csv, "validation": recordio}
    with pytest.raises(ChannelError, match="missing required channel.*train"):
        ll.validate_channels({"validation": recordio})
    with pytest.raises(ChannelError, match="unknown channel.*eval; allowed: train, validation, test"):
        ll.validate_channels({"train": recordio, "eval": recordio})
    # Factorization Machines trains on recordIO-protobuf only (DG "FM input/output interface").
    with pytest.raises(ChannelError, match="allowed: application/x-recordio-protobuf"):
        algorithm_spec("factorization-machines").validate_channels({"train": csv})
    # XGBoost's default is libsvm; the container's data_utils also reads bare names such as "csv".
    assert algorithm_spec("xgboost").validate_channels({"train": None, "validation": "csv"}) == {
        "train": "text/libsvm", "validation": csv}
    with pytest.raises(ChannelError, match="application/json"):
        algorithm_spec("xgboost").validate_channels({"train": "application/json"})


def test_image_uris_are_the_registry_paths_sagemaker_documents() -> None:
    # DG "Docker registry paths", us-east-1 and eu-west-1.
    assert algorithm_spec("kmeans").image_uri("us-east-1") == \
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
    assert algorithm_spec("xgboost").image_uri("eu-west-1") == \
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_the_emulator_validates_with_the_contract_objects() -> None:
    from smspark_assets.local.algorithms import get_algorithm

    for name in SAGEMAKER_NAMES:
        implementation = get_algorithm(name)
        assert implementation.contract is algorithm_spec(name)
        with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
            implementation.validate_hyperparameters({"no_such_parameter": "1"})
