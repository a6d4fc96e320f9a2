"""System and framework profiling.

:class:`SystemMonitor` samples CPU per core, memory, disk and network I/O, I/O wait, the monitored
process tree's data-loader children, and (through NVML, when there is a GPU) each GPU's utilisation and
memory, every ``interval`` seconds into ``<debug>/system.jsonl``.  Framework metrics (each training step's
time split into data, forward, backward and optimizer; events such as the first step) are written by the
hook into ``framework-worker-N.jsonl``.  Both are JSON lines: a reader takes every complete line.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

SYSTEM_FILE = "system.jsonl"


def _nvml():
    """pynvml's handles for the GPUs, or [] (no GPU, no driver, no nvidia-ml-py).  NVML is asked directly:
    importing torch here would take seconds in a script job's runner, which never imports it."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - profiling must never break training
        return None, []


class SystemMonitor:
    """A daemon thread sampling the machine; ``start()`` / ``stop()``, or use it as a context manager."""

    def __init__(self, folder: str | Path, interval: float = 0.5, pid: int | None = None):
        self.path = Path(folder) / SYSTEM_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.interval = max(0.05, float(interval))
        self.pid = pid or os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "SystemMonitor":
        self._thread = threading.Thread(target=self._run, name="visiontune-system-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self) -> None:
        import psutil

        nv, gpus = _nvml()
        psutil.cpu_percent(percpu=True)
        times0 = psutil.cpu_times_percent()
        del times0
        disk0, net0, t0 = psutil.disk_io_counters(), psutil.net_io_counters(), time.monotonic()
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            proc = None
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "event": "start",
                        "t": time.time(),
                        "cores": psutil.cpu_count(),
                        "gpus": len(gpus),
                        "pid": self.pid,
                    }
                )
                + "\n"
            )
            f.flush()
            while not self._stop.wait(self.interval):
                now = time.monotonic()
                dt = max(now - t0, 1e-6)
                row = {
                    "t": round(time.time(), 3),
                    "cpu": psutil.cpu_percent(percpu=True),
                    "memory": psutil.virtual_memory().percent,
                }
                ct = psutil.cpu_times_percent()
                row["iowait"] = getattr(ct, "iowait", 0.0)
                disk, net = psutil.disk_io_counters(), psutil.net_io_counters()
                if disk is not None and disk0 is not None:
                    row["disk_read_mb_s"] = round((disk.read_bytes - disk0.read_bytes) / dt / 1e6, 3)
                    row["disk_write_mb_s"] = round((disk.write_bytes - disk0.write_bytes) / dt / 1e6, 3)
                if net is not None and net0 is not None:
                    row["net_mb_s"] = round(
                        (net.bytes_sent + net.bytes_recv - net0.bytes_sent - net0.bytes_recv) / dt / 1e6, 3
                    )
                disk0, net0, t0 = disk, net, now
                if proc is not None:
                    try:
                        row["process_cpu"] = proc.cpu_percent()
                        row["process_rss_mb"] = round(proc.memory_info().rss / 1e6, 1)
                        row["children"] = len(proc.children(recursive=True))
                    except psutil.Error:
                        proc = None
                if gpus:
                    row["gpus"] = []
                    for h in gpus:
                        try:
                            u, m = nv.nvmlDeviceGetUtilizationRates(h), nv.nvmlDeviceGetMemoryInfo(h)
                            row["gpus"].append({"util": u.gpu, "memory": round(100 * m.used / max(m.total, 1), 2)})
                        except Exception:  # noqa: BLE001
                            row["gpus"].append({"util": None, "memory": None})
                f.write(json.dumps(row) + "\n")
                f.flush()


def read_jsonl(path: Path) -> list[dict]:
    """Every complete JSON line of a file (a line being written, or torn by a crash, is left out)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.split("\n")[:-1]:  # the part after the last newline is not complete
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


class Profile:
    """A job's system samples and framework rows, re-read on :meth:`refresh`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.system: list[dict] = []
        self.framework: list[dict] = []
        self.start: dict = {}

    def refresh(self) -> None:
        rows = read_jsonl(self.folder / SYSTEM_FILE)
        self.start = next((r for r in rows if r.get("event") == "start"), {})
        self.system = [r for r in rows if "cpu" in r]
        frames = []
        for f in sorted(self.folder.glob("framework-worker-*.jsonl")):
            worker = f.stem.removeprefix("framework-worker-")
            for r in read_jsonl(f):
                if "f32" in r:  # a flush's steps of one mode: float32 columns (``t``: when they were written)
                    cols = {k: np.frombuffer(base64.b64decode(v), dtype="<f4").tolist() for k, v in r["f32"].items()}
                    frames += [
                        {
                            "t": r.get("t"),
                            "mode": r["mode"],
                            "step": step,
                            "worker": worker,
                            **{k: c[i] for k, c in cols.items() if c[i] == c[i]},
                        }
                        for i, step in enumerate(r["step"])
                    ]
                else:
                    frames.append({**r, "worker": worker})
        self.framework = frames

    @property
    def gpus(self) -> int:
        return int(self.start.get("gpus") or 0)

    @property
    def cores(self) -> int:
        return int(self.start.get("cores") or os.cpu_count() or 1)

    def steps(self, mode: str | None = "TRAIN") -> list[dict]:
        return [
            r for r in self.framework if "step" in r and "event" not in r and (mode is None or r.get("mode") == mode)
        ]

    def events(self, name: str) -> list[dict]:
        return [r for r in self.framework if r.get("event") == name]
