"""The doctor's one pass: open the data, compute (or read back) the features, run the checks, write the
outputs, optionally the cleaned manifests."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visiontune.errors import ConfigError, DataError, option

#: test images whose accuracy is compared with and without the leaked ones need at least this many left
MIN_LEAK_SCORED = 10
#: the out-of-fold linear heads: weight decay and L-BFGS iterations (benchmarks/doctor.py, 12,000
#: Fashion-MNIST images with 5 % flipped: 1e-3 / 200 listed 1,681 at precision 0.27; 3e-2 / 50 listed 1,015
#: at 0.43, recall 0.87 either way, in a third of the time)
PROBE_DECAY, PROBE_ITERATIONS = 3e-2, 50


@dataclass
class DoctorResult:
    """What the doctor found (``findings``, as ``doctor.json`` holds it), where it wrote it, and one line for
    people (``summary``)."""

    findings: dict
    out: Path | None = None
    files: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return self.findings["summary"]


def doctor(
    data: str | Path,
    *,
    model: str = "mobilenet_v2",
    image_size: int | None = None,
    out: str | Path | None = None,
    folds: int = 5,
    duplicate_similarity: float = 0.97,
    fix: bool = False,
    fix_confidence: float = 0.9,
    label_attribute: str | None = None,
    device: str = "auto",
    seed: int = 0,
) -> DoctorResult:
    """Look for likely label errors, duplicates and leaks, outliers and poor images in ``data`` (any layout
    ``train`` reads).  ``out``: a folder for ``doctor.json``, ``label_issues.csv``, ``duplicates.csv`` and
    ``doctor.html`` (and ``fixed/`` with ``fix``).  ``duplicate_similarity``: the cosine similarity of the
    features at or above which two images count as near-copies."""
    from visiontune.data.loading import open_dataset

    started = time.perf_counter()
    _check_options(folds, duplicate_similarity, fix_confidence, fix, out, data)
    ds = open_dataset(data, on_bad_image="skip", label_attribute=label_attribute)
    if ds.num_classes < 2:
        raise DataError(
            f"{data}: one class ({ds.classes[0] if ds.classes else '-'}); the doctor, as training, needs two or more"
        )
    if fix and ds.task not in ("classification", "multi-label"):
        raise ConfigError(
            f"{option('fix', True)}: cleaned manifests are written for image labels; this is {ds.task} data "
            "(its masks or boxes would be lost): use the findings (doctor.json, duplicates.csv) to clean it"
        )
    samples = [s for part in ds.splits.values() for s in part]
    split_of = [name for name, part in ds.splits.items() for _ in part]
    hashes = _hashes(samples)  # once: the feature cache's keys and the exact duplicates
    x, ok = _features(samples, model, image_size, device, hashes)
    if not ok.any():
        raise DataError(f"{data}: none of its {len(samples)} images could be read")
    findings = _examine(ds, samples, split_of, x, ok, hashes, folds, duplicate_similarity, seed)
    findings.update(
        {
            "data": str(data),
            "model": model,
            "image_size": image_size,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    findings["summary"] = _summary(findings, out)
    result = DoctorResult(findings, Path(out) if out else None)
    if out is not None:
        from visiontune.doctor.report import write

        result.files = write(findings, samples, Path(out))
    if fix:
        result.files["fixed"] = str(_fix(ds, findings, Path(out) / "fixed", fix_confidence))  # type: ignore[arg-type]
    return result


def _check_options(folds: int, similarity: float, fix_confidence: float, fix: bool, out, data) -> None:
    if folds < 2:
        raise ConfigError(f"{option('folds', folds)}: need 2 or more (each image is judged by heads that never saw it)")
    if not 0.0 < similarity <= 1.0:
        raise ConfigError(f"{option('duplicate_similarity', similarity)}: a cosine similarity in (0, 1]")
    if not 0.0 <= fix_confidence <= 1.0:
        raise ConfigError(f"{option('fix_confidence', fix_confidence)}: a probability in [0, 1]")
    if fix and out is None:
        raise ConfigError(f"{option('fix', True)} writes the cleaned manifests into {option('out')}: give one")
    if fix and out is not None:
        root = Path(data).resolve()
        root = root if root.is_dir() else root.parent
        target = (Path(out) / "fixed").resolve()
        if target == root or root in target.parents:
            raise ConfigError(
                f"{option('out', out)}: inside the data folder {root}; write the cleaned manifests elsewhere"
            )


def _hashes(samples) -> dict:
    from visiontune.data.cache import fingerprint
    from visiontune.progress import bar

    with bar(len(samples), "hashing images") as advance:
        return fingerprint(samples, advance)


def _features(samples, model: str, image_size: int | None, device: str, hashes: dict) -> tuple[np.ndarray, np.ndarray]:
    from visiontune.errors import WeightsUnavailableError
    from visiontune.probe import image_features

    try:
        return image_features(samples, model, image_size, device, hashes)
    except WeightsUnavailableError as exc:
        raise ConfigError(
            f"{option('model', model)}: the doctor needs pretrained features and {exc}; choose a model that has "
            "them (`visiontune models`)"
        ) from exc


def _examine(ds, samples, split_of, x, ok, hashes: dict, folds: int, similarity: float, seed: int) -> dict:
    """Every check, as ``doctor.json`` holds it."""
    from visiontune.doctor import checks

    rows = np.flatnonzero(ok)
    unreadable = [{"source": samples[i].source, "split": split_of[i]} for i in np.flatnonzero(~ok)]
    xr = x[rows]
    found: dict = {"task": ds.task, "images": len(samples), "unreadable": unreadable, "classes": _counts(ds)}
    found["label_issues"], found["label_issues_note"], probs = _label_issues(
        ds, samples, split_of, rows, xr, folds, seed
    )
    seen = _looks([samples[i].source for i in rows])  # one read each: quality and the perceptual hash
    found["duplicates"] = _duplicates(samples, split_of, rows, xr, hashes, [h for _, h in seen], similarity)
    found["leak"] = _leak_effect(ds, samples, split_of, rows, xr, found["duplicates"], seed)
    scores = checks.outlier_scores(xr)
    order = np.argsort(scores, kind="stable")[: max(5, len(rows) // 200)]
    found["outliers"] = [
        {"source": samples[rows[i]].source, "split": split_of[rows[i]], "score": round(float(scores[i]), 4)}
        for i in order
    ]
    found["quality"] = _quality(samples, split_of, rows, [q for q, _ in seen])
    found["probabilities_from"] = f"{folds}-fold linear heads on the features" if probs is not None else None
    return found


def _looks(sources: list[str]) -> list:
    """:func:`checks.look` of every image, on a thread per core (decoding releases the GIL), with progress."""
    from concurrent.futures import ThreadPoolExecutor

    from visiontune.doctor import checks
    from visiontune.progress import bar

    out = []
    with bar(len(sources), "quality and hashes") as advance, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for found in pool.map(checks.look, sources, chunksize=64):
            out.append(found)
            advance(1)
    return out


def _counts(ds) -> dict:
    from visiontune.data.dataset import labels_of

    per_class = {c: 0 for c in ds.classes}
    for part in ds.splits.values():
        for s in part:
            for c in labels_of(s.label):
                per_class[ds.classes[c]] += 1
    seen = [n for n in per_class.values() if n]
    return {
        "per_class": per_class,
        "imbalance": round(max(seen) / min(seen), 2) if seen else None,
        "per_split": {name: len(part) for name, part in ds.splits.items()},
    }


def _label_issues(ds, samples, split_of, rows, xr, folds: int, seed: int):
    from visiontune.doctor import checks
    from visiontune.probe import cross_fit

    if ds.task != "classification":
        return (
            [],
            f"label errors are looked for in one-label-per-image data; this is {ds.task} data (not checked)",
            None,
        )
    y = np.array([int(samples[i].label) for i in rows])
    counts = np.bincount(y, minlength=ds.num_classes)
    small = [ds.classes[c] for c in np.flatnonzero((counts > 0) & (counts < folds))]
    if small:  # the other checks still run
        return (
            [],
            f"label errors not checked: class(es) {', '.join(small[:5])} have fewer than {folds} images and the "
            f"{folds}-fold check needs at least {folds} per class (add images, or lower {option('folds')})",
            None,
        )
    probs, _ = cross_fit(xr, y, ds.num_classes, folds, weight_decay=PROBE_DECAY, seed=seed, max_iter=PROBE_ITERATIONS)
    issues = [
        {
            "source": samples[rows[i]].source,
            "split": split_of[rows[i]],
            "label": ds.classes[y[i]],
            "suggested": ds.classes[s],
            "suggested_probability": round(p, 4),
            "label_probability": round(q, 4),
        }
        for i, s, p, q in checks.label_issues(probs, y)
    ]
    return issues, None, probs


def _duplicates(samples, split_of, rows, xr, hashes: dict, looks: list, similarity: float) -> list[dict]:
    """Pairs by content hash (exact), perceptual hash (a copy) or feature similarity (near), most alike first."""
    from visiontune.doctor import checks

    z = xr / np.maximum(np.linalg.norm(xr, axis=1, keepdims=True), 1e-12)
    found: dict[tuple[int, int], str] = {(i, j): "near" for i, j, _ in checks.near_pairs(xr, similarity)}
    by_look = checks.hash_pairs(looks)
    if len(by_look) <= max(10, checks.HASH_PAIRS_SHARE * len(rows)):  # else the hashes collide here: unused
        found.update({(i, j): "copy" for i, j, _ in by_look})
    by_hash: dict[str, list[int]] = {}
    for n, i in enumerate(rows):
        by_hash.setdefault(hashes[samples[i].source], []).append(n)
    found.update({(g[0], a): "exact" for g in by_hash.values() for a in g[1:]})
    out = []
    for (i, j), kind in found.items():
        a, b = rows[i], rows[j]
        splits = {split_of[a], split_of[b]}
        where = "within a split" if len(splits) == 1 else ("leak" if "test" in splits else "across splits")
        out.append(
            {
                "a": samples[a].source,
                "b": samples[b].source,
                "split_a": split_of[a],
                "split_b": split_of[b],
                "similarity": round(float(z[i] @ z[j]), 4),
                "kind": kind,
                "where": where,
            }
        )
    rank = {"exact": 0, "copy": 1, "near": 2}
    return sorted(out, key=lambda d: (rank[d["kind"]], -d["similarity"]))


def _leak_effect(ds, samples, split_of, rows, xr, duplicates: list[dict], seed: int) -> dict | None:
    """How much the test score is inflated by test images that are copies of training ones: a linear head
    trained on the training split, scored on the test split with and without them."""
    from visiontune.probe import LinearHead

    if ds.task != "classification" or "test" not in ds.splits:
        return None
    leaked = {d["a"] if d["split_a"] == "test" else d["b"] for d in duplicates if d["where"] == "leak"}
    split = np.array([split_of[i] for i in rows])
    y = np.array([int(samples[i].label) for i in rows])
    train, test = split == "train", split == "test"
    clean = test & np.array([samples[i].source not in leaked for i in rows])
    if not leaked or clean.sum() < MIN_LEAK_SCORED or len(np.unique(y[train])) < 2:
        return {"leaked_test_images": len(leaked), "inflation_points": 0.0 if not leaked else None}
    head = LinearHead(ds.num_classes).fit(xr[train], y[train])
    right = head.predict_proba(xr).argmax(1) == y
    everything, without = float(right[test].mean()), float(right[clean].mean())
    return {
        "leaked_test_images": len(leaked),
        "test_accuracy": round(everything, 4),
        "test_accuracy_without_leaks": round(without, 4),
        "inflation_points": round(100 * (everything - without), 2),
        "scored_by": "a linear head on the training split's features",
    }


def _quality(samples, split_of, rows, qualities: list[dict]) -> list[dict]:
    from visiontune.doctor import checks

    looks = list(zip(rows, qualities))
    sides = [min(q["size"]) for _, q in looks if "size" in q]
    tiny = min(checks.TINY_SIDE, float(np.median(sides)) / 2) if sides else 0
    out = []
    for i, q in looks:
        flags = list(q["flags"]) + (["tiny"] if "size" in q and min(q["size"]) < tiny else [])
        if flags:
            out.append(
                {
                    "source": samples[i].source,
                    "split": split_of[i],
                    "flags": flags,
                    **{k: v for k, v in q.items() if k != "flags"},
                }
            )
    return out


def _summary(f: dict, out) -> str:
    n = max(1, f["images"])
    parts = []
    if f["label_issues_note"]:
        parts.append(f["label_issues_note"])
    else:
        parts.append(f"{len(f['label_issues'])} likely label errors ({100 * len(f['label_issues']) / n:.1f} %)")
    leaks = [d for d in f["duplicates"] if d["where"] == "leak"]
    parts.append(f"{len(f['duplicates'])} duplicate pair(s), {len(leaks)} across train/test")
    leak = f.get("leak") or {}
    if leak.get("inflation_points"):
        parts[-1] += f": the test score is inflated by ~{leak['inflation_points']:.1f} points"
    parts.append(f"{len(f['outliers'])} outliers listed, {len(f['quality'])} image(s) with quality flags")
    if f["unreadable"]:
        parts.append(f"{len(f['unreadable'])} unreadable")
    where = f"; see {Path(out) / 'doctor.html'}" if out is not None else ""
    return ", ".join(parts) + where


def _fix(ds, findings: dict, target: Path, confidence: float) -> Path:
    """Split manifests without the problems: labels relabelled where the suggestion's probability reaches
    ``confidence`` (the other suspects kept as they are), each duplicate within a split kept once, and the
    test images that leak dropped."""
    from visiontune.data.split import write_split_manifests

    relabel = {
        d["source"]: ds.classes.index(d["suggested"])
        for d in findings["label_issues"]
        if d["suggested_probability"] >= confidence
    }
    drop = {d["b"] for d in findings["duplicates"] if d["split_a"] == d["split_b"]}
    drop |= {d["a"] if d["split_a"] == "test" else d["b"] for d in findings["duplicates"] if d["where"] == "leak"}
    parts, splits = [], []
    for name, part in ds.splits.items():
        kept = [
            dataclasses.replace(s, label=relabel[s.source]) if s.source in relabel else s
            for s in part
            if s.source not in drop
        ]
        parts.append(name)
        splits.append(kept)
    write_split_manifests(ds, parts, splits, target)
    findings["fixed"] = {"relabelled": len(relabel), "dropped": len(drop), "folder": str(target)}
    return target
