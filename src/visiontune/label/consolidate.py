"""Consolidating several workers' answers into one label per image, with a confidence that is the posterior
probability that the label is right.

One estimator (:func:`dawid_skene`) with three worker models, chosen by the evidence (:func:`consolidate`,
``auto``): every worker alike (majority vote with honest posteriors: two workers, or few shared images),
one accuracy per worker ("one-coin": three or more measurable workers, or gold), and Dawid & Skene's
confusion matrices (hundreds of checkable answers per worker).  Estimates are shrunk toward the pool by
the evidence behind them and counted leave-one-out, so two workers never "win" each other's
disagreements; gold images (labels known in advance) stay clamped and measure workers first.  Equal votes
that nothing tells apart are a ``tie`` (confidence <= 0.5), never decided silently.  Several labels per
image: each class is its own yes/no question (:func:`consolidate_multilabel`).

An answer is an ``(item, worker, label)`` triple: item and worker any hashable, label an int in
``0..num_classes-1``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable, Union

import numpy as np

Answer = tuple[Hashable, Hashable, int]
_ACCURACY_PSEUDO_ANSWERS = 2.0  # weight of the prior on a worker's pooled accuracy


@dataclass
class Consolidated:
    labels: dict[Hashable, int] = field(default_factory=dict)  # item -> consolidated class
    confidence: dict[Hashable, float] = field(default_factory=dict)  # item -> posterior of that class
    posteriors: dict[Hashable, np.ndarray] = field(default_factory=dict)  # item -> (K,) probabilities
    worker_confusion: dict[Hashable, np.ndarray] = field(default_factory=dict)  # (K, K): row true, column answer
    worker_accuracy: dict[Hashable, float] = field(default_factory=dict)  # P(right answer), prior-weighted
    class_prior: np.ndarray | None = None
    iterations: int = 0
    method: str = ""
    # item -> how the label came about: gold, single (one answer), unanimous, majority (the most votes),
    # weighted (the workers' estimated accuracies outweighed the count), tie (equal votes, nothing to tell them
    # apart: the lowest tied class, confidence <= 0.5)
    status: dict[Hashable, str] = field(default_factory=dict)
    worker_evidence: dict[Hashable, int] = field(default_factory=dict)  # answers checkable against others / gold
    worker_gold: dict[Hashable, dict] = field(default_factory=dict)  # {"right", "answers"} on gold images
    why: str = ""  # why auto chose this model


@dataclass
class MultiLabelConsolidated:
    """Several labels per image, each class consolidated as its own yes/no question."""

    labels: dict[Hashable, list[int]] = field(default_factory=dict)  # item -> classes present
    probability: dict[Hashable, list[float]] = field(default_factory=dict)  # item -> P(class present), per class
    confidence: dict[Hashable, dict[int, float]] = field(default_factory=dict)  # item -> class -> P(decision right)
    tied: dict[Hashable, list[int]] = field(default_factory=dict)  # item -> classes whose answers tie
    status: dict[Hashable, str] = field(default_factory=dict)
    per_class: list[Consolidated] = field(default_factory=list)  # each class's binary result


def _label(value, num_classes: int, what: str) -> int:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer, float, np.floating))
        or not float(value).is_integer()
    ):
        raise ValueError(f"{what} has the label {value!r}: labels are class indices (integers 0..{num_classes - 1})")
    if not 0 <= int(value) < num_classes:
        raise ValueError(f"{what} has the label {int(value)}, outside 0..{num_classes - 1}")
    return int(value)


def _check(answers: Iterable, num_classes: int) -> list[Answer]:
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
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
        n_top = int((v == v.max()).sum())
        out.status[item] = (
            "single" if v.sum() == 1 else "unanimous" if v.max() == v.sum() else "majority" if n_top == 1 else "tie"
        )
    out.class_prior = np.mean(list(out.posteriors.values()), axis=0)
    return out


#: A worker's accuracy before any evidence: an assumption, not a measurement (gold images or a second worker
#: on the same images measure it).  0.8: a careful person on a clear task; alice and bob of issue 28 were 83-89%.
PRIOR_WORKER_ACCURACY = 0.8
#: Pseudo-answers each worker's own accuracy gets at the pooled accuracy (or at their gold accuracy): a
#: worker's estimate leaves the pool only as far as their own evidence carries it.  Measured
#: (benchmarks/label.py, 2 answers per image of 3 workers): 10 -> ECE 0.055 (EM credits the best worker with
#: the disagreements: 0.95-0.98 estimated for a 0.9 worker), 100 -> ECE 0.024, the same accuracy.
WORKER_PSEUDO_ANSWERS = 100.0
#: ... and the pseudo-answers at the pool that a worker's gold accuracy gets (gold first: a few gold answers
#: move a worker's centre far)
GOLD_PSEUDO_ANSWERS = 10.0
#: ``auto``: answers a worker must give on images someone else (or gold) also answered before their own
#: accuracy is estimated at all, and how many such workers it takes (two workers alone cannot tell which of
#: them is right on a disagreement: only their joint agreement is measurable).
MIN_EVIDENCE = 20
MIN_IDENTIFIABLE_WORKERS = 3
#: gold answers that make one worker's accuracy measurable on its own
MIN_GOLD_EVIDENCE = 5
#: ``auto``: informative answers per worker and class before each worker's full confusion matrix is used
MIN_PER_CLASS = 15
#: two classes with equal votes whose likelihoods (the workers' estimated accuracies) differ by less than
#: this ratio are a tie: never decided by a small difference in estimated accuracy (nor by the class prior)
TIE_LIKELIHOOD_RATIO = 1.5
#: ``auto``'s Dawid-Skene: pseudo-answers per row of a worker's matrix at "their accuracy x everyone's
#: mistakes on that class".  Measured (benchmarks/label.py, 3 answers per image, 1,000 images, 10 classes):
#: 8 -> 92.3% right, ECE 0.037; 100 -> 93.0%, ECE 0.020; the labels known matrices give: 93.7%.
SHIPPED_PRIOR_STRENGTH = 100.0


def prior_accuracy(num_classes: int) -> float:
    """A worker's accuracy before any evidence (:data:`PRIOR_WORKER_ACCURACY`; never below half-way
    between chance and always right)."""
    return max(PRIOR_WORKER_ACCURACY, (1.0 + 1.0 / num_classes) / 2.0)


def _one_coin_matrix(acc: np.ndarray, k: int) -> np.ndarray:
    acc = np.clip(acc, 1e-4, 1 - 1e-4)
    off = (1.0 - acc) / (k - 1)
    m = np.repeat(off[:, None, None], k, 1).repeat(k, 2)
    m[:, np.arange(k), np.arange(k)] = acc[:, None]
    return m


def _check_em(max_iter: int, tol: float, smoothing: float, prior_strength: float, model: str) -> None:
    if max_iter < 1:
        raise ValueError(f"max_iter={max_iter}: need at least one iteration")
    if not smoothing > 0:
        raise ValueError(f"smoothing={smoothing}: must be > 0 (a worker's matrix needs a prior)")
    if not tol >= 0:
        raise ValueError(f"tol={tol}: must be >= 0")
    if not prior_strength >= 0:
        raise ValueError(f"prior_strength={prior_strength}: must be >= 0")
    if model not in ("confusion", "one-coin", "pooled"):
        raise ValueError(f"model {model!r}: use confusion, one-coin or pooled")


@dataclass
class _Indexed:
    """The answers as arrays for the EM: items (gold ones too) and workers numbered in a fixed order, one
    row per answer."""

    items: list[Hashable]
    workers: dict[Hashable, int]  # worker -> number
    item_idx: np.ndarray  # (R,) each answer's item
    worker_idx: np.ndarray  # (R,) each answer's worker
    labels: np.ndarray  # (R,) each answer's label
    clamp: np.ndarray  # (N, K) gold items one-hot
    clamped: np.ndarray  # (N,) gold or not
    per_item: np.ndarray  # (N,) answers per item

    @property
    def informative(self) -> np.ndarray:
        """(R,) answers that tell something about their worker: on an image someone else answered, or gold."""
        return ((self.per_item >= 2) | self.clamped)[self.item_idx]


def _index(rows: list[Answer], gold: dict, k: int) -> _Indexed:
    items = sorted({r[0] for r in rows} | set(gold), key=repr)
    workers = sorted({r[1] for r in rows}, key=repr)
    ii = {x: n for n, x in enumerate(items)}
    ww = {x: n for n, x in enumerate(workers)}
    clamp = np.zeros((len(items), k))
    clamped = np.zeros(len(items), dtype=bool)
    for item, lab in gold.items():
        clamp[ii[item], lab] = 1.0
        clamped[ii[item]] = True
    item_idx = np.array([ii[r[0]] for r in rows])
    return _Indexed(
        items,
        ww,
        item_idx,
        np.array([ww[r[1]] for r in rows]),
        np.array([r[2] for r in rows]),
        clamp,
        clamped,
        np.bincount(item_idx, minlength=len(items)),
    )


@dataclass
class _Evidence:
    """What the last M-step measured per worker: informative answers, and right answers / answers on gold."""

    seen: np.ndarray
    right_gold: np.ndarray
    seen_gold: np.ndarray


def _worker_accuracies(ix: _Indexed, post: np.ndarray, a0: float, model: str) -> tuple[np.ndarray, _Evidence]:
    """Each worker's accuracy (the pool, gold first, then their other answers, each shrunk toward the last)."""
    n_workers = len(ix.workers)
    inf = ix.informative
    on_gold = ix.clamped[ix.item_idx]
    q, w_i, l_i = post[ix.item_idx[inf]], ix.worker_idx[inf], ix.labels[inf]
    hit = q[np.arange(len(l_i)), l_i]
    right = np.bincount(w_i, hit, n_workers)
    seen = np.bincount(w_i, minlength=n_workers).astype(float)
    g = on_gold[inf]
    right_g = np.bincount(w_i[g], hit[g], n_workers)
    seen_g = np.bincount(w_i[g], minlength=n_workers).astype(float)
    pool = (right.sum() + _ACCURACY_PSEUDO_ANSWERS * a0) / (seen.sum() + _ACCURACY_PSEUDO_ANSWERS)
    if model == "pooled":
        new_acc = np.full(n_workers, pool)
    else:
        centre = (right_g + GOLD_PSEUDO_ANSWERS * pool) / (seen_g + GOLD_PSEUDO_ANSWERS)  # gold first
        new_acc = (right - right_g + WORKER_PSEUDO_ANSWERS * centre) / (seen - seen_g + WORKER_PSEUDO_ANSWERS)
    return new_acc, _Evidence(seen, right_g, seen_g)


