"""Creating a labeling job (``visiontune label create``) and reading its results (status, consolidated
labels): the functions the CLI and the web app call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from visiontune.errors import ConfigError, DataError
from visiontune.label.store import Label, LabelJob, LabelStore
from visiontune.names import check_name

if TYPE_CHECKING:
    from visiontune.label.consolidate import JobResult

#: a gold label as a manifest or ``--gold`` names it: a class name, or several (multi-label)
GoldName = Union[str, list[str]]
#: an image :func:`scan_images` found: (ref, file, gold label or None)
Scanned = tuple[str, str, Union[GoldName, None]]


def _labels(labels) -> list[str]:
    names = [s.strip() for s in (labels.split(",") if isinstance(labels, str) else labels)]
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(
            f"--labels {','.join(names) or '(none)'}: give two or more labels, e.g. --labels damage,no_damage"
        )
    seen = set()
    for n in names:
        if n.lower() in seen:
            raise ConfigError(f"--labels: {n!r} is given twice; each label once")
        seen.add(n.lower())
    return names


def scan_images(source: str | Path) -> tuple[list[Scanned], list[tuple[str, str]]]:
    """(ref, file, gold label) per readable image of a folder (recursively) or a manifest, and the
    unreadable ones with why (listed; the job is created for the rest)."""
    from visiontune.data.decode import describe_image, is_image_name
    from visiontune.errors import BadImageError

    src = Path(source).expanduser()
    found: list[tuple[str, Path, GoldName | None]] = []
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
        from visiontune.data.sources import (
            detect_label_attribute,
            iter_manifest,
            resolve_ref,
        )

        for n, rec in iter_manifest(src):
            ref = str(rec["source-ref"])
            resolved = resolve_ref(ref, src.parent)
            if "://" in resolved:
                raise DataError(f"{src}, line {n}: {ref} is remote; copy the images to this machine to label them")
            attrs = detect_label_attribute(rec)
            gold = rec[f"{attrs[0]}-metadata"]["class-name"] if attrs else None
            found.append((ref, Path(resolved).resolve(), gold))
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
        raise DataError(
            f"--images {source}: no readable images"
            + (f" ({len(bad)} unreadable)" if bad else " (looked for .jpg, .png, .webp...)")
        )
    return items, bad


@dataclass
class Created:
    job: LabelJob
    owner_secret: str
    skipped: list[tuple[str, str]]
    images: int
    workers: dict[str, str] = field(default_factory=dict)  # name -> secret, for workers named at creation
    gold: int = 0  # gold images (from the manifest or --gold)


def _gold_rows(p: Path, path: str) -> list[tuple[str, GoldName, str]]:
    """(image, label or labels, where) of a gold file: a manifest with a label attribute, or a CSV."""
    import csv

    rows: list[tuple[str, GoldName, str]] = []
    if p.suffix.lower() in (".manifest", ".jsonl", ".json"):
        from visiontune.data.sources import detect_label_attribute, iter_manifest

        for n, rec in iter_manifest(p):
            attrs = detect_label_attribute(rec)
            if not attrs:
                raise DataError(f"--gold {path}, line {n}: no label attribute (`<attr>` + `<attr>-metadata`)")
            meta = rec[f"{attrs[0]}-metadata"]
            value = meta["class-name"] if "class-name" in meta else [meta["class-map"][str(c)] for c in rec[attrs[0]]]
            rows.append((str(rec["source-ref"]), value, f"line {n}"))
    else:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            for n, rec in enumerate(csv.reader(fh), start=1):
                if not rec or not "".join(rec).strip():
                    continue
                if n == 1 and [c.strip().lower() for c in rec[:2]] == ["image", "label"]:
                    continue
                if len(rec) < 2:
                    raise DataError(f"--gold {path}, line {n}: expected image,label")
                label = rec[1].strip()
                rows.append((rec[0].strip(), label.split() if " " in label else label, f"line {n}"))
    return rows


def read_gold(path: str | Path, items: list[Scanned], names: list[str]) -> dict[int, GoldName]:
    """``--gold FILE``: images with known labels, mixed in unannounced.  A CSV ``image,label`` (a header line
    ``image,label`` optional; several labels of a multi-label job separated by spaces) or a manifest with a
    label attribute.  An image is named as in the job (its path relative to the folder, or as the manifest
    gives it), by its absolute path, or by its file name where that is unique.  Returns item index -> label
    (a class name, or a list of them).  Images not in the job and labels not among ``names`` are errors,
    every one named."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--gold {path}: no such file")
    rows = _gold_rows(p, str(path))
    by_ref: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    for i, (ref, file, _g) in enumerate(items):
        by_ref[ref] = by_ref[str(Path(file))] = i
        by_name.setdefault(Path(file).name, []).append(i)
    out: dict[int, GoldName] = {}
    problems = []
    for ref, value, where in rows:
        hit = by_ref.get(ref, by_ref.get(str(Path(ref).expanduser().resolve()) if ref else ""))
        if hit is None and len(by_name.get(Path(ref).name, [])) == 1:
            hit = by_name[Path(ref).name][0]
        if hit is None:
            problems.append(f"{where}: {ref} is not an image of this job")
            continue
        bad = [v for v in (value if isinstance(value, list) else [value]) if v not in names]
        if bad:
            problems.append(
                f"{where}: {ref} has the label(s) {', '.join(map(repr, bad))}, not among --labels {','.join(names)}"
            )
            continue
        out[hit] = value
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DataError(f"--gold {path}: " + "; ".join(problems[:10]) + more)
    if not out:
        raise DataError(f"--gold {path}: no gold images in it")
    return out


