"""The tensor store: append-only, compact, readable while written, and read up to the last complete
record after a crash."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from visiontune.debug import create_trial, modes
from visiontune.debug.store import MAGIC, Record, TensorReader, TensorWriter


def _rec(i: int) -> Record:
    return Record("loss", i, int(modes.TRAIN), i, ("losses",), 0.0, float(i) / 10)


def test_records_round_trip_values_arrays_and_reductions(tmp_path):
    w = TensorWriter(tmp_path)
    w.write(_rec(0))
    w.write(Record("w", 1, int(modes.EVAL), 0, ("weights",), 1.0, np.arange(6, dtype=np.float32).reshape(2, 3)))
    w.write(Record("g", 2, int(modes.TRAIN), 1, ("gradients",), 2.0, None, {"mean": 0.5, "l2": 3.0}))
    w.close()
    recs = TensorReader(w.path).read_new()
    assert [r.name for r in recs] == ["loss", "w", "g"]
    assert recs[1].value.shape == (2, 3) and recs[1].value[1, 2] == 5
    assert recs[2].reductions == {"mean": 0.5, "l2": 3.0}


def test_a_reader_follows_a_growing_file(tmp_path):
    w = TensorWriter(tmp_path)
    r = TensorReader(w.path)
    w.write(_rec(0))
    w.flush()
    assert len(r.read_new()) == 1
    w.write(_rec(1))
    w.write(_rec(2))
    w.flush()
    assert [x.step for x in r.read_new()] == [1, 2]
    assert r.read_new() == []


def test_a_torn_last_record_is_left_for_later_and_damage_is_reported(tmp_path):
    w = TensorWriter(tmp_path)
    for i in range(5):
        w.write(_rec(i))
    w.close()
    data = w.path.read_bytes()
    w.path.write_bytes(data[:-7])  # a crash in the middle of the last record
    r = TensorReader(w.path)
    assert [x.step for x in r.read_new()] == [0, 1, 2, 3]
    assert r.damaged is None  # it may still be completed: not damage
    corrupt = bytearray(data)
    corrupt[len(MAGIC) + 12] ^= 0xFF  # a flipped byte inside the first record
    w.path.write_bytes(bytes(corrupt))
    r2 = TensorReader(w.path)
    assert r2.read_new() == [] and "damaged" in r2.damaged


def test_a_killed_training_process_leaves_a_readable_store(tmp_path):
    """SIGKILL mid-run: everything flushed before the kill reads back."""
    code = f"""
import os, signal, time, torch
from visiontune.debug import Hook, modes
hook = Hook(out_dir={str(tmp_path)!r})
net = torch.nn.Linear(4, 2)
hook.register_module(net)
hook.set_mode(modes.TRAIN)
for step in range(50):
    net(torch.randn(3, 4))
    hook.save_scalar("step_value", float(step))
    if step == 30:
        hook.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    trial = create_trial(tmp_path)
    steps = trial.tensor("step_value").steps(mode=modes.TRAIN)
    assert steps[:31] == list(range(31))


def test_one_file_per_process_not_per_step(tmp_path):
    import torch

    from visiontune.debug import Hook

    hook = Hook(out_dir=tmp_path, save_config={"save_interval": 1})
    net = torch.nn.Linear(4, 2)
    hook.register_module(net)
    for _ in range(200):
        net(torch.randn(3, 4)).sum().backward()
    hook.close()
    assert sorted(os.listdir(tmp_path / "tensors")) == ["worker-0.vtd"]
    trial = create_trial(tmp_path)
    assert len(trial.tensor("Linear_weight").steps()) == 200


def test_create_trial_on_a_job_that_never_started_or_ran_without_the_debugger(tmp_path):
    from visiontune.debug import TensorUnavailable

    (tmp_path / "plain").mkdir()
    with pytest.raises(TensorUnavailable, match="no debugger output here"):
        create_trial(tmp_path / "plain")
    from visiontune.jobs import JobStore
    from visiontune.jobs.runner import submit

    job = submit(
        JobStore(),
        "builtin",
        {"config": {"data": str(tmp_path / "plain"), "out": str(tmp_path / "j")}},
        name="never-started",
        output_dir=str(tmp_path / "j"),
    )
    with pytest.raises(TensorUnavailable, match="never-started has not started yet"):
        create_trial(job.name)


def test_a_trial_reads_a_job_while_it_runs(tmp_path):
    import time

    code = f"""
import time, torch
from visiontune.debug import Hook, modes
hook = Hook(out_dir={str(tmp_path)!r})
hook.flush_seconds = 0.05
net = torch.nn.Linear(4, 2)
hook.register_module(net)
hook.set_mode(modes.TRAIN)
for epoch in range(40):
    net(torch.randn(3, 4))
    hook.save_scalar("epoch_value", float(epoch))
    time.sleep(0.1)
hook.close()
"""
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        trial, seen = None, []
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                trial = trial or create_trial(tmp_path)
                if trial.has_tensor("epoch_value"):
                    seen.append(len(trial.tensor("epoch_value").steps(mode=modes.TRAIN)))
            except Exception:  # noqa: BLE001 - the folder may not exist yet
                pass
            time.sleep(0.2)
        assert proc.poll() is None or len(seen) >= 2, "the job ended before it could be watched"
        partial = [n for n in seen if 0 < n < 40]
        assert len(set(partial)) >= 2, seen  # read while it ran, and more steps appeared between reads
    finally:
        proc.kill()
        proc.wait()
