"""Stratified splitting: the same seed gives the same split on any machine."""

from __future__ import annotations

import random
from collections import defaultdict

from visiontune.data.dataset import Sample
from visiontune.errors import ConfigError


def parse_ratios(text: str) -> list[float]:
    try:
        ratios = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--ratios {text!r}: give numbers separated by commas, e.g. 0.8,0.2") from exc
    if not 2 <= len(ratios) <= 3 or any(r <= 0 for r in ratios):
        raise ConfigError(f"--ratios {text!r}: give two or three positive numbers (train,validation[,test])")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(f"--ratios {text!r}: the numbers must add up to 1 (they add up to {sum(ratios):g})")
    return ratios


def stratified_split(samples: list[Sample], ratios: list[float], seed: int) -> list[list[Sample]]:
    """Split per class in the given ratios; each part keeps the input order.

    Every class with at least as many images as parts gets at least one image
    in every part, so validation never misses a class by bad luck.
    """
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_class[s.label].append(i)
    rng = random.Random(seed)
    parts: list[list[int]] = [[] for _ in ratios]
    for label in sorted(by_class):
        idx = by_class[label][:]
        rng.shuffle(idx)
        n = len(idx)
        sizes = [int(round(r * n)) for r in ratios[1:]]
        if n >= len(ratios):
            sizes = [max(1, k) for k in sizes]
        sizes = [min(k, n - sum(sizes[:j]) - 1) if n > 1 else 0 for j, k in enumerate(sizes)]
        first = n - sum(sizes)
        start = 0
        for p, size in enumerate([first, *sizes]):
            parts[p].extend(idx[start:start + size])
            start += size
    return [[samples[i] for i in sorted(p)] for p in parts]