def _replication(
    workers_per_image: int | None,
    max_workers_per_image: int | None,
    min_confidence: float | None,
    workers: list[str] | None,
) -> tuple[int, int | None, bool]:
    """(workers_per_image, max_workers_per_image, auto): the numbers left out filled in (``auto``: following
    the workforce), every one checked."""
    auto_k = workers_per_image is None
    if workers_per_image is None:
        from visiontune.label.store import (
            AUTO_MAX_WORKERS_PER_IMAGE,
            AUTO_WORKERS_PER_IMAGE,
        )

        workers_per_image = max(1, min(AUTO_WORKERS_PER_IMAGE, len(workers or [])))
        if max_workers_per_image is None:
            max_workers_per_image = AUTO_MAX_WORKERS_PER_IMAGE
    if workers_per_image < 1 or workers_per_image > 9:
        raise ConfigError(f"--workers-per-image {workers_per_image}: give 1 to 9")
    if max_workers_per_image is not None and not auto_k and max_workers_per_image < workers_per_image:
        raise ConfigError(
            f"--max-workers-per-image {max_workers_per_image} is below --workers-per-image "
            f"{workers_per_image}: give {workers_per_image} or more (more: disagreements go on to "
            "another worker)"
        )
    if max_workers_per_image is not None and not 1 <= max_workers_per_image <= 9:
        raise ConfigError(f"--max-workers-per-image {max_workers_per_image}: give 1 to 9")
    if min_confidence is not None and not 0.0 < min_confidence < 1.0:
        raise ConfigError(f"--min-confidence {min_confidence}: a probability between 0 and 1 (e.g. 0.9)")
    if min_confidence is not None and (max_workers_per_image or workers_per_image) <= workers_per_image:
        raise ConfigError(
            f"--min-confidence needs room for more answers: give --max-workers-per-image above "
            f"--workers-per-image {workers_per_image}"
        )
    return workers_per_image, max_workers_per_image, auto_k


def _check_workforce(workers: list[str], workers_per_image: int, auto_k: bool) -> None:
    if workers and not auto_k and len(workers) < workers_per_image:
        raise ConfigError(
            f"--workers-per-image {workers_per_image} but {len(workers)} worker(s) "
            f"({', '.join(workers)}): an image can only get one answer from each; add workers or "
            f"give --workers-per-image {len(workers)}"
        )


def _read_instructions(instructions: str | Path | None) -> str:
    if not instructions:
        return ""
    p = Path(instructions)
    if not p.is_file():
        raise ConfigError(f"--instructions {instructions}: no such file")
    return p.read_text(encoding="utf-8")


def _job_settings(
    images: str | Path,
    auto_k: bool,
    max_workers_per_image: int | None,
    min_confidence: float | None,
    auto_label: bool | dict,
    target_accuracy: float | None,
    multi_label: bool,
) -> dict:
    """What the job keeps in its settings: the source, replication, auto-labeling (checked)."""
    settings: dict = {"source": str(images)}
    if auto_k:
        settings["workers_per_image"] = "auto"
    if max_workers_per_image is not None:
        settings["max_workers_per_image"] = max_workers_per_image
    if min_confidence is not None:
        settings["min_confidence"] = min_confidence
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
    return settings


