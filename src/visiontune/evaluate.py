"""``visiontune evaluate MODEL DATA``: how a saved model does on labelled images.

Accuracy, top-k, per-class precision / recall / F1, the confusion matrix (JSON and PNG),
and every misclassified file with what it was taken for.  Any dataset layout ``train``
reads works; the data's class names are matched to the model's by name.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from visiontune.artifact import VisionModel, load_model
from visiontune.data.dataset import labels_of, read_bytes
from visiontune.data.loading import open_dataset
from visiontune.errors import BadImageError, DataError, option, skip_hint
from visiontune.predictions import iter_predictions
from visiontune.progress import bar
from visiontune.runtime import INFERENCE_PRECISION

SPLIT_CHOICES = ("auto", "all", "train", "validation", "test")


@dataclass
class EvaluationResult:
    metrics: dict
    misclassified: list[dict]
    skipped: list[dict] = field(default_factory=list)
    out: Path | None = None

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]


def evaluate(
    model,
    data: str | Path,
    *,
    split: str = "auto",
    out: str | Path | None = None,
    top_k: int = 5,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = INFERENCE_PRECISION,
    label_attribute: str | None = None,
    on_bad_image: str = "error",
    allow_empty_labels: bool = False,
) -> EvaluationResult:
    """Evaluate ``model`` (folder, ``model.tar.gz`` or loaded model) on labelled ``data``.

    ``split``: ``auto`` = the data's test split if it has one, else every image; or one split, or ``all``.
    ``out``: a folder for ``metrics.json``, ``confusion_matrix.png`` and ``misclassified.csv``."""
    if split not in SPLIT_CHOICES:
        raise DataError(f"split={split!r}: choose one of {', '.join(SPLIT_CHOICES)}")
    m = model if isinstance(model, VisionModel) else load_model(model, device=device, precision=precision)
    ds = open_dataset(
        data,
        on_bad_image=on_bad_image,
        label_attribute=label_attribute,
        allow_empty_labels=allow_empty_labels,
        task="segmentation" if m.spatial else ("detection" if m.task.name == "detection" else "auto"),
    )
    chosen = ("test" if ds.splits.get("test") else "all") if split == "auto" else split
    held_out = None
    if split == "auto" and chosen == "all":  # the model's own held-out test images, when DATA is what it trained on
        ds, held_out = _training_test_split(m, data, ds)
        chosen = "test" if held_out else "all"
    if chosen == "all":
        samples = [s for part in ds.splits.values() for s in part]
    elif ds.splits.get(chosen):
        samples = ds.splits[chosen]
    else:
        raise DataError(f"{data}: no {chosen} split; it has {', '.join(ds.splits)} (or use {option('split', 'all')})")
    if m.task.name == "detection" or ds.task == "detection":
        return _evaluate_boxes(m, ds, data, samples, chosen, out, batch_size, on_bad_image, held_out)
    if m.spatial or ds.task == "segmentation":
        return _evaluate_masks(m, ds, data, samples, chosen, out, batch_size, on_bad_image, held_out)
    multi = m.task.name == "multi-label"
    if ds.task == "multi-label" and not multi:
        raise DataError(
            f"{data}: multi-label data (label lists), and {m.path} predicts one class per image; "
            "evaluate a multi-label model on it"
        )
    unknown = sorted(set(ds.classes[c] for s in samples for c in labels_of(s.label)) - set(m.classes))
    if unknown:
        raise DataError(
            f"{data}: class(es) {', '.join(map(repr, unknown))} are not among the model's "
            f"{len(m.classes)} classes ({', '.join(m.classes[:10])}{'...' if len(m.classes) > 10 else ''})"
        )
    index = {c: i for i, c in enumerate(m.classes)}
    truth = [
        tuple(sorted(index[ds.classes[c]] for c in labels_of(s.label))) if multi else index[ds.classes[s.label]]
        for s in samples
    ]
    probs, labels, sources, skipped = [], [], [], []
    for i, s, row in _readable(m, samples, batch_size, on_bad_image, skipped):
        probs.append(row["probabilities"])
        labels.append(truth[i])
        sources.append(s.source)
    if not probs:
        raise DataError(f"{data}: no readable image to evaluate")
    p = torch.tensor(np.asarray(probs, dtype=np.float64))
    q = p.clamp(1e-12, 1 - 1e-12)
    logits = (q.log() - (1 - q).log()) if multi else q.log()  # what the task's probabilities came from
    metrics = m.task.evaluate(logits, m.task.targets(labels, len(m.classes)), m.classes, top_k, m.task_extras)
    metrics.update(_provenance(m, data, chosen, skipped, held_out))
    if multi:
        named = m.predicted_labels(p.numpy())
        wrong = [
            {
                "source": src,
                "true": " ".join(m.classes[c] for c in y),
                "predicted": " ".join(got),
                "probability": float(p[i].max()),
                "true_probability": float(min((p[i, c] for c in y), default=0)),
            }
            for i, (src, y, got) in enumerate(zip(sources, labels, named))
            if set(got) != {m.classes[c] for c in y}
        ]
    else:
        pred = p.argmax(1).tolist()
        wrong = [
            {
                "source": src,
                "true": m.classes[y],
                "predicted": m.classes[k],
                "probability": float(p[i, k]),
                "true_probability": float(p[i, y]),
            }
            for i, (src, y, k) in enumerate(zip(sources, labels, pred))
            if k != y
        ]
    wrong.sort(key=lambda r: -r["probability"])
    result = EvaluationResult(metrics, wrong, skipped)
    if out is not None:
        result.out = _write(Path(out), metrics, wrong, m)
    return result


def _training_test_split(m: VisionModel, data, ds):
    """(the dataset with the test split training held out of it, how) when ``data`` holds the images the model
    was trained on (the artifact's ``held_out`` record: the carved test split's names and sizes match) and has
    no test split of its own; else (``ds``, None).  Scoring every image there would score the images the
    model learnt from."""
    from visiontune.data.split import hold_out, split_digest
    from visiontune.progress import note

    record = m.config.get("held_out")  # written by training when it carved the test split out of its data
    if not record or "://" in str(data):
        return ds, None
    root = Path(data).resolve()
    held = hold_out(ds, float(record["valid_fraction"]), float(record["test_fraction"]), int(record["seed"]), say=False)
    if not held.splits.get("test") or split_digest(held.splits["test"], root) != record["test"]:
        if root == Path(record["data"]):
            note(
                f"{data} is the folder this model was trained on, but its images changed since: the test split "
                "training held out cannot be found again; every image is scored, training images included"
            )
        return ds, None
    return held, (
        f"{data} has no test split; the model was trained on these images: scoring the "
        f"{len(held.splits['test'])} images training held out as its test split (test_fraction="
        f"{record['test_fraction']}, seed={record['seed']}); --split all scores every image, "
        f"training images included"
    )


def _provenance(m: VisionModel, data, chosen: str, skipped: list, held_out) -> dict:
    """What every evaluation's metrics.json says of where its figures come from."""
    return {
        "model": str(m.path),
        "data": str(data),
        "split": chosen,
        "skipped_images": skipped,
        "computed_with": m.how,
        **({"held_out": held_out} if held_out else {}),
    }


