"""Heads, and the dropout that heads use, and the inference copy of a whole classifier."""

import pytest
import torch
from torch import nn

from visiontune.zoo.heads import Dropout, Head, HeadSpec, Linear
from visiontune.zoo.optimize import inference_copy
from visiontune.zoo.registry import create_model


def test_dropout_keeps_the_expected_value_and_drops_p():
    torch.manual_seed(0)
    d = Dropout(0.3).train()
    x = torch.ones(400, 500)
    y = d(x)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.01)
    kept = torch.unique(y).tolist()
    assert len(kept) == 2 and kept[0] == 0.0 and kept[1] == pytest.approx(1 / 0.7)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(d.eval()(x), x)


def test_dropout_repeats_under_the_same_seed_and_passes_gradients():
    d = Dropout(0.5).train()
    x = torch.randn(8, 16, requires_grad=True)
    torch.manual_seed(3)
    a = d(x)
    torch.manual_seed(3)
    b = d(x)
    assert torch.equal(a, b)
    a.sum().backward()
    assert torch.equal(x.grad != 0, a != 0)


def test_dropout_rounds_p_to_a_65536th():
    torch.manual_seed(1)
    y = Dropout(0.1).train()(torch.ones(1000, 1000))
    assert (y == 0).float().mean().item() == pytest.approx(0.1, abs=0.002)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_trains_under_cpu_autocast_like_nn_linear(bias):
    torch.manual_seed(0)
    ours = Linear(64, 16, bias=bias)
    plain = nn.Linear(64, 16, bias=bias)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(32, 64)
    grads = []
    for layer in (ours, plain):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", torch.bfloat16):
            out = layer(xi)
        assert out.dtype == torch.bfloat16
        (out.float() ** 2).sum().backward()
        grads.append((out.float(), xi.grad, layer.weight.grad, layer.bias.grad if bias else None))
    (o1, gx1, gw1, gb1), (o2, gx2, gw2, gb2) = grads
    assert torch.allclose(o1, o2, rtol=2e-2, atol=2e-2)
    assert gw1.dtype == torch.float32 and gw1.is_contiguous() and gw1.shape == ours.weight.shape
    assert torch.allclose(gw1, gw2, rtol=3e-2, atol=0.3)
    assert gx1.dtype == x.dtype and torch.allclose(gx1, gx2, rtol=3e-2, atol=0.3)
    if bias:
        assert torch.allclose(gb1, gb2, rtol=3e-2, atol=0.3)
    with torch.no_grad():  # outside autocast it is nn.Linear
        assert torch.equal(ours(x), plain(x))


def test_head_state_dict_matches_plain_torch_layers():
    head = Head(1280, HeadSpec(num_classes=5, hidden_units=32, dropout=0.5))
    plain = nn.Sequential(nn.Linear(1280, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5))
    assert [k.removeprefix("layers.") for k in head.state_dict()] == list(plain.state_dict())
    assert isinstance(head.layers[2], nn.Dropout)


def test_inference_copy_of_a_classifier_gives_its_logits():
    model, _, _ = create_model("mobilenet_v2", num_classes=4, hidden_units=16, dropout=0.2)
    model.eval()
    x = torch.randn(3, 3, 64, 64)
    fast, how = inference_copy(model, torch.device("cpu"), None)
    assert how.startswith("conv+bn folded")
    with torch.inference_mode():
        assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), model(x), atol=1e-4)
    assert all(not p.requires_grad for p in fast.parameters())
    assert any(p.requires_grad for p in model.parameters())  # the original is untouched
