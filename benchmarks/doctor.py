"""The data doctor against planted problems (issue 30), on Fashion-MNIST (Debian's dataset-fashion-mnist;
`make fashion-mnist`).

label-errors phase: --train training images and --test test images at --size px; a seeded 5 % of the
training labels flipped, half to a uniformly random other class, half to the look-alike class (T-shirt <->
shirt, pullover <-> coat, sneaker <-> ankle boot); the doctor's list scored against the flips (precision,
recall); then head-mode training (the same cached features) on the clean labels, the flipped ones and the
doctor's --fix manifest: test accuracy of each.  Timing: the doctor with a cold feature cache (its own
VISIONTUNE_HOME) against the feature extraction alone, and warm.

duplicates phase: --copies test images that are copies of training images (JPEG quality 60, resized by up to
+-15 %, a 5 % crop, a 3 degree rotation), added to the test split: the share found as train/test pairs, and
the share of reported pairs that are not planted copies.

    python benchmarks/doctor.py [--train 10000] [--test 2000] [--size 96] [--copies 200]
                                [--phases label-errors,duplicates] [--out benchmarks/results/doctor.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from common import chosen_phases, machine, write_results

LOOK_ALIKE = {0: 6, 6: 0, 2: 4, 4: 2, 7: 9, 9: 7}  # T-shirt/top, Shirt; Pullover, Coat; Sneaker, Ankle boot


def _images(work: Path, args) -> Path:
    from visiontune.data.fashion_mnist import write_png_folders

    root = write_png_folders(work / "fm", n_train=args.train, n_val=0, n_test=args.test, seed=args.seed)
    shutil.rmtree(root / "val", ignore_errors=True)  # no validation images asked for: train holds some out
    return root


def _flipped(root: Path, out: Path, share: float, seed: int) -> tuple[Path, set[str]]:
    """Split manifests of ``root`` with ``share`` of the training labels flipped; the flipped sources."""
    import dataclasses

    from visiontune.data.loading import open_dataset
    from visiontune.data.split import write_split_manifests

    ds = open_dataset(str(root))
    rng = np.random.default_rng(seed)
    train = ds.splits["train"]
    chosen = rng.permutation(len(train))[: round(share * len(train))]
    flips, changed = {}, set()
    for n, i in enumerate(chosen):
        y = int(train[i].label)
        if n % 2 == 0 and y in LOOK_ALIKE:
            new = LOOK_ALIKE[y]
        else:
            new = int((y + rng.integers(1, ds.num_classes)) % ds.num_classes)
        flips[i] = new
        changed.add(str(Path(train[i].source).resolve()))
    parts = {name: list(part) for name, part in ds.splits.items() if part}
    parts["train"] = [dataclasses.replace(s, label=flips[i]) if i in flips else s for i, s in enumerate(train)]
    write_split_manifests(ds, list(parts), list(parts.values()), out)
    return out, changed


def _head_accuracy(data: Path, out: Path, size: int, test: Path) -> float:
    """Head-mode training on ``data``, scored on ``test`` (the same test images for every run: --fix drops
    the test images it finds leaked, which would change what is measured)."""
    import visiontune as vt
    from visiontune.train.loop import train

    r = train(
        data=str(data),
        out=str(out),
        mode="head",
        epochs=15,
        image_size=size,
        batch_size=256,
        learning_rate=0.01,
        debugger=False,
        plots=False,
        checkpoints=False,
        overwrite=True,
    )
    return round(float(vt.evaluate(str(r.out), str(test), split="all").metrics["accuracy"]), 4)


def phase_label_errors(work: Path, args) -> dict:
    import visiontune as vt
    from visiontune.data.dataset import Sample
    from visiontune.probe import image_features

    root = _images(work, args)
    flipped, truth = _flipped(root, work / "flipped", 0.05, args.seed)
    os.environ["VISIONTUNE_HOME"] = str(work / "home-cold")  # a cold feature cache
    shutil.rmtree(work / "home-cold", ignore_errors=True)
    samples = [Sample(str(p), 0) for p in sorted(root.rglob("*.png"))]
    t = time.perf_counter()
    image_features(samples, "mobilenet_v2", args.size)
    extraction = time.perf_counter() - t
    shutil.rmtree(work / "home-cold", ignore_errors=True)
    t = time.perf_counter()
    r = vt.doctor(
        str(flipped), image_size=args.size, out=str(work / "doc"), fix=True, fix_confidence=args.fix_confidence
    )
    cold = time.perf_counter() - t
    t = time.perf_counter()
    vt.doctor(str(flipped), image_size=args.size)
    warm = time.perf_counter() - t
    listed = {str(Path(d["source"]).resolve()) for d in r.findings["label_issues"]}
    hits = len(listed & truth)
    out = {
        "images": len(samples),
        "flipped": len(truth),
        "listed": len(listed),
        "precision": round(hits / max(1, len(listed)), 4),
        "recall": round(hits / max(1, len(truth)), 4),
        "fixed": r.findings.get("fixed"),
        "seconds": {
            "feature_extraction": round(extraction, 1),
            "doctor_cold": round(cold, 1),
            "doctor_warm": round(warm, 1),
        },
        "cold_over_extraction": round(cold / extraction, 2),
    }
    print(f"label errors: precision {out['precision']}, recall {out['recall']}; {out['seconds']}", flush=True)
    out["test_accuracy"] = {
        "clean labels": _head_accuracy(root, work / "m-clean", args.size, root / "test"),
        "5% flipped": _head_accuracy(flipped, work / "m-flipped", args.size, root / "test"),
        "doctor --fix": _head_accuracy(work / "doc" / "fixed", work / "m-fixed", args.size, root / "test"),
    }
    acc = out["test_accuracy"]
    cost = acc["clean labels"] - acc["5% flipped"]
    out["share_of_the_cost_recovered"] = (
        round((acc["doctor --fix"] - acc["5% flipped"]) / cost, 3) if cost > 0 else None
    )
    print(f"test accuracy: {acc}", flush=True)
    return out


def _copy(src: Path, dest: Path, rng) -> None:
    from PIL import Image

    im = Image.open(src).convert("RGB")
    w, h = im.size
    im = im.rotate(3, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    dx, dy = round(0.05 * w), round(0.05 * h)
    im = im.crop((int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1)), w - dx, h - dy))
    scale = rng.uniform(0.85, 1.15)
    im = im.resize((max(8, round(im.width * scale)), max(8, round(im.height * scale))))
    im.save(dest, quality=60)


def phase_duplicates(work: Path, args) -> dict:
    import visiontune as vt

    root = _images(work, args)
    data = work / "dups"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(root, data, ignore=shutil.ignore_patterns(".complete"))
    rng = np.random.default_rng(args.seed + 1)
    train = sorted((data / "train").rglob("*.png"))
    planted = {}
    for i in rng.permutation(len(train))[: args.copies]:
        src = train[i]
        dest = data / "test" / src.parent.name / f"copy_of_{src.stem}.jpg"
        _copy(src, dest, rng)
        planted[str(dest)] = str(src)
    t = time.perf_counter()
    r = vt.doctor(str(data), image_size=args.size, out=str(work / "doc-dups"))
    seconds = time.perf_counter() - t
    pairs = r.findings["duplicates"]
    found = {
        d["a"] if d["a"] in planted else d["b"]
        for d in pairs
        if planted.get(d["a"]) == d["b"] or planted.get(d["b"]) == d["a"]
    }
    wrong = [d for d in pairs if planted.get(d["a"]) != d["b"] and planted.get(d["b"]) != d["a"]]
    by_kind = {k: sum(d["kind"] == k for d in pairs) for k in ("exact", "copy", "near")}
    out = {
        "planted": len(planted),
        "found": len(found),
        "recall": round(len(found) / max(1, len(planted)), 4),
        "pairs_reported": len(pairs),
        "pairs_not_planted": len(wrong),
        "share_not_planted": round(len(wrong) / max(1, len(pairs)), 4),
        "pairs_by_kind": by_kind,
        "leak": r.findings.get("leak"),
        "seconds": round(seconds, 1),
    }
    print(f"duplicates: {out}", flush=True)
    return out


PHASES: dict[str, Callable[[Path, argparse.Namespace], dict]] = {
    "label-errors": phase_label_errors,
    "duplicates": phase_duplicates,
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=2_000)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--fix-confidence", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of: {', '.join(PHASES)}")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "visiontune-bench-doctor"))
    ap.add_argument("--out", default="benchmarks/results/doctor.json")
    args = ap.parse_args(argv)
    phases = chosen_phases(ap, args.phases, PHASES)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "options": vars(args)}
    for name in phases:
        results[name] = PHASES[name](work, args)
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
