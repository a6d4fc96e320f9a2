"""The broken-model suite: each built-in rule fires on a run with its fault and stays quiet on a healthy one."""

from __future__ import annotations

import json

import pytest

from tests.debug.broken import run
from visiontune.debug.rules import RULES, Finding, Rule, RuleRunner, evaluate_rules, parse_rules
from visiontune.errors import ConfigError

#: rule -> (the fault that must trigger it, rule settings, epochs)
FAULT_FOR = {
    "vanishing_gradient": ("zero_init", {}, 3),
    "exploding_tensor": ("diverge", {}, 3),
    "loss_not_decreasing": ("frozen", {}, 3),
    "overfit": ("overfit", {}, 3),
    "overtraining": ("frozen", {}, 8),
    "poor_weight_initialization": ("zero_init", {}, 3),
    "saturated_activation": ("saturated_sigmoid", {}, 3),
    "dead_relu": ("dead_relu", {}, 3),
    "weight_update_ratio": ("frozen", {}, 3),
    "all_zero": ("zero_init", {}, 3),
    "unchanged_tensor": ("frozen", {}, 3),
    "class_imbalance": ("imbalance", {}, 3),
    "check_input_images": ("unnormalised", {}, 3),
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    folder = run(tmp_path_factory.mktemp("healthy"), "healthy", epochs=8)
    return folder


def _status(results: dict, name: str) -> dict:
    return next(r for r in results["rules"] if r["name"] == name)


def test_the_healthy_run_passes_every_rule(healthy):
    results = evaluate_rules(healthy, kind="script")
    assert len(results["rules"]) == len(RULES.names())
    found = {r["name"]: r["message"] for r in results["rules"] if r["status"] != "NoIssuesFound"}
    assert found == {}


@pytest.mark.parametrize("rule", sorted(FAULT_FOR))
def test_each_rule_fires_on_its_fault(rule, tmp_path, healthy):
    fault, params, epochs = FAULT_FOR[rule]
    folder = run(tmp_path, fault, epochs=epochs)
    spec = {"name": rule, "parameters": params}
    st = _status(evaluate_rules(folder, [spec], kind="script"), rule)
    assert st["status"] == "IssuesFound", st
    assert st["evidence"], "a finding names the steps and values that triggered it"
    quiet = _status(evaluate_rules(healthy, [spec], kind="script"), rule)
    assert quiet["status"] == "NoIssuesFound", quiet


def test_class_imbalance_names_the_classes_where_the_folder_has_them(tmp_path):
    """The engine writes the class names beside its tensors; a script's run has only indices."""
    folder = run(tmp_path, "imbalance", epochs=2)
    spec = [{"name": "class_imbalance"}]
    assert "class 0 has" in _status(evaluate_rules(folder, spec, kind="script"), "class_imbalance")["message"]
    (folder / "classes.json").write_text(json.dumps(["cat", "dog", "bird", "fish"]))
    message = _status(evaluate_rules(folder, spec, kind="script"), "class_imbalance")["message"]
    assert "class 0 (cat) has" in message and "class 1 (dog)" in message


def test_stalled_training_fires_while_the_job_runs_and_stops_it(tmp_path):
    folder = run(tmp_path, "sleepy_loader", epochs=2, session_rules=["stalled_training_rule:threshold=2:action=stop"])
    results = json.loads((folder / "rules.json").read_text())
    st = _status(results, "stalled_training_rule")
    assert st["status"] == "IssuesFound" and "no tensor saved" in st["message"]
    quiet = run(tmp_path / "ok", "healthy", epochs=2, session_rules=["stalled_training_rule:threshold=2"])
    assert _status(json.loads((quiet / "rules.json").read_text()), "stalled_training_rule")["status"] == "NoIssuesFound"


def test_a_stop_action_calls_stop(tmp_path):
    folder = run(tmp_path, "frozen", epochs=2)
    asked = []
    runner = RuleRunner(folder, parse_rules(["weight_update_ratio:action=stop"]), kind="script", stop=asked.append)
    st = _status(runner.evaluate(finished=False), "weight_update_ratio")
    assert st["status"] == "IssuesFound" and asked and "weight_update_ratio" in asked[0]


def test_rule_parameters_override_defaults_and_arrive_as_strings(tmp_path, healthy):
    # SageMaker passes rule_parameters as strings
    st = _status(
        evaluate_rules(healthy, [{"name": "vanishing_gradient", "parameters": {"threshold": "1e9"}}], kind="script"),
        "vanishing_gradient",
    )
    assert st["status"] == "IssuesFound" and st["parameters"]["threshold"] == 1e9


def test_bad_rule_settings_are_clear():
    with pytest.raises(ConfigError, match="choose one of .*vanishing_gradient"):
        parse_rules("vanishing_gradiant")
    with pytest.raises(ConfigError, match=r"patience='soon' must be a whole number"):
        parse_rules([{"name": "overfit", "parameters": {"patience": "soon"}}])
    with pytest.raises(ConfigError, match="unknown parameter.*it takes threshold"):
        parse_rules("vanishing_gradient:treshold=1")
    with pytest.raises(ConfigError, match="action.*choose from log, stop"):
        parse_rules([{"name": "overfit", "actions": ["explode"]}])


def test_a_regex_that_matches_nothing_is_a_warning(healthy):
    st = _status(
        evaluate_rules(
            healthy, [{"name": "all_zero", "parameters": {"tensor_regex": "no_such_layer.*"}}], kind="script"
        ),
        "all_zero",
    )
    assert st["status"] == "NoData"  # nothing to judge is not "no issues found" (issue 33)
    assert any("no saved tensor matched" in w and "no_such_layer" in w for w in st["warnings"])


def test_a_custom_rule_is_a_class_with_one_method(healthy):
    class LossAboveOne(Rule):
        name = "loss_above_one"

        def check(self, ctx):
            steps, values = ctx.trial.series("CrossEntropyLoss_output_0", "TRAIN")
            bad = [(s, v) for s, v in zip(steps, values) if v > 1.0]
            return Finding(f"loss {bad[0][1]:.3f} at step {bad[0][0]}", [{"step": bad[0][0]}]) if bad else None

    st = _status(evaluate_rules(healthy, [LossAboveOne()], kind="script"), "loss_above_one")
    assert st["status"] == "IssuesFound" and st["message"].startswith("loss 1.")


def test_a_rule_that_raises_ends_in_error_not_a_crash(healthy):
    class Broken(Rule):
        name = "broken"

        def check(self, ctx):
            raise RuntimeError("bug in the rule")

    st = _status(evaluate_rules(healthy, [Broken], kind="script"), "broken")
    assert st["status"] == "Error" and "bug in the rule" in st["message"]


def test_gpu_rules_say_no_gpu_on_a_cpu(tmp_path):
    folder = run(tmp_path, "healthy", epochs=1, session_rules=["LowGPUUtilization", "LoadBalancing", "BatchSize"])
    import torch

    results = json.loads((folder / "rules.json").read_text())
    for name in ("LowGPUUtilization", "LoadBalancing", "BatchSize"):
        st = _status(results, name)
        assert st["status"] == "NoIssuesFound"
        if not torch.cuda.is_available():
            assert "GPU" in st["message"]


def test_the_docs_custom_rule_and_trial_examples_run(healthy):
    import re
    import textwrap
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "debugger.md").read_text()  # (the debugger's page of the docs)
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    rule = textwrap.dedent(next(b for b in blocks if "class LossAboveOne" in b))
    exec(rule.replace('"runs/my-job"', repr(str(healthy))), {})  # noqa: S102 - the docs' own example
    trial = textwrap.dedent(next(b for b in blocks if 'create_trial("my-job")' in b))
    trial = trial.replace('create_trial("my-job")', f"create_trial({str(healthy)!r})")
    trial = trial.replace('"val_acc"', '"CrossEntropyLoss_output_0"').replace(
        "ImageClassifier_head.layers.0.weight", "Net_fc2.weight"
    )
    exec(trial, {})  # noqa: S102


