"""Auto-labeling (``--auto-label``): Ground Truth's active-learning loop on the engine's feature cache.

Humans label a random sample first (a job made with ``--auto-label`` hands images out in a shuffled
order).  Each round then:

1. takes every image humans finished (consolidated when several workers answer) plus the gold images;
2. trains a linear head on the frozen backbone's cached features (head mode: the features are computed once
   per image and reused by every round, so a round costs seconds);
3. predicts each human-labelled image with heads trained on the other folds (k-fold, so every human label is
   also held out once) and picks the lowest confidence threshold whose held-out accuracy reaches the target
   (where the human labels themselves are estimated to err, the agreement needed is lowered to match);
4. labels the images no human finished whose confidence (the fold heads' average) clears it
   (``human-annotated: "no"``), and hands the least confident of the rest to humans next.

It repeats as humans label more (``label serve`` runs a round whenever ``batch_share`` of the images got new
human labels; ``label auto`` runs one now) until every image has a label.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Hashable, cast

import numpy as np
import torch

from visiontune.choices import out_of_bounds, range_text
from visiontune.errors import ConfigError, WeightsUnavailableError
from visiontune.probe import LinearHead, cross_fit, ensemble_proba, image_features
from visiontune.label.store import Item, LabelJob, LabelStore, class_index

# weight_decay: of 1e-4, 1e-3, 1e-2, 3e-2 and 1e-1, 1e-2 met a 95% target with the fewest human labels on 20k
# Fashion-MNIST images (less: confidences near 1 that rank badly; more: held-out estimates above the truth).

#: Held-out predictions needed above a threshold before it may be used.
MIN_VALIDATED = 30


@dataclass
class AutoLabelSettings:
    """How a job auto-labels; kept in the job's settings (``settings["auto_label"]``)."""

    target_accuracy: float = 0.95  # the held-out accuracy the auto-labels must reach
    model: str = "mobilenet_v2"  # the zoo backbone whose features the head is trained on
    image_size: int | None = None  # None: the model's own preprocessing size
    initial_share: float = 0.10  # humans label this share (a random sample) before the first round
    batch_share: float = 0.05  # then a round after every this share of new human labels
    min_labels: int = 50  # and never before this many human labels
    folds: int = 5  # k-fold held-out predictions for the threshold
    z: float = 1.0  # the threshold's accuracy is the lower bound of a z-sigma Wilson interval
    weight_decay: float = 1e-2  # the head's L2 penalty (see below)
    seed: int = 0

    def __post_init__(self):
        checks = [
            ("target_accuracy", 0.5 <= self.target_accuracy < 1.0, "between 0.5 and 1 (e.g. 0.95)"),
            ("initial_share", 0.0 < self.initial_share <= 1.0, "a share of the images, in (0, 1]"),
            ("batch_share", 0.0 < self.batch_share <= 1.0, "a share of the images, in (0, 1]"),
            ("min_labels", self.min_labels >= 10, "10 or more"),
            ("folds", 2 <= self.folds <= 20, "2 to 20"),
            ("z", 0.0 <= self.z <= 4.0, "0 to 4"),
            ("weight_decay", self.weight_decay >= 0.0, "0 or more"),
            (
                "image_size",
                self.image_size is None or not out_of_bounds("image_size", self.image_size),
                range_text("image_size"),
            ),  # the one bounds table (TrainConfig, the CLI, Preprocessing)
        ]
        for name, ok, what in checks:
            if not ok:
                raise ConfigError(f"auto-label {name}={getattr(self, name)!r}: give {what}")

    @classmethod
    def from_dict(cls, d: dict) -> "AutoLabelSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"auto-label settings: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def first_round(self, images: int) -> int:
        """Human labels the first round waits for: a random ``initial_share`` of the images, ``min_labels`` at least."""
        return max(self.min_labels, math.ceil(self.initial_share * images))


def settings_of(job: LabelJob) -> AutoLabelSettings | None:
    raw = job.settings.get("auto_label")
    return None if raw is None else AutoLabelSettings.from_dict(raw)


