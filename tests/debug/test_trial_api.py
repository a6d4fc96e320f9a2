"""The public reading calls the report and the built-in rules use (as a user's own rule would): a tensor's
records per mode, its modes, per-step wall times, the store files' state; and nothing in the debugger's
readers reaches into a Trial's private state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from visiontune.debug import TensorUnavailable, modes
from visiontune.debug.store import Record, TensorWriter
from visiontune.debug.trial import STEP_COLLECTIONS, Trial, create_trial

DEBUG = Path(__file__).resolve().parents[2] / "src" / "visiontune" / "debug"


def _store(folder: Path, worker: str = "0") -> TensorWriter:
    (folder / "tensors").mkdir(parents=True, exist_ok=True)
    return TensorWriter(folder / "tensors", worker=worker)


def _write_run(folder: Path) -> None:
    """loss: TRAIN steps 0-2 (global 0-2), EVAL steps 0-1 (global 3-4), one GLOBAL-mode record (global 5);
    w: reductions only, TRAIN steps 0 and 2."""
    w = _store(folder)
    for g, (mode, ms) in enumerate(
        [(modes.TRAIN, 0), (modes.TRAIN, 1), (modes.TRAIN, 2), (modes.EVAL, 0), (modes.EVAL, 1), (modes.GLOBAL, 5)]
    ):
        w.write(Record("loss", g, int(mode), ms, ("losses",), 100.0 + g, float(g) / 10))
    for g in (0, 2):
        w.write(Record("w", g, int(modes.TRAIN), g, ("weights",), 200.0 + g, None, {"mean": g + 0.5}))
    w.close()


def test_records_by_mode_and_by_global_step(tmp_path):
    _write_run(tmp_path)
    trial = create_trial(tmp_path)
    loss = trial.tensor("loss")
    assert loss.modes() == [modes.TRAIN, modes.EVAL, modes.GLOBAL]
    train = loss.records(modes.TRAIN)
    assert list(train) == [0, 1, 2] and [r.step for r in train.values()] == [0, 1, 2]
    assert [r.value for r in loss.records("EVAL").values()] == [0.3, 0.4]  # modes by name too
    everything = loss.records()  # GLOBAL: every mode, keyed by global step, in the order the job ran
    assert list(everything) == [0, 1, 2, 3, 4, 5]
    assert [modes.ModeKeys(r.mode).name for r in everything.values()] == ["TRAIN"] * 3 + ["EVAL"] * 2 + ["GLOBAL"]
    assert list(loss.records(modes.GLOBAL, only_mode=True)) == [5]  # only what was saved in GLOBAL mode
    assert loss.records(modes.PREDICT) == {}
    # a tensor saved as reductions: records carry them, value() says how to read it
    w = trial.tensor("w")
    assert w.modes() == [modes.TRAIN]
    assert {s: r.reductions for s, r in w.records(modes.TRAIN).items()} == {0: {"mean": 0.5}, 2: {"mean": 2.5}}
    assert all(r.value is None for r in w.records().values())
    with pytest.raises(TensorUnavailable, match="reduction_value"):
        w.value(0, modes.TRAIN)
    # a copy: changing what was returned changes nothing in the trial
    train.clear()
    assert list(loss.records(modes.TRAIN)) == [0, 1, 2]


def test_records_follow_a_growing_store(tmp_path):
    w = _store(tmp_path)
    w.write(Record("loss", 0, int(modes.TRAIN), 0, ("losses",), 1.0, 0.5))
    w.flush()
    trial = create_trial(tmp_path)
    loss = trial.tensor("loss")
    assert list(loss.records(modes.TRAIN)) == [0]
    w.write(Record("loss", 1, int(modes.TRAIN), 1, ("losses",), 2.0, 0.4))
    w.close()
    assert list(loss.records(modes.TRAIN)) == [0, 1]  # every call takes what was added since the last


def test_wall_times_per_global_step(tmp_path):
    _write_run(tmp_path)
    trial = create_trial(tmp_path)
    times = trial.wall_times()
    assert list(times) == [0, 1, 2, 3, 4, 5]
    assert times[0] == 100.0 and times[2] == 102.0  # the earliest record of step 2 (loss 102, w 202)
    assert trial.wall_time(4) == 104.0
    assert trial.last_wall_time() == 202.0
    with pytest.raises(TensorUnavailable, match="nothing was saved at global step 99; it has steps 0, 1, 2"):
        trial.wall_time(99)
    empty = Trial(tmp_path / "none")
    assert empty.wall_times() == {} and empty.last_wall_time() is None


def test_store_files_say_what_was_read_torn_or_damaged(tmp_path):
    _write_run(tmp_path)
    trial = create_trial(tmp_path)
    (f,) = trial.store_files()
    assert f.path.name == "worker-0.vtd" and f.read == f.size and f.unread == 0 and f.damaged is None
    data = f.path.read_bytes()
    more = _store(tmp_path)
    more.write(Record("loss", 6, int(modes.TRAIN), 3, ("losses",), 106.0, 0.6))
    more.close()
    whole = f.path.read_bytes()
    f.path.write_bytes(whole[:-5])  # the last record cut short: a crash mid-write, or still being written
    (torn,) = create_trial(tmp_path).store_files()
    assert torn.read == len(data) and torn.unread == len(whole) - 5 - len(data) and torn.damaged is None
    raw = bytearray(whole)
    raw[-1] ^= 0xFF  # a flipped byte: the checksum fails, reading stops there on purpose
    f.path.write_bytes(bytes(raw))
    damaged_trial = create_trial(tmp_path)
    (bad,) = damaged_trial.store_files()
    assert bad.damaged and "is damaged" in bad.damaged and bad.unread == 0
    assert damaged_trial.damaged == [bad.damaged]


def test_step_collections_are_the_hooks():
    from visiontune.debug.hook import Hook

    assert set(STEP_COLLECTIONS) == set(Hook._SAVED_ON_STEPS)


def test_the_readers_use_only_the_public_trial_api():
    """The rules, the report and the TensorBoard export read what a user's code can (no private state)."""
    private = re.compile(r"\._(series|readers|walls|global|mode_steps|record|s)\b|_SAVED_ON_STEPS")
    files = [
        *(DEBUG / "rules").glob("*.py"),
        *(DEBUG / "report").glob("*.py"),
        DEBUG / "tensorboard.py",
        DEBUG / "session.py",
    ]
    assert len(files) >= 8
    found = [
        f"{f.relative_to(DEBUG)}:{i}: {line.strip()}"
        for f in files
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert found == []


def test_values_of_a_whole_tensor_series(tmp_path):
    w = _store(tmp_path)
    for s in range(3):
        w.write(Record("act", s, int(modes.TRAIN), s, ("activations",), 1.0, np.full((2,), s, np.float32)))
    w.close()
    t = create_trial(tmp_path).tensor("act")
    assert {s: v.tolist() for s, v in t.values(modes.TRAIN).items()} == {0: [0, 0], 1: [1, 1], 2: [2, 2]}
    assert [r.value.tolist() for r in t.records(modes.TRAIN).values()] == [[0, 0], [1, 1], [2, 2]]
