"""Seed 001/003's notebook code: Rule.sagemaker(rule_configs...), ProfilerRule, DebuggerHookConfig and
ProfilerConfig passed to an estimator configure the job's debugger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_folder_dataset
from visiontune.debug import create_trial, modes
from visiontune.sdk import PyTorch
from visiontune.sdk.debugger import (
    CollectionConfig,
    DebuggerHookConfig,
    FrameworkProfile,
    ProfilerConfig,
    ProfilerRule,
    Rule,
    rule_configs,
)

SCRIPTS = Path(__file__).parent / "scripts"


def test_seed_notebook_rules_and_configs_reach_the_job(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=6, split_layout=True)
    rules = [
        Rule.sagemaker(rule_configs.loss_not_decreasing()),
        ProfilerRule.sagemaker(rule_configs.LowGPUUtilization()),
        ProfilerRule.sagemaker(rule_configs.ProfilerReport()),
        Rule.sagemaker(rule_configs.vanishing_gradient()),
        Rule.sagemaker(rule_configs.overfit(), rule_parameters={"patience": "2"}),
        Rule.sagemaker(rule_configs.overtraining(), actions=rule_configs.ActionList(rule_configs.StopTraining())),
        Rule.sagemaker(rule_configs.poor_weight_initialization()),
    ]
    hook_config = DebuggerHookConfig(
        hook_parameters={"train.save_interval": "2", "eval.save_interval": "1"},
        collection_configs=[CollectionConfig("weights", {"save_interval": "3"})],
    )
    profiler_config = ProfilerConfig(
        system_monitor_interval_millis=200, framework_profile_params=FrameworkProfile(start_step=2, num_steps=2)
    )
    with pytest.warns(UserWarning, match="cloud settings"):
        est = PyTorch(
            entry_point="train_model.py",
            source_dir=str(SCRIPTS),
            hyperparameters={"epochs": 2},
            output_dir=str(tmp_path / "job"),
            role="arn:aws:iam::0:role/x",
            instance_type="ml.m5.xlarge",
            rules=rules,
            debugger_hook_config=hook_config,
            profiler_config=profiler_config,
        )
    est.fit({"train": str(data / "train"), "test": str(data / "test")}, logs=False)
    folder = tmp_path / "job" / "debug"
    results = json.loads((folder / "rules.json").read_text())
    names = [r["name"] for r in results["rules"]]
    assert names[:2] == ["loss_not_decreasing", "LowGPUUtilization"] and "StepOutlier" in names  # ProfilerReport
    overfit = next(r for r in results["rules"] if r["name"] == "overfit")
    assert overfit["parameters"]["patience"] == 2
    assert next(r for r in results["rules"] if r["name"] == "overtraining")["actions"] == ["log", "stop"]
    trial = create_trial(est.latest_training_job.name)
    assert trial.tensor("Sequential_0.weight").steps(mode=modes.TRAIN)[:2] == [0, 3]  # the collection's interval
    assert list(folder.glob("trace-worker-0-steps-2-3.json"))  # FrameworkProfile(start_step=2, num_steps=2)
