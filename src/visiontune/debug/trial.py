"""Reading a job's tensors back: ``create_trial(job_or_path)``, as smdebug's trials API reads them.

A trial reads the store incrementally: every call that asks for data first takes the records added
since the last one, so it works on a running job.

Besides smdebug's calls (``trial.steps()``, ``trial.tensor_names(...)``, ``trial.tensor(name).steps()`` /
``.value(step)`` / ``.values()`` / ``.reduction_value(...)``), a whole series at once:
``trial.series(name, mode, reduction)`` (steps and floats), ``trial.tensor(name).records(mode)`` (every saved
record) and ``.modes()``; per-step wall times (``trial.wall_time(step)``, ``wall_times()``,
``last_wall_time()``); and the store files' state (``trial.store_files()``, ``trial.damaged``).  The built-in
rules and the report read a job through these calls only, as a user's own rule does.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visiontune.debug import reductions as red
from visiontune.debug.modes import ModeKeys, as_mode
from visiontune.debug.store import MAGIC, SUFFIX, Record, TensorReader
from visiontune.errors import VisiontuneError


class TensorUnavailable(VisiontuneError):
    """A tensor, step or reduction that was not saved."""


#: The collections a :class:`~visiontune.debug.Hook` saves on its save config's steps (the others, such as
#: losses and scalars, are saved whenever the job records them).  A reader that finds no hook config
#: (``Trial.hook_configs()`` empty) judges these collections by their save config's steps.
STEP_COLLECTIONS = ("weights", "biases", "gradients", "activations", "inputs", "weight_update_ratio")


@dataclass(frozen=True)
class StoreFile:
    """One worker's tensor store file, as far as a trial has read it (``Trial.store_files()``)."""

    path: Path
    size: int  # bytes on disk now
    read: int  # bytes read: the header and every complete record
    damaged: str | None  # why reading stopped early (a failed checksum, not a store), or None

    @property
    def unread(self) -> int:
        """Bytes after the last complete record (a record being written, or torn by a crash); 0 when the
        file is damaged (reading stopped on purpose) or its header is not written yet."""
        if self.damaged or self.read < len(MAGIC):
            return 0
        return max(0, self.size - self.read)


class _Series:
    """One tensor's records, per worker, per mode: {mode: {mode_step: Record}} and by global step."""

    def __init__(self, name: str):
        self.name = name
        self.collections: set[str] = set()
        self.by_mode: dict[int, dict[int, Record]] = {}
        self.by_step: dict[int, Record] = {}
        self.workers: set[str] = set()

    def add(self, rec: Record) -> None:
        self.collections.update(rec.collections)
        self.workers.add(rec.worker)
        if rec.worker != min(self.workers):
            return  # the first worker's values, as smdebug's default; others via Trial.workers()
        self.by_mode.setdefault(rec.mode, {})[rec.mode_step] = rec
        self.by_step[rec.step] = rec


