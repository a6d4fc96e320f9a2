"""Everything the debugger runs beside one training job: the hook (in the training process), the system
monitor and the rules (threads outside the training loop), and the summary at the end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from visiontune.debug.profiler import SystemMonitor
from visiontune.debug.rules.runner import RuleRunner, parse_rules

FOLDER = "debug"


class DebugSession:
    def __init__(
        self,
        folder: str | Path,
        *,
        rules="default",
        kind: str = "builtin",
        monitor_interval: float = 0.5,
        log: Callable[[str], None] | None = None,
        stop: Callable[[str], None] | None = None,
        started: float | None = None,
        rules_interval: float = 5.0,
        pid: int | None = None,
        pretrained: bool = False,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started = started or time.time()
        self.monitor = SystemMonitor(self.folder, monitor_interval, pid=pid).start() if monitor_interval > 0 else None
        self.runner = RuleRunner(
            self.folder,
            parse_rules(rules, kind, pretrained),
            kind=kind,
            started=self.started,
            log=log,
            stop=stop,
            interval=rules_interval,
            pretrained=pretrained,
        ).start()
        self.results: dict | None = None

    def finish(self) -> dict:
        if self.results is None:
            if self.monitor is not None:
                self.monitor.stop()
            self.results = self.runner.finish()
        return self.results


def summary(results: dict | None, where: str | Path) -> str:
    """One line for the end of a run: how the rules ended, and where the report is."""
    if not results:
        return ""
    rules = [r for r in results["rules"] if r["status"] != "NotRun"]
    found = [r["name"] for r in rules if r["status"] == "IssuesFound"]
    errors = [r["name"] for r in rules if r["status"] == "Error"]
    no_data = [r["name"] for r in rules if r["status"] == "NoData"]
    parts = [f"{len(rules) - len(found) - len(errors) - len(no_data)} rules found no issues"]
    if no_data:
        parts.append(f"{len(no_data)} had no data to look at ({', '.join(no_data)})")
    if found:
        parts.append(f"{len(found)} found issues ({', '.join(found)})")
    if errors:
        parts.append(f"{len(errors)} failed ({', '.join(errors)})")
    return f"debugger: {'; '.join(parts)}; the report: visiontune report {where}"