def _losses_run(folder, eval_passes):
    """A hook fed by hand: 30 falling TRAIN losses, then each pass of EVAL losses as given."""
    from visiontune.debug.hook import Hook

    hook = Hook(out_dir=folder)
    for values in eval_passes:
        hook.set_mode("TRAIN")
        for i in range(30):
            hook.begin_step()
            hook.record_step(2.0 - i * 0.01)
        hook.set_mode("EVAL")
        for v in values:
            hook.begin_step()
            hook.record_step(v)
    hook.close()
    return folder


def test_loss_not_decreasing_compares_whole_validation_passes(tmp_path):
    # every pass's last batches are harder than its first: a window of 10 steps straddling two passes rose
    # (steps 30..39 against 20..29), yet each pass's mean fell; only whole passes compare
    falling = [[0.6 - p * 0.005] * 6 + [1.2 - p * 0.005] * 6 for p in range(4)]
    quiet = _status(
        evaluate_rules(_losses_run(tmp_path / "a", falling), [{"name": "loss_not_decreasing"}], kind="script"),
        "loss_not_decreasing",
    )
    assert quiet["status"] == "NoIssuesFound", quiet
    stalled = falling[:2] + [falling[1], falling[1]]
    st = _status(
        evaluate_rules(_losses_run(tmp_path / "b", stalled), [{"name": "loss_not_decreasing"}], kind="script"),
        "loss_not_decreasing",
    )
    assert st["status"] == "IssuesFound" and "pass 3's mean" in st["message"] and "from pass 2's" in st["message"]
    assert st["evidence"][0]["pass_number"] == 3


