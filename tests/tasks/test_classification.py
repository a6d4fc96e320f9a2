"""A finished single-label run lists its evaluated split's mistakes, the most confident first
(``misclassified.json``: the studio's gallery)."""

from __future__ import annotations

import json

import pytest

import visiontune as vt
from tests.conftest import FAST, make_folder_dataset


@pytest.mark.slow
def test_misclassified_json_lists_the_wrong_answers_most_confident_first(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=10)
    r = vt.train(data=str(data), out=str(tmp_path / "run"), **{**FAST, "epochs": 1}, learning_rate=1e-4)
    mis = json.loads((tmp_path / "run" / "misclassified.json").read_text())
    split = r.metrics["evaluated_on"]
    n = r.metrics["evaluation"]["samples"]
    assert mis["split"] == split and mis["of"] == n
    assert mis["wrong"] == round((1 - r.metrics[f"{split}_accuracy"]) * n)
    probs = [row["probability"] for row in mis["worst"]]
    assert probs == sorted(probs, reverse=True) and len(mis["worst"]) == min(mis["wrong"], 48)
    for row in mis["worst"]:
        assert row["label"] != row["predicted"] and row["label_probability"] <= row["probability"]
        assert row["source"].startswith(str(data / row["label"]))
