"""Benchmark: augmentation per image (torchvision v2 transforms in a Python loop, as before) against
BatchAugment (one affine grid_sample and one colour matrix per batch, on the training device).

For each policy and size: the median milliseconds per batch over interleaved rounds (the machine is
shared: compare as ratios), uint8 batch in, float batch out, on the device the engine would train on.

Run:  python benchmarks/augment.py [--rounds 7] [--out FILE]
Results go to benchmarks/results/augment.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2 as T

from common import write_results
from visiontune.data.transforms import AUGMENTATIONS, build_augmentation
from visiontune.runtime import pick_device


def per_image_policy(name: str, size: int):
    steps = [T.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), T.RandomHorizontalFlip()]
    if name in ("crop_color", "crop_color_transform"):
        steps.append(T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))
    if name == "crop_color_transform":
        steps.append(T.RandomAffine(degrees=15, shear=10, scale=(0.9, 1.1)))
    return T.Compose(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "augment.json"))
    args = ap.parse_args()
    device = pick_device("auto")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    results = {"device": device.type, "threads": torch.get_num_threads(), "rounds": args.rounds, "cases": []}
    for size, batch in ((96, 64), (224, 32)):
        x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
        for name in AUGMENTATIONS[1:]:
            old, new = per_image_policy(name, size), build_augmentation(name, size)

            def per_image():  # on the CPU, image by image, then to the device (the engine's old path)
                return torch.stack([old(img) for img in x]).to(device).float()

            def batched():  # to the device as uint8, then one batch of tensor ops there
                return new(x.to(device).float())

            times = {"per_image": [], "batched": []}
            for f in (per_image, batched):
                f()
            for _ in range(args.rounds):
                for label, f in (("per_image", per_image), ("batched", batched)):
                    sync()
                    t = time.perf_counter()
                    f()
                    sync()
                    times[label].append((time.perf_counter() - t) * 1000)
            med = {k: round(float(np.median(v)), 2) for k, v in times.items()}
            ratios = [a / b for a, b in zip(times["per_image"], times["batched"])]
            case = {
                "policy": name,
                "size": size,
                "batch": batch,
                "median_ms": med,
                "speedup_median": round(float(np.median(ratios)), 2),
                "speedup_range": [round(min(ratios), 2), round(max(ratios), 2)],
            }
            print(case, flush=True)
            results["cases"].append(case)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