class Tensor:
    def __init__(self, trial: "Trial", name: str):
        self.trial, self.name = trial, name

    @property
    def _s(self) -> _Series:
        self.trial.refresh()
        return self.trial._series[self.name]

    def _record(self, step: int, mode) -> Record:
        s = self._s
        if mode is None or as_mode(mode) == ModeKeys.GLOBAL:
            rec = s.by_step.get(int(step))
        else:
            rec = s.by_mode.get(int(as_mode(mode)), {}).get(int(step))
        if rec is None:
            where = "global step" if mode is None or as_mode(mode) == ModeKeys.GLOBAL else f"{as_mode(mode).name} step"
            raise TensorUnavailable(
                f"tensor {self.name!r} was not saved at {where} {step}; it has {_few(self.steps(mode))}"
            )
        return rec

    def steps(self, mode=ModeKeys.GLOBAL) -> list[int]:
        s = self._s
        if mode is None or as_mode(mode) == ModeKeys.GLOBAL:
            return sorted(s.by_step)
        return sorted(s.by_mode.get(int(as_mode(mode)), {}))

    def modes(self) -> list[ModeKeys]:
        """The modes this tensor was saved in (GLOBAL only where a record was saved in GLOBAL mode)."""
        return sorted(ModeKeys(m) for m in self._s.by_mode)

    def records(self, mode=ModeKeys.GLOBAL, only_mode: bool = False) -> dict[int, Record]:
        """Every saved step of this tensor in ``mode``, in step order: ``{step: Record}``, the step counted
        in that mode (global steps for GLOBAL, the default: every mode in the order the job ran them).
        ``only_mode=True`` with GLOBAL: only the records saved in GLOBAL mode (a hook whose mode was never
        set), by their own step, as ``modes()`` lists them.

        A :class:`~visiontune.debug.store.Record` holds ``step`` (global), ``mode`` (a ``ModeKeys`` value),
        ``mode_step``, ``value`` (the whole tensor or scalar; ``None`` where only reductions were saved),
        ``reductions`` (``{name: float}``), ``wall`` and ``worker``.  One call reads them all at once, for
        rules and exports that walk a whole series; treat the records as read-only."""
        s = self._s
        if (mode is None or as_mode(mode) == ModeKeys.GLOBAL) and not only_mode:
            recs = s.by_step
        else:
            recs = s.by_mode.get(int(as_mode(ModeKeys.GLOBAL if mode is None else mode)), {})
        return {step: recs[step] for step in sorted(recs)}

    def value(self, step_num: int, mode=ModeKeys.GLOBAL, worker=None):
        rec = self._record(step_num, mode)
        if rec.value is None:
            raise TensorUnavailable(
                f"tensor {self.name!r} was saved as reductions ({', '.join(rec.reductions)}) "
                f"at this step, not whole: read it with .reduction_value(step, name)"
            )
        return np.asarray(rec.value)

    def values(self, mode=ModeKeys.GLOBAL) -> dict[int, np.ndarray]:
        return {s: self.value(s, mode) for s in self.steps(mode) if self._record(s, mode).value is not None}

    def reduction_value(self, step_num: int, reduction_name: str, mode=ModeKeys.GLOBAL, worker=None, abs: bool = False):  # noqa: A002 - smdebug's name
        name = f"abs_{reduction_name}" if abs and not reduction_name.startswith("abs_") else reduction_name
        rec = self._record(step_num, mode)
        if name in rec.reductions:
            return rec.reductions[name]
        if rec.value is not None:
            return red.reduce_array(rec.value, name)
        raise TensorUnavailable(
            f"tensor {self.name!r} at step {step_num}: reduction {name!r} was not saved "
            f"(saved: {', '.join(rec.reductions) or 'none'})"
        )

    def reduction_values(self, step_num: int, mode=ModeKeys.GLOBAL) -> dict:
        return dict(self._record(step_num, mode).reductions)

    def has_reductions(self, step_num: int, mode=ModeKeys.GLOBAL) -> bool:
        return bool(self._record(step_num, mode).reductions)

    def collections(self) -> list[str]:
        return sorted(self._s.collections)

    def workers(self) -> list[str]:
        return sorted(self._s.workers)

    def wall_time(self, step_num: int, mode=ModeKeys.GLOBAL) -> float:
        return self._record(step_num, mode).wall


def _worker_files(folder: Path) -> list[tuple[str, int]]:
    """(path, size) of each worker's store file in ``folder``, in path order (as ``store.worker_files``)."""
    try:
        with os.scandir(folder) as it:
            entries = [(e.path, e) for e in it if e.name.startswith("worker-") and e.name.endswith(SUFFIX)]
    except OSError:  # no tensors folder (yet)
        return []
    out = []
    for path, entry in sorted(entries, key=lambda pe: pe[0]):
        try:
            out.append((path, entry.stat().st_size))
        except OSError:  # removed meanwhile
            continue
    return out


def _few(steps: list[int]) -> str:
    if not steps:
        return "no steps in that mode"
    if len(steps) <= 8:
        return "steps " + ", ".join(map(str, steps))
    return f"{len(steps)} steps, {steps[0]}..{steps[-1]}"


