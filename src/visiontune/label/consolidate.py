"""Consolidating several workers' answers into one label per image, with a confidence.

Dawid & Skene's EM (what Ground Truth uses): each worker has a confusion matrix (row: the true class,
column: the answer); the E-step computes each image's posterior over classes from the answers and the
current matrices, the M-step re-estimates the class prior and every matrix from those posteriors.
Gold images (labels known in advance) stay clamped to their label and tell the model how good each
worker is.  Majority vote is the baseline (and the fallback with one answer per image and no gold)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable

import numpy as np


@dataclass
class Consolidated:
    labels: dict = field(default_factory=dict)
    confidence: dict = field(default_factory=dict)
    posteriors: dict = field(default_factory=dict)
    worker_confusion: dict = field(default_factory=dict)
    worker_accuracy: dict = field(default_factory=dict)
    class_prior: np.ndarray | None = None
    iterations: int = 0
    method: str = ""


def _check(answers, num_classes: int) -> list[tuple[Hashable, Hashable, int]]:
    rows = [(i, w, int(lab)) for i, w, lab in answers]
    if not rows:
        raise ValueError("no answers to consolidate")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: need two or more classes")
    bad = [r for r in rows if not 0 <= r[2] < num_classes]
    if bad:
        raise ValueError(f"label {bad[0][2]} of item {bad[0][0]!r} (worker {bad[0][1]!r}) is outside 0..{num_classes - 1}")
    return rows


def majority_vote(answers: Iterable, num_classes: int) -> Consolidated:
    rows = _check(answers, num_classes)
    votes: dict = {}
    for i, _w, lab in rows:
        votes.setdefault(i, np.zeros(num_classes))[lab] += 1
    out = Consolidated(method="majority")
    for i, v in votes.items():
        best = int(np.argmax(v))  # ties: the lowest class index
        out.labels[i], out.confidence[i], out.posteriors[i] = best, float(v[best] / v.sum()), v / v.sum()
    return out


def dawid_skene(answers: Iterable, num_classes: int, gold: dict | None = None, max_iter: int = 100,
                tol: float = 1e-6, smoothing: float = 0.01) -> Consolidated:
    rows = _check(answers, num_classes)
    gold = dict(gold or {})
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
        clamp[ii[item], int(lab)] = 1.0
        clamped[ii[item]] = True
    # start from the (soft) majority vote
    post = np.full((n_items, k), 1e-9)
    np.add.at(post, (item_idx, labels), 1.0)
    post /= post.sum(1, keepdims=True)
    post[clamped] = clamp[clamped]
    # a prior that leans to the diagonal: an answer is more likely right than any one wrong class
    prior_counts = np.full((k, k), smoothing) + np.eye(k) * smoothing * (k - 1)
    # what tells how good a worker is: images several workers answered, and gold images.  An image only
    # one worker answered would only confirm that worker's own answer, so it does not enter the matrices.
    per_item = np.bincount(item_idx, minlength=n_items)
    informative = ((per_item >= 2) | clamped)[item_idx]
    w_inf, l_inf, i_inf = worker_idx[informative], labels[informative], item_idx[informative]
    log_lik, it = -np.inf, 0
    for it in range(1, max_iter + 1):
        # M-step: class prior and each worker's confusion matrix from the posteriors
        pi = (post.sum(0) + smoothing) / (n_items + k * smoothing)
        conf = np.tile(prior_counts, (n_workers, 1, 1))
        np.add.at(conf, (w_inf, slice(None), l_inf), post[i_inf])
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
        best = int(np.argmax(post[n]))
        out.labels[item], out.confidence[item], out.posteriors[item] = best, float(post[n, best]), post[n].copy()
    for w, m in ww.items():
        out.worker_confusion[w] = conf[m]
        out.worker_accuracy[w] = float((pi * np.diag(conf[m])).sum())
    return out


def consolidate(answers: Iterable, num_classes: int, method: str = "auto", gold: dict | None = None) -> Consolidated:
    """``auto``: Dawid-Skene when an image has two answers or gold images exist, else majority vote (one
    answer per image: confidence 1 without evidence of how good the worker is)."""
    rows = _check(answers, num_classes)
    if method == "majority":
        return majority_vote(rows, num_classes)
    if method not in ("auto", "dawid-skene"):
        raise ValueError(f"method {method!r}: use auto, dawid-skene or majority")
    per_item: dict = {}
    for i, _w, _l in rows:
        per_item[i] = per_item.get(i, 0) + 1
    if method == "auto" and not gold and max(per_item.values()) < 2:
        return majority_vote(rows, num_classes)
    return dawid_skene(rows, num_classes, gold=gold)


def disagreements(answers: Iterable, result: Consolidated, top: int | None = None) -> list[dict]:
    """Images whose answers differ, least confident first."""
    by_item: dict = {}
    for i, w, lab in answers:
        by_item.setdefault(i, {})[w] = int(lab)
    out = [{"item": i, "answers": a, "label": result.labels.get(i), "confidence": result.confidence.get(i, 0.0)}
           for i, a in by_item.items() if len(set(a.values())) > 1]
    out.sort(key=lambda d: (d["confidence"], repr(d["item"])))
    return out[:top] if top else out


def agreement(answers: Iterable) -> dict:
    """Per worker: the share of their answers that match the majority of the other workers on that image."""
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
