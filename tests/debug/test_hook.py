"""The hook API: modes and steps, save configs per mode, collections, reductions, smdebug's JSON config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from visiontune.debug import Hook, SaveConfig, SaveConfigMode, create_trial, get_hook, modes
from visiontune.debug.config import HookConfig
from visiontune.errors import ConfigError


def _loop(hook, net, steps=6, mode=modes.TRAIN):
    hook.set_mode(mode)
    crit = nn.MSELoss()
    hook.register_loss(crit) if mode == modes.TRAIN else None
    for _ in range(steps):
        out = net(torch.randn(4, 3))
        loss = crit(out, torch.zeros_like(out))
        if mode == modes.TRAIN:
            loss.backward()


def test_steps_count_forward_passes_per_mode(tmp_path):
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    hook = Hook(out_dir=tmp_path, save_config=SaveConfig(save_interval=2))
    hook.register_module(net)
    _loop(hook, net, 6, modes.TRAIN)
    _loop(hook, net, 3, modes.EVAL)
    hook.close()
    trial = create_trial(tmp_path)
    assert trial.steps(mode=modes.TRAIN) == list(range(6))
    assert trial.steps(mode=modes.EVAL) == [0, 2]  # steps where something was saved (save_interval=2)
    assert trial.steps() == [0, 1, 2, 3, 4, 5, 6, 8]
    assert trial.mode(8) == modes.EVAL
    assert trial.tensor("Sequential_0.weight").steps(mode=modes.TRAIN) == [0, 2, 4]  # save_interval=2
    assert trial.tensor("gradient/Sequential_0.weight").steps(mode=modes.TRAIN) == [0, 2, 4]
    assert trial.tensor("MSELoss_output_0").steps(mode=modes.TRAIN) == list(range(6))  # losses: every step


def test_per_mode_save_configs_and_step_ranges(tmp_path):
    cfg = SaveConfig(
        mode_save_configs={
            modes.TRAIN: SaveConfigMode(save_interval=1, start_step=2, end_step=4),
            modes.EVAL: SaveConfigMode(save_steps=(1,)),
        }
    )
    net = nn.Linear(3, 2)
    hook = Hook(out_dir=tmp_path, save_config=cfg)
    hook.register_module(net)
    _loop(hook, net, 6)
    _loop(hook, net, 3, modes.EVAL)
    hook.close()
    t = create_trial(tmp_path).tensor("Linear_weight")
    assert t.steps(mode=modes.TRAIN) == [2, 3]
    assert t.steps(mode=modes.EVAL) == [1]


def test_save_tensor_records_every_epoch_whatever_the_interval(tmp_path):
    """Seed 004's failure: per-epoch values saved at steps the save interval skipped.  Here they are kept."""
    net = nn.Linear(3, 2)
    hook = Hook(out_dir=tmp_path, save_config=SaveConfig(save_interval=500))
    hook.register_module(net)
    for epoch in range(4):
        _loop(hook, net, 7)
        hook.save_tensor("epochs_accuracy", torch.tensor(0.5 + epoch / 10))
        _loop(hook, net, 2, modes.EVAL)
        hook.save_tensor("epochs_accuracy", torch.tensor(0.4 + epoch / 10))
    hook.close()
    acc = create_trial(tmp_path).tensor("epochs_accuracy")
    assert acc.steps(mode=modes.TRAIN) == [6, 13, 20, 27]
    assert [round(float(v), 3) for v in acc.values(mode=modes.EVAL).values()] == [0.4, 0.5, 0.6, 0.7]


def test_a_collection_with_a_save_config_follows_it(tmp_path):
    hook = Hook(out_dir=tmp_path)
    hook.get_collection("sparse").save_config = SaveConfig(save_interval=3)
    for i in range(7):
        hook.save_tensor("x", float(i), "sparse")  # no model: each repeated name is a new step
    hook.close()
    assert create_trial(tmp_path).tensor("x").steps(mode=modes.GLOBAL) == [0, 3, 6]


