"""The tensor store: one append-only file per training process in ``<job>/debug/tensors/``.

A file starts with a magic line; each record is ``length (u32) | crc32 (u32) | payload``, the payload a
JSON header line then the raw bytes of a tensor (when one was saved whole).  Writers buffer and write
whole records; a reader takes every complete record whose checksum holds and stops before a torn one, so
a store written by a crashed job reads up to its last complete record, and a running job's store can be
read while it grows (the reader remembers where it stopped).
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"VTDEBUG 1\n"
_HEAD = struct.Struct("<II")
SUFFIX = ".vtd"


@dataclass
class Record:
    name: str
    step: int  # global step
    mode: int  # ModeKeys value
    mode_step: int
    collections: tuple[str, ...] = ()
    wall: float = 0.0
    value: object = None  # a float, or a numpy array
    reductions: dict = field(default_factory=dict)
    worker: str = "0"


def _encode(rec: Record) -> bytes:
    head = {
        "n": rec.name,
        "s": rec.step,
        "m": rec.mode,
        "ms": rec.mode_step,
        "c": list(rec.collections),
        "t": round(rec.wall, 6),
    }
    data = b""
    if isinstance(rec.value, np.ndarray):
        arr = np.ascontiguousarray(rec.value)
        head["dt"], head["sh"] = arr.dtype.str, list(arr.shape)
        data = arr.tobytes()
    elif rec.value is not None:
        head["v"] = rec.value
    if rec.reductions:
        head["r"] = rec.reductions
    payload = json.dumps(head, separators=(",", ":")).encode() + b"\n" + data
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def encode_series(
    name: str,
    mode: int,
    collections: tuple[str, ...],
    wall: float,
    steps: list[int],
    mode_steps: list[int],
    values: np.ndarray,
    lens: list[int] | None = None,
) -> bytes:
    """Many steps of one tensor in one record: 0-d values (``lens`` None) or 1-d ones of ``lens`` each,
    concatenated.  A training loop writes one of these per tensor per flush, not one record per step."""
    arr = np.ascontiguousarray(values)
    head = {
        "n": name,
        "m": mode,
        "c": list(collections),
        "t": round(wall, 6),
        "S": steps,
        "MS": mode_steps,
        "dt": arr.dtype.str,
    }
    if lens is not None:
        head["L"] = lens
    payload = json.dumps(head, separators=(",", ":")).encode() + b"\n" + arr.tobytes()
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes, worker: str) -> list[Record]:
    line, _, data = payload.partition(b"\n")
    head = json.loads(line)
    if "S" in head:
        arr = np.frombuffer(data, dtype=np.dtype(head["dt"]))
        colls, out = tuple(head.get("c", ())), []
        if "L" in head:
            ends = np.cumsum(head["L"])
            parts = np.split(arr, ends[:-1]) if len(ends) else []
            for s, ms, part in zip(head["S"], head["MS"], parts):
                out.append(Record(head["n"], s, head["m"], ms, colls, head["t"], part, {}, worker))
        else:
            for s, ms, v in zip(head["S"], head["MS"], arr.tolist()):
                out.append(Record(head["n"], s, head["m"], ms, colls, head["t"], v, {}, worker))
        return out
    value = head.get("v")
    if "dt" in head:
        value = np.frombuffer(data, dtype=np.dtype(head["dt"])).reshape(head["sh"])
    return [
        Record(
            head["n"],
            head["s"],
            head["m"],
            head["ms"],
            tuple(head.get("c", ())),
            head.get("t", 0.0),
            value,
            head.get("r") or {},
            worker,
        )
    ]


class TensorWriter:
    """Appends records for one process; buffered, written whole at :meth:`flush` (every step boundary the
    hook sees at most once a second, and at close)."""

    def __init__(self, folder: str | Path, worker: str = "0", flush_seconds: float = 1.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.path = self.folder / f"worker-{worker}{SUFFIX}"
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new:
            os.write(self._fd, MAGIC)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self.flush_seconds = flush_seconds
        self._last = time.monotonic()
        self.records = 0

    def write(self, rec: Record) -> None:
        self.write_bytes(_encode(rec))

    def write_bytes(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            self.records += 1

    def maybe_flush(self) -> None:
        if self._buf and time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            data, self._buf = bytes(self._buf), bytearray()
            self._last = time.monotonic()
            if data and self._fd is not None:
                os.write(self._fd, data)  # O_APPEND: whole records, never interleaved with another writer

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class TensorReader:
    """Reads one worker file incrementally: :meth:`read_new` returns the records added since the last call."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.worker = self.path.stem.removeprefix("worker-")
        self.offset = 0
        self.damaged: str | None = None  # why reading stopped early, for the report

    def read_new(self) -> list[Record]:
        if self.damaged:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        pos, out = 0, []
        if self.offset == 0:
            if len(data) < len(MAGIC):
                return []
            if not data.startswith(MAGIC):
                self.damaged = f"{self.path}: not a visiontune tensor store (it does not start with {MAGIC!r})"
                return []
            pos = len(MAGIC)
        while pos + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, pos)
            end = pos + _HEAD.size + length
            if end > len(data):
                break  # a record still being written, or torn by a crash
            payload = data[pos + _HEAD.size : end]
            if zlib.crc32(payload) != crc:
                self.damaged = (
                    f"{self.path}: the record at byte {self.offset + pos} is damaged; "
                    f"read the {len(out)} record(s) before it"
                )
                break
            out.extend(_decode(payload, self.worker))
            pos = end
        self.offset += pos
        return out


def worker_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob(f"worker-*{SUFFIX}"))
