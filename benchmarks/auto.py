"""`visiontune auto` against time budgets (issue 31): the test score it reaches and the wall time it takes,
each budget from cold caches (its own VISIONTUNE_HOME), run as a user runs it (the CLI in a fresh process).

fashion phase: Fashion-MNIST 10k train / 2k validation / 2k test (Debian's dataset-fashion-mnist; `make
fashion-mnist`), the README's hand-picked runs beside: head mode 0.887, full fine-tuning 0.925.
scenes phase: the fashion-scenes multi-label set (`visiontune data synth fashion-scenes`, 2,000 train + 400
validation scenes at 96 px, as benchmarks/tasks.py's multi-label phase; auto carves the same 10 % test split
from train), test mAP, beside tasks.py's hand-picked runs: head 0.436, full fine-tuning 0.685.

    python benchmarks/auto.py [--budgets 10m,30m] [--phases fashion,scenes] [--scenes-train 2000]
                              [--out benchmarks/results/auto.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import chosen_phases, machine, write_results

HAND_PICKED = {
    "fashion": {"head mode": 0.887, "full fine-tuning (10 epochs, 1,555 s)": 0.925},
    # benchmarks/results/tasks.json, multi-label phase: the same 2,000 + 400 scenes at 96 px, test mAP
    "scenes": {"head mode (30 epochs)": 0.4357, "full fine-tuning (8 epochs)": 0.685},
}


def _auto(data: Path, budget: str, work: Path, extra: list[str]) -> dict:
    out = work / f"auto-{budget}"
    env = {**os.environ, "VISIONTUNE_HOME": str(work / f"home-{budget}")}  # cold caches, its own job store
    cmd = [sys.executable, "-m", "visiontune.cli.main", "auto", "--data", str(data), "--time-limit", budget]
    cmd += ["--out", str(out), "--overwrite", *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    (work / f"auto-{budget}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-2000:], "wall_seconds": round(wall, 1)}
    summary = json.loads((out / "auto.json").read_text())
    board = json.loads((out / "leaderboard.json").read_text())
    from visiontune.auto.plan import parse_duration
    from visiontune.auto.report import COLUMNS

    limit = parse_duration(budget)
    return {
        "time_limit_s": limit,
        "wall_seconds": round(wall, 1),
        "wall_over_limit": round(wall / limit, 3),
        "test": summary["test"],
        "chosen": summary["chosen"],
        "decisions": summary["decisions"],
        "runs": [{k: r.get(k) for k in COLUMNS if k not in ("rank", "job")} for r in board],
    }


def phase_fashion(work: Path, args) -> dict:
    from visiontune.data.fashion_mnist import write_png_folders

    data = write_png_folders(work / "fashion-mnist", n_train=10_000, n_val=2_000, n_test=2_000)
    return {
        "data": "Fashion-MNIST 10k/2k/2k (28 px PNGs)",
        "hand_picked": HAND_PICKED["fashion"],
        "budgets": {b: _auto(data, b, work / "runs", []) for b in args.budgets},
    }


def phase_scenes(work: Path, args) -> dict:
    from visiontune.data.synth import fashion_scenes

    scenes = work / "scenes"
    fashion_scenes(scenes, n_train=args.scenes_train, n_validation=args.scenes_validation, size=96)
    return {
        "data": f"fashion-scenes multi-label, {args.scenes_train} train + {args.scenes_validation} validation scenes",
        "hand_picked": HAND_PICKED["scenes"],
        "budgets": {b: _auto(scenes, b, work / "runs", ["--task", "multi-label"]) for b in args.budgets},
    }


PHASES = {"fashion": phase_fashion, "scenes": phase_scenes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", default="fashion")
    ap.add_argument("--budgets", default="10m,30m")
    ap.add_argument("--scenes-train", type=int, default=2000)
    ap.add_argument("--scenes-validation", type=int, default=400)
    ap.add_argument("--work", default=None, help="keep the data and runs here (default: a temporary folder)")
    ap.add_argument("--out", default="benchmarks/results/auto.json")
    args = ap.parse_args()
    phases = chosen_phases(ap, args.phases, PHASES)
    args.budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vt-auto-") as tmp:
        work = Path(args.work or tmp)
        results = {"machine": machine(), **{p: PHASES[p](work / p, args) for p in phases}}
    results["wall_seconds"] = round(time.perf_counter() - t, 1)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
