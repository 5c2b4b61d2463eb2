import pytest

from smspark_assets.sagemaker.errors import HyperparameterError
from smspark_assets.sagemaker.hyperparameters import Hyperparameter, HyperparameterSpec, Interval, parse_list

SPEC = HyperparameterSpec("demo", [
    Hyperparameter("k", "int", Interval(2, None), required=True),
    Hyperparameter("tol", "float", Interval(0, 1), default=1e-4),
    Hyperparameter("normalize", "bool", default=True),
    Hyperparameter("mode", "str", choices=("regular", "randomized"), default="regular"),
    Hyperparameter("eval_metrics", "list", choices=("msd", "ssd"), default=["msd"]),
    Hyperparameter("num_models", "int", Interval(1, None), specials=("auto",), default="auto"),
])


@pytest.mark.parametrize("raw,expected", [
    ({"k": "10"}, {"k": 10}),
    ({"k": "1.0E1", "tol": "1.0E-5"}, {"k": 10, "tol": 1e-5}),  # Scala renderings
    ({"k": "3", "normalize": "False"}, {"normalize": False}),
    ({"k": "3", "eval_metrics": "[msd,ssd]"}, {"eval_metrics": ["msd", "ssd"]}),
    ({"k": "3", "eval_metrics": '["msd"]'}, {"eval_metrics": ["msd"]}),
    ({"k": "3", "num_models": "AUTO"}, {"num_models": "auto"}),
])
def test_both_sdk_forms_parse(raw: dict, expected: dict) -> None:
    parsed = SPEC.validate(raw)
    for key, value in expected.items():
        assert parsed[key] == value


@pytest.mark.parametrize("raw,message", [
    ({}, "missing required hyperparameter"),
    ({"k": "1"}, r"k='1' is out of range; allowed: an integer in \[2, inf\)"),
    ({"k": "2.5"}, "k='2.5' is not valid"),
    ({"k": "3", "tol": "2"}, r"allowed: a number in \[0, 1\]"),
    ({"k": "3", "mode": "stable"}, "one of regular, randomized"),
    ({"k": "3", "eval_metrics": "[msd,rmse]"}, "each of msd, ssd"),
    ({"k": "3", "bogus": "1"}, "unknown hyperparameter"),
    ({"k": "3", "normalize": "maybe"}, "True or False"),
])
def test_refusals_name_what_is_allowed(raw: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        SPEC.validate(raw)


def test_parse_list_forms() -> None:
    assert parse_list("[msd, ssd]") == ["msd", "ssd"] == parse_list('["msd","ssd"]') == parse_list("msd,ssd")
