"""Classification heads: linear, or hidden units + dropout (two FC layers)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from visiontune.errors import ConfigError


@dataclass(frozen=True)
class HeadSpec:
    num_classes: int
    hidden_units: int = 0
    dropout: float = 0.0

    def __post_init__(self):
        if self.num_classes < 1:
            raise ConfigError(f"num_classes={self.num_classes}: must be at least 1")
        if self.hidden_units < 0:
            raise ConfigError(f"hidden_units={self.hidden_units}: must be 0 (linear head) or more")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from 16-bit random integers (four per 64-bit draw, ``p`` rounded
    to 1/65536): on CPUs the ``bernoulli_`` that ``nn.Dropout`` draws with measured 1.6-1.9 ms for a
    128 x 512 batch, ``torch.rand`` 0.21 ms and this 0.05 ms, against a head-training step of about 1 ms.
    Same global generator (so seeded epochs still repeat), no parameters (so state dicts are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        return x * keep_mask(x.shape, self.p) * (1.0 / (1.0 - self.p))


def keep_mask(shape: tuple[int, ...], p: float) -> torch.Tensor:
    """A CPU dropout mask (True: kept, with probability 1 - p, p rounded to 1/65536) from 16-bit draws of
    the global generator, four per 64-bit random number."""
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    draws = bits.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    return draws >= round(p * 65536) - 32768


class _LowPrecisionLinear(torch.autograd.Function):
    """``x @ W.T + b`` in autocast's lower precision from float32 weights, with the weight's gradient
    computed in the weight's own (out, in) layout.  Autocast's ``linear`` yields it transposed, and casting
    that back to float32 is a strided copy: 0.2-0.25 ms of a ~1 ms step for a 1280 x 512 head on 2 CPU
    cores, against 0.03 ms for this one's contiguous cast."""

    @staticmethod
    def forward(ctx, x, weight, bias, dtype):
        x_low, w_low = x.to(dtype), weight.to(dtype)
        ctx.save_for_backward(x_low, w_low)
        ctx.x_dtype, ctx.has_bias = x.dtype, bias is not None
        if bias is None:
            return x_low.mm(w_low.t())
        return torch.addmm(bias.to(dtype), x_low, w_low.t())

    @staticmethod
    def backward(ctx, grad):
        x_low, w_low = ctx.saved_tensors
        grad = grad.to(w_low.dtype)
        gx = grad.mm(w_low).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        gw = grad.t().mm(x_low).float() if ctx.needs_input_grad[1] else None
        gb = grad.sum(0, dtype=torch.float32) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) that trains under CPU autocast through
    :class:`_LowPrecisionLinear`; everywhere else (GPUs, float32, inference, export) it is ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.dim() == 2
            and torch.is_grad_enabled()
            and self.weight.requires_grad
            and self.weight.dtype == torch.float32
            and torch.is_autocast_enabled("cpu")
        ):
            return _LowPrecisionLinear.apply(x, self.weight, self.bias, torch.get_autocast_dtype("cpu"))
        return super().forward(x)


class Head(nn.Module):
    """``Linear`` or ``Linear -> ReLU -> Dropout -> Linear``, dropout first if asked."""

    def __init__(self, in_features: int, spec: HeadSpec):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        if spec.hidden_units:
            layers += [Linear(in_features, spec.hidden_units), nn.ReLU(inplace=True)]
            if spec.dropout:
                layers.append(Dropout(spec.dropout))
            layers.append(Linear(spec.hidden_units, spec.num_classes))
        else:
            if spec.dropout:
                layers.append(Dropout(spec.dropout))
            layers.append(Linear(in_features, spec.num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)

    @property
    def last_linear(self) -> nn.Linear:
        return self.layers[-1]
