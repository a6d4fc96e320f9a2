"""Consolidating several workers' answers into one label per image, with a confidence.

Dawid & Skene's EM (what Ground Truth uses): each worker has a confusion matrix (row: the true class,
column: the answer); the E-step computes each image's posterior over classes from the answers and the
current matrices, the M-step re-estimates the class prior and every matrix from those posteriors.
Gold images (labels known in advance) stay clamped to their label and tell the model how good each
worker is.  Majority vote is the baseline (and the fallback with one answer per image and no gold).

An answer is an ``(item, worker, label)`` triple: item and worker any hashable, label an int in
``0..num_classes-1``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable

import numpy as np

Answer = tuple[Hashable, Hashable, int]
_ACCURACY_PSEUDO_ANSWERS = 2.0  # weight of the prior on a worker's pooled accuracy


@dataclass
class Consolidated:
    labels: dict[Hashable, int] = field(default_factory=dict)            # item -> consolidated class
    confidence: dict[Hashable, float] = field(default_factory=dict)      # item -> posterior of that class
    posteriors: dict[Hashable, np.ndarray] = field(default_factory=dict)  # item -> (K,) probabilities
    worker_confusion: dict[Hashable, np.ndarray] = field(default_factory=dict)  # (K, K): row true, column answer
    worker_accuracy: dict[Hashable, float] = field(default_factory=dict)  # P(right answer), prior-weighted
    class_prior: np.ndarray | None = None
    iterations: int = 0
    method: str = ""


def _label(value, num_classes: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not float(value).is_integer():
        raise ValueError(f"{what} has the label {value!r}: labels are class indices (integers 0..{num_classes - 1})")
    if not 0 <= int(value) < num_classes:
        raise ValueError(f"{what} has the label {int(value)}, outside 0..{num_classes - 1}")
    return int(value)


def _check(answers: Iterable, num_classes: int) -> list[Answer]:
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r}: need an integer, two or more classes")
    rows = []
    for n, answer in enumerate(answers):
        try:
            item, worker, value = answer
        except (TypeError, ValueError):
            raise ValueError(f"answer #{n} is {answer!r}: expected an (item, worker, label) triple") from None
        rows.append((item, worker, _label(value, num_classes, f"item {item!r} (worker {worker!r})")))
    if not rows:
        raise ValueError("no answers to consolidate")
    return rows


def _check_gold(gold: dict | None, num_classes: int) -> dict:
    if gold is None:
        return {}
    if not isinstance(gold, dict):
        raise ValueError(f"gold must be a dict item -> label, not {type(gold).__name__}")
    return {item: _label(v, num_classes, f"gold item {item!r}") for item, v in gold.items()}


def _votes(rows: list[Answer], num_classes: int) -> dict:
    votes: dict = {}
    for item, _w, lab in rows:
        votes.setdefault(item, np.zeros(num_classes))[lab] += 1
    return votes


def majority_vote(answers: Iterable, num_classes: int, seed: int | None = None) -> Consolidated:
    """Each item's most frequent answer; confidence = the winner's share of the votes.  Ties go to the
    lowest class index, or with ``seed`` to a tied class drawn by a generator of that seed (items visited
    in a fixed order, so the same answers and seed give the same labels)."""
    rows = _check(answers, num_classes)
    votes = _votes(rows, num_classes)
    rng = None if seed is None else np.random.default_rng(seed)
    winner = {}
    for item in sorted(votes, key=repr) if rng is not None else votes:
        v = votes[item]
        tied = np.flatnonzero(v == v.max())
        winner[item] = int(tied[0] if rng is None or len(tied) == 1 else rng.choice(tied))
    out = Consolidated(method="majority")
    for item, v in votes.items():
        share = v / v.sum()
        out.labels[item], out.confidence[item], out.posteriors[item] = winner[item], float(share[winner[item]]), share
    out.class_prior = np.mean(list(out.posteriors.values()), axis=0)
    return out


def prior_accuracy(num_classes: int) -> float:
    """A worker's accuracy before any evidence: half-way between chance (1/K) and always right."""
    return (1.0 + 1.0 / num_classes) / 2.0


