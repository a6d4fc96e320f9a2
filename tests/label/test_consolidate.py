"""Consolidation: Dawid-Skene EM against majority vote on simulated workers of known quality."""

from __future__ import annotations

import random

import numpy as np
import pytest

from visiontune.label.consolidate import (
    Consolidated,
    agreement,
    choose_model,
    consolidate,
    consolidate_multilabel,
    dawid_skene,
    disagreements,
    majority_vote,
    one_coin,
    prior_accuracy,
)


def simulate(n_items: int, k: int, accuracies: dict, seed: int = 0, adversarial=(), items=None):
    """(answers, truth): each worker answers every item (or those in ``items``), right with its accuracy,
    else a uniformly random other class; an adversarial worker always answers (truth + 1) mod k."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    answers = []
    for w, acc in accuracies.items():
        right = rng.random(n_items) < acc
        wrong = (truth + rng.integers(1, k, n_items)) % k
        given = (truth + 1) % k if w in adversarial else np.where(right, truth, wrong)
        answers += [(i, w, int(given[i])) for i in (range(n_items) if items is None else items)]
    return answers, truth


def accuracy(result: Consolidated, truth, items=None) -> float:
    items = range(len(truth)) if items is None else items
    return float(np.mean([result.labels[i] == truth[i] for i in items]))


# (a) good workers


def test_good_workers_are_near_perfect_under_both_methods():
    answers, truth = simulate(400, 4, {"a": 0.95, "b": 0.95, "c": 0.95}, seed=0)
    mv, em = majority_vote(answers, 4), dawid_skene(answers, 4)
    assert accuracy(mv, truth) > 0.98 and accuracy(em, truth) > 0.98
    assert em.method == "dawid-skene" and mv.method == "majority"
    assert 1 <= em.iterations < 100  # converged, not stopped by max_iter
    for w in "abc":
        assert abs(em.worker_accuracy[w] - 0.95) < 0.04
        assert np.allclose(em.worker_confusion[w].sum(1), 1.0) and em.worker_confusion[w].shape == (4, 4)
    assert np.isclose(em.class_prior.sum(), 1.0)
    assert all(np.isclose(p.sum(), 1.0) and p.shape == (4,) for p in em.posteriors.values())
    assert all(em.confidence[i] == pytest.approx(em.posteriors[i][em.labels[i]]) for i in em.labels)


# (b) noisy and adversarial workers


def test_em_beats_majority_vote_and_unmasks_the_adversary():
    workers = {"good": 0.9, "fair": 0.85, "noisy1": 0.6, "noisy2": 0.6, "adversary": 0.0}
    answers, truth = simulate(2000, 4, workers, seed=1, adversarial=("adversary",))
    mv, em = majority_vote(answers, 4), dawid_skene(answers, 4)
    acc_mv, acc_em = accuracy(mv, truth), accuracy(em, truth)
    assert acc_em > acc_mv + 0.03 and acc_em > 0.97, (acc_em, acc_mv)
    assert em.worker_accuracy["adversary"] < 0.3
    conf = em.worker_confusion["adversary"]
    assert all(conf[t, (t + 1) % 4] > 0.8 for t in range(4))  # it learned how the adversary answers
    assert all(conf[t, t] < 0.05 for t in range(4))
    for w, acc in workers.items():
        assert abs(em.worker_accuracy[w] - acc) < 0.05, (w, em.worker_accuracy[w])
    ag = agreement(answers)
    assert ag["good"] > ag["noisy1"] > ag["adversary"]


# (c) gold items


def test_gold_items_are_clamped_even_against_every_worker():
    answers, truth = simulate(300, 3, {"a": 0.8, "b": 0.8, "c": 0.8}, seed=2)
    gold = {i: int(truth[i]) for i in range(30)}
    answers += [(0, w, (gold[0] + 1) % 3) for w in ("d", "e", "f")]  # a loud wrong majority on a gold item
    answers = [a for a in answers if not (a[0] == 0 and a[1] in "abc")]
    res = dawid_skene(answers, 3, gold={**gold, "unanswered": 2})
    assert all(res.labels[i] == gold[i] and res.confidence[i] == 1.0 for i in gold)
    assert np.array_equal(res.posteriors[0], np.eye(3)[gold[0]])
    assert res.labels["unanswered"] == 2  # a gold item nobody answered is still reported


def test_gold_items_inform_a_lone_workers_confidence():
    good, _ = simulate(400, 4, {"solo": 0.9}, seed=3)
    k = 4
    blind = consolidate(good, k)
    assert blind.method == "majority"  # one answer per image, no gold: nothing says how good the worker is
    assert all(abs(c - prior_accuracy(k)) < 0.05 for c in blind.confidence.values())  # the prior, and the class mix
    for acc, seed in ((0.9, 3), (0.6, 4)):
        answers, truth = simulate(400, k, {"solo": acc}, seed=seed)
        gold = {i: int(truth[i]) for i in range(60)}
        res = consolidate(answers, k, gold=gold)
        rest = range(60, 400)
        on_gold = np.mean([lab == truth[i] for i, _w, lab in answers if i in gold])  # what the data can tell
        on_rest = np.mean([lab == truth[i] for i, _w, lab in answers if i not in gold])
        # 60 gold answers = 15 per class: enough to measure the worker; their mistakes are even, so one
        # accuracy predicts held-out answers as well as a matrix, or better
        assert res.method in ("dawid-skene", "one-coin"), res.why
        assert res.worker_gold["solo"]["answers"] == 60
        assert abs(res.worker_accuracy["solo"] - on_gold) < 0.05 and abs(res.worker_accuracy["solo"] - acc) < 0.12
        mean_conf = float(np.mean([res.confidence[i] for i in rest]))
        assert abs(mean_conf - on_rest) < 0.1, (acc, mean_conf)  # Bayes from the estimated accuracy: calibrated
        # with one answer the worker's own answer stays the best guess: gold must not make labels worse
        assert accuracy(res, truth, rest) >= accuracy(majority_vote(answers, k), truth, rest) - 0.02
    assert mean_conf < 0.75 < prior_accuracy(k)  # the 60% worker is trusted less than an unmeasured one


def test_auto_picks_matrices_only_where_mistakes_fall_on_look_alikes():
    """With plenty of shared answers, ``auto`` fits both one accuracy per worker and confusion matrices and
    keeps the one that predicts held-out answers better: even mistakes -> one-coin; mistakes on one
    look-alike class -> Dawid-Skene, which is then more accurate than one-coin."""
    k, n = 10, 1000
    even, truth = simulate(n, k, {"a": 0.85, "b": 0.7, "c": 0.6}, seed=1)
    res = consolidate(even, k)
    assert res.method == "one-coin" and "held-out" in res.why, res.why
    rng = np.random.default_rng(2)
    look_alike = []
    for w, acc in {"a": 0.85, "b": 0.7, "c": 0.6}.items():
        right = rng.random(n) < acc
        look_alike += [(i, w, int(truth[i] if right[i] else (truth[i] + 1) % k)) for i in range(n)]
    res = consolidate(look_alike, k)
    assert res.method == "dawid-skene", res.why
    assert accuracy(res, truth) > accuracy(consolidate(look_alike, k, method="one-coin"), truth) + 0.02


def test_one_answer_per_item_without_gold_is_a_smoothed_vote():
    res = consolidate([(1, "a", 0), (2, "a", 1)], 2)
    assert res.method == "majority" and res.labels == {1: 0, 2: 1}
    assert res.confidence[1] == pytest.approx(prior_accuracy(2), abs=1e-6)  # an assumption: no evidence
    assert np.allclose(res.posteriors[2], [1 - prior_accuracy(2), prior_accuracy(2)])
    assert res.status == {1: "single", 2: "single"}
    plain = consolidate([(1, "a", 0), (2, "a", 1)], 2, method="majority")
    assert plain.confidence == {1: 1.0, 2: 1.0}
    two = consolidate([(1, "a", 0), (1, "b", 1)], 2)
    assert two.method == "majority" and two.status[1] == "tie" and two.confidence[1] <= 0.5
    assert consolidate([(1, "a", 0)], 2, gold={2: 1}).method == "majority"  # gold nobody answered tells nothing


# (d) determinism


def test_results_do_not_depend_on_answer_order():
    answers, _ = simulate(300, 3, {"a": 0.8, "b": 0.7, "c": 0.5}, seed=5)
    r1 = dawid_skene(answers, 3)
    shuffled = list(answers)
    random.Random(0).shuffle(shuffled)
    r2 = dawid_skene(iter(shuffled), 3)  # any iterable
    assert r1.labels == r2.labels and r1.iterations == r2.iterations
    assert all(np.allclose(r1.posteriors[i], r2.posteriors[i]) for i in r1.labels)
    assert all(np.allclose(r1.worker_confusion[w], r2.worker_confusion[w]) for w in "abc")


def test_majority_vote_ties_and_seed():
    ties = [(i, w, lab) for i in range(200) for w, lab in (("a", i % 3), ("b", (i + 1) % 3))]
    low = majority_vote(ties, 3)
    assert all(low.labels[i] == min(i % 3, (i + 1) % 3) for i in range(200))
    assert all(c == 0.5 for c in low.confidence.values())
    s1, s2 = majority_vote(ties, 3, seed=1), majority_vote(ties, 3, seed=2)
    s1b = majority_vote(list(reversed(ties)), 3, seed=1)
    assert s1.labels == s1b.labels  # same seed, same labels (whatever the order of the answers)
    assert s1.labels != s2.labels and s1.labels != low.labels
    assert all(s2.labels[i] in (i % 3, (i + 1) % 3) for i in range(200))
    three = majority_vote([(0, "a", 2), (0, "b", 2), (0, "c", 1)], 3)
    assert three.labels[0] == 2 and three.confidence[0] == pytest.approx(2 / 3)


def test_disagreements_least_confident_first():
    answers, _ = simulate(200, 3, {"a": 0.8, "b": 0.8, "c": 0.5}, seed=6)
    res = dawid_skene(answers, 3)
    every = disagreements(answers, res)
    by_item: dict = {}
    for i, w, lab in answers:
        by_item.setdefault(i, {})[w] = lab
    assert {d["item"] for d in every} == {i for i, a in by_item.items() if len(set(a.values())) > 1}
    assert [d["confidence"] for d in every] == sorted(d["confidence"] for d in every)
    top = disagreements(answers, res, top=5)
    assert top == every[:5]
    assert set(top[0]) == {"item", "answers", "label", "confidence"}
    assert top[0]["answers"] == by_item[top[0]["item"]] and top[0]["label"] == res.labels[top[0]["item"]]
    assert disagreements(answers, res, top=0) == []


def test_agreement_skips_lone_answers():
    ag = agreement([(1, "a", 0), (1, "b", 0), (1, "c", 1), (2, "a", 1), (3, "d", 2)])
    assert ag == {"a": 1.0, "b": 1.0, "c": 0.0}


# (e) errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: consolidate([], 3), "no answers"),
        (lambda: dawid_skene(iter([]), 3), "no answers"),
        (lambda: majority_vote([], 3), "no answers"),
        (lambda: consolidate([(1, "a", 5)], 3), r"item 1 \(worker 'a'\) has the label 5, outside 0..2"),
        (lambda: majority_vote([(1, "a", -1)], 3), "outside 0..2"),
        (lambda: dawid_skene([(1, "a", 1.5)], 3), "integers"),
        (lambda: consolidate([(1, "a", "cat")], 3), "integers"),
        (lambda: consolidate([(1, "a")], 3), "expected an \\(item, worker, label\\) triple"),
        (lambda: consolidate([(1, "a", 0)], 1), "two or more classes"),
        (lambda: consolidate([(1, "a", 0)], 3, gold={2: 3}), "gold item 2 has the label 3, outside 0..2"),
        (lambda: consolidate([(1, "a", 0)], 3, method="vote"), "use auto, dawid-skene, one-coin, pooled or majority"),
        (lambda: dawid_skene([(1, "a", 0)], 3, smoothing=0), "smoothing"),
        (lambda: dawid_skene([(1, "a", 0)], 3, max_iter=0), "max_iter"),
        (lambda: disagreements([(1, "a", 0)], Consolidated(), top=-1), "top"),
    ],
)
def test_bad_input_is_clear(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_integral_floats_and_numpy_labels_are_accepted():
    res = consolidate([(1, "a", np.int64(2)), (1, "b", 2.0)], 3)
    assert res.labels[1] == 2 and dawid_skene([(1, "a", 0)], 3, max_iter=1).iterations == 1


# (f) few workers: the evidence decides the model, ties are said, nothing flips on an unrelated answer


def two_workers(seed: int = 1, n: int = 36, k: int = 3):
    """Issue 28's case: two people label a few dozen images, ~85-90% right each."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    answers = []
    for w, acc in (("alice", 0.89), ("bob", 0.85)):
        for i in range(n):
            answers.append((i, w, int(truth[i] if rng.random() < acc else (truth[i] + rng.integers(1, k)) % k)))
    return answers, truth


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_two_workers_an_unrelated_answer_changes_no_other_label(seed):
    answers, truth = two_workers(seed)
    before = consolidate(answers, 3)
    assert before.method == "majority" and "nothing tells one worker" in before.why
    # neither worker "wins" the disagreements: the same estimated accuracy, every disagreement a tie
    assert before.worker_accuracy["alice"] == pytest.approx(before.worker_accuracy["bob"])
    split = {i for i in range(36) if len({lab for j, _w, lab in answers if j == i}) > 1}
    assert split and all(before.status[i] == "tie" and before.confidence[i] <= 0.5 for i in split)
    assert all(before.status[i] == "unanimous" and before.confidence[i] > 0.9 for i in set(range(36)) - split)
    agreed = sorted(set(range(36)) - split)
    for extra in [
        (100, "carol", 0),  # a third worker on an image nobody else did
        (agreed[0], "carol", int(truth[agreed[0]])),  # ... on one both answered
        (min(split), "carol", 0),
    ]:  # ... breaking a tie (only that label may change)
        after = consolidate(answers + [extra], 3)
        changed = {i for i in before.labels if after.labels[i] != before.labels[i]}
        assert changed <= {extra[0]}, (extra, changed)
        assert all(after.status[i] == "tie" for i in split - {extra[0]})