def _gold_items(
    items: list[Scanned],
    extra: dict[int, GoldName],
    names: list[str],
    images: str | Path,
    gold: str | Path | None,
    multi_label: bool,
) -> list[tuple[str, str, Label | None]]:
    """(ref, file, gold label as class indices or None) per image: the manifest's gold, or ``--gold``'s."""
    out: list[tuple[str, str, Label | None]] = []
    for n, (ref, path, known) in enumerate(items):
        known = extra.get(n, known)
        if known is not None and not all(g in names for g in (known if isinstance(known, list) else [known])):
            raise DataError(f"{images}: {ref} has the label {known!r}, which is not one of --labels {','.join(names)}")
        if isinstance(known, list) and not multi_label:
            raise DataError(f"{gold}: {ref} has several labels; this job takes one per image (--multi-label for more)")
        index: Label | None = (
            None
            if known is None
            else (
                [names.index(g) for g in known]
                if isinstance(known, list)
                else ([names.index(known)] if multi_label else names.index(known))
            )
        )
        out.append((ref, path, index))
    return out


def create(
    name: str,
    images: str | Path,
    labels,
    *,
    multi_label: bool = False,
    instructions: str | Path | None = None,
    workers_per_image: int | None = None,
    max_workers_per_image: int | None = None,
    min_confidence: float | None = None,
    gold: str | Path | None = None,
    workers: list[str] | None = None,
    auto_label: bool | dict = False,
    target_accuracy: float | None = None,
    store: LabelStore | None = None,
) -> Created:
    """A labeling job over a folder of images (its manifest made from the folder, as Ground Truth's
    "create manifest") or a manifest; gold labels in the manifest (or in ``gold``, a file:
    :func:`read_gold`) become gold images, handed out as any other.

    Replication: each image gets ``workers_per_image`` answers (left out: 1 for one worker, 3 when the
    workforce has 3 or more, following the workers as they are added); an image whose answers disagree, or
    whose consolidated confidence is below ``min_confidence``, goes to one more worker, up to
    ``max_workers_per_image`` (left out: ``workers_per_image``, i.e. no more; with ``workers_per_image`` left
    out too, up to 5).  ``workers``: names to add now (their secrets in ``Created.workers``), checked against
    ``workers_per_image``.

    ``auto_label`` (True, or a dict of :class:`~visiontune.label.active.AutoLabelSettings` fields) turns on
    active learning: workers get a random sample first, and rounds label the images a model is sure of."""
    check_name(name, "labeling job name")
    names = _labels(labels)
    k, kmax, auto_k = _replication(workers_per_image, max_workers_per_image, min_confidence, workers)
    workers = list(dict.fromkeys(workers or []))
    _check_workforce(workers, k, auto_k)
    text = _read_instructions(instructions)
    settings = _job_settings(images, auto_k, kmax, min_confidence, auto_label, target_accuracy, multi_label)
    items, bad = scan_images(images)
    extra = read_gold(gold, items, names) if gold is not None else {}
    gold_items = _gold_items(items, extra, names, images, gold, multi_label)
    priorities = None
    if auto_label:  # humans label a random sample first (a folder's order would be one class after another)
        import numpy as np

        priorities = np.random.default_rng(settings["auto_label"]["seed"]).random(len(gold_items)).tolist()
    store = store or LabelStore()
    owner = store.create_job(
        name,
        names,
        gold_items,
        multi_label=multi_label,
        instructions=text,
        workers_per_image=k,
        settings=settings,
        priorities=priorities,
    )
    job = store.get_job(name)
    added = store.add_workers(job, workers) if workers else {}
    return Created(
        store.get_job(name), owner, bad, len(gold_items), added, sum(g is not None for _r, _p, g in gold_items)
    )


