"""What the benchmark scripts share: choosing phases, writing the JSON results.  (The scripts run as
``python benchmarks/NAME.py``, so this folder is on their import path.)"""

from __future__ import annotations

import argparse
import json
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
