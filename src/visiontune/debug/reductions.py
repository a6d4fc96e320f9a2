"""Reductions saved instead of whole tensors: computed on the tensor's device, fetched in one transfer."""

from __future__ import annotations

import numpy as np
import torch

from visiontune.errors import ConfigError

#: Every reduction a save config may ask for.
REDUCTIONS = (
    "mean",
    "std",
    "variance",
    "min",
    "max",
    "sum",
    "l1",
    "l2",
    "abs_mean",
    "abs_min",
    "abs_max",
    "zero_fraction",
    "nonfinite",
    "histogram",
)
#: What the built-in engine and a default hook save for weights, biases and gradients.
DEFAULT = ("mean", "std", "min", "max", "l2", "abs_mean", "zero_fraction", "nonfinite")
HISTOGRAM_BINS = 20


def check(names) -> tuple[str, ...]:
    names = tuple(names)
    bad = [n for n in names if n not in REDUCTIONS]
    if bad:
        raise ConfigError(f"reduction(s) {', '.join(bad)}: choose from {', '.join(REDUCTIONS)}")
    return names


#: The raw sums every reduction is derived from, computed in a few tensor ops and fetched together.
_RAW = ("n", "sum", "sumsq", "min", "max", "abs_sum", "nonzero")


def raw_stats(t: torch.Tensor) -> torch.Tensor:
    """[n, sum, sum of squares, min, max, sum of |x|, non-zeros] of a tensor, on its device (7 numbers from
    a few ops; the reductions are derived from them on the CPU, so saving a tensor costs microseconds)."""
    x = t.detach().reshape(-1)
    if x.dtype != torch.float32:
        x = x.float()
    n = x.numel()
    if n == 0:
        return torch.tensor([0.0, 0.0, 0.0, float("nan"), float("nan"), 0.0, 0.0], device=x.device)
    mn, mx = torch.aminmax(x)
    return torch.stack(
        [x.new_tensor(float(n)), x.sum(), torch.dot(x, x), mn, mx, x.abs().sum(), torch.count_nonzero(x).to(x.dtype)]
    )


def derive(raw: list[float], names) -> dict:
    """The named reductions from :func:`raw_stats` values."""
    n, s1, s2, mn, mx, a1, nz = raw
    inf = float("inf")
    finite = all(v == v and v not in (inf, -inf) for v in (s1, s2, mn, mx))
    mean = s1 / n if n else float("nan")
    var = max(s2 / n - mean * mean, 0.0) if n and finite else float("nan")
    table = {
        "mean": lambda: mean,
        "std": lambda: var**0.5 if var == var else var,
        "variance": lambda: var,
        "min": lambda: mn,
        "max": lambda: mx,
        "sum": lambda: s1,
        "l1": lambda: a1,
        "l2": lambda: s2**0.5 if s2 == s2 and s2 >= 0 else s2,
        "abs_mean": lambda: a1 / n if n else float("nan"),
        "abs_max": lambda: max(abs(mn), abs(mx)),
        "abs_min": lambda: 0.0 if mn <= 0 <= mx else min(abs(mn), abs(mx)),  # exact only off zero
        "zero_fraction": lambda: 1 - nz / n if n else 0.0,
        "nonfinite": lambda: 0.0 if finite else 1.0,
    }
    return {name: table[name]() for name in names if name in table}


def histogram(t: torch.Tensor, bins: int = HISTOGRAM_BINS) -> dict:
    x = t.detach().float().reshape(-1)
    x = x[torch.isfinite(x)].cpu()
    if x.numel() == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(x, bins=bins, min=lo, max=hi)
    step = (hi - lo) / bins
    return {"edges": [lo + i * step for i in range(bins + 1)], "counts": [int(c) for c in counts.tolist()]}


def reduce_array(value, name: str) -> float:
    """One reduction of a whole saved value (a numpy array or a float), for ``reduction_value``."""
    if name == "histogram":
        raise ConfigError(
            "histogram is not a single value; read it with tensor.reduction_value(step, 'histogram') "
            "on a tensor saved with that reduction"
        )
    t = torch.tensor(np.array(value, dtype=np.float64))
    return float(derive(raw_stats(t).tolist(), (check([name])[0],))[name])