def test_reductions_match_numpy(tmp_path):
    hook = Hook(out_dir=tmp_path)
    coll = hook.get_collection("custom")
    coll.reductions = ("mean", "std", "min", "max", "l2", "abs_mean", "zero_fraction", "histogram")
    coll.save_config = SaveConfig(save_interval=1)
    x = torch.tensor([[-2.0, 0.0, 1.0], [3.0, 0.0, 4.0]])
    hook.save_tensor("t", x, "custom")
    hook.close()
    t = create_trial(tmp_path).tensor("t")
    a = x.numpy()
    for name, want in {
        "mean": a.mean(),
        "std": a.std(),
        "min": a.min(),
        "max": a.max(),
        "l2": np.linalg.norm(a),
        "abs_mean": np.abs(a).mean(),
        "zero_fraction": 2 / 6,
    }.items():
        assert t.reduction_value(0, name) == pytest.approx(want, rel=1e-6), name
    assert sum(t.reduction_value(0, "histogram")["counts"]) == 6
    with pytest.raises(Exception, match="saved as reductions"):
        t.value(0)


def test_whole_values_give_any_reduction_on_demand(tmp_path):
    hook = Hook(out_dir=tmp_path)
    hook.save_tensor("v", np.array([3.0, -4.0]))
    hook.close()
    t = create_trial(tmp_path).tensor("v")
    assert t.reduction_value(0, "l2") == pytest.approx(5.0)
    assert t.reduction_value(0, "max", abs=True) == pytest.approx(4.0)


def test_activations_dead_units_and_inputs_are_recorded(tmp_path):
    torch.manual_seed(0)  # the two live units must fire on some of the 4 random inputs (flaky unseeded)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[0].bias[:6] = -100.0  # 6 of 8 units never fire
    hook = Hook(out_dir=tmp_path, save_config=SaveConfig(save_interval=1))
    hook.register_module(net)
    _loop(hook, net, 2)
    hook.close()
    trial = create_trial(tmp_path)
    relu = trial.tensor_names(collection="relu_output")
    assert relu == ["Sequential_1_output_0"]
    assert trial.tensor(relu[0]).reduction_value(0, "dead_fraction", mode=modes.TRAIN) == pytest.approx(0.75)
    assert trial.tensor_names(collection="inputs") == ["Sequential_input_0"]


def test_smdebug_json_config_as_sagemaker_writes_it(tmp_path):
    raw = {
        "LocalPath": str(tmp_path / "out"),
        "HookParameters": {"save_interval": "3", "eval.save_interval": "1"},
        "CollectionConfigurations": [
            {"CollectionName": "weights", "CollectionParameters": {"save_interval": "2", "reductions": "mean,max"}},
            {"CollectionName": "custom_relu", "CollectionParameters": {"include_regex": ".*relu.*"}},
        ],
    }
    path = tmp_path / "debughookconfig.json"
    path.write_text(json.dumps(raw))
    hook = Hook.create_from_json_file(str(path))
    assert hook.collections["weights"].reductions == ("mean", "max")
    assert hook.collections["weights"].save_config.should_save(modes.TRAIN, 4)
    assert hook.collections["gradients"].save_config.modes[modes.EVAL].save_interval == 1
    assert "custom_relu" in hook.included
    assert get_hook() is hook
    hook.close()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"LocalPath": "x", "HookParameters": {"save_interval": "often"}}))
    with pytest.raises(ConfigError, match="save_interval='often' is not a whole number"):
        HookConfig.from_json_file(bad)
    with pytest.raises(ConfigError, match="no debugger hook config here"):
        HookConfig.from_json_file(tmp_path / "missing.json")


def test_a_profiled_step_range_writes_a_perfetto_trace(tmp_path):
    net = nn.Linear(3, 2)
    hook = Hook(out_dir=tmp_path, profile_steps="2:3")
    hook.register_module(net)
    _loop(hook, net, 6)
    hook.close()
    trace = tmp_path / "trace-worker-0-steps-2-3.json"
    assert trace.is_file() and "traceEvents" in json.loads(trace.read_text())


def test_a_hooked_model_can_be_pickled_whole(tmp_path):
    """issue 27: ``torch.save(model, path)`` after ``hook.register_hook(model)`` (the seeds' pattern): the
    hook's torch hooks pickle, its files/locks do not; the loaded copy runs and records nothing."""
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Sigmoid(), nn.Linear(5, 2))
    hook = Hook(
        out_dir=tmp_path / "debug",
        save_config=SaveConfig(save_interval=1),
        include_collections=["weights", "gradients", "losses", "activations", "relu_output"],
    )
    hook.register_hook(net)
    _loop(hook, net, 3)
    torch.save(net, tmp_path / "model.pth")  # TypeError: cannot pickle '_thread.lock' object before
    loaded = torch.load(tmp_path / "model.pth", weights_only=False)
    assert loaded(torch.randn(2, 3)).shape == (2, 2)
    _loop(hook, net, 2)  # the original hook goes on saving
    hook.close()
    trial = create_trial(tmp_path / "debug")
    assert trial.tensor("MSELoss_output_0").steps(mode=modes.TRAIN) == list(range(5))


