"""Benchmark: would several tuning trials' heads, trained as one batched model, pay on this machine?

Issue 13 asks for trials' heads "batched into one model ... where the jobs issue runs trials". Before
building a tuner executor that runs compatible trials in lockstep, this measures what it could buy: K heads
(1280 -> 512 -> 10, dropout 0.5, AdamW, bf16 autocast on CPUs as the engine trains them) over one epoch of
10k cached-feature rows in batches of 128,

  in_turn   each head's step as the engine takes it (its modules, autograd, its optimizer), one after another
  grouped   one step for all K: the first layers as one matmul over the K heads' stacked weights, the
            second layers as one batched matmul, the K losses' gradients by hand, then each head's optimizer

and reports seconds per epoch for all K heads and ``in_turn / grouped``.  The grouped step here is a
measuring device, not the engine's code.

Run:  python benchmarks/head_group.py [--heads 1,2,4,8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from common import machine
from visiontune.runtime import autocast, keep_freed_memory, pick_device
from visiontune.zoo.heads import Head, HeadSpec, keep_mask

N, D, H, C, B = 10_000, 1280, 512, 10, 128


def make(k: int, device):
    torch.manual_seed(1)
    heads = [Head(D, HeadSpec(C, H, 0.5)).train().to(device) for _ in range(k)]
    opts = [
        torch.optim.AdamW(h.parameters(), lr=3e-3 * (i + 1), weight_decay=1e-4, fused=True) for i, h in enumerate(heads)
    ]
    return heads, opts


def in_turn(heads, opts, crit, x, y, dtype):
    for h, opt in zip(heads, opts):
        with autocast(x.device, dtype):
            logits = h(x).float()
        loss = crit(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def grouped(heads, opts, crit, x, y, dtype):
    k, low = len(heads), dtype or torch.float32
    with torch.no_grad():
        w1 = torch.cat([h.layers[0].weight for h in heads]).to(low)  # (K*H, D)
        b1 = torch.cat([h.layers[0].bias for h in heads]).to(low)
        a = torch.addmm(b1, x.to(low), w1.t()).relu_().view(len(x), k, H)  # (B, K, H)
        keep = (
            keep_mask((len(x), 1, H), 0.5)
            if x.device.type == "cpu"  # the engine's CPU mask
            else torch.rand(len(x), 1, H, device=x.device) >= 0.5
        )
        d = a * keep * 2.0
        w2 = torch.stack([h.layers[3].weight for h in heads]).to(low)  # (K, C, H)
        b2 = torch.stack([h.layers[3].bias for h in heads]).to(low)
        dk = d.transpose(0, 1)  # (K, B, H)
        out = torch.baddbmm(b2.unsqueeze(1), dk, w2.transpose(1, 2)).float()  # (K, B, C)
    leaf = out.requires_grad_()
    torch.stack([crit(leaf[i], y) for i in range(k)]).sum().backward()
    with torch.no_grad():
        g = leaf.grad.to(low)
        gw2, gb2 = torch.bmm(g.transpose(1, 2), dk).float(), g.sum(1, dtype=torch.float32)
        gd = (torch.bmm(g, w2).transpose(0, 1) * keep * 2.0).masked_fill_(a <= 0, 0).reshape(len(x), k * H)
        gw1, gb1 = gd.t().mm(x.to(low)).float(), gd.sum(0, dtype=torch.float32)
    for i, (h, opt) in enumerate(zip(heads, opts)):
        first, last = h.layers[0], h.layers[3]
        first.weight.grad, first.bias.grad = gw1[i * H : (i + 1) * H], gb1[i * H : (i + 1) * H]
        last.weight.grad, last.bias.grad = gw2[i], gb2[i]
        opt.step()


def epoch_seconds(fn, k: int, x_all, y_all, dtype) -> float:
    heads, opts = make(k, x_all.device)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    perm = torch.randperm(N, device=x_all.device)
    sync = torch.cuda.synchronize if x_all.device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for s in range(0, N - B + 1, B):
        idx = perm[s : s + B]
        fn(heads, opts, crit, x_all.index_select(0, idx), y_all.index_select(0, idx), dtype)
    sync()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", default="1,2,4,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "head_group.json"))
    args = ap.parse_args()
    keep_freed_memory()
    device = pick_device("auto")
    from visiontune.runtime import resolve_precision

    # the engine's head precision: bf16 on GPUs and on CPUs with native bf16, float32 elsewhere (emulated bf16
    # is many times slower there, and the runtime never picks it)
    dtype = resolve_precision("auto", device, training=True)  # None: float32
    x_all = torch.randn(N, D, device=device).to(dtype or torch.float32)
    y_all = torch.randint(0, C, (N,), device=device)
    results = {
        "device": device.type,
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "precision": str(dtype or torch.float32).replace("torch.", ""),
        "head": f"{D} -> {H} -> {C}, dropout 0.5, AdamW (fused)",
        "rows": N,
        "batch": B,
        "by_heads": {},
    }
    epoch_seconds(in_turn, 1, x_all, y_all, dtype)  # warm-up
    epoch_seconds(grouped, 1, x_all, y_all, dtype)
    for k in (int(v) for v in args.heads.split(",")):
        runs = {"in_turn": [], "grouped": []}
        for _ in range(args.rounds):  # interleaved: the shared machine drifts
            for name, fn in (("in_turn", in_turn), ("grouped", grouped)):
                runs[name].append(epoch_seconds(fn, k, x_all, y_all, dtype))
        med = {name: statistics.median(v) for name, v in runs.items()}
        results["by_heads"][str(k)] = {
            "in_turn_s": round(med["in_turn"], 3),
            "grouped_s": round(med["grouped"], 3),
            "in_turn_over_grouped": round(med["in_turn"] / med["grouped"], 2),
            "rounds": {n: [round(v, 3) for v in r] for n, r in runs.items()},
        }
        print(k, results["by_heads"][str(k)], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