def dawid_skene(answers: Iterable, num_classes: int, gold: dict | None = None, max_iter: int = 100,
                tol: float = 1e-6, smoothing: float = 0.01, prior_strength: float = 8.0) -> Consolidated:
    """Dawid-Skene EM.  ``gold``: item -> known label, clamped one-hot throughout (gold items nobody answered
    are reported too); the answers workers gave on gold images are what tells their accuracy when each image
    has one worker.

    The M-step is a posterior mean (additive smoothing), so that a worker seen on few images stays sensible:
    each row of a worker's confusion matrix gets ``prior_strength`` pseudo-answers shaped like the worker's
    own pooled ("one-coin") accuracy on the diagonal and the rest spread evenly over the wrong classes; that
    pooled accuracy has a Beta prior worth 2 answers of mean ``prior_accuracy(K)`` = (1 + 1/K) / 2; every
    cell and the class prior get ``smoothing`` more, which keeps every log finite.  A full K x K matrix
    estimated from a handful of gold answers per class would otherwise overfit (one worker on gold: labels
    worse than the worker's own answers, measured); with hundreds of answers per worker and class the data
    dominate and this is the classic estimate.

    Stops when the largest posterior change is below ``tol`` or the log-likelihood changes by less than
    ``tol`` (relative), or after ``max_iter`` iterations."""
    rows = _check(answers, num_classes)
    gold = _check_gold(gold, num_classes)
    if max_iter < 1:
        raise ValueError(f"max_iter={max_iter}: need at least one iteration")
    if not smoothing > 0:
        raise ValueError(f"smoothing={smoothing}: must be > 0 (a worker's matrix needs a prior)")
    if not tol >= 0:
        raise ValueError(f"tol={tol}: must be >= 0")
    if not prior_strength >= 0:
        raise ValueError(f"prior_strength={prior_strength}: must be >= 0")
    items = sorted({r[0] for r in rows} | set(gold), key=repr)
    workers = sorted({r[1] for r in rows}, key=repr)
    ii = {x: n for n, x in enumerate(items)}
    ww = {x: n for n, x in enumerate(workers)}
    k, n_items, n_workers = num_classes, len(items), len(workers)
    item_idx = np.array([ii[r[0]] for r in rows])
    worker_idx = np.array([ww[r[1]] for r in rows])
    labels = np.array([r[2] for r in rows])
    clamp = np.zeros((n_items, k))
    clamped = np.zeros(n_items, dtype=bool)
    for item, lab in gold.items():
        clamp[ii[item], lab] = 1.0
        clamped[ii[item]] = True
    # start from the (soft) majority vote
    post = np.full((n_items, k), 1e-9)
    np.add.at(post, (item_idx, labels), 1.0)
    post /= post.sum(1, keepdims=True)
    post[clamped] = clamp[clamped]
    a0, eye = prior_accuracy(k), np.eye(k, dtype=bool)
    # what tells how good a worker is: images several workers answered, and gold images.  An image only
    # one worker answered would only confirm that worker's own answer, so it does not enter the matrices.
    per_item = np.bincount(item_idx, minlength=n_items)
    informative = ((per_item >= 2) | clamped)[item_idx]
    w_inf, l_inf, i_inf = worker_idx[informative], labels[informative], item_idx[informative]
    log_lik, it = -np.inf, 0
    for it in range(1, max_iter + 1):
        # M-step: class prior and each worker's confusion matrix from the posteriors
        pi = (post.sum(0) + smoothing) / (n_items + k * smoothing)
        counts = np.zeros((n_workers, k, k))
        np.add.at(counts, (w_inf, slice(None), l_inf), post[i_inf])
        right, seen = counts[:, eye].sum(1), counts.sum((1, 2))
        pooled = (right + _ACCURACY_PSEUDO_ANSWERS * a0) / (seen + _ACCURACY_PSEUDO_ANSWERS)
        shape = np.where(eye, pooled[:, None, None], ((1.0 - pooled) / (k - 1))[:, None, None])
        conf = counts + prior_strength * shape + smoothing
        conf /= conf.sum(2, keepdims=True)
        # E-step, in log space
        log_post = np.tile(np.log(pi), (n_items, 1))
        np.add.at(log_post, item_idx, np.log(conf[worker_idx, :, labels]))
        top = log_post.max(1, keepdims=True)
        new = np.exp(log_post - top)
        norm = new.sum(1, keepdims=True)
        new /= norm
        new[clamped] = clamp[clamped]
        ll = float((top.ravel() + np.log(norm.ravel()))[~clamped].sum())
        change = np.abs(new - post).max()
        post = new
        if change < tol or abs(ll - log_lik) < tol * max(1.0, abs(ll)):
            break
        log_lik = ll
    out = Consolidated(method="dawid-skene", class_prior=pi, iterations=it)
    for n, item in enumerate(items):
        best = int(np.argmax(post[n]))  # ties: the lowest class index
        out.labels[item], out.confidence[item], out.posteriors[item] = best, float(post[n, best]), post[n].copy()
    for w, m in ww.items():
        out.worker_confusion[w] = conf[m].copy()
        out.worker_accuracy[w] = float((pi * np.diag(conf[m])).sum())
    return out