def _evaluate_boxes(
    m: VisionModel, ds, data, samples, chosen: str, out, batch_size: int, on_bad_image: str, held_out: str | None = None
) -> EvaluationResult:
    """A detector on images with boxes: COCO mAP (0.50:0.95, 0.50, 0.75), mean recall and AP per class, from
    the boxes the model answers (as ``predict`` and ``serve`` give them); ``misclassified`` lists the images,
    worst first: the share of their true boxes found (IoU 0.5, score 0.3), then their false detections."""
    from visiontune.predictions import iter_predictions
    from visiontune.tasks.detection import average_precision, image_match

    if m.task.name != "detection" or ds.task != "detection":
        raise DataError(
            f"{data}: "
            + (
                "images without boxes; a detector is evaluated on boxes (a bounding-box manifest, an Object "
                "Detection .lst, COCO JSON or a YOLO folder)"
                if m.task.name == "detection"
                else f"boxes, and {m.path} is not a detector; evaluate a detector on them"
            )
        )
    unknown = sorted({ds.classes[b[0]] for s in samples for b in s.boxes} - set(m.classes))
    if unknown:
        raise DataError(f"{data}: class(es) {', '.join(map(repr, unknown))} are not among the model's classes")
    index = {c: i for i, c in enumerate(m.classes)}
    found, truth, per_image, skipped = [], [], [], []
    rows = iter_predictions(m, [s.source for s in samples], batch_size=batch_size)  # local and remote sources
    for s, row in zip(samples, rows):
        if "error" in row:
            if on_bad_image != "skip":
                raise DataError(f"{s.source}: {row['error']} ({option('on_bad_image', 'skip')} leaves it out)")
            skipped.append({"source": s.source, "reason": row["error"]})
            continue
        d = torch.tensor(row["prediction"], dtype=torch.float32).reshape(-1, 6)
        t = torch.tensor([[index[ds.classes[b[0]]], *b[1:]] for b in s.boxes], dtype=torch.float32).reshape(-1, 5)
        found.append(d)
        truth.append(t)
        per_image.append({"source": s.source, **image_match(d, t)})
    if not found:
        raise DataError(f"{data}: no readable image to evaluate")
    metrics = {"samples": len(found), **average_precision(found, truth, m.classes)}
    metrics["accuracy"] = metrics["mAP50"]
    metrics.update(_provenance(m, data, chosen, skipped, held_out))
    # worst first: the share of true boxes missed, then the detections that found nothing (a negative with
    # false alarms ranks by those)
    per_image.sort(key=lambda r: (r["found"] / r["boxes"] if r["boxes"] else 1.0, -r["false_positives"]))
    result = EvaluationResult(metrics, per_image, skipped)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        result.out = out
    return result