def test_a_scripts_hook_records_the_loss_without_register_loss(tmp_path):
    """issue 27: SageMaker's containers recorded ``CrossEntropyLoss_output_0`` for scripts that never call
    ``register_loss`` (the loss module called by the script, outside the model)."""
    path = tmp_path / "debughookconfig.json"
    path.write_text(json.dumps({"LocalPath": str(tmp_path / "out")}))
    hook = Hook.create_from_json_file(str(path))
    net = nn.Linear(3, 4)
    hook.register_hook(net)
    crit = nn.CrossEntropyLoss()
    losses = []
    for mode, steps in ((modes.TRAIN, 4), (modes.EVAL, 2)):
        hook.set_mode(mode)
        for _ in range(steps):
            loss = crit(net(torch.randn(5, 3)), torch.randint(0, 4, (5,)))
            losses.append(loss.item())
    mse = nn.MSELoss()
    hook.register_loss(mse)  # registered explicitly: saved once, by register_loss
    mse(net(torch.randn(2, 3)), torch.zeros(2, 4))
    hook.close()
    trial = create_trial(tmp_path / "out")
    t = trial.tensor("CrossEntropyLoss_output_0")
    assert t.steps(mode=modes.TRAIN) == [0, 1, 2, 3] and t.steps(mode=modes.EVAL) == [0, 1]
    assert [t.value(s, mode=modes.TRAIN) for s in range(4)] == pytest.approx(losses[:4], rel=1e-6)
    assert len(trial.tensor("MSELoss_output_0").steps(mode=modes.EVAL)) == 1


def test_a_losses_collection_config_applies_its_save_interval(tmp_path):
    """issue 27: ``CollectionConfig(name="losses", parameters={"save_interval": "2"})`` as notebooks pass it."""
    path = tmp_path / "debughookconfig.json"
    path.write_text(
        json.dumps(
            {
                "LocalPath": str(tmp_path / "out"),
                "CollectionConfigurations": [
                    {"CollectionName": "losses", "CollectionParameters": {"save_interval": "2"}}
                ],
            }
        )
    )
    hook = Hook.create_from_json_file(str(path))
    net = nn.Linear(3, 2)
    hook.register_hook(net)
    hook.set_mode(modes.TRAIN)
    crit = nn.CrossEntropyLoss()
    for _ in range(6):
        crit(net(torch.randn(4, 3)), torch.randint(0, 2, (4,)))
    hook.close()
    assert create_trial(tmp_path / "out").tensor("CrossEntropyLoss_output_0").steps(mode=modes.TRAIN) == [0, 2, 4]


def test_collections_the_config_names_are_saved_whole(tmp_path):
    """issue 27: ``CollectionConfig(name="weights")`` / ``"gradients"`` in a notebook, then ``.value(step)``."""
    path = tmp_path / "debughookconfig.json"
    path.write_text(
        json.dumps(
            {
                "LocalPath": str(tmp_path / "out"),
                "HookParameters": {"save_interval": "2"},
                "CollectionConfigurations": [{"CollectionName": "weights"}, {"CollectionName": "gradients"}],
            }
        )
    )
    hook = Hook.create_from_json_file(str(path))
    net = nn.Linear(3, 2, bias=False)
    hook.register_hook(net)
    hook.set_mode(modes.TRAIN)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen = []
    for _ in range(4):
        seen.append(net.weight.detach().clone())
        opt.zero_grad()
        net(torch.randn(4, 3)).sum().backward()
        opt.step()
    hook.close()
    trial = create_trial(tmp_path / "out")
    w = trial.tensor("Linear_weight")
    assert w.steps(mode=modes.TRAIN) == [0, 2]
    np.testing.assert_allclose(w.value(2, mode=modes.TRAIN), seen[2].numpy(), rtol=1e-6)
    assert w.reduction_value(2, "mean", mode=modes.TRAIN) == pytest.approx(float(seen[2].mean()), rel=1e-5)
    assert trial.tensor("gradient/Linear_weight").value(0, mode=modes.TRAIN).shape == (2, 3)