class Trial:
    """The tensors a job saved (every worker's file in ``<debug>/tensors``)."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.parent.name
        self._readers: dict[str, TensorReader] = {}  # by file path
        self._series: dict[str, _Series] = {}
        self._mode_steps: dict[int, set[int]] = {}
        self._global: dict[int, int] = {}  # global step -> mode
        self._walls: dict[int, float] = {}  # global step -> the earliest wall time of its records
        self._last_wall: float | None = None
        self.records = 0

    def refresh(self) -> int:
        """Take the records added since the last call (every reading call does it first); the number taken.
        A file that has not grown since is not opened, so calling it often costs a directory listing."""
        new = 0
        for f, size in _worker_files(self.path / "tensors"):
            reader = self._readers.get(f)
            if reader is None:
                reader = self._readers[f] = TensorReader(f)
            elif reader.damaged or size <= reader.offset:
                continue
            for rec in reader.read_new():
                self._series.setdefault(rec.name, _Series(rec.name)).add(rec)
                self._mode_steps.setdefault(rec.mode, set()).add(rec.mode_step)
                self._global[rec.step] = rec.mode
                self._walls[rec.step] = min(rec.wall, self._walls.get(rec.step, rec.wall))
                self._last_wall = rec.wall if self._last_wall is None else max(self._last_wall, rec.wall)
                new += 1
        self.records += new
        return new

    @property
    def damaged(self) -> list[str]:
        return [r.damaged for r in self._readers.values() if r.damaged]

    def store_files(self) -> list[StoreFile]:
        """Each worker's store file, in path order: its size now, how far it was read, why reading stopped
        early (``damaged``) and how many bytes follow the last complete record (``unread``)."""
        self.refresh()
        out = []
        for _, reader in sorted(self._readers.items()):
            try:
                size = reader.path.stat().st_size
            except OSError:
                size = reader.offset  # gone since it was read: nothing unread to report
            out.append(StoreFile(reader.path, size, reader.offset, reader.damaged))
        return out

    def tensor_names(
        self, collection: str | None = None, regex: str | list | None = None, mode=None, step: int | None = None
    ) -> list[str]:
        self.refresh()
        names = sorted(self._series)
        if collection is not None:
            colls = [collection] if isinstance(collection, str) else list(collection)
            names = [n for n in names if self._series[n].collections & set(colls)]
        if regex is not None:
            pats = [regex] if isinstance(regex, str) else list(regex)
            try:
                compiled = [re.compile(p) for p in pats]
            except re.error as e:
                raise TensorUnavailable(f"regex {e.pattern!r}: not a valid regular expression ({e})") from None
            names = [n for n in names if any(c.search(n) for c in compiled)]
        if mode is not None:
            m = int(as_mode(mode))
            names = [n for n in names if m in self._series[n].by_mode or m == ModeKeys.GLOBAL]
        if step is not None:
            names = [
                n
                for n in names
                if step
                in (
                    self._series[n].by_mode.get(int(as_mode(mode)), {}) if mode is not None else self._series[n].by_step
                )
            ]
        return names

    def tensor(self, name: str) -> Tensor:
        self.refresh()
        if name not in self._series:
            close = [n for n in self._series if name.lower() in n.lower()][:5]
            raise TensorUnavailable(
                f"no tensor named {name!r} in {self.path}"
                + (
                    f"; did you mean {', '.join(close)}?"
                    if close
                    else f"; it has {len(self._series)} tensor(s): trial.tensor_names() lists them"
                )
            )
        return Tensor(self, name)

    def has_tensor(self, name: str) -> bool:
        self.refresh()
        return name in self._series

    def steps(self, mode=None) -> list[int]:
        self.refresh()
        if mode is None or as_mode(mode) == ModeKeys.GLOBAL:
            return sorted(self._global)
        return sorted(self._mode_steps.get(int(as_mode(mode)), ()))

    def modes(self) -> list[ModeKeys]:
        self.refresh()
        return sorted(ModeKeys(m) for m in self._mode_steps)

    def mode(self, global_step: int) -> ModeKeys:
        self.refresh()
        return ModeKeys(self._global[global_step])

    def collections(self) -> dict[str, list[str]]:
        self.refresh()
        out: dict[str, list[str]] = {}
        for n, s in self._series.items():
            for c in s.collections:
                out.setdefault(c, []).append(n)
        return out

    def workers(self) -> list[str]:
        self.refresh()
        return sorted({w for s in self._series.values() for w in s.workers})

    def last_wall_time(self) -> float | None:
        """The latest wall time (seconds since the epoch) of any saved record; None before the first."""
        self.refresh()
        return self._last_wall

    def wall_time(self, step: int) -> float:
        """The wall time (seconds since the epoch) of global step ``step``: the earliest of its records'
        (a hook writes a flush's steps together, so steps of one flush share it)."""
        self.refresh()
        if int(step) not in self._walls:
            raise TensorUnavailable(
                f"{self.name}: nothing was saved at global step {step}; it has {_few(sorted(self._walls))}"
            )
        return self._walls[int(step)]

    def wall_times(self) -> dict[int, float]:
        """``{global step: wall time}`` of every step anything was saved at, in step order."""
        self.refresh()
        return {s: self._walls[s] for s in sorted(self._walls)}

    def series(self, name: str, mode=ModeKeys.TRAIN, reduction: str | None = None) -> tuple[list[int], list[float]]:
        """(steps, values) of a scalar tensor or of one reduction, for rules and charts."""
        if name not in self._series:
            return [], []
        recs = (
            self._series[name].by_mode.get(int(as_mode(mode)), {})
            if as_mode(mode) != ModeKeys.GLOBAL
            else self._series[name].by_step
        )
        steps, vals = [], []
        for s in sorted(recs):
            rec = recs[s]
            if reduction is not None:
                v = rec.reductions.get(reduction)
                if v is None and rec.value is not None:
                    v = red.reduce_array(rec.value, reduction)
            else:
                v = rec.value if rec.value is not None and np.size(rec.value) == 1 else None
            if v is not None and not isinstance(v, dict):
                steps.append(s)
                vals.append(float(np.asarray(v).reshape(-1)[0]))
        return steps, vals

    def hook_configs(self) -> list[dict]:
        out = []
        for f in sorted(self.path.glob("hook-worker-*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except ValueError:
                pass
        return out

    def __repr__(self) -> str:
        return f"<Trial {self.name}: {len(self._series)} tensors, {len(self._global)} steps, {self.path}>"


#: How a job's name becomes its record: :mod:`visiontune.jobs` registers the job store's lookup (in a light
#: module, so the jobs layer loads without this one)
from visiontune.debug.lookup import JOB_LOOKUP  # noqa: E402


def find_job(name: str):
    """The job named ``name`` (the error names the job and how to list them)."""
    lookups = list(JOB_LOOKUP)
    if not lookups:
        raise TensorUnavailable(f"{name}: no such folder, and no job store to look the name up in")
    return lookups[0](name)


def debug_dir(job_or_path) -> Path:
    """The debug folder of a job: a job name, its output folder, or the debug folder itself."""
    p = Path(str(job_or_path)).expanduser()
    if (p / "tensors").is_dir() or p.name == "debug" and p.is_dir():
        return p
    if (p / "debug").is_dir():
        return p / "debug"
    if not p.exists() and ("/" in str(job_or_path) or str(job_or_path).startswith(".")):
        raise TensorUnavailable(f"{p}: no such folder (give a job's output folder or a job name)")
    if p.exists():
        raise TensorUnavailable(
            f"{p}: no debugger output here (no debug/ folder); was the job run with "
            f"the debugger off, or has it not started yet?"
        )
    job = find_job(str(job_or_path))
    out = Path(job.output_dir) / "debug"
    if not out.is_dir():
        waiting = job.status == "InProgress" and job.secondary_status == "Starting"
        state = "has not started yet" if waiting else f"is {job.status}"
        raise TensorUnavailable(
            f"job {job.name} {state} and has no debugger output ({out} does not exist)"
            + (
                "; wait for it to start"
                if waiting
                else "; it ran with the debugger off, or stopped before its first step"
            )
        )
    return out


def create_trial(job_or_path, name: str | None = None) -> Trial:
    """The tensors of a job (by name), an output folder, or a debug folder; works while the job runs."""
    path = debug_dir(job_or_path)
    trial = Trial(path, name or (path.parent.name if path.name == "debug" else path.name))
    trial.refresh()
    return trial