def _evaluate_masks(
    m: VisionModel, ds, data, samples, chosen: str, out, batch_size: int, on_bad_image: str, held_out: str | None = None
) -> EvaluationResult:
    """A segmentation model on images with masks, at each image's own size: mIoU, per-class IoU, pixel
    accuracy and loss over every labelled pixel; ``misclassified`` lists the images by their own IoU, worst
    first (each image's mean IoU over the classes in its truth or prediction)."""
    from visiontune.data.segmentation import INDEX_MASKS, open_mask
    from visiontune.predictions import MASK, PROBABILITIES
    from visiontune.tasks.segmentation import scores

    if not m.spatial or ds.task != "segmentation":
        raise DataError(
            f"{data}: "
            + (
                "images without masks; a segmentation model is evaluated on masks (train/ + "
                "train_annotation/, images/ + masks/, or a semantic-segmentation manifest)"
                if m.spatial
                else f"masks, and {m.path} is a classifier; evaluate a segmentation model on them"
            )
        )
    generated = ds.classes == [str(i) for i in range(len(ds.classes))]  # no names in the data: the mask values
    if generated and len(ds.classes) <= len(m.classes):
        ds = dataclasses.replace(ds, classes=list(m.classes))  # open_mask checks every value against them
    if ds.classes != m.classes:
        raise DataError(
            f"{data}: its classes ({', '.join(ds.classes[:12])}) are not the model's "
            f"({', '.join(m.classes[:12])}), index for index"
        )
    c = len(m.classes)
    total = m.task.collect([], c)
    per_image, skipped, examples = [], [], []
    for _, s, row in _readable(m, samples, batch_size, on_bad_image, skipped):
        truth = torch.from_numpy(open_mask(s.mask, s.source, s.codec or INDEX_MASKS, c))
        # the task's own reduction, as training evaluates: log-probabilities are logits of the same softmax
        part = m.task.reduce(torch.from_numpy(row[PROBABILITIES]).clamp(min=1e-12).log()[None], truth[None])
        total = m.task.collect([total, part], c)
        per_image.append({"source": s.source, "mIoU": scores(part.confusion.numpy(), m.classes)["mIoU"]})
        if len(examples) < 8:
            examples.append((s.source, truth.numpy(), row[MASK]))
    if not total.images:
        raise DataError(f"{data}: no readable image to evaluate")
    metrics = m.task.evaluate(total, None, m.classes)
    metrics.update(_provenance(m, data, chosen, skipped, held_out))
    per_image.sort(key=lambda r: r["mIoU"] if r["mIoU"] == r["mIoU"] else 1.0)
    result = EvaluationResult(metrics, per_image, skipped)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        m.task.plots(out, {"evaluation": metrics, "evaluated_on": chosen, "classes": m.classes})
        _overlays(examples, m.classes, out / "segmentation_examples.png")
        with open(out / "per_image.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["source", "mIoU"])
            writer.writeheader()
            writer.writerows(per_image)
        result.out = out
    return result


def _readable(m: VisionModel, samples, batch_size: int, on_bad_image: str, skipped: list):
    """``(index, sample, prediction row)`` of every readable image, in order, with a progress bar; an unreadable one
    stops the evaluation, or with ``on_bad_image="skip"`` joins ``skipped``."""
    with bar(len(samples), "evaluating") as advance:
        rows = iter_predictions(m, [s.source for s in samples], top_k=1, batch_size=batch_size, probabilities=True)
        for i, (s, row) in enumerate(zip(samples, rows)):
            advance(1)
            if "error" in row:
                if on_bad_image != "skip":
                    raise BadImageError(s.source, row["error"], skip_hint())
                skipped.append({"source": s.source, "reason": row["error"]})
                continue
            yield i, s, row


def _overlays(examples: list, classes: list[str], path: Path) -> None:
    """Image / truth / prediction of the first images, each shown at one common size."""
    from PIL import Image

    from visiontune import plots
    from visiontune.data.decode import open_image

    side = 160
    images = np.stack(
        [np.asarray(open_image(read_bytes(src), name=src).resize((side, side))) for src, _, _ in examples]
    )
    truth = np.stack(
        [np.asarray(Image.fromarray(t).resize((side, side), Image.Resampling.NEAREST)) for _, t, _ in examples]
    )
    pred = [np.asarray(Image.fromarray(p).resize((side, side), Image.Resampling.NEAREST)) for _, _, p in examples]
    plots.segmentation_overlays(images, truth, pred, classes, path)


def _write(out: Path, metrics: dict, wrong: list[dict], m: VisionModel) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # the task's pictures: a confusion matrix, or precision-recall curves
    m.task.plots(out, {"evaluation": metrics, "evaluated_on": metrics["split"], "classes": m.classes})
    with open(out / "misclassified.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["source", "true", "predicted", "probability", "true_probability"])
        writer.writeheader()
        writer.writerows(wrong)
    return out


__all__ = ["EvaluationResult", "evaluate", "SPLIT_CHOICES"]
