"""Creating a labeling job (``visiontune label create``) and reading its results (status, consolidated
labels): the functions the CLI and the web app call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from visiontune.errors import ConfigError, DataError
from visiontune.label.store import LabelJob, LabelStore

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def _labels(labels) -> list[str]:
    names = [s.strip() for s in (labels.split(",") if isinstance(labels, str) else labels)]
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(f"--labels {','.join(names) or '(none)'}: give two or more labels, e.g. --labels damage,no_damage")
    seen = set()
    for n in names:
        if n.lower() in seen:
            raise ConfigError(f"--labels: {n!r} is given twice; each label once")
        seen.add(n.lower())
    return names


def scan_images(source: str | Path) -> tuple[list[tuple[str, str, object]], list[tuple[str, str]]]:
    """(ref, file, gold label) per readable image of a folder (recursively) or a manifest, and the
    unreadable ones with why (listed; the job is created for the rest)."""
    from visiontune.data.decode import describe_image, is_image_name
    from visiontune.errors import BadImageError

    src = Path(source).expanduser()
    found: list[tuple[str, Path, object]] = []
    bad: list[tuple[str, str]] = []
    if src.is_dir():
        root = src.resolve()
        for f in sorted(p for p in src.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.parts)):
            if not is_image_name(f.name):
                continue
            real = f.resolve()
            if not real.is_relative_to(root):  # a link out of the folder is never served
                bad.append((str(f.relative_to(src)), f"a link to {real}, outside {src}: copy the image in instead"))
                continue
            found.append((str(f.relative_to(src)), real, None))
    elif src.is_file():
        from visiontune.data.sources import detect_label_attribute, iter_manifest, resolve_ref

        for n, rec in iter_manifest(src):
            ref = str(rec["source-ref"])
            path = resolve_ref(ref, src.parent)
            if "://" in path:
                raise DataError(f"{src}, line {n}: {ref} is remote; copy the images to this machine to label them")
            attrs = detect_label_attribute(rec)
            gold = rec[f"{attrs[0]}-metadata"]["class-name"] if attrs else None
            found.append((ref, Path(path).resolve(), gold))
    else:
        raise DataError(f"--images {source}: no such folder or manifest")
    items = []
    for ref, path, gold in found:
        try:
            describe_image(path)
        except (BadImageError, OSError) as e:
            bad.append((ref, str(getattr(e, "reason", e))))
            continue
        items.append((ref, str(path), gold))
    if not items:
        raise DataError(f"--images {source}: no readable images" + (f" ({len(bad)} unreadable)" if bad else
                                                                      " (looked for .jpg, .png, .webp...)"))
    return items, bad


@dataclass
class Created:
    job: LabelJob
    owner_secret: str
    skipped: list[tuple[str, str]]
    images: int


def create(name: str, images: str | Path, labels, *, multi_label: bool = False, instructions: str | Path | None = None,
           workers_per_image: int = 1, auto_label: bool | dict = False, target_accuracy: float | None = None,
           store: LabelStore | None = None) -> Created:
    """A labeling job over a folder of images (its manifest made from the folder, as Ground Truth's
    "create manifest") or a manifest; gold labels in the manifest become gold images.

    ``auto_label`` (True, or a dict of :class:`~visiontune.label.active.AutoLabelSettings` fields) turns on
    active learning: workers get a random sample first, and rounds label the images a model is sure of."""
    if not _NAME.fullmatch(name or ""):
        raise ConfigError(f"labeling job name {name!r}: letters, digits, - and _ (up to 63), starting with a letter "
                          "or digit")
    names = _labels(labels)
    if workers_per_image < 1 or workers_per_image > 9:
        raise ConfigError(f"--workers-per-image {workers_per_image}: give 1 to 9")
    text = ""
    if instructions:
        p = Path(instructions)
        if not p.is_file():
            raise ConfigError(f"--instructions {instructions}: no such file")
        text = p.read_text(encoding="utf-8")
    settings = {"source": str(images)}
    if auto_label:
        from visiontune.label.active import AutoLabelSettings, check_auto_label

        opts = dict(auto_label) if isinstance(auto_label, dict) else {}
        if target_accuracy is not None:
            opts["target_accuracy"] = target_accuracy
        auto = AutoLabelSettings.from_dict(opts)
        check_auto_label(None, auto, multi_label)
        settings["auto_label"] = auto.to_dict()
    elif target_accuracy is not None:
        raise ConfigError("--target-accuracy is the auto-labels' accuracy: add --auto-label")
    items, bad = scan_images(images)
    gold_items = []
    for ref, path, gold in items:
        if gold is not None and gold not in names:
            raise DataError(f"{images}: {ref} has the label {gold!r}, which is not one of --labels {','.join(names)}")
        gold_items.append((ref, path, None if gold is None else names.index(gold)))
    priorities = None
    if auto_label:  # humans label a random sample first (a folder's order would be one class after another)
        import numpy as np

        priorities = np.random.default_rng(settings["auto_label"]["seed"]).random(len(gold_items)).tolist()
    store = store or LabelStore()
    owner = store.create_job(name, names, gold_items, multi_label=multi_label, instructions=text,
                             workers_per_image=workers_per_image, settings=settings, priorities=priorities)
    return Created(store.get_job(name), owner, bad, len(gold_items))


def status(name: str, store: LabelStore | None = None) -> dict:
    """Progress, answers per worker, their agreement, and (auto-labeling jobs) the images labelled by each."""
    store = store or LabelStore()
    job = store.get_job(name)
    counts = store.counts(job)
    answers = store.answers(job)
    per_worker: dict[str, int] = {}
    for a in answers:
        per_worker[a["worker"]] = per_worker.get(a["worker"], 0) + 1
    out = {"job": job.name, "labels": job.labels, "workers_per_image": job.workers_per_image, **counts,
           "answers": len(answers), "per_worker": per_worker, "workers": [w["name"] for w in store.workers(job)]}
    if answers and not job.multi_label:
        from visiontune.label.consolidate import agreement

        out["agreement"] = agreement([(a["item"], a["worker"], int(a["label"])) for a in answers if not a["skipped"]])
    if job.settings.get("auto_label") is not None:
        from visiontune.label.active import summarize

        out.update(summarize(job, store))
    return out