def _confusion_matrices(
    ix: _Indexed,
    post: np.ndarray,
    acc: np.ndarray,
    k: int,
    prior_strength: float,
    smoothing: float,
    shared_errors: bool,
) -> np.ndarray:
    """Each worker's (K, K) confusion matrix: their informative answers weighted by the posteriors, plus
    ``prior_strength`` pseudo-answers per row shaped like their accuracy, plus ``smoothing`` per cell."""
    inf = ix.informative
    q, w_i, l_i = post[ix.item_idx[inf]], ix.worker_idx[inf], ix.labels[inf]
    counts = np.zeros((len(ix.workers), k, k))
    # counts[w, :, l] += q: through the (worker, answer, true) view, whose (w, l) rows are those columns
    np.add.at(counts.transpose(0, 2, 1), (w_i, l_i), q)
    if shared_errors:
        # each row's prior: the worker's accuracy on the diagonal, their mistakes spread as the mistakes
        # of every worker clearly better than chance are on that class (look-alike classes are confused
        # by all; an adversary's or a spammer's answers say nothing about which classes look alike)
        eye = np.eye(k, dtype=bool)
        honest = acc > 1.0 / k + 0.25 * (1.0 - 1.0 / k)
        errors = counts[honest].sum(0) * ~eye + 1.0 * ~eye
        errors /= errors.sum(1, keepdims=True)
        shape = np.where(eye, acc[:, None, None], (1.0 - acc)[:, None, None] * errors[None])
    else:
        shape = _one_coin_matrix(acc, k)
    new_conf = counts + prior_strength * shape + smoothing
    new_conf /= new_conf.sum(2, keepdims=True)
    return new_conf


