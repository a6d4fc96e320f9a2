"""Benchmark: a 20-trial tuning job of the built-in engine against the same 20 configurations run as
independent seed-style scripts (frozen backbone re-run every epoch, as seeds 001/004 tune).

Fashion-MNIST PNG class folders (10k train, 2k val, 2k test) at 96 px, mobilenet_v2 in head mode, 10 epochs;
ranges: learning_rate (log 1e-4..1e-1), batch_size {64, 128, 256}, hidden_units {0, 256, 512}, dropout 0..0.5.

Phases (each with cold caches, a fresh VISIONTUNE_HOME):
  one     a 1-trial tuning job of the same configuration (what "one trial" costs, feature extraction included)
  tune    the 20-trial tuning job: Hyperband (TPE sampling, epochs as the resource), 2 trials at a time
  seeds   the tune phase's 20 configurations, each as its own `python seed_hpo.py --name value ...` process,
          all epochs (no early stopping, as the seeds ran); best first.  --seed-runs N runs only the N best
          configurations and estimates the rest from the measured seconds per epoch (said so in the JSON)

Run:  python benchmarks/tune.py [--phases one,tune,seeds] [--seed-runs 20]
Results: benchmarks/results/tune.json (updated after each phase).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RANGES = {
    "learning_rate": {"type": "continuous", "min": 1e-4, "max": 1e-1, "scaling": "Logarithmic"},
    "batch_size": [64, 128, 256],
    "hidden_units": [0, 256, 512],
    "dropout": {"type": "continuous", "min": 0.0, "max": 0.5},
}
FIXED = {"model": "mobilenet_v2", "mode": "head", "epochs": 10, "image_size": 96, "label_smoothing": 0.1}


def tuning(data: Path, work: Path, name: str, max_jobs: int, parallel: int, strategy: str) -> dict:
    """A tuning job in its own process (as a user runs it), cold caches; returns the timings and the board."""
    import yaml

    home = work / f"home-{name}"
    cfg = {
        "name": name,
        "train": {"data": str(data), **FIXED},
        "objective": {"metric": "validation:accuracy"},
        "ranges": RANGES,
        "strategy": strategy,
        "max_jobs": max_jobs,
        "max_parallel_jobs": parallel,
        "seed": 0,
        "output": str(work / name),
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "VISIONTUNE_HOME": str(home)}
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "visiontune.cli.main", "tune", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(r.stdout[-3000:] + r.stderr[-3000:])
    board = json.loads((work / name / "leaderboard.json").read_text())
    os.environ["VISIONTUNE_HOME"] = str(home)
    from visiontune.jobs import JobStore

    store = JobStore(f"sqlite:///{home / 'visiontune.db'}")
    for row in board:
        job = store.get_job(row["TrainingJobName"])
        row["test_accuracy"] = job.final_metrics.get("test_accuracy")
        row["epochs_run"] = len(store.metrics(job.name).get("val_acc", []))
    best = board[0]
    return {
        "wall_s": round(wall, 2),
        "trials": len(board),
        "strategy": strategy,
        "parallel": parallel,
        "best": {k: best[k] for k in (*RANGES, "TrainingJobName", "FinalObjectiveValue", "test_accuracy")},
        "epochs_run_total": sum(r["epochs_run"] for r in board),
        "completed": sum(r["TrainingJobStatus"] == "Completed" for r in board),
        "stopped_early": sum(r["TrainingJobStatus"] == "Stopped" for r in board),
        "leaderboard": board,
    }


def seeds(data: Path, board: list[dict], runs: int) -> dict:
    """The same configurations as seed-style scripts, best first; the first ``runs`` measured."""
    rows = []
    for i, cfg in enumerate(board):
        hps = {k: cfg[k] for k in RANGES}
        row = {**hps, "visiontune_val_accuracy": cfg["FinalObjectiveValue"]}
        if i < runs:
            args = [
                f"--{k}={v}"
                for k, v in {
                    **hps,
                    "epochs": FIXED["epochs"],
                    "label_smoothing": FIXED["label_smoothing"],
                    "image_size": FIXED["image_size"],
                }.items()
            ]
            t = time.perf_counter()
            r = subprocess.run(
                [sys.executable, str(HERE / "seed_hpo.py"), "--data", str(data), *args], capture_output=True, text=True
            )
            wall = time.perf_counter() - t
            if r.returncode:
                raise SystemExit(r.stderr[-3000:])
            result = json.loads(r.stdout.strip().splitlines()[-1])
            row.update(
                measured=True,
                wall_s=round(wall, 2),
                test_accuracy=result["test_accuracy"],
                val_accuracy=result["val_accuracy"],
                epoch_seconds=result["epoch_seconds"],
            )
            print("seed-style", i, row["wall_s"], row["test_accuracy"], flush=True)
        rows.append(row)
    measured = [r for r in rows if r.get("measured")]
    per_epoch = sum(sum(r["epoch_seconds"]) for r in measured) / sum(len(r["epoch_seconds"]) for r in measured)
    overhead = sum(r["wall_s"] - sum(r["epoch_seconds"]) for r in measured) / len(measured)
    for r in rows:
        if not r.get("measured"):
            r.update(measured=False, wall_s=round(FIXED["epochs"] * per_epoch + overhead, 2))
    return {
        "configurations": len(rows),
        "measured_runs": len(measured),
        "wall_s_measured": round(sum(r["wall_s"] for r in measured), 2),
        "wall_s_total": round(sum(r["wall_s"] for r in rows), 2),
        "wall_s_total_is_estimated": len(measured) < len(rows),
        "seconds_per_epoch": round(per_epoch, 2),
        "startup_and_test_s": round(overhead, 2),
        "best_test_accuracy": max(r["test_accuracy"] for r in measured),
        "runs": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phases", default="one,tune,seeds")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--strategy", default="Hyperband")
    ap.add_argument("--seed-runs", type=int, default=20)
    ap.add_argument(
        "--image-size",
        type=int,
        default=96,
        help="the images' size (96 as specified; larger sizes show trials where extraction dominates)",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "tune.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (data, stores, trials) to look into")
    args = ap.parse_args()
    FIXED["image_size"] = args.image_size
    from visiontune.data.fashion_mnist import write_png_folders

    work = Path(tempfile.mkdtemp(prefix="vt-tune-bench-"))
    data = write_png_folders(work / "fashion-mnist", n_train=10_000, n_val=2_000, n_test=2_000)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    import torch

    import visiontune

    results["machine"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "visiontune": visiontune.__version__,
        "cuda": torch.cuda.is_available(),
    }
    results["setup"] = {"fixed": FIXED, "ranges": RANGES, "data": "Fashion-MNIST 10k/2k/2k PNG"}
    for phase in args.phases.split(","):
        if phase == "one":
            results["one"] = tuning(data, work, "one-trial", 1, 1, args.strategy)
        elif phase == "tune":
            results["tune"] = tuning(data, work, "twenty-trials", args.trials, args.parallel, args.strategy)
        elif phase == "seeds":
            results["seeds"] = seeds(data, results["tune"]["leaderboard"], args.seed_runs)
        print(
            phase, json.dumps({k: v for k, v in results[phase].items() if k not in ("leaderboard", "runs")}), flush=True
        )
        _ratios(results)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))
    if args.keep:
        print("work folder kept:", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results.get("ratios"), indent=2))


def _ratios(r: dict) -> None:
    ratios = {}
    if "one" in r and "tune" in r:
        ratios["twenty_trials_over_one"] = round(r["tune"]["wall_s"] / r["one"]["wall_s"], 2)
    if "seeds" in r and "tune" in r:
        ratios["seeds_over_tuning_wall"] = round(r["seeds"]["wall_s_total"] / r["tune"]["wall_s"], 1)
        ratios["best_test_accuracy_visiontune"] = r["tune"]["best"]["test_accuracy"]
        ratios["best_test_accuracy_seeds"] = r["seeds"]["best_test_accuracy"]
    r["ratios"] = ratios


if __name__ == "__main__":
    main()
