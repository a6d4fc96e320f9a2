"""The benchmarks measure what the runtime could choose on the machine they run on, and say which machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    yield
    for name in ("common", "finetune"):
        sys.modules.pop(name, None)


def test_the_machine_record_names_the_cpu_and_its_bf16_instructions(bench):
    from common import machine

    m = machine()
    assert {"cpu_model", "cpu_flags", "cpu_bf16", "cpus", "torch"} <= set(m)
    assert set(m["cpu_bf16"]) <= {"amx_bf16", "avx512_bf16"}


def test_bf16_is_not_measured_where_the_runtime_would_not_choose_it(bench, monkeypatch):
    import torch

    import visiontune.runtime as runtime
    from finetune import SKIPPED_BF16, inference_dtype

    monkeypatch.setattr(runtime, "native_bf16_cpu", lambda: False)
    assert inference_dtype() is None and "never chooses it" in SKIPPED_BF16
    monkeypatch.setattr(runtime, "native_bf16_cpu", lambda: True)
    assert inference_dtype() == torch.bfloat16


def test_the_labeling_benchmark_bounds_every_method_by_the_known_matrices(bench, tmp_path):
    """The truth-inference simulation's ceiling (Bayes with the true matrices) is above every method, and with
    even mistakes ``auto`` keeps one accuracy per worker and reaches it."""
    import label

    try:
        out = label.main(
            [
                "--phases",
                "confusion-sensitivity",
                "--ti-items",
                "1000",
                "--ti-seeds",
                "1",
                "--out",
                str(tmp_path / "l.json"),
            ]
        )
    finally:
        sys.modules.pop("label", None)
    rows = out["confusion-sensitivity"]["shares"]
    for row in rows.values():
        for method in ("majority vote", "dawid-skene", "shipped (auto)"):
            assert row[method] <= row["known matrices (ceiling)"] + 0.01, row
    even = rows["0% of mistakes on a look-alike"]
    assert even["shipped (auto)"] >= even["dawid-skene"]
