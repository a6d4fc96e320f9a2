"""The debugger for script jobs: the SageMaker-format hook config a script's hook reads, the smdebug
compatibility shim on the script's import path, and the settings a job spec carries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from visiontune.debug.config import CONFIG_ENV, HookConfig
from visiontune.errors import ConfigError

SHIMS = Path(__file__).parent / "_shims"
COMPAT = ("auto", "smdebug", "off")
_IMPORTS_SMDEBUG = re.compile(r"^\s*(import\s+smdebug|from\s+smdebug[\s.])", re.MULTILINE)
DEFAULTS = {
    "enabled": True,
    "rules": "default",
    "compat": "auto",
    "profile_interval": 0.5,
    "hook": None,
    "profile_steps": "",
}


def check_settings(value: dict | None) -> dict:
    """A script job's ``debugger`` settings, completed and checked before the job exists."""
    from visiontune.debug.rules import parse_rules

    settings = {**DEFAULTS, **(value or {})}
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"debugger setting(s) {', '.join(sorted(unknown))}: it takes {', '.join(DEFAULTS)}")
    if settings["compat"] not in COMPAT:
        raise ConfigError(f"debugger_compat={settings['compat']!r}: choose one of {', '.join(COMPAT)}")
    rules = settings["rules"]
    specs = parse_rules(rules, "script")
    settings["rules"] = rules if isinstance(rules, str) else [s.to_dict() for s in specs]
    if settings["profile_steps"]:
        from visiontune.debug.config import parse_step_range

        parse_step_range(settings["profile_steps"])
    if settings["hook"] is not None:
        HookConfig.from_dict({"LocalPath": "-", **settings["hook"]}, "debugger hook config")
    return settings


def install_smdebug_alias() -> None:
    """``import smdebug`` in this process (a notebook's) answers visiontune's debugger, as in a script job:
    ``from smdebug.trials import create_trial`` then reads a job's ``latest_job_debugger_artifacts_path()``.
    On request only (it shadows a real smdebug installed here, for this process)."""
    import sys

    if str(SHIMS) not in sys.path:
        sys.path.insert(0, str(SHIMS))
    real = sys.modules.get("smdebug")
    if real is not None and not str(getattr(real, "__file__", "")).startswith(str(SHIMS)):
        for name in [m for m in sys.modules if m == "smdebug" or m.startswith("smdebug.")]:
            del sys.modules[name]  # a real smdebug imported earlier: the alias from now on


def imports_smdebug(source_dir: Path, entry_point: str) -> bool:
    files = [Path(entry_point) if Path(entry_point).is_absolute() else source_dir / entry_point]
    files += sorted(source_dir.rglob("*.py"))[:500]
    for f in files:
        try:
            if _IMPORTS_SMDEBUG.search(f.read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            continue
    return False


def script_debug_env(spec: dict, out: Path) -> dict:
    """Environment for the script: where its hook config is (as SageMaker passes it) and, when it uses
    smdebug's API, the shim first on its import path (``PYTHONPATH_PREPEND``)."""
    settings = {**DEFAULTS, **(spec.get("debugger") or {})}
    folder = out / "debug"
    config = out / "input" / "config" / "debughookconfig.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    raw = {"LocalPath": str(folder), **(settings["hook"] or {})}
    if settings["profile_steps"]:
        raw["HookParameters"] = {**raw.get("HookParameters", {}), "profile_steps": settings["profile_steps"]}
    if not settings["enabled"]:
        raw["DryRun"] = True  # the script's hook calls work and save nothing
    config.write_text(json.dumps(raw, indent=1))
    env = {CONFIG_ENV: str(config), "VISIONTUNE_DEBUG_DIR": str(folder)}
    compat = settings["compat"]
    if compat == "smdebug" or (compat == "auto" and imports_smdebug(Path(spec["source_dir"]), spec["entry_point"])):
        env["PYTHONPATH_PREPEND"] = str(SHIMS)
    return env
