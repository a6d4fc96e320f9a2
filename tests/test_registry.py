"""visiontune.registry.Registry, the one registry of every extension point (issue 33, item 2): built-ins load
before anything registers, loaded is marked only when they loaded, and the model zoo is one of them."""

from __future__ import annotations

import threading
import time

import pytest

from visiontune.errors import ConfigError
from visiontune.registry import Registry


def _with_builtins(calls: list | None = None, fail_once: list | None = None) -> Registry:
    def load():
        if calls is not None:
            calls.append(1)
        reg.register("builtin-a", "a")
        reg.register("builtin-b", "b")
        if fail_once:
            fail_once.pop()
            raise RuntimeError("a built-in failed to import")

    reg: Registry[str] = Registry("widget", load)
    return reg


def test_register_loads_the_builtins_first_and_refuses_their_names():
    calls: list = []
    reg = _with_builtins(calls)
    reg.register("mine", "c")
    assert reg.names() == ["a", "b", "c"] and calls == [1]
    reg2 = _with_builtins()
    with pytest.raises(ConfigError, match="a widget named 'a' is already registered"):
        reg2.register("impostor", "a")
    assert reg2.names() == ["a", "b"] and reg2.get("a") == "builtin-a"  # whole, not half-loaded


def test_a_failed_load_is_not_marked_loaded_and_leaves_nothing_behind():
    reg = _with_builtins(fail_once=[True])
    with pytest.raises(RuntimeError, match="failed to import"):
        reg.names()
    assert reg._items == {}  # noqa: SLF001 - what the failed load registered is gone
    assert reg.names() == ["a", "b"]  # tried again at the next use, and whole
    assert "a" in reg and list(reg) == ["builtin-a", "builtin-b"]


def test_get_names_the_choices_and_a_close_match():
    reg = _with_builtins()
    with pytest.raises(ConfigError, match=r"widget 'A ': did you mean 'a'\? choose one of a, b|widget 'A '.*a, b"):
        reg.get("A ")
    with pytest.raises(ConfigError, match="needs a name"):
        reg.register(object())


def test_builtins_load_once_across_threads():
    calls: list = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        reg.register(1, "one")

    reg: Registry[int] = Registry("number", slow)
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(reg.names())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and seen == [["one"]] * 8  # nobody saw a half-loaded registry


def test_a_rule_named_like_a_builtin_is_refused_and_the_rules_stay_whole(monkeypatch):
    from visiontune.debug.rules import Rule, registry

    rules = Registry("rule", registry._builtins)  # a fresh registry, as in a new process: nothing loaded yet
    monkeypatch.setattr(registry, "RULES", rules)

    class Impostor(Rule):
        name = "loss_not_decreasing"

    with pytest.raises(ConfigError, match="a rule named 'loss_not_decreasing' is already registered"):
        rules.register(Impostor)
    assert len(rules.names()) >= 20 and rules.get("loss_not_decreasing") is not Impostor
    assert len(rules.names()) == len(set(rules.names()))


def test_registering_a_model_keeps_the_zoo(monkeypatch):
    from visiontune.zoo import registry as zoo
    from visiontune.zoo.spec import ModelSpec

    monkeypatch.setattr(zoo, "MODELS", Registry("model", zoo._builtins))  # a fresh zoo, as in a new process
    mine = ModelSpec(name="my_resnet", library="torchvision", arch="resnet18")
    assert zoo.register_model(mine) is mine
    names = [m.name for m in zoo.list_models()]
    assert names[0] == "mobilenet_v2" and names[-1] == "my_resnet" and "efficientnet_lite0" in names
    spec = zoo.get_model_spec("mobilenet_v2")
    assert spec.weights.source.startswith("package:"), spec.weights  # its offline weights, not the hub's
    assert zoo.get_model_spec("my_resnet") is mine
    with pytest.raises(ConfigError, match="a model named 'mobilenet_v2' is already registered"):
        zoo.register_model(ModelSpec(name="mobilenet_v2", library="torchvision", arch="resnet18"))
