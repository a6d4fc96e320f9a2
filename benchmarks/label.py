"""Labeling benchmark: consolidating simulated workers' answers (Dawid-Skene EM vs majority vote).

The ground truth is Fashion-MNIST's real training labels (Debian's dataset-fashion-mnist, the visiontune
cache or FASHION_MNIST_DIR; `make fashion-mnist` installs it), with uniform synthetic labels and a printed
note when it is absent.  Simulated workers of known quality answer: each is right with its accuracy, else
picks a uniformly random other class; the adversary always answers (truth + 1) mod 10.  Scenarios:

  every worker answers every image        5 answers per image
  3 random workers per image              as Ground Truth assigns them
  1 random worker per image, 5% gold      gold images (labels known) are how EM learns each worker

    python benchmarks/label.py [--items 20000] [--seed 0] [--phases consolidation]
                               [--out benchmarks/results/label.json]

Phases are entries of PHASES (name -> function(truth, args) -> dict), run in the order given and written
under their name in the JSON; the active-learning simulation is to be another phase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from visiontune.label.consolidate import Consolidated, dawid_skene, majority_vote

K = 10
WORKERS: dict[str, float | None] = {"w90": 0.9, "w80": 0.8, "w70": 0.7, "w60": 0.6, "adversary": None}
SCENARIOS = {  # name: (workers per image, None = all of them; share of gold images)
    "every worker answers every image": (None, 0.0),
    "3 random workers per image": (3, 0.0),
    "1 random worker per image, 5% gold": (1, 0.05),
}


def fashion_labels(n: int, seed: int) -> tuple[np.ndarray, str]:
    """n class labels: a random sample of Fashion-MNIST's training labels, else synthetic ones."""
    rng = np.random.default_rng(seed)
    try:
        from visiontune.data.fashion_mnist import FILES, locate, read_idx

        labels = read_idx(locate(download=False) / FILES["train-labels"]).astype(np.int64)
    except Exception as exc:  # noqa: BLE001 - the simulation only needs realistic class frequencies
        print(f"note: Fashion-MNIST not found ({exc}); using uniform synthetic labels (`make fashion-mnist`)")
        return rng.integers(0, K, n), "synthetic uniform labels"
    if n <= len(labels):
        return labels[rng.permutation(len(labels))[:n]], "Fashion-MNIST training labels"
    print(f"note: {n} items > {len(labels)} Fashion-MNIST training labels; sampling them with replacement")
    return labels[rng.integers(0, len(labels), n)], "Fashion-MNIST training labels, with replacement"


def simulate(truth: np.ndarray, per_image: int | None, rng: np.random.Generator) -> list[tuple[int, str, int]]:
    """(item, worker, label) answers of WORKERS on every item: all workers, or per_image random ones."""
    names, n = list(WORKERS), len(truth)
    if per_image is None:
        who = np.tile(np.arange(len(names)), (n, 1))
    else:
        who = np.argsort(rng.random((n, len(names))), axis=1)[:, :per_image]  # distinct workers per image
    answers = []
    for col in range(who.shape[1]):
        w = who[:, col]
        acc = np.array([-1.0 if WORKERS[names[x]] is None else WORKERS[names[x]] for x in w])
        right = rng.random(n) < acc
        wrong = (truth + rng.integers(1, K, n)) % K
        given = np.where(acc < 0, (truth + 1) % K, np.where(right, truth, wrong))
        answers += [(i, names[w[i]], int(given[i])) for i in range(n)]
    return answers


def _accuracy(result: Consolidated, truth: np.ndarray, items) -> float:
    return float(np.mean([result.labels[i] == truth[i] for i in items]))


def phase_consolidation(truth: np.ndarray, args: argparse.Namespace) -> dict:
    out = {}
    for s, (scenario, (per_image, gold_share)) in enumerate(SCENARIOS.items()):
        rng = np.random.default_rng([args.seed, s])
        answers = simulate(truth, per_image, rng)
        gold_ids = rng.permutation(len(truth))[:int(round(gold_share * len(truth)))]
        gold = {int(i): int(truth[i]) for i in gold_ids}
        scored = [i for i in range(len(truth)) if i not in gold]  # gold images are not a result
        t = time.perf_counter()
        mv = majority_vote(answers, K)
        t_mv = time.perf_counter() - t
        t = time.perf_counter()
        em = dawid_skene(answers, K, gold=gold or None)
        t_em = time.perf_counter() - t
        observed: dict[str, list[bool]] = {}
        for i, w, lab in answers:
            if i not in gold:
                observed.setdefault(w, []).append(lab == truth[i])
        em_conf = [em.confidence[i] for i in scored]
        out[scenario] = {
            "answers": len(answers), "gold_images": len(gold), "scored_images": len(scored),
            "majority_vote_accuracy": round(_accuracy(mv, truth, scored), 4),
            "dawid_skene_accuracy": round(_accuracy(em, truth, scored), 4),
            "dawid_skene_mean_confidence": round(float(np.mean(em_conf)), 4),
            "em_iterations": em.iterations,
            "seconds": {"majority_vote": round(t_mv, 3), "dawid_skene": round(t_em, 3)},
            "workers": {w: {"true_accuracy": 0.0 if a is None else a,
                            "observed_accuracy": round(float(np.mean(observed[w])), 4),
                            "estimated_accuracy": round(em.worker_accuracy[w], 4)} for w, a in WORKERS.items()},
        }
        row = out[scenario]
        print(f"{scenario}: majority vote {row['majority_vote_accuracy']:.2%}, Dawid-Skene "
              f"{row['dawid_skene_accuracy']:.2%} (mean confidence {row['dawid_skene_mean_confidence']:.2%}, "
              f"{em.iterations} iterations, {t_em:.2f} s; vote {t_mv:.2f} s)")
        print("  workers true/estimated accuracy: " + ", ".join(
            f"{w} {v['true_accuracy']:.2f}/{v['estimated_accuracy']:.3f}" for w, v in row["workers"].items()))
    return out


PHASES: dict[str, Callable[[np.ndarray, argparse.Namespace], dict]] = {
    "consolidation": phase_consolidation,
    # "active-learning": phase_active_learning,  (to come: train on consolidated labels, pick what to ask next)
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=20_000, help="images to simulate labels for (default 20000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", default="consolidation", help=f"comma-separated, of: {', '.join(PHASES)}")
    ap.add_argument("--out", default="benchmarks/results/label.json")
    args = ap.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        ap.error(f"--phases {args.phases!r}: choose among {', '.join(PHASES)}")
    if args.items < 1:
        ap.error("--items must be >= 1")
    start = time.perf_counter()
    truth, source = fashion_labels(args.items, args.seed)
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "numpy": np.__version__},
                     "items": args.items, "labels": source, "classes": K, "seed": args.seed, "phases": phases}
    for name in phases:
        t = time.perf_counter()
        results[name] = PHASES[name](truth, args)
        results[name + "_wall_seconds"] = round(time.perf_counter() - t, 2)
    results["wall_seconds"] = round(time.perf_counter() - start, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {args.out} ({results['wall_seconds']} s)")
    return results


if __name__ == "__main__":
    main()
