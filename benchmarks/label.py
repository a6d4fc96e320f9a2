"""Labeling benchmark: consolidation of simulated workers' answers (Dawid-Skene EM vs majority vote).

Simulated workers of known quality label Fashion-MNIST's real classes (Debian's dataset-fashion-mnist or
the quickstart's download; synthetic classes with a note when neither is there): each answers right with its
accuracy, else a random other class; one adversarial worker answers (truth + 1) mod 10.  Two scenarios:
every worker answers every image, and 3 random workers per image (as Ground Truth assigns them).

    python benchmarks/label.py [--items 20000] [--seed 0] [--out benchmarks/results/label.json]

The active-learning simulation (--auto-label) is a later phase of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from visiontune.label.consolidate import dawid_skene, majority_vote

WORKERS = {"w90": 0.9, "w80": 0.8, "w70": 0.7, "w60": 0.6, "adversary": None}


def fashion_labels(n: int, seed: int) -> tuple[np.ndarray, str]:
    try:
        from visiontune.data.fashion_mnist import FILES, locate, read_idx

        labels = read_idx(locate() / FILES["train-labels"]).astype(np.int64)
        rng = np.random.default_rng(seed)
        return labels[rng.permutation(len(labels))[:n]], "Fashion-MNIST training labels"
    except Exception as e:  # noqa: BLE001 - the simulation only needs realistic class frequencies
        print(f"note: Fashion-MNIST not found ({e}); using uniform synthetic labels")
        return np.random.default_rng(seed).integers(0, 10, n), "synthetic uniform labels"


def simulate(truth: np.ndarray, per_image: int | None, seed: int, k: int = 10) -> list[tuple[int, str, int]]:
    rng = np.random.default_rng(seed + 1)
    names = list(WORKERS)
    answers = []
    for i, t in enumerate(truth):
        who = names if per_image is None else list(rng.choice(names, per_image, replace=False))
        for w in who:
            acc = WORKERS[w]
            if acc is None:
                label = (t + 1) % k
            elif rng.random() < acc:
                label = t
            else:
                label = rng.choice([c for c in range(k) if c != t])
            answers.append((i, str(w), int(label)))
    return answers


def consolidation(truth: np.ndarray, seed: int) -> dict:
    out = {}
    for scenario, per_image in (("every worker answers every image", None), ("3 random workers per image", 3)):
        answers = simulate(truth, per_image, seed)
        t = time.perf_counter()
        mv = majority_vote(answers, 10)
        t_mv = time.perf_counter() - t
        t = time.perf_counter()
        em = dawid_skene(answers, 10)
        t_em = time.perf_counter() - t
        acc = lambda r: float(np.mean([r.labels[i] == truth[i] for i in range(len(truth))]))  # noqa: E731
        out[scenario] = {
            "answers": len(answers), "majority_vote_accuracy": round(acc(mv), 4),
            "dawid_skene_accuracy": round(acc(em), 4), "em_iterations": em.iterations,
            "seconds": {"majority_vote": round(t_mv, 3), "dawid_skene": round(t_em, 3)},
            "workers": {w: {"true_accuracy": 0.0 if a is None else a,
                            "estimated_accuracy": round(em.worker_accuracy[w], 4)} for w, a in WORKERS.items()}}
        print(scenario, json.dumps({k: v for k, v in out[scenario].items() if k != "workers"}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default="consolidation", help="consolidation (active learning comes next)")
    ap.add_argument("--out", default="benchmarks/results/label.json")
    args = ap.parse_args()
    truth, source = fashion_labels(args.items, args.seed)
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "items": args.items,
               "labels": source, "seed": args.seed}
    if "consolidation" in args.phases.split(","):
        results["consolidation"] = consolidation(truth, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
