"""Consolidation: Dawid-Skene EM against majority vote on simulated workers of known quality."""

from __future__ import annotations

import numpy as np
import pytest

from visiontune.label.consolidate import agreement, consolidate, dawid_skene, disagreements, majority_vote


def simulate(n_items: int, k: int, accuracies: dict, seed: int = 0, adversarial=()):
    """(answers, truth): each worker answers every item, right with its accuracy, else a random other
    class; an adversarial worker answers (truth + 1) mod k."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    answers = []
    for w, acc in accuracies.items():
        for i, t in enumerate(truth):
            if w in adversarial:
                answers.append((i, w, int((t + 1) % k)))
            elif rng.random() < acc:
                answers.append((i, w, int(t)))
            else:
                answers.append((i, w, int(rng.choice([c for c in range(k) if c != t]))))
    return answers, truth


def _accuracy(result, truth) -> float:
    return float(np.mean([result.labels[i] == t for i, t in enumerate(truth)]))


def test_good_workers_agree_under_both_methods():
    answers, truth = simulate(300, 4, {"a": 0.95, "b": 0.95, "c": 0.95})
    assert _accuracy(majority_vote(answers, 4), truth) > 0.97
    assert _accuracy(dawid_skene(answers, 4), truth) > 0.97


def test_em_beats_majority_vote_with_noisy_and_adversarial_workers():
    workers = {"good": 0.9, "ok": 0.75, "noisy1": 0.6, "noisy2": 0.6, "adversary": 0.0}
    answers, truth = simulate(2000, 4, workers, seed=1, adversarial=("adversary",))
    mv, em = majority_vote(answers, 4), dawid_skene(answers, 4)
    acc_mv, acc_em = _accuracy(mv, truth), _accuracy(em, truth)
    assert acc_em > acc_mv + 0.03, (acc_em, acc_mv)
    assert em.worker_accuracy["adversary"] < 0.3
    conf = em.worker_confusion["adversary"]
    assert all(conf[t, (t + 1) % 4] > 0.8 for t in range(4))  # it learned how the adversary answers
    assert em.worker_accuracy["good"] > em.worker_accuracy["noisy1"]
    assert abs(em.worker_accuracy["good"] - 0.9) < 0.05


def test_gold_items_are_clamped_and_inform_a_lone_worker():
    answers, truth = simulate(200, 3, {"solo": 0.7}, seed=2)
    gold = {i: int(truth[i]) for i in range(40)}
    res = consolidate(answers, 3, gold=gold)
    assert res.method == "dawid-skene"
    assert all(res.labels[i] == gold[i] and res.confidence[i] == 1.0 for i in gold)
    others = [res.confidence[i] for i in range(40, 200)]
    assert 0.5 < float(np.mean(others)) < 0.9  # the worker's estimated accuracy, not a blind 1.0
    assert abs(res.worker_accuracy["solo"] - 0.7) < 0.12


def test_one_answer_per_item_without_gold_is_a_vote():
    res = consolidate([(1, "a", 0), (2, "a", 1)], 2)
    assert res.method == "majority" and res.labels == {1: 0, 2: 1}


def test_deterministic_disagreements_and_agreement():
    answers, _ = simulate(100, 3, {"a": 0.8, "b": 0.8, "c": 0.5}, seed=3)
    r1, r2 = dawid_skene(answers, 3), dawid_skene(answers, 3)
    assert r1.labels == r2.labels
    dis = disagreements(answers, r1, top=5)
    assert len(dis) == 5 and dis[0]["confidence"] <= dis[-1]["confidence"]
    assert len(set(dis[0]["answers"].values())) > 1
    ag = agreement(answers)
    assert ag["a"] > ag["c"]


def test_bad_input_is_clear():
    with pytest.raises(ValueError, match="no answers"):
        consolidate([], 3)
    with pytest.raises(ValueError, match="label 5 of item 1"):
        consolidate([(1, "a", 5)], 3)