def _add_log_likelihoods(ix: _Indexed, conf: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base`` (N, K) plus each item's log-likelihood of its answers under each true class (in place)."""
    np.add.at(base, ix.item_idx, np.log(conf[ix.worker_idx, :, ix.labels]))
    return base


def _item_status(n: int, ix: _Indexed, post: np.ndarray, log_lik: np.ndarray, votes: np.ndarray) -> tuple[int, str]:
    """(label, how it came about) of item number ``n``: gold, single, unanimous, majority, weighted or tie."""
    best = int(np.argmax(post[n]))  # ties: the lowest class index
    if ix.clamped[n]:
        return best, "gold"
    if ix.per_item[n] == 1:
        return best, "single"
    v = votes[n]
    top = np.flatnonzero(v == v.max())
    if len(top) == 1:
        return best, "unanimous" if v.max() == v.sum() else ("majority" if best == top[0] else "weighted")
    ll = log_lik[n, top]
    if ll.max() - np.sort(ll)[-2] < np.log(TIE_LIKELIHOOD_RATIO):
        # marked, never passed off as decided: the likelier tied class (the lowest where they are
        # equal, as two workers alone always are), its confidence at most 0.5
        p_top = post[n, top]
        return int(top[np.argmax(p_top)] if p_top.max() - p_top.min() > 1e-9 else top[0]), "tie"
    return best, "weighted"


def _result(
    ix: _Indexed, conf: np.ndarray, pi: np.ndarray, k: int, model: str, iterations: int, ev: _Evidence
) -> Consolidated:
    """The final posteriors from the final parameters, each item's label and status, each worker's estimates."""
    log_lik = _add_log_likelihoods(ix, conf, np.zeros((len(ix.items), k)))
    post = _softmax(log_lik + np.log(pi))
    post[ix.clamped] = ix.clamp[ix.clamped]
    name = {"confusion": "dawid-skene", "one-coin": "one-coin", "pooled": "majority"}[model]
    out = Consolidated(method=name, class_prior=pi, iterations=iterations)
    votes = np.zeros((len(ix.items), k))
    np.add.at(votes, (ix.item_idx, ix.labels), 1.0)
    for n, item in enumerate(ix.items):
        best, status = _item_status(n, ix, post, log_lik, votes)
        p = float(post[n, best])
        out.labels[item], out.posteriors[item], out.status[item] = best, post[n].copy(), status
        out.confidence[item] = min(p, 0.5) if status == "tie" else p
    for w, m in ix.workers.items():
        out.worker_confusion[w] = conf[m].copy()
        out.worker_accuracy[w] = float((pi * np.diag(conf[m])).sum())
        out.worker_evidence[w] = int(ev.seen[m])
        if ev.seen_gold[m]:
            out.worker_gold[w] = {"right": float(ev.right_gold[m]), "answers": int(ev.seen_gold[m])}
    return out


def dawid_skene(
    answers: Iterable,
    num_classes: int,
    gold: dict | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    prior_strength: float = 8.0,
    model: str = "confusion",
    shared_errors: bool = False,
) -> Consolidated:
    """Dawid-Skene EM and its simpler relatives, one estimator.  ``model``:

    - ``confusion`` (Dawid & Skene): each worker a K x K confusion matrix;
    - ``one-coin``: each worker one accuracy, wrong answers spread evenly;
    - ``pooled``: one accuracy shared by every worker (majority vote with honest posteriors: the winner of
      the votes, its probability from how often workers agree).

    ``gold``: item -> known label, clamped one-hot throughout (gold items nobody answered are reported too).

    Every estimate is shrunk by the evidence behind it: the pooled accuracy has a prior worth 2 answers of
    :func:`prior_accuracy`; a worker's gold accuracy ``GOLD_PSEUDO_ANSWERS`` at the pool, and their accuracy
    ``WORKER_PSEUDO_ANSWERS`` at that (gold first); each row of a confusion matrix ``prior_strength``
    pseudo-answers shaped like the worker's accuracy (``shared_errors``: the wrong answers spread as all
    measurably good workers' mistakes on that class are, else evenly); every cell ``smoothing``.  An image
    one worker answered tells nothing about them (it does not enter the estimates).  Two workers alone
    cannot be told apart (only their agreement is measurable): :func:`consolidate` gives them the
    ``pooled`` model, where neither wins every disagreement.

    Stops when the largest parameter change is below ``tol`` or after ``max_iter`` iterations."""
    rows = _check(answers, num_classes)
    gold = _check_gold(gold, num_classes)
    _check_em(max_iter, tol, smoothing, prior_strength, model)
    k = num_classes
    ix = _index(rows, gold, k)
    a0 = prior_accuracy(k)
    conf = _one_coin_matrix(np.full(len(ix.workers), a0), k)
    pi = np.full(k, 1.0 / k)
    it = 0
    for it in range(1, max_iter + 1):
        # E-step (log space): each image's posterior
        post = _softmax(_add_log_likelihoods(ix, conf, np.tile(np.log(pi), (len(ix.items), 1))))
        post[ix.clamped] = ix.clamp[ix.clamped]
        # M-step: class prior, the pool, each worker (gold first), each confusion matrix
        # the class prior: the posteriors' share, with one pseudo-image per class (a few images must not
        # outvote their answers); uniform for the pooled model (a majority vote: the votes decide)
        new_pi = (post.sum(0) + 1.0) / (len(ix.items) + k) if model != "pooled" else np.full(k, 1.0 / k)
        new_acc, ev = _worker_accuracies(ix, post, a0, model)
        new_conf = (
            _confusion_matrices(ix, post, new_acc, k, prior_strength, smoothing, shared_errors)
            if model == "confusion"
            else _one_coin_matrix(new_acc, k)
        )
        change = max(np.abs(new_conf - conf).max(), np.abs(new_pi - pi).max())
        conf, pi = new_conf, new_pi
        if change < tol:
            break
    return _result(ix, conf, pi, k, model, it, ev)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def one_coin(answers: Iterable, num_classes: int, gold: dict | None = None, **kw) -> Consolidated:
    """Each worker one accuracy (Dawid-Skene with one parameter per worker): :func:`dawid_skene` ``model="one-coin"``."""
    return dawid_skene(answers, num_classes, gold=gold, model="one-coin", **kw)


def evidence(rows: list[Answer], gold: dict) -> tuple[dict, dict]:
    """Per worker: answers on images someone else also answered, and answers on gold images."""
    per_item: dict = {}
    for item, _w, _l in rows:
        per_item[item] = per_item.get(item, 0) + 1
    overlap: dict = {}
    on_gold: dict = {}
    for item, w, _l in rows:
        overlap[w] = overlap.get(w, 0) + (per_item[item] >= 2 and item not in gold)
        on_gold[w] = on_gold.get(w, 0) + (item in gold)
    return overlap, on_gold


def choose_model(rows: list[Answer], num_classes: int, gold: dict) -> tuple[str, str]:
    """``auto``'s choice, by the evidence: (model, why).  Each worker's own accuracy needs three or more
    workers with ``MIN_EVIDENCE`` answers on shared images (or a worker's ``MIN_GOLD_EVIDENCE`` gold answers);
    full confusion matrices need ``MIN_PER_CLASS`` such answers per class for the typical such worker."""
    overlap, on_gold = evidence(rows, gold)
    by_overlap = [w for w, n in overlap.items() if n >= MIN_EVIDENCE]
    by_gold = [w for w, n in on_gold.items() if n >= MIN_GOLD_EVIDENCE]
    if len(by_overlap) < MIN_IDENTIFIABLE_WORKERS and not by_gold:
        return "pooled", (
            f"{len(by_overlap)} worker(s) with {MIN_EVIDENCE}+ answers on shared images and no gold: "
            "nothing tells one worker's accuracy from another's, so every worker counts the same "
            "(majority vote; its confidence from how often workers agree)"
        )
    if len(by_overlap) >= MIN_IDENTIFIABLE_WORKERS:
        measured = sorted(overlap[w] + on_gold[w] for w in set(by_overlap) | set(by_gold))
    else:  # only gold tells workers apart: what gold measures is all that counts
        measured = sorted(on_gold[w] for w in by_gold)
    typical = measured[len(measured) // 2]
    if typical >= MIN_PER_CLASS * num_classes:
        return "confusion", (
            f"{len(measured)} measurable workers with ~{typical} checkable answers each: each "
            "worker's confusion matrix (Dawid-Skene)"
        )
    return "one-coin", (
        f"{len(measured)} measurable workers, ~{typical} checkable answers each (under "
        f"{MIN_PER_CLASS} per class): one accuracy per worker"
    )


def _fit(rows: list[Answer], num_classes: int, gold: dict, model: str) -> Consolidated:
    """The estimator ``auto`` uses for ``model`` (confusion matrices with shared errors and a strong prior)."""
    if model == "confusion":
        return dawid_skene(
            rows, num_classes, gold=gold or None, model=model, prior_strength=SHIPPED_PRIOR_STRENGTH, shared_errors=True
        )
    return dawid_skene(rows, num_classes, gold=gold or None, model=model)


def held_out_log_likelihood(rows: list[Answer], num_classes: int, gold: dict, model: str, folds: int = 2) -> dict:
    """How well ``model`` predicts answers it was not fitted on, per image: the images split into ``folds``
    (a fixed shuffle), each fold's images scored by the marginal likelihood of their answers (summed over
    the possible true classes) under the worker parameters fitted on the other folds.  Answers of a worker
    the other folds never saw are left out."""
    items = sorted({r[0] for r in rows}, key=repr)
    order = np.random.default_rng(0).permutation(len(items))
    fold_of = {items[i]: n % folds for n, i in enumerate(order)}
    scores: dict = {}
    for f in range(folds):
        fit_rows = [r for r in rows if fold_of[r[0]] != f]
        if not fit_rows:
            continue
        fitted = _fit(fit_rows, num_classes, {i: g for i, g in gold.items() if fold_of.get(i, -1) != f}, model)
        prior = fitted.class_prior if fitted.class_prior is not None else np.full(num_classes, 1.0 / num_classes)
        log_pi = np.log(np.maximum(prior, 1e-12))
        per_item: dict = {}
        for item, w, lab in rows:
            if fold_of[item] == f and w in fitted.worker_confusion:
                ll = per_item.setdefault(item, log_pi.copy())
                ll += np.log(np.maximum(fitted.worker_confusion[w][:, lab], 1e-12))
        scores.update({item: float(np.logaddexp.reduce(ll)) for item, ll in per_item.items()})
    return scores


#: ``auto`` leaves confusion matrices for one accuracy per worker only when held-out answers favour one
#: accuracy by this many standard errors (paired over images): the matrices' strong prior keeps them as
#: good where mistakes fall evenly, and better calibrated (benchmarks/label.py, confusion-sensitivity)
HELD_OUT_Z = 3.0


def _held_out_choice(rows: list[Answer], num_classes: int, gold: dict, why: str) -> tuple[str, str]:
    """Confusion matrices, or one accuracy per worker where held-out answers clearly say so: where workers'
    mistakes fall evenly the matrices add noise; where they fall on look-alike classes, they see what one
    accuracy cannot."""
    matrices = held_out_log_likelihood(rows, num_classes, gold, "confusion")
    coin = held_out_log_likelihood(rows, num_classes, gold, "one-coin")
    diff = np.array([coin[i] - matrices[i] for i in matrices if i in coin])
    if len(diff) < 2:
        return "confusion", why
    z = float(diff.sum() / (np.sqrt(len(diff)) * max(float(diff.std(ddof=1)), 1e-12)))
    model = "one-coin" if z > HELD_OUT_Z else "confusion"
    said = {"confusion": "confusion matrices (Dawid-Skene)", "one-coin": "one accuracy per worker"}
    return model, (
        f"{why.split(':')[0]}: {said[model]} (held-out answers: log-likelihood {sum(matrices.values()):.1f} with "
        f"matrices, {sum(coin.values()):.1f} with one accuracy each, z = {z:.1f})"
    )


def consolidate(
    answers: Iterable, num_classes: int, method: str = "auto", gold: dict | None = None, seed: int | None = None
) -> Consolidated:
    """``method``: ``auto`` (chosen by the evidence, :func:`choose_model`), ``dawid-skene``, ``one-coin``,
    ``majority`` (plain shares of the votes) or ``pooled`` (majority vote with honest posteriors).

    ``auto`` picks a worker model the answers can support: with two workers, or few answers on shared images,
    every worker counts the same (a disagreement between two of them is a tie, never decided by noise); with
    three or more measurable workers, or gold, one accuracy per worker; with hundreds of checkable answers per
    worker, full confusion matrices.  Gold images measure workers first.  With one answer per image and no
    gold, each label's confidence is the prior accuracy (an assumption, said by ``status()``)."""
    rows = _check(answers, num_classes)
    gold = _check_gold(gold, num_classes)
    method = method.replace("_", "-") if isinstance(method, str) else method
    if method == "majority":
        return majority_vote(rows, num_classes, seed=seed)
    models = {"dawid-skene": "confusion", "one-coin": "one-coin", "pooled": "pooled"}
    if method not in ("auto", *models):
        raise ValueError(f"method {method!r}: use auto, dawid-skene, one-coin, pooled or majority")
    if method == "auto":
        model, why = choose_model(rows, num_classes, gold)
        if model == "confusion":
            model, why = _held_out_choice(rows, num_classes, gold, why)
    else:
        model, why = models[method], f"method={method}"
    out = _fit(rows, num_classes, gold, model)
    out.why = why
    return out


def consolidate_multilabel(
    answers: Iterable, num_classes: int, method: str = "auto", gold: dict | None = None
) -> MultiLabelConsolidated:
    """Several labels per image: each class is a yes/no question consolidated on its own (not the union of the
    answers).  ``answers``: (item, worker, collection of class indices); ``gold``: item -> class indices."""
    rows = []
    for n, answer in enumerate(answers):
        try:
            item, worker, value = answer
            chosen = {_label(v, num_classes, f"item {item!r} (worker {worker!r})") for v in value}
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"answer #{n} is {answer!r}: expected (item, worker, label indices)"
                + (f" ({e})" if "label" in str(e) else "")
            ) from None
        rows.append((item, worker, chosen))
    if not rows:
        raise ValueError("no answers to consolidate")
    gold_sets = {i: {_label(v, num_classes, f"gold item {i!r}") for v in vs} for i, vs in (gold or {}).items()}
    out = MultiLabelConsolidated()
    for c in range(num_classes):
        res = consolidate(
            [(i, w, int(c in s)) for i, w, s in rows],
            2,
            method=method,
            gold={i: int(c in s) for i, s in gold_sets.items()} or None,
        )
        out.per_class.append(res)
    items = out.per_class[0].labels
    for item in items:
        present = [c for c in range(num_classes) if out.per_class[c].labels[item] == 1]
        out.labels[item] = present
        out.probability[item] = [float(out.per_class[c].posteriors[item][1]) for c in range(num_classes)]
        out.confidence[item] = {c: out.per_class[c].confidence[item] for c in range(num_classes)}
        states = [out.per_class[c].status[item] for c in range(num_classes)]
        out.tied[item] = [c for c in range(num_classes) if states[c] == "tie"]
        out.status[item] = (
            "tie"
            if out.tied[item]
            else "gold"
            if "gold" in states
            else "single"
            if "single" in states
            else "unanimous"
            if all(s == "unanimous" for s in states)
            else "majority"
        )
    return out


def disagreements(answers: Iterable, result: Consolidated, top: int | None = None) -> list[dict]:
    """Images whose answers differ, least confident first (ties by item), at most ``top`` of them:
    ``{"item", "answers": {worker: label}, "label", "confidence"}``."""
    if top is not None and top < 0:
        raise ValueError(f"top={top}: must be >= 0")
    by_item: dict = {}
    for i, w, lab in answers:
        by_item.setdefault(i, {})[w] = int(lab)
    out = [
        {"item": i, "answers": a, "label": result.labels.get(i), "confidence": result.confidence.get(i, 0.0)}
        for i, a in by_item.items()
        if len(set(a.values())) > 1
    ]
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


#: what a job's answers consolidate to: one label per image, several, or None (no answers yet)
JobResult = Union[Consolidated, MultiLabelConsolidated, None]
