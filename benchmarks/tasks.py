"""Tasks beyond one label per image, on fashion-scenes (`visiontune data synth fashion-scenes`): what
pretrained weights are worth.

multi-label phase: mobilenet_v2 on --train scenes (+ --validation held out as the validation split; a test
split is held out of train) at --size px:
  head mode, pretrained (features cached once; 512 hidden units), with BCE, focal and asymmetric losses
  full mode, pretrained, --epochs epochs
  full mode, random init, the same epochs (the same architecture for the same time)
Reported per run: test mAP, macro and micro F1, exact match, wall seconds (the first full-mode run also
decodes the images into the pixel cache) and the median epoch time (equal time: the same epochs of the same
architecture).

detection phase: FCOS (torchvision) on mobilenet_v2 over the same scenes' boxes, AdamW 1e-3, --det-epochs epochs:
head, partial (2 stages) and full mode pretrained, full mode from random init; test mAP (0.50:0.95), mAP50, mAP75.

segmentation phase: DeepLabV3+ on mobilenet_v2 over the same scenes' masks (11 classes with the background),
joint crop/flip augmentation, AdamW 1e-3, --seg-epochs epochs each:
  head mode, pretrained encoder (frozen; the decoder learns)
  head mode, random encoder (frozen): what the pretrained features alone are worth
  full mode, pretrained
  full mode, random init, the same epochs (the same architecture for the same time)
Reported per run: test mIoU, pixel accuracy, mean class accuracy, wall seconds, median epoch time.

    python benchmarks/tasks.py [--train 2000] [--validation 400] [--size 96] [--epochs 8] [--seg-epochs 8]
                               [--det-epochs 8] [--phases multi-label,segmentation,detection] [--out benchmarks/results/tasks.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from common import chosen_phases, write_results

from visiontune.data.synth import fashion_scenes
from visiontune.train.loop import train

QUIET = dict(debugger=False, plots=False, checkpoints=False, overwrite=True)


#: what each task's rows report, from metrics.json (the first is the headline printed)
REPORTED = {
    "multi-label": ("test_mAP", "test_macro_f1", "test_micro_f1", "test_exact_match", "validation_mAP"),
    "segmentation": ("test_mIoU", "test_pixel_accuracy", "validation_mIoU"),
    "detection": ("test_mAP", "test_mAP50", "test_mAP75", "validation_mAP"),
}


def _run(name: str, data: Path, out: Path, **options) -> dict:
    t = time.perf_counter()
    r = train(data=str(data), out=str(out / name), **options, **QUIET)
    m = r.metrics
    keys = REPORTED[m["task"]]
    row = {
        **{k: round(m[k], 4) for k in keys},
        "epochs": len(r.history),
        "median_epoch_seconds": round(sorted(h["epoch_seconds"] for h in r.history)[len(r.history) // 2], 2),
        "wall_seconds": round(time.perf_counter() - t, 1),
        "counts": m["counts"],
        "options": {k: v for k, v in options.items()},
    }
    if m["task"] == "segmentation":
        row["test_mean_class_accuracy"] = round(m["evaluation"]["mean_class_accuracy"], 4)
    print(f"{name}: " + ", ".join(f"{k} {row[k]:.4f}" for k in keys[:2]) + f", {row['wall_seconds']} s", flush=True)
    return row


def phase_multi_label(scenes: Path, work: Path, args: argparse.Namespace) -> dict:
    common = dict(model="mobilenet_v2", image_size=args.size, batch_size=64, seed=args.seed)
    head = dict(mode="head", epochs=30, learning_rate=0.01, hidden_units=512, dropout=0.3, **common)
    return {
        "head, pretrained": _run("head", scenes, work, **head),
        "head, pretrained, focal loss": _run("head-focal", scenes, work, multi_label_loss="focal", **head),
        "head, pretrained, asymmetric loss": _run("head-asl", scenes, work, multi_label_loss="asymmetric", **head),
        "full, pretrained": _run("full", scenes, work, mode="full", epochs=args.epochs, **common),
        "full, random init (same epochs)": _run(
            "scratch", scenes, work, mode="full", epochs=args.epochs, pretrained=False, learning_rate=1e-3, **common
        ),
    }


def phase_segmentation(scenes: Path, work: Path, args: argparse.Namespace) -> dict:
    common = dict(
        task="segmentation",
        model="mobilenet_v2",
        image_size=args.size,
        batch_size=32,
        seed=args.seed,
        epochs=args.seg_epochs,
        learning_rate=1e-3,
        augmentation="crop",
    )
    return {
        "head, pretrained": _run("seg-head", scenes, work, mode="head", **common),
        "head, random encoder": _run("seg-head-random", scenes, work, mode="head", pretrained=False, **common),
        "full, pretrained": _run("seg-full", scenes, work, mode="full", **common),
        "full, random init (same epochs)": _run("seg-scratch", scenes, work, mode="full", pretrained=False, **common),
    }


def phase_detection(scenes: Path, work: Path, args: argparse.Namespace) -> dict:
    """FCOS on mobilenet_v2 over the scenes' boxes (10 classes), AdamW 1e-3, --det-epochs epochs each: which
    --mode to default to, and what the pretrained encoder is worth."""
    common = dict(
        task="detection",
        model="mobilenet_v2",
        image_size=args.size,
        batch_size=32,
        seed=args.seed,
        epochs=args.det_epochs,
        optimizer="adamw",
        learning_rate=1e-3,
    )
    return {
        "head, pretrained": _run("det-head", scenes, work, mode="head", **common),
        "partial (2 stages), pretrained": _run(
            "det-partial", scenes, work, mode="partial", trainable_stages=2, **common
        ),
        "full, pretrained": _run("det-full", scenes, work, mode="full", **common),
        "full, random init (same epochs)": _run("det-scratch", scenes, work, mode="full", pretrained=False, **common),
    }


PHASES: dict[str, Callable[[Path, Path, argparse.Namespace], dict]] = {
    "multi-label": phase_multi_label,
    "segmentation": phase_segmentation,
    "detection": phase_detection,
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--validation", type=int, default=400)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=8, help="full-mode epochs (pretrained and random init alike)")
    ap.add_argument("--seg-epochs", type=int, default=8, help="segmentation epochs (every run alike)")
    ap.add_argument("--det-epochs", type=int, default=8, help="detection epochs (every run alike)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of: {', '.join(PHASES)}")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "visiontune-bench-tasks"))
    ap.add_argument("--out", default="benchmarks/results/tasks.json")
    args = ap.parse_args(argv)
    phases = chosen_phases(ap, args.phases, PHASES)
    work = Path(args.work)
    t = time.perf_counter()
    scenes = work / f"scenes-{args.train}-{args.validation}-{args.size}-{args.seed}"
    built = fashion_scenes(scenes, n_train=args.train, n_validation=args.validation, size=args.size, seed=args.seed)
    for split in ("train", "validation"):  # multi-label reads the split manifests, segmentation the masks
        assert (scenes / f"{split}.manifest").exists() and (scenes / f"{split}_annotation").is_dir()
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "data": {
            "train_scenes": args.train,
            "validation_scenes": args.validation,
            "size": args.size,
            "items_per_scene": {k: round(v["items"] / v["images"], 2) for k, v in built["splits"].items()},
        },
        "scene_seconds": round(time.perf_counter() - t, 1),
    }
    for name in phases:
        results[name] = PHASES[name](scenes, work / name, args)
        results[f"{name}_data"] = results["data"]  # each phase's scenes (a later run of other phases keeps it)
    results["wall_seconds"] = round(time.perf_counter() - t, 1)
    if Path(args.out).exists():  # a run of some phases keeps the others' last results
        import json

        before = json.loads(Path(args.out).read_text())
        kept = [k for k in PHASES if k not in phases]
        results = {**{k: v for k, v in before.items() if k.removesuffix("_data") in kept}, **results}
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
