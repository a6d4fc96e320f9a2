"""What the benchmark scripts share: choosing phases, writing the JSON results.  (The scripts run as
``python benchmarks/NAME.py``, so this folder is on their import path.)"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path


def chosen_phases(ap: argparse.ArgumentParser, text: str, phases: dict) -> list[str]:
    """``--phases a,b`` -> ["a", "b"], every name checked against ``phases``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names or any(p not in phases for p in names):
        ap.error(f"--phases {text!r}: choose among {', '.join(phases)}")
    return names


def write_results(out: str | Path, results: dict) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {out} ({results.get('wall_seconds', '?')} s)")


def machine() -> dict:
    """What ran the benchmark: results differ with it (the same 2-core VM type measured a head epoch at
    0.14 s on a CPU with AVX512-BF16 alone and 0.16 s on one with AMX, and batching heads paid only there)."""
    import torch

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    flags = set(info.split())
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), None)
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": model,
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")) or f == "f16c"),
        "cpu_bf16": [f for f in ("amx_bf16", "avx512_bf16") if f in flags],
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
