"""The debugger in the built-in engine: on by default, every logged value in its mode, the step-time
split, rules beside the run (a stop action ends it gracefully), resume continues the steps."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import FAST, cli_run
from visiontune.debug import create_trial, modes
from visiontune.debug.profiler import Profile
from visiontune.train import train


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory):
    from tests.conftest import make_folder_dataset

    root = tmp_path_factory.mktemp("engine")
    data = make_folder_dataset(root / "data", per_class=12)
    import visiontune as vt  # the engine recorded as a job

    result = vt.train(data=str(data), out=str(root / "run"), mode="full", **{**FAST, "epochs": 3}, profile_interval=0.1)
    return data, result


def test_every_logged_value_is_recorded_in_its_mode_every_epoch(engine_run):
    _, result = engine_run
    trial = create_trial(result.out)
    for name in ("train_loss", "train_acc", "lr"):
        assert len(trial.tensor(name).steps(mode=modes.TRAIN)) == 3
    for name in ("val_loss", "val_acc"):
        assert len(trial.tensor(name).steps(mode=modes.EVAL)) == 3
    assert trial.tensor("val_loss").values(mode=modes.EVAL)[
        trial.tensor("val_loss").steps(mode=modes.EVAL)[-1]
    ] == pytest.approx(result.history[-1]["val_loss"])
    steps_per_epoch = -(-result.metrics["counts"]["train"] // FAST["batch_size"])
    loss = trial.tensor("CrossEntropyLoss_output_0")
    assert len(loss.steps(mode=modes.TRAIN)) == 3 * steps_per_epoch  # every training batch
    assert loss.steps(mode=modes.EVAL)  # and the validation batches
    assert trial.tensor_names(collection="gradients") and trial.tensor_names(collection="relu_output")
    assert trial.tensor_names(collection="labels") == ["labels"]


def test_the_run_records_rules_step_times_and_system_usage(engine_run):
    _, result = engine_run
    folder = result.out / "debug"
    rules = json.loads((folder / "rules.json").read_text())
    statuses = {r["name"]: r["status"] for r in rules["rules"]}
    assert statuses["check_input_images"] == "NotRun" and statuses["poor_weight_initialization"] == "NotRun"
    assert set(statuses.values()) <= {"NoIssuesFound", "IssuesFound", "NotRun"}
    assert result.metrics["debugger"] == statuses
    profile = Profile(folder)
    profile.refresh()
    steps = profile.steps("TRAIN")
    assert steps and all(r["step_seconds"] >= r["data"] + r["forward"] for r in steps)
    assert profile.system and len(profile.system[0]["cpu"]) == profile.cores


def test_a_rule_with_a_stop_action_ends_the_run_and_keeps_the_model(engine_run, tmp_path):
    data, _ = engine_run
    out = tmp_path / "stopped"
    result = train(
        data=str(data),
        out=str(out),
        **{**FAST, "epochs": 4},
        debug_rules="weight_update_ratio:large_threshold=0:action=stop",
    )
    assert len(result.history) < 4
    assert "weight_update_ratio" in result.metrics["stopped_by_rule"]
    assert (out / "model.tar.gz").is_file()


def test_an_fp16_run_saves_gradients_and_the_rules_see_them(engine_run, tmp_path):
    """The GradScaler branch unscales, records the gradients (the hook's end_backward), then steps: as fp32."""
    data, _ = engine_run
    out = tmp_path / "fp16"
    result = train(
        data=str(data),
        out=str(out),
        **{**FAST, "epochs": 2},
        mode="full",
        precision="fp16",
        debug_save_interval=1,
        debug_rules="vanishing_gradient,all_zero",
    )
    trial = create_trial(result.out)
    grads = trial.tensor_names(collection="gradients")
    assert grads, "an fp16 run saved no gradients"
    steps, means = trial.series(grads[0], modes.TRAIN, "abs_mean")
    for g in grads:  # the steps the scaler skipped (inf gradients at too large a loss scale) are not recorded
        steps, means = trial.series(g, modes.TRAIN, "abs_mean")
        assert steps and all(math.isfinite(m) for m in means), (g, steps, means)
    print("GRADS", [trial.series(g, modes.TRAIN, "abs_mean") for g in grads[:3]], len(grads))
    rules = {r["name"]: r for r in json.loads((out / "debug" / "rules.json").read_text())["rules"]}
    assert rules["vanishing_gradient"]["status"] in ("NoIssuesFound", "IssuesFound"), rules["vanishing_gradient"]
    assert not rules["vanishing_gradient"]["warnings"], rules["vanishing_gradient"]
    profile = Profile(out / "debug")
    profile.refresh()
    assert all("backward" in r and "optimizer" in r for r in profile.steps("TRAIN"))


def test_the_debugger_can_be_switched_off(engine_run, tmp_path):
    data, _ = engine_run
    train(data=str(data), out=str(tmp_path / "off"), **{**FAST, "epochs": 1}, debugger=False)
    assert not (tmp_path / "off" / "debug").exists()


def test_bad_rule_options_fail_before_any_work(tmp_path):
    res = cli_run("train", "--data", tmp_path, "--debug-rules", "overfit:patience=soon", ok=False)
    assert "rule overfit: parameter patience='soon' must be a whole number" in res.output
    res = cli_run("train", "--data", tmp_path, "--debug-rules", "nonsense", ok=False)
    assert "rule 'nonsense': choose one of vanishing_gradient" in res.output


def test_cli_debug_commands(engine_run, tmp_path):
    _, result = engine_run
    res = cli_run("debug", "tensors", result.out, "--collection", "scalars")
    assert "train_loss" in res.output and "val_acc" in res.output
    res = cli_run("debug", "evaluate", result.out, "--rules", "loss_not_decreasing,overtraining")
    assert "loss_not_decreasing" in res.output
    res = cli_run("debug", "rules")
    assert "stalled_training_rule" in res.output and "LowGPUUtilization" in res.output
    res = cli_run("debug", "export-tensorboard", result.out, "--out", tmp_path / "tb")
    assert "values written" in res.output
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))


def test_jobs_describe_shows_the_rule_statuses(engine_run, tmp_path):
    import visiontune as vt

    data, _ = engine_run
    result = vt.train(data=str(data), out=str(tmp_path / "described"), **{**FAST, "epochs": 1})
    doc = json.loads(cli_run("jobs", "describe", result.job).output)
    assert {r["RuleConfigurationName"] for r in doc["DebugRuleEvaluationStatuses"]} >= {"overfit", "dead_relu"}
    assert doc["ProfilerRuleEvaluationStatuses"][0]["RuleEvaluationStatus"] == "NoIssuesFound"
