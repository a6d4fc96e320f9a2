"""The debugger's cost: training step time with the default hook + rules + profiler vs. without.

Fashion-MNIST (Debian's dataset-fashion-mnist or the quickstart's download), mobilenet_v2:
  head mode: 10k training images, cached features, linear head, batch 64;
  full mode: 1024 training images at 64 px, batch 64.
Runs alternate off/on (the machine is shared and noisy) and the figure is the ratio of median step times,
a step's time being an epoch's training time over its steps, epochs after the first.

    python benchmarks/debug_overhead.py [--reps 3] [--out benchmarks/results/debug_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from visiontune.train.loop import train as engine_train
from visiontune.data.fashion_mnist import write_png_folders

MODES = {
    "head": dict(mode="head", image_size=96, epochs=6, batch_size=64, n_train=10_000),
    "full": dict(mode="full", image_size=64, epochs=3, batch_size=64, n_train=1_024),
}


def step_times(result, batch_size: int) -> list[float]:
    n = result.metrics["counts"]["train"]
    steps = -(-n // batch_size)
    return [row["train_seconds"] / steps for row in result.history[1:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="head,full")
    ap.add_argument("--out", default="benchmarks/results/debug_overhead.json")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="vt-dbg-bench-"))
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "reps": args.reps,
        "modes": {},
    }
    for name in args.modes.split(","):
        m = dict(MODES[name])
        n_train = m.pop("n_train")
        data = write_png_folders(work / f"fm-{n_train}", n_train=n_train, n_val=500, n_test=500)
        # one warm-up run fills the pixel / feature caches, so every timed run reads the same cache
        engine_train(
            data=str(data),
            out=str(work / f"warm-{name}"),
            **{**m, "epochs": 1},
            debugger=False,
            overwrite=True,
            plots=False,
            checkpoints=False,
        )
        times: dict[str, list[float]] = {"off": [], "on": []}
        walls: dict[str, list[float]] = {"off": [], "on": []}
        for rep in range(args.reps):
            for state in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                out = work / f"{name}-{state}-{rep}"
                t = time.perf_counter()
                r = engine_train(
                    data=str(data),
                    out=str(out),
                    **m,
                    debugger=state == "on",
                    overwrite=True,
                    plots=False,
                    checkpoints=False,
                )
                walls[state].append(time.perf_counter() - t)
                times[state] += step_times(r, m["batch_size"])
                print(
                    f"{name} rep {rep} debugger {state}: median step {statistics.median(step_times(r, m['batch_size'])) * 1e3:.2f} ms, "
                    f"run {walls[state][-1]:.1f} s",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
        off, on = statistics.median(times["off"]), statistics.median(times["on"])
        results["modes"][name] = {
            "settings": {**m, "n_train": n_train},
            "step_ms_off": round(off * 1e3, 3),
            "step_ms_on": round(on * 1e3, 3),
            "overhead": round(on / off - 1, 4),
            "run_seconds_off": [round(w, 2) for w in walls["off"]],
            "run_seconds_on": [round(w, 2) for w in walls["on"]],
            "step_ms_samples": {k: [round(v * 1e3, 3) for v in vs] for k, vs in times.items()},
        }
        print(json.dumps({name: {k: results["modes"][name][k] for k in ("step_ms_off", "step_ms_on", "overhead")}}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