def consolidate(answers: Iterable, num_classes: int, method: str = "auto", gold: dict | None = None,
                seed: int | None = None) -> Consolidated:
    """``method``: ``auto`` (Dawid-Skene when an image has two answers or gold images exist, else majority
    vote), ``dawid-skene`` or ``majority``.

    With one answer per image and no gold nothing tells how good a worker is, so ``auto``'s vote does not
    claim certainty: each class gets a pseudo-vote of 1/K, posterior = (votes + 1/K) / (answers + 1), the
    lone answer's confidence (1 + 1/K) / 2.  (With gold images the worker's estimated accuracy gives it,
    by Bayes, through Dawid-Skene.)  ``majority`` keeps the plain share of the votes."""
    rows = _check(answers, num_classes)
    gold = _check_gold(gold, num_classes)
    method = method.replace("_", "-") if isinstance(method, str) else method
    if method == "majority":
        return majority_vote(rows, num_classes, seed=seed)
    if method not in ("auto", "dawid-skene"):
        raise ValueError(f"method {method!r}: use auto, dawid-skene or majority")
    per_item: dict = {}
    for item, _w, _l in rows:
        per_item[item] = per_item.get(item, 0) + 1
    if method == "dawid-skene" or gold or max(per_item.values()) >= 2:
        return dawid_skene(rows, num_classes, gold=gold)
    out = majority_vote(rows, num_classes, seed=seed)
    for item, share in out.posteriors.items():
        smoothed = (share + 1.0 / num_classes) / 2.0  # one vote per item (share one-hot): winner = prior_accuracy(K)
        out.posteriors[item], out.confidence[item] = smoothed, float(smoothed[out.labels[item]])
    out.class_prior = np.mean(list(out.posteriors.values()), axis=0)
    return out


def disagreements(answers: Iterable, result: Consolidated, top: int | None = None) -> list[dict]:
    """Images whose answers differ, least confident first (ties by item), at most ``top`` of them:
    ``{"item", "answers": {worker: label}, "label", "confidence"}``."""
    if top is not None and top < 0:
        raise ValueError(f"top={top}: must be >= 0")
    by_item: dict = {}
    for i, w, lab in answers:
        by_item.setdefault(i, {})[w] = int(lab)
    out = [{"item": i, "answers": a, "label": result.labels.get(i), "confidence": result.confidence.get(i, 0.0)}
           for i, a in by_item.items() if len(set(a.values())) > 1]
    out.sort(key=lambda d: (d["confidence"], repr(d["item"])))
    return out if top is None else out[:top]


def agreement(answers: Iterable) -> dict:
    """Per worker: the share of their answers (on images someone else also answered) that match the majority
    of the other workers on that image; a tie among the others counts every tied class as the majority."""
    by_item: dict = {}
    for i, w, lab in answers:
        by_item.setdefault(i, []).append((w, int(lab)))
    hits: dict = {}
    for votes in by_item.values():
        for w, lab in votes:
            others = [x for v, x in votes if v != w]
            if not others:
                continue
            values, counts = np.unique(others, return_counts=True)
            majority = set(values[counts == counts.max()].tolist())
            h = hits.setdefault(w, [0, 0])
            h[0] += lab in majority
            h[1] += 1
    return {w: h[0] / h[1] for w, h in hits.items() if h[1]}


def consolidated(job, store=None):
    """(items, answers, result): each image's label and confidence from every worker's answers (Dawid-Skene
    with several workers per image; a worker's estimated accuracy with one), gold images clamped."""
    from visiontune.label.store import LabelStore

    store = store or LabelStore()
    items = store.items(job)
    answers = [a for a in store.answers(job) if not a["skipped"]]
    triples = [(a["item"], a["worker"], int(a["label"])) for a in answers if not job.multi_label]
    gold = {i.id: int(i.gold) for i in items if i.gold is not None}
    result = consolidate(triples, len(job.labels), gold=gold or None) if triples else None
    return items, answers, result
