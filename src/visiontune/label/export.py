"""A labeling job's output, as Ground Truth writes it: the augmented manifest (``source-ref``, the label,
``<job>-metadata``), the workers' responses, and class folders or stratified train/validation manifests."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from visiontune.errors import ConfigError
from visiontune.label.consolidate import consolidated
from visiontune.label.store import LabelStore


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime(t))


def records(name: str, store: LabelStore | None = None) -> tuple[list[dict], list[str]]:
    """One Ground Truth record per labelled image (images no one labelled yet are left out), and why any were."""
    store = store or LabelStore()
    job = store.get_job(name)
    items, answers, result = consolidated(job, store)
    by_item: dict[int, list[dict]] = {}
    for a in answers:
        by_item.setdefault(a["item"], []).append(a)
    out, notes = [], []
    now = _iso(time.time())
    for item in items:
        got = by_item.get(item.id, [])
        meta = {"job-name": f"labeling-job/{job.name}", "human-annotated": "yes", "creation-date": now}
        if item.auto_label is not None and item.gold is None and len(got) < job.workers_per_image:
            # labelled by the model (--auto-label); a human answer that completes the image later wins
            label = int(item.auto_label)
            meta.update({"class-name": job.labels[label], "confidence": round(float(item.auto_confidence), 4),
                         "type": "groundtruth/image-classification", "human-annotated": "no"})
            out.append({"source-ref": item.path, job.name: label, f"{job.name}-metadata": meta})
            continue
        if not got and item.gold is None:
            continue
        if job.multi_label:
            votes = [set(a["label"]) for a in got]
            chosen = sorted(c for c in range(len(job.labels)) if sum(c in v for v in votes) * 2 >= len(votes))
            conf = {str(c): round(sum(c in v for v in votes) / len(votes), 4) for c in chosen}
            meta.update({"class-map": {str(c): job.labels[c] for c in chosen}, "confidence-map": conf,
                         "type": "groundtruth/image-classification-multilabel"})
            label = chosen
        else:
            label = result.labels.get(item.id) if result is not None else item.gold
            if label is None:
                continue
            conf = result.confidence.get(item.id, 1.0) if result is not None else 1.0
            meta.update({"class-name": job.labels[label], "confidence": round(float(conf), 4),
                         "type": "groundtruth/image-classification"})
        out.append({"source-ref": item.path, job.name: label, f"{job.name}-metadata": meta})
    unlabelled = len(items) - len(out)
    if unlabelled:
        notes.append(f"{unlabelled} image(s) have no answer yet and are not in the output")
    return out, notes


def export(name: str, out: str | Path, *, split: float | None = None, folders: bool = False, seed: int = 0,
           store: LabelStore | None = None) -> dict:
    """Write ``out/manifests/output/output.manifest`` (Ground Truth's layout), the worker responses, and
    optionally ``train.manifest`` + ``validation.manifest`` (stratified ``split``) and class folders."""
    store = store or LabelStore()
    job = store.get_job(name)
    recs, notes = records(name, store)
    if not recs:
        raise ConfigError(f"labeling job {name} has no labelled image yet: nothing to export")
    out = Path(out)
    manifest = out / "manifests" / "output" / "output.manifest"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    _write_lines(manifest, recs)
    written = {"manifest": str(manifest), "images": len(recs), "notes": notes}
    responses = out / "annotations" / "worker-response" / "iteration-1"
    by_item: dict[int, list[dict]] = {}
    for a in store.answers(job):
        by_item.setdefault(a["item"], []).append(a)
    items = {i.id: i for i in store.items(job)}
    for item_id, answers in by_item.items():
        doc = {"answers": [{"workerId": a["worker"], "submissionTime": _iso(a["time"] or 0),
                            "answerContent": {"crowd-image-classifier" + ("-multi-select" if job.multi_label else ""): (
                                {"labels": [job.labels[c] for c in a["label"]]} if job.multi_label else
                                {"label": None if a["skipped"] else job.labels[a["label"]]})}}
                           for a in answers]}
        folder = responses / str(items[item_id].idx)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "responses.json").write_text(json.dumps(doc, indent=1))
    written["worker_responses"] = str(responses)
    if split is not None:
        if not 0.0 < split < 1.0:
            raise ConfigError(f"--split {split}: give the training share, between 0 and 1 (e.g. 0.8)")
        train, val = _stratified(recs, job.name, split, seed)
        _write_lines(out / "train.manifest", train)
        _write_lines(out / "validation.manifest", val)
        written.update(train=str(out / "train.manifest"), validation=str(out / "validation.manifest"),
                       train_images=len(train), validation_images=len(val))
    if folders:
        if job.multi_label:
            raise ConfigError("class folders hold one label per image; a multi-label job exports manifests only")
        root = out / "images"
        for r in recs:
            dst = root / r[f"{job.name}-metadata"]["class-name"] / Path(r["source-ref"]).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                dst = dst.with_name(f"{dst.stem}-{abs(hash(r['source-ref'])) % 10**8}{dst.suffix}")
            try:
                os.link(r["source-ref"], dst)  # a hard link: no copy where the file system allows it
            except OSError:
                shutil.copy2(r["source-ref"], dst)
        written["folders"] = str(root)
    return written


def _stratified(recs: list[dict], attr: str, share: float, seed: int):
    by_class: dict[str, list[dict]] = {}
    for r in recs:
        key = json.dumps(r[attr])
        by_class.setdefault(key, []).append(r)
    rng = random.Random(seed)
    train, val = [], []
    for key in sorted(by_class):
        group = by_class[key][:]
        rng.shuffle(group)
        k = max(1, round(len(group) * share)) if len(group) > 1 else 1
        train += group[:k]
        val += group[k:]
    return train, val


def _write_lines(path: Path, recs: list[dict]) -> None:
    from visiontune.paths import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in recs))