def test_three_measurable_workers_are_told_apart_and_confidences_are_calibrated():
    answers, truth = simulate(600, 4, {"a": 0.9, "b": 0.75, "c": 0.6}, seed=7)
    res = consolidate(answers, 4)
    assert res.method in ("one-coin", "dawid-skene")
    assert res.worker_accuracy["a"] > res.worker_accuracy["b"] > res.worker_accuracy["c"]
    assert accuracy(res, truth) >= accuracy(majority_vote(answers, 4), truth)
    conf = np.array([res.confidence[i] for i in range(600)])
    right = np.array([res.labels[i] == truth[i] for i in range(600)])
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(conf[bins == b].mean() - right[bins == b].mean()) * (bins == b).mean() for b in set(bins))
    assert ece <= 0.05, ece


def test_the_model_follows_the_evidence():
    few, _ = simulate(30, 3, {"a": 0.8, "b": 0.8, "c": 0.8}, seed=8)
    assert choose_model(few, 3, {})[0] == "one-coin"  # 3 workers x 30 shared images: one accuracy each
    pair, _ = simulate(500, 3, {"a": 0.8, "b": 0.8}, seed=8)
    assert choose_model(pair, 3, {})[0] == "pooled"  # two workers: never told apart, however many images
    assert choose_model(pair, 3, {i: 0 for i in range(5)})[0] == "one-coin"  # ... unless gold measures them
    many, _ = simulate(400, 3, {"a": 0.8, "b": 0.8, "c": 0.8}, seed=8)
    assert choose_model(many, 3, {})[0] == "confusion"  # 400 per worker >= 30 per class: Dawid-Skene
    assert one_coin(many, 3).method == "one-coin" and consolidate(many, 3, method="pooled").method == "majority"


def test_multi_label_is_one_yes_no_question_per_class():
    # class 0: everyone says yes; class 1: one of three; class 2: two of three; class 3: a 1-1 split
    answers = [(1, "a", [0, 2]), (1, "b", [0, 1, 2]), (1, "c", [0]), (2, "a", [3]), (2, "b", [])]
    res = consolidate_multilabel(answers, 4)
    assert res.labels[1] == [0, 2]  # not the union [0, 1, 2]
    assert res.confidence[1][0] > res.confidence[1][2] > 0.5 and res.probability[1][1] < 0.5
    assert res.tied[2] == [3] and res.status[2] == "tie" and res.confidence[2][3] <= 0.5
    assert res.status[1] == "majority" and len(res.per_class) == 4
    gold = consolidate_multilabel(answers, 4, gold={1: [1]})
    assert gold.labels[1] == [1] and gold.status[1] == "gold"
    with pytest.raises(ValueError, match="outside 0..3"):
        consolidate_multilabel([(1, "a", [4])], 4)