def _answer_counts(answers: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    """Per worker: answers (skips included), and skips."""
    per_worker: dict[str, int] = {}
    skips: dict[str, int] = {}
    for a in answers:
        per_worker[a["worker"]] = per_worker.get(a["worker"], 0) + 1
        skips[a["worker"]] = skips.get(a["worker"], 0) + a["skipped"]
    return per_worker, skips


def _replication_summary(job: LabelJob, rows: list[dict]) -> dict:
    n_answered = [r["answers"] for r in rows if r["answers"]]
    return {
        "workers_per_image": job.workers_per_image,
        "max_workers_per_image": job.max_workers_per_image,
        "min_confidence": job.min_confidence,
        "auto": job.settings.get("workers_per_image") == "auto",
        "answers_per_image": round(sum(n_answered) / len(n_answered), 3) if n_answered else None,
        "planned_for_more": sum(
            r["consolidation"] == "pending" and r["answers"] >= job.workers_per_image for r in rows
        ),
    }


def _consolidation_summary(job: LabelJob, rows: list[dict], result: JobResult, given: list[dict]) -> dict:
    """{method, why, confidence_note}: the worker model the consolidation chose and why (a multi-label job's:
    its first class's), and a note when every confidence rests on an assumed accuracy."""
    from visiontune.label.consolidate import MultiLabelConsolidated

    note = None
    if given and all(r["answers"] <= 1 for r in rows) and not any(r["consolidation"] == "gold" for r in rows):
        from visiontune.label.consolidate import prior_accuracy

        note = (
            f"one answer per image and no gold images: each label's confidence rests on an assumed worker "
            f"accuracy of {prior_accuracy(len(job.labels)):.0%}; gold images (--gold) or a second worker per "
            "image measure it"
        )
    shown = result.per_class[0] if isinstance(result, MultiLabelConsolidated) else result
    return {
        "method": shown.method if shown is not None else None,
        "why": shown.why if shown is not None else "",
        "confidence_note": note,
    }


def _worker_stats(
    job: LabelJob,
    workers: list[dict],
    per_worker: dict[str, int],
    skips: dict[str, int],
    agreement: dict,
    result: JobResult,
) -> dict[str, dict]:
    """name -> {answers, skips, revoked, agreement, estimated_accuracy, evidence, gold_answers, gold_accuracy,
    warning} (the estimates: single-label jobs)."""
    from visiontune.label.consolidate import Consolidated

    stats = {}
    for w in workers:
        nm = w["name"]
        st = {
            "answers": per_worker.get(nm, 0) - skips.get(nm, 0),
            "skips": skips.get(nm, 0),
            "revoked": w["revoked"],
            "agreement": agreement.get(nm),
            "estimated_accuracy": None,
            "evidence": 0,
            "gold_answers": 0,
            "gold_accuracy": None,
            "warning": None,
        }
        if isinstance(result, Consolidated) and nm in result.worker_accuracy:
            st["estimated_accuracy"] = round(result.worker_accuracy[nm], 4)
            st["evidence"] = result.worker_evidence.get(nm, 0)
            g = result.worker_gold.get(nm)
            if g:
                right = round(g["right"] / g["answers"], 4)
                st["gold_answers"], st["gold_accuracy"] = g["answers"], right
                chance = 1.0 / len(job.labels)
                if g["answers"] >= 5 and right <= chance + 0.5 * (1 - chance) - 0.15:
                    st["warning"] = (
                        f"right on {right:.0%} of {g['answers']} gold images: their "
                        "answers count for little (or against) in the labels"
                    )
        stats[nm] = st
    return stats


def _labels_so_far(job: LabelJob, rows: list[dict]) -> dict[str, dict[str, int]]:
    """{"human": {label: n}, "model": {label: n}} over the images with a label (not pending or unresolved)."""
    human: dict[str, int] = {}
    model: dict[str, int] = {}
    for r in rows:
        if r["label"] is None or r["consolidation"] in ("pending", "unresolved"):
            continue
        target = human if r["human"] else model
        for lab in r["label"] if isinstance(r["label"], list) else [r["label"]]:
            target[job.labels[lab]] = target.get(job.labels[lab], 0) + 1
    return {"human": human, "model": model}


def _brief(r: dict) -> dict:
    return {
        "item": r["item"],
        "source_ref": r["source_ref"],
        "label": r["label"],
        "confidence": None if r["confidence"] is None else round(r["confidence"], 4),
        "consolidation": r["consolidation"],
        "votes": r["votes"],
        "skipped_by": r["skipped_by"],
    }


def _needs_the_owner(rows: list[dict], listed: int) -> dict:
    """Ties, unresolved images and disagreements (up to ``listed`` of each), with their totals."""
    ties = [_brief(r) for r in rows if r["consolidation"] == "tie"]
    unresolved = [_brief(r) for r in rows if r["consolidation"] == "unresolved"]
    every = sum(1 for r in rows if r["consolidation"] == "unresolved" and r["answers"] == 0)
    split = sorted(
        (r for r in rows if len({json.dumps(v) for v in r["votes"].values()}) > 1),
        key=lambda r: (r["confidence"] if r["confidence"] is not None else 0.0, r["item"]),
    )
    return {
        "ties": ties[:listed],
        "ties_total": len(ties),
        "unresolved": unresolved[:listed],
        "unresolved_total": len(unresolved),
        "unresolved_note": (f"{every} image(s) skipped by every worker they were sent to" if every else None),
        "disagreements": len(split),
        "disagreement_items": [_brief(r) for r in split[:listed]],
    }


def _per_class_agreement(job: LabelJob, rows: list[dict]) -> dict[str, float | None]:
    """Multi-label: label -> share of the images with 2+ answers where every answer agrees on it."""
    agree = {}
    multi = [r for r in rows if r["answers"] >= 2]
    for c, lab in enumerate(job.labels):
        same = [len({c in v for v in r["votes"].values()}) == 1 for r in multi]
        agree[lab] = round(sum(same) / len(same), 4) if same else None
    return agree


def _problems(job: LabelJob, active: list[dict], out: dict) -> list[str]:
    """What the owner should fix, in words."""
    problems = []
    if len(active) < job.workers_per_image:
        problems.append(
            f"{job.workers_per_image} answers per image wanted but {len(active)} active worker(s): "
            f"add workers (`visiontune label workers add {job.name} NAME...`)"
        )
    if out["unresolved_note"]:
        problems.append(out["unresolved_note"] + " (exported only with --include-unresolved)")
    if out["ties_total"]:
        problems.append(f"{out['ties_total']} image(s) with a tie nobody was left to break (confidence <= 0.5)")
    problems += [f"{nm}: {st['warning']}" for nm, st in out["worker_stats"].items() if st["warning"]]
    return problems


def status(name: str, store: LabelStore | None = None, listed: int = 50) -> dict:
    """Progress, answers per worker, their agreement and estimated accuracy, the consolidation, the images
    that need the owner (ties, unresolved), and (auto-labeling jobs) the images labelled by each.

    Keys (the owner page shows them): ``images``, ``complete``, ``answers`` (incl. skips), ``per_worker``
    (answers incl. skips), ``workers``, ``agreement`` (single-label); ``skips``; ``replication``
    ({workers_per_image, max_workers_per_image, min_confidence, auto, answers_per_image, planned_for_more});
    ``consolidation`` ({method, why, confidence_note}); ``worker_stats`` (name -> {answers, skips,
    estimated_accuracy, evidence, gold_answers, gold_accuracy, agreement, revoked, warning}); ``labels_so_far``
    ({"human": {label: n}, "model": {label: n}}; multi-label: images per class); ``by_consolidation``
    (gold/single/unanimous/majority/weighted/tie/model/pending/unresolved -> n); ``ties`` and ``unresolved``
    (up to ``listed`` of each: {item, source_ref, votes, skipped_by, label, confidence}; ``ties_total``,
    ``unresolved_total``, ``unresolved_note``); ``disagreements`` (count) and ``disagreement_items`` (up to
    ``listed``, least confident first: {item, source_ref, votes, label, confidence, consolidation});
    multi-label: ``per_class_agreement`` (label -> share of images with 2+ answers where all agree on it);
    ``problems`` (what the owner should fix, in words)."""
    from visiontune.label.consolidate import agreement
    from visiontune.label.results import job_labels

    store = store or LabelStore()
    job = store.get_job(name)
    counts = store.counts(job)
    answers = store.answers(job)
    per_worker, skips = _answer_counts(answers)
    workers = store.workers(job)
    out = {
        "job": job.name,
        "labels": job.labels,
        "multi_label": job.multi_label,
        "workers_per_image": job.workers_per_image,
        **counts,
        "answers": len(answers),
        "per_worker": per_worker,
        "workers": [w["name"] for w in workers],
        "skips": sum(skips.values()),
    }
    given = [a for a in answers if not a["skipped"]]
    ag: dict = {}
    if given and not job.multi_label:
        ag = out["agreement"] = agreement([(a["item"], a["worker"], int(a["label"])) for a in given])
    rows, result = job_labels(job, store)
    by: dict[str, int] = {}
    for r in rows:
        by[r["consolidation"]] = by.get(r["consolidation"], 0) + 1
    out["by_consolidation"] = by
    out["replication"] = _replication_summary(job, rows)
    out["consolidation"] = _consolidation_summary(job, rows, result, given)
    out["worker_stats"] = _worker_stats(job, workers, per_worker, skips, ag, result)
    out["labels_so_far"] = _labels_so_far(job, rows)
    out.update(_needs_the_owner(rows, listed))
    if job.multi_label:
        out["per_class_agreement"] = _per_class_agreement(job, rows)
    out["problems"] = _problems(job, [w for w in workers if not w["revoked"]], out)
    if job.settings.get("auto_label") is not None:
        from visiontune.label.active import summarize

        out.update(summarize(job, store))
    return out
