"""The profiler: system sampling, framework rows, and each profiler rule on recorded data that must
(and must not) trigger it."""

from __future__ import annotations

import json
import time

import pytest

from visiontune.debug.profiler import SystemMonitor
from visiontune.debug.rules import evaluate_rules


def _write(folder, system=(), steps=(), gpus=0, cores=4, started=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tensors").mkdir(exist_ok=True)
    t0 = started or time.time()
    lines = [json.dumps({"event": "start", "t": t0, "cores": cores, "gpus": gpus, "pid": 1})]
    lines += [json.dumps({"t": t0 + i * 0.5, **row}) for i, row in enumerate(system)]
    (folder / "system.jsonl").write_text("\n".join(lines) + "\n")
    if steps:
        rows = [
            {"mode": s.get("mode", "TRAIN"), "step": i, "t": s.get("t", t0 + 1 + i), "step_seconds": s["step_seconds"]}
            for i, s in enumerate(steps)
        ]
        (folder / "framework-worker-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _status(folder, rule, kind="script"):
    return next(r for r in evaluate_rules(folder, [rule], kind=kind)["rules"] if r["name"] == rule.split(":")[0])


def _gpu_rows(n, util, mem=50.0, cpu=(20.0, 20.0, 20.0, 20.0), iowait=0.0, ngpu=1):
    return [
        {
            "cpu": list(cpu),
            "memory": 40.0,
            "iowait": iowait,
            "gpus": [
                {"util": util(i) if callable(util) else util, "memory": mem(i) if callable(mem) else mem}
                for _ in range(ngpu)
            ],
        }
        for i in range(n)
    ]


CASES = {
    # rule: (fires, quiet)
    "LowGPUUtilization": (dict(system=_gpu_rows(1100, 30.0), gpus=1), dict(system=_gpu_rows(1100, 95.0), gpus=1)),
    "CPUBottleneck": (
        dict(system=_gpu_rows(1100, 5.0, cpu=(99, 99, 99, 99)), gpus=1),
        dict(system=_gpu_rows(1100, 90.0, cpu=(99, 99, 99, 99)), gpus=1),
    ),
    "IOBottleneck": (dict(system=_gpu_rows(1100, 5.0, iowait=80.0), gpus=1), dict(system=_gpu_rows(1100, 5.0), gpus=1)),
    "BatchSize": (dict(system=_gpu_rows(1100, 20.0, mem=10.0), gpus=1), dict(system=_gpu_rows(1100, 95.0), gpus=1)),
    "GPUMemoryIncrease": (
        dict(system=_gpu_rows(1100, 90.0, mem=lambda i: 10 + 6 * max(0, i - 1089)), gpus=1),
        dict(system=_gpu_rows(1100, 90.0, mem=40.0), gpus=1),
    ),
    "LoadBalancing": (
        dict(
            system=[
                {"cpu": [10.0], "gpus": [{"util": 95.0, "memory": 50}, {"util": 5.0, "memory": 50}]}
                for _ in range(1100)
            ],
            gpus=2,
        ),
        dict(system=_gpu_rows(1100, 90.0, ngpu=2), gpus=2),
    ),
    "StepOutlier": (
        dict(steps=[{"step_seconds": 1.0 if i % 20 == 0 else 0.1} for i in range(400)]),
        dict(steps=[{"step_seconds": 0.1 + 0.001 * (i % 3)} for i in range(400)]),
    ),
    "MaxInitializationTime": (
        dict(steps=[{"step_seconds": 0.1, "t": time.time()}], started=time.time() - 25 * 60),
        dict(steps=[{"step_seconds": 0.1, "t": time.time()}], started=time.time() - 60),
    ),
    "Dataloader": (
        dict(system=[{"cpu": [10.0] * 8, "children": 2} for _ in range(20)], cores=8),
        dict(system=[{"cpu": [10.0] * 8, "children": 7} for _ in range(20)], cores=8),
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_profiler_rule_fires_on_its_pattern(rule, tmp_path):
    fires, quiet = CASES[rule]
    st = _status(_write(tmp_path / "bad", **fires), rule)
    assert st["status"] == "IssuesFound", st
    ok = _status(_write(tmp_path / "ok", **quiet), rule)
    assert ok["status"] == "NoIssuesFound", ok


def test_dataloader_counts_the_workers_a_scripts_hook_recorded(tmp_path):
    """A script whose hook saw its DataLoader: the workers as recorded (here none, on 8 cores: too few)."""
    from torch.utils.data import DataLoader

    from visiontune.debug.config import CONFIG_ENV
    from visiontune.debug.hook import get_hook

    folder = _write(tmp_path / "run", system=[{"cpu": [10.0] * 8, "children": 1} for _ in range(20)], cores=8)
    config = tmp_path / "hook.json"
    config.write_text(json.dumps({"LocalPath": str(folder)}))
    mp = pytest.MonkeyPatch()
    mp.setenv(CONFIG_ENV, str(config))
    mp.setattr("visiontune.debug.hook._HOOK", None)
    mp.setattr(DataLoader, "__iter__", DataLoader.__iter__)  # the watch (if this test adds it) is undone afterwards
    try:
        hook = get_hook()
        hook.set_mode("TRAIN")
        for _ in range(2):  # two epochs' passes
            assert list(DataLoader(list(range(4)), batch_size=2, num_workers=0))
        hook.close()
    finally:
        mp.undo()
    events = [json.loads(line) for line in (folder / "framework-worker-0.jsonl").read_text().splitlines()]
    assert [e["num_workers"] for e in events if e.get("event") == "dataloader"] == [0, 0]
    st = _status(folder, "Dataloader")
    assert st["status"] == "IssuesFound" and "used 0 worker process(es)" in st["message"], st


def test_dataloader_counts_worker_processes_while_they_ran(tmp_path):
    """Regression: a script's 2 workers on 2 cores, sampled between passes too (the script alone), gave a
    median of 1 worker, a count that never occurred, and a finding."""
    rows = [{"cpu": [50.0, 50.0], "children": 1 if i % 2 else 3} for i in range(20)]
    st = _status(_write(tmp_path / "run", system=rows, cores=2), "Dataloader")
    assert st["status"] == "NoIssuesFound", st


def test_dataloader_without_a_dataloader_has_nothing_to_count(tmp_path):
    """A script that holds its data in memory: no DataLoader pass recorded, no worker process -> no finding,
    and the rule says why."""
    folder = _write(tmp_path / "run", system=[{"cpu": [10.0] * 8, "children": 1} for _ in range(20)], cores=8)
    st = _status(folder, "Dataloader")
    assert st["status"] == "NoIssuesFound" and "nothing to count" in " ".join(st.get("warnings", [])), st


def test_overall_system_usage_summarises_and_never_fires(tmp_path):
    from visiontune.debug.profiler import Profile
    from visiontune.debug.rules.profiler import OverallSystemUsage

    folder = _write(tmp_path / "s", system=_gpu_rows(50, 60.0), gpus=1)
    assert _status(folder, "OverallSystemUsage")["status"] == "NoIssuesFound"
    profile = Profile(folder)
    profile.refresh()
    summary = OverallSystemUsage().summary(profile)
    assert summary["gpu_util"]["p50"] == 60.0 and summary["cpu"]["max"] == 20.0


def test_the_system_monitor_samples_this_machine(tmp_path):
    with SystemMonitor(tmp_path, interval=0.05):
        time.sleep(0.4)
    rows = [json.loads(line) for line in (tmp_path / "system.jsonl").read_text().splitlines()]
    assert rows[0]["event"] == "start" and rows[0]["cores"] >= 1
    samples = rows[1:]
    assert len(samples) >= 3
    assert all(len(r["cpu"]) == rows[0]["cores"] and 0 <= r["memory"] <= 100 for r in samples)
    assert "disk_read_mb_s" in samples[-1] and "process_rss_mb" in samples[-1]