def test_a_validation_pass_still_being_written_is_not_compared_yet(tmp_path):
    # while the job runs, the last pass may be half written (here its 3 hard first batches): no finding from
    # it then, since a finding stays found; once the job has finished it counts like any other pass
    passes_ = [[0.6 - p * 0.005] * 6 + [1.2 - p * 0.005] * 6 for p in range(2)] + [[1.19] * 3]
    folder = _losses_run(tmp_path / "run", passes_)
    running = RuleRunner(folder, parse_rules(["loss_not_decreasing", "overfit"]), kind="script", write=False)
    assert all(r["status"] != "IssuesFound" for r in running.evaluate(finished=False)["rules"])
    st = _status(evaluate_rules(folder, [{"name": "loss_not_decreasing"}], kind="script"), "loss_not_decreasing")
    assert st["status"] == "IssuesFound" and "pass 3's mean" in st["message"]


def test_a_rule_whose_collection_is_empty_reports_no_data_not_no_issues(tmp_path, healthy):
    """A run that saved no gradients (an fp16 run did, before issue 33): vanishing_gradient has nothing to judge."""
    runner = RuleRunner(
        tmp_path / "debug", parse_rules("vanishing_gradient,all_zero", "script"), kind="script", write=False
    )
    assert {r["status"] for r in runner.evaluate(finished=False)["rules"]} == {"InProgress"}  # data may still come
    results = runner.finish()
    st = _status(results, "vanishing_gradient")
    assert st["status"] == "NoData", st
    assert "no saved tensor matched collection(s) gradients" in st["message"]
    assert _status(results, "all_zero")["status"] == "NoData"
    from visiontune.debug.session import summary

    assert "2 had no data to look at (vanishing_gradient, all_zero)" in summary(results, tmp_path)
    # a collection the run did not save, on a run that saved others; the same rule on what it saved finds no issue
    spec = {"name": "exploding_tensor", "parameters": {"collection_names": "no_such_collection"}}
    assert _status(evaluate_rules(healthy, [spec], kind="script"), "exploding_tensor")["status"] == "NoData"
    assert (
        _status(evaluate_rules(healthy, ["exploding_tensor"], kind="script"), "exploding_tensor")["status"]
        == "NoIssuesFound"
    )
