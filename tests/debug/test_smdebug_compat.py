"""A seed-style script written against smdebug's API runs unchanged in script mode; its tensors are read
back with the Trial API (issue 9: acceptance)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import cli_run, make_folder_dataset
from visiontune.debug import create_trial, modes

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("smd") / "d", per_class=6, split_layout=True)


def _train(data, out, *extra, ok=True):
    return cli_run(
        "train",
        "--entry-point",
        "train_model.py",
        "--source-dir",
        SCRIPTS,
        "--channel",
        f"train={data / 'train'}",
        "--channel",
        f"test={data / 'test'}",
        "--hyperparameters",
        '{"epochs": 3}',
        "--out",
        out,
        *extra,
        ok=ok,
    )


def test_a_seed_004_script_runs_unchanged_and_every_epoch_is_read_back(data, tmp_path):
    _train(data, tmp_path / "job", "--job-name", "seed-004")
    trial = create_trial("seed-004")  # by job name, as create_trial(training_job_name) would be
    acc = trial.tensor("epochs_accuracy")
    train_steps, eval_steps = acc.steps(mode=modes.TRAIN), acc.steps(mode=modes.EVAL)
    assert len(train_steps) == 3 and len(eval_steps) == 3, (train_steps, eval_steps)  # every epoch, both modes
    for mode in (modes.TRAIN, modes.EVAL):
        values = acc.values(mode=mode)
        assert all(0.0 <= float(v) <= 1.0 for v in values.values())
    train_batches = trial.tensor("batch_loss").steps(mode=modes.TRAIN)
    assert len(train_batches) == 3 * 3  # 18 images / batch 8 = 3 batches, every one recorded
    assert float(acc.value(eval_steps[-1], mode=modes.EVAL)) == pytest.approx(
        json.loads(json.dumps(float(acc.values(mode=modes.EVAL)[eval_steps[-1]])))
    )
    # the hook config came as SageMaker passes it: a JSON file
    config = json.loads((tmp_path / "job" / "input" / "config" / "debughookconfig.json").read_text())
    assert config["LocalPath"] == str(tmp_path / "job" / "debug")
    # rules ran beside it, with the losses the hook recorded (register_loss)
    rules = json.loads((tmp_path / "job" / "debug" / "rules.json").read_text())
    statuses = {r["name"]: r["status"] for r in rules["rules"]}
    assert set(statuses.values()) <= {"NoIssuesFound", "IssuesFound", "NoData"}, statuses
    # the losses it recorded are judged; a collection its hook did not save leaves a rule NoData (issue 33)
    assert all(statuses[n] != "NoData" for n in ("loss_not_decreasing", "overfit", "overtraining")), statuses
    assert statuses["class_imbalance"] == "NoData"  # the script's hook saved no labels: nothing to judge
    assert trial.tensor_names(collection="losses") == ["CrossEntropyLoss_output_0"]


def test_the_shim_is_on_the_job_path_only(data, tmp_path):
    assert importlib.util.find_spec("smdebug") is None  # never installed where the tests run
    res = _train(data, tmp_path / "off", "--debugger-compat", "off", ok=False)
    assert "No module named 'smdebug'" in res.output


def test_the_debugger_can_be_off_for_a_script(data, tmp_path):
    _train(data, tmp_path / "nodebug", "--no-debugger", "--debugger-compat", "smdebug")
    assert not (tmp_path / "nodebug" / "debug" / "rules.json").exists()
