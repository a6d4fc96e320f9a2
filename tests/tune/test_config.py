"""Ranges, strategies and tuning configurations: bad input is one clear line (issue 8, Bad input)."""

import pytest

from visiontune.errors import ConfigError
from visiontune.tune import CategoricalParameter, ContinuousParameter, IntegerParameter, TuningConfig
from visiontune.tune.parameters import parse_range


@pytest.mark.parametrize(
    "param,words",
    [
        (ContinuousParameter(0.1, 0.001), "min_value 0.1 > max_value 0.001; swap them"),
        (ContinuousParameter(0.0, 0.1, "Logarithmic"), "Logarithmic scaling needs a range above 0"),
        (IntegerParameter(0, 8, "Logarithmic"), "Logarithmic scaling needs a range above 0"),
        (ContinuousParameter(0.5, 1.5, "ReverseLogarithmic"), "0 <= min_value < max_value < 1"),
        (ContinuousParameter(0.1, 0.2, "Squared"), "choose one of Auto, Linear, Logarithmic, ReverseLogarithmic"),
        (IntegerParameter(1.5, 3), "whole numbers"),
        (CategoricalParameter([]), "at least one value"),
    ],
)
def test_bad_ranges_name_the_value_and_the_fix(param, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        param.check("lr")


def test_scalings_map_to_optuna():
    lr = ContinuousParameter(1e-5, 1e-1)  # Auto over four orders of magnitude: logarithmic
    assert lr.distribution("lr").log and lr.resolved_scaling() == "Logarithmic"
    assert not ContinuousParameter(0.2, 0.5).distribution("dropout").log
    mom = ContinuousParameter(0.9, 0.999, "ReverseLogarithmic")
    d = mom.distribution("momentum")
    assert d.log and d.low == pytest.approx(0.001) and mom.value(0.01) == pytest.approx(0.99)
    assert IntegerParameter(2, 10).distribution("epochs").low == 2
    assert parse_range("bs", [16, 32]).values == [16, 32]
    with pytest.raises(ConfigError, match="ranges.bs: type 'float'"):
        parse_range("bs", {"type": "float", "min": 1, "max": 2})


def _doc(**over):
    doc = {
        "name": "t",
        "train": {"data": "d", "epochs": 3},
        "objective": {"metric": "val_acc"},
        "ranges": {"learning_rate": {"type": "continuous", "min": 1e-4, "max": 1e-1}},
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "over,words",
    [
        ({"strategy": "Genetic"}, "strategy 'Genetic': choose one of Bayesian, Random, Grid, Hyperband"),
        ({"objective": {"metric": "val_f1"}}, "the built-in engine reports val_acc"),
        ({"ranges": {"lr_rate": [0.1]}}, "lr_rate is not an option of the built-in engine"),
        ({"ranges": {"data": ["a", "b"]}}, "data cannot be tuned"),
        ({"ranges": {"learning_rate": {"type": "continuous", "min": 1, "max": 0}}}, "swap them"),
        ({"strategy": "Grid"}, "Grid needs categorical or integer ranges"),
        ({"early_stopping": "Sometimes"}, "choose Off or Auto"),
        ({"max_jobs": 0}, "must be 1 or more"),
        ({"script": {"entry_point": "x.py"}}, "exactly one of"),
        ({"objective": {"metric": "val_acc", "type": "Best"}}, "choose Maximize or Minimize"),
    ],
)
def test_bad_configurations(over, words):
    with pytest.raises(ConfigError, match=words):
        TuningConfig.from_dict(_doc(**over))


def test_a_script_metric_keeps_its_sagemaker_style_name():
    """Only the built-in engine's names are aliased (a review finding)."""
    doc = {
        "name": "s",
        "script": {
            "entry_point": "hpo.py",
            "metric_definitions": [{"Name": "validation:accuracy", "Regex": "acc=([0-9.]+)"}],
        },
        "objective": {"metric": "validation:accuracy"},
        "ranges": {"lr": [0.1, 0.01]},
    }
    assert TuningConfig.from_dict(doc).objective_metric == "validation:accuracy"


def test_script_objective_needs_a_metric_definition():
    doc = {
        "name": "s",
        "script": {"entry_point": "hpo.py", "metric_definitions": [{"Name": "loss", "Regex": "l=(.*)"}]},
        "objective": {"metric": "test_acc"},
        "ranges": {"lr": [0.1, 0.01]},
    }
    with pytest.raises(ConfigError, match="'test_acc' has no metric definition.*defined: loss"):
        TuningConfig.from_dict(doc)


def test_aliases_grid_size_and_yaml_errors(tmp_path):
    cfg = TuningConfig.from_dict(
        _doc(
            objective={"metric": "validation:accuracy"},
            strategy="Grid",
            max_jobs=50,
            ranges={"batch_size": [8, 16], "hidden_units": [0, 8, 16]},
        )
    )
    assert cfg.objective_metric == "val_acc" and cfg.max_jobs == 6  # the grid has 6 points
    bad = tmp_path / "t.yaml"
    bad.write_text("name: t\nranges:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"t.yaml, line \d+, column \d+: not valid YAML"):
        TuningConfig.load(bad)