def check_auto_label(job: LabelJob | None, settings: AutoLabelSettings | None, multi_label: bool = False) -> None:
    if job is not None and settings is None:
        raise ConfigError(
            f"labeling job {job.name} was made without --auto-label; make a new job with it "
            f"(`visiontune label create NAME --images ... --auto-label`)"
        )
    if multi_label or (job is not None and job.multi_label):
        raise ConfigError("--auto-label works on single-label jobs; a multi-label job is labelled by humans only")


# -- the pieces: features, a head, held-out predictions, a threshold -------------------------------------


def job_features(paths: list[str], settings: AutoLabelSettings, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 backbone features of the images and the mask of those that decoded, from the engine's
    content-keyed feature cache (computed on the first round, read back on every later one)."""
    from visiontune.data.dataset import Sample

    try:
        return image_features([Sample(p, 0) for p in paths], settings.model, settings.image_size, device)
    except WeightsUnavailableError as exc:
        raise ConfigError(
            f"auto-label model {settings.model}: it has no pretrained weights; choose one that has "
            "(`visiontune models`)"
        ) from exc


def observed_target(target: float, human_accuracy: float, num_classes: int) -> float:
    """The agreement with human labels that means ``target`` true accuracy, when the human labels are right with
    ``human_accuracy`` and wrong ones pick any other class alike (independently of the model's mistakes):
    agreement = a*h + (1-a)*(1-h)/(K-1).  With exact human labels it is the target itself."""
    h, k = human_accuracy, num_classes
    return target * h + (1 - target) * (1 - h) / (k - 1)


def true_accuracy(agreement: float, human_accuracy: float, num_classes: int) -> float:
    """The inverse of :func:`observed_target`: a model's accuracy from its agreement with noisy human labels."""
    h, k = human_accuracy, num_classes
    return min(1.0, max(0.0, (agreement - (1 - h) / (k - 1)) / (h - (1 - h) / (k - 1))))


def wilson_lower(correct: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """Lower end of the Wilson score interval of an accuracy (z sigma)."""
    n = np.maximum(n, 1)
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def pick_threshold(
    confidence: np.ndarray, correct: np.ndarray, target: float, z: float = 1.0, min_count: int = MIN_VALIDATED
) -> tuple[float | None, float | None, int]:
    """The lowest confidence whose held-out predictions at or above it reach ``target`` accuracy (the lower
    bound of its Wilson interval, so few predictions need more margin): (threshold, their accuracy, how many).
    (None, None, 0) when no threshold does."""
    order = np.argsort(-confidence, kind="stable")
    conf, ok = confidence[order], correct[order].astype(np.float64)
    n = np.arange(1, len(conf) + 1)
    hits = np.cumsum(ok)
    # only cut between distinct confidences: every prediction at the threshold is auto-labelled too
    last_of_value = np.r_[conf[1:] != conf[:-1], True]
    good = (wilson_lower(hits, n, z) >= target) & (n >= min_count) & last_of_value
    if not good.any():
        return None, None, 0
    k = int(np.flatnonzero(good)[-1])
    return float(conf[k]), float(hits[k] / n[k]), int(n[k])


def calibrator(confidence: np.ndarray, correct: np.ndarray):
    """A map from the model's confidence to how often held-out predictions at that confidence were right:
    isotonic regression (pool adjacent violators) of ``correct`` on ``confidence``, each block's rate with
    one pseudo-right and one pseudo-wrong prediction (a block of 30 right is 31/32, never a certain 1.0).
    Returns ``f(conf array) -> probability array`` (a step function; below the lowest held-out confidence the
    lowest block's rate)."""
    order = np.argsort(confidence, kind="stable")
    x, y = np.asarray(confidence, dtype=np.float64)[order], np.asarray(correct, dtype=np.float64)[order]
    blocks: list[list[float]] = []  # [sum right, count, highest confidence]
    for xi, yi in zip(x, y):
        blocks.append([yi, 1.0, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            right, n, hi = blocks.pop()
            blocks[-1][0] += right
            blocks[-1][1] += n
            blocks[-1][2] = hi
    if not blocks:
        return lambda c: np.full(np.shape(c), 0.5)
    edges = np.array([b[2] for b in blocks])
    rates = np.array([(b[0] + 1.0) / (b[1] + 2.0) for b in blocks])
    rates = np.maximum.accumulate(rates)  # the pseudo-counts must not break the order

    def apply(c):
        return rates[np.minimum(np.searchsorted(edges, np.asarray(c, dtype=np.float64), side="left"), len(rates) - 1)]

    return apply


# -- a round ---------------------------------------------------------------------------------------------


def human_labels(job: LabelJob, store: LabelStore) -> dict[int, int]:
    """item id -> label, for every image humans finished (``workers_per_image`` answers, consolidated) and
    every gold image."""
    from visiontune.label.results import consolidated

    items, answers, result = consolidated(job, store)
    count: dict[Hashable, int] = {}
    for a in answers:
        count[a["item"]] = count.get(a["item"], 0) + 1
    out = {i.id: class_index(i.gold) for i in items if i.gold is not None}
    if result is not None:
        for item, lab in result.labels.items():  # a job's items are keyed by their ids
            if count.get(item, 0) >= job.workers_per_image:
                out.setdefault(cast(int, item), int(lab))
    return out


def human_accuracy(job: LabelJob, store: LabelStore, z: float) -> tuple[float, int]:
    """How often a human label is right, measured on the gold images workers answered: the upper end of its
    z-sigma Wilson interval (an overestimate only makes the threshold stricter), and how many answers that
    rests on.  1.0 without gold answers, and with several workers per image (a consolidated label is better
    than one worker's answer, and nothing here measures by how much)."""
    if job.workers_per_image > 1:
        return 1.0, 0
    gold = {i.id: class_index(i.gold) for i in store.items(job) if i.gold is not None}
    right = [int(a["label"]) == gold[a["item"]] for a in store.answers(job) if a["item"] in gold and not a["skipped"]]
    if not right:
        return 1.0, 0
    n, p = len(right), float(np.mean(right))
    upper = 1.0 - float(wilson_lower(np.array([n - sum(right)]), np.array([n]), z)[0])
    return max(p, min(1.0, upper)), n


def due(job: LabelJob, store: LabelStore, humans: dict[int, int] | None = None) -> str | None:
    """Why a round should run now (None: not yet, or nothing left); ``humans``: :func:`human_labels`, when the
    caller has them already."""
    settings = settings_of(job)
    if settings is None:
        return None
    counts = store.counts(job)
    if counts["complete"] >= counts["images"]:
        return None
    n_humans = len(human_labels(job, store) if humans is None else humans)
    rounds = store.rounds(job)
    if not rounds:
        need = settings.first_round(counts["images"])
        return f"{n_humans} human labels (the first round needs {need})" if n_humans >= need else None
    step = max(1, math.ceil(settings.batch_share * counts["images"]))
    new = n_humans - rounds[-1]["human_labeled"]
    return f"{new} new human labels since round {rounds[-1]['round']}" if new >= step else None


def _check_ready(
    name: str, job: LabelJob, labels: dict[int, int], pending: list[Item], settings: AutoLabelSettings
) -> None:
    """Refuse a round that cannot help: too few human labels, nothing left, or one label only."""
    if len(labels) < settings.min_labels:
        raise ConfigError(
            f"labeling job {name}: {len(labels)} human label(s); auto-labeling needs at least "
            f"{settings.min_labels} (label more images first)"
        )
    if not pending:
        raise ConfigError(f"labeling job {name}: every image has a label; nothing left to auto-label")
    if len(set(labels.values())) < 2:
        only = job.labels[next(iter(labels.values()))]
        raise ConfigError(
            f"labeling job {name}: the human labels so far are all {only!r}; a model needs two or more "
            "labels to tell apart (label more images first)"
        )


def _checked_human_accuracy(name: str, job: LabelJob, store: LabelStore, z: float) -> tuple[float, int]:
    """:func:`human_accuracy`, refused when it is too close to chance to check a model against: where the
    human labels it is checked against err (measured on gold images), the held-out agreement a model needs
    for the target accuracy is lower."""
    human_acc, gold_answers = human_accuracy(job, store, z)
    k = len(job.labels)
    floor = 0.5 + 0.5 / k  # half-way from chance (1/k, for k=2) up: below it the correction would be wild
    if human_acc < floor:
        raise ConfigError(
            f"labeling job {name}: the workers' answers on gold images are right only "
            f"{human_acc:.0%} of the time (upper estimate, {gold_answers} answers), too close to "
            "chance to check a model against; look at the gold labels and the workers' agreement "
            "(`visiontune label status`)"
        )
    return human_acc, gold_answers


def _model_labels(
    heads: list[LinearHead],
    x: np.ndarray,
    usable: list[Item],
    row: dict[int, int],
    threshold: float | None,
    calibrate: Callable[[np.ndarray], np.ndarray],
    human_acc: float,
    k: int,
) -> tuple[dict[int, tuple[int, float]], dict[int, float]]:
    """(item id -> (label, confidence) for the images the heads are sure of, item id -> priority for the rest).
    A model label's confidence is on the humans' scale: how often held-out predictions of that confidence were
    right (isotonic), corrected for the human labels' own errors where gold measured them."""
    auto: dict[int, tuple[int, float]] = {}
    priorities: dict[int, float] = {}
    if not usable:
        return auto, priorities
    proba = ensemble_proba(heads, x[[row[i.id] for i in usable]])
    conf, pred = proba.max(1), proba.argmax(1)
    calibrated = calibrate(conf)
    for item, c, p, q in zip(usable, conf, pred, calibrated):
        if threshold is not None and c >= threshold:
            auto[item.id] = (int(p), float(min(1.0, true_accuracy(float(q), human_acc, k))))
        else:
            priorities[item.id] = float(1.0 - c)  # the least confident first
    return auto, priorities


def run_round(name: str, store: LabelStore | None = None, device: str = "auto") -> dict:
    """One auto-labeling round of job ``name`` now; returns its summary (also kept in the job store)."""
    store = store or LabelStore()
    job = store.get_job(name)
    settings = settings_of(job)
    check_auto_label(job, settings)
    assert settings is not None  # check_auto_label refuses a job made without --auto-label
    t0 = time.perf_counter()
    items = store.items(job)
    labels = human_labels(job, store)
    k = len(job.labels)
    pending = [i for i in items if i.auto_label is None and i.id not in labels]
    summary: dict = {"human_labeled": len(labels), "images": len(items), "target_accuracy": settings.target_accuracy}
    _check_ready(name, job, labels, pending, settings)
    human_acc, gold_answers = _checked_human_accuracy(name, job, store, settings.z)
    x, ok = job_features([i.path for i in items], settings, device)
    t_features = time.perf_counter() - t0
    row = {i.id: n for n, i in enumerate(items)}
    train_ids = [i for i in labels if ok[row[i]]]
    if len(train_ids) < settings.min_labels:
        raise ConfigError(
            f"labeling job {name}: only {len(train_ids)} human-labelled image(s) could be read by "
            f"{settings.model}; auto-labeling needs {settings.min_labels}"
        )
    ys = np.array([labels[i] for i in train_ids], dtype=np.int64)
    seed = settings.seed + len(store.rounds(job))
    torch.manual_seed(seed)
    val, heads = cross_fit(x[[row[i] for i in train_ids]], ys, k, settings.folds, settings.weight_decay, seed)
    conf_v = val.max(1)
    correct = val.argmax(1) == ys
    threshold, agreement, validated = pick_threshold(
        conf_v, correct, observed_target(settings.target_accuracy, human_acc, k), settings.z
    )
    auto, priorities = _model_labels(
        heads, x, [i for i in pending if ok[row[i.id]]], row, threshold, calibrator(conf_v, correct), human_acc, k
    )
    for item in pending:
        if not ok[row[item.id]]:
            priorities[item.id] = 0.0  # an image the backbone could not read: humans decide, after the rest
    summary.update(
        {
            "threshold": threshold,
            "estimated_accuracy": None if agreement is None else true_accuracy(agreement, human_acc, k),
            "validated_above_threshold": validated,
            "agreement_with_humans": agreement,
            "human_label_accuracy": round(human_acc, 4),
            "gold_answers": gold_answers,
            "held_out_accuracy": float(correct.mean()) if len(ys) else None,
            "held_out": int(len(ys)),
            "pending_before": len(pending),
            "unreadable": int(sum(not ok[row[i.id]] for i in pending)),
            "seconds": round(time.perf_counter() - t0, 3),
            "feature_seconds": round(t_features, 3),
            "model": settings.model,
            "confidence": "calibrated: isotonic on the held-out predictions (the model's own softmax picks the "
            "threshold)",
            "mean_auto_confidence": round(float(np.mean([v[1] for v in auto.values()])), 4) if auto else None,
        }
    )
    return store.record_round(job, summary, auto, priorities)


def summarize(job: LabelJob, store: LabelStore) -> dict:
    """What ``label status`` shows about auto-labeling: images labelled by humans and by the model, and the
    auto-labels' estimated accuracy (each round's held-out accuracy above its threshold, weighted by how many
    images that round labelled)."""
    settings = settings_of(job)
    if settings is None:
        return {}
    items = store.items(job)
    rounds = store.rounds(job)
    humans = human_labels(job, store)
    auto = [i for i in items if i.auto_label is not None and i.id not in humans]  # a human answer wins
    by_round: dict[int | None, int] = {}
    for i in auto:
        by_round[i.auto_round] = by_round.get(i.auto_round, 0) + 1
    est: dict[int | None, float | None] = {r["round"]: r["estimated_accuracy"] for r in rounds}
    weighted = sum(n * e for r, n in by_round.items() if (e := est.get(r)) is not None)
    return {
        "auto_label": {
            "target_accuracy": settings.target_accuracy,
            "model": settings.model,
            "rounds": len(rounds),
            "human_labeled": len(humans),
            "auto_labeled": len(auto),
            "estimated_accuracy": round(weighted / len(auto), 4) if auto else None,
            "last_round": rounds[-1] if rounds else None,
            "next_round": due(job, store, humans),
        }
    }


def describe(s: dict) -> str:
    """A round's summary in one line."""
    if s["threshold"] is None:
        return (
            f"round {s['round']}: no confidence threshold reaches {s['target_accuracy']:.0%} held-out accuracy yet "
            f"({s['held_out_accuracy']:.1%} over all {s['held_out']} human labels); the least confident images "
            f"go to humans next ({s['seconds']:.1f} s)"
        )
    return (
        f"round {s['round']}: {s['auto_labeled_now']} image(s) auto-labeled at confidence >= {s['threshold']:.4f} "
        f"(held-out accuracy above it {s['estimated_accuracy']:.1%} on {s['validated_above_threshold']} human "
        f"labels; {s['seconds']:.1f} s)"
    )


class AutoLabeler:
    """``label serve``'s background thread: a round whenever one is due (checked every ``interval`` s)."""

    def __init__(self, name: str, store: LabelStore, interval: float = 5.0, say=print):
        self.name, self.store, self.interval, self.say = name, store, interval, say
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"auto-label-{name}", daemon=True)

    def start(self) -> "AutoLabeler":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        failed = None  # the reason of a round that failed: not retried until more labels come in
        while not self._stop.wait(self.interval):
            why = None
            try:
                job = self.store.get_job(self.name)
                why = due(job, self.store)
                if why is None or why == failed:
                    continue
                self.say(f"auto-labeling round ({why})...")
                s = run_round(self.name, self.store)
                self.say(describe(s))
                failed = None
            except Exception as exc:  # noqa: BLE001 - the app keeps serving; more labels try again
                failed = why
                self.say(f"auto-labeling round failed: {type(exc).__name__}: {exc}")
