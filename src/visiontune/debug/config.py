"""Save configs and collections: which tensors a hook saves, at which steps, whole or reduced; read from
keyword arguments or from the JSON file SageMaker passes a training script (``debughookconfig.json``)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from visiontune.debug import reductions as red
from visiontune.debug.modes import ModeKeys, as_mode
from visiontune.errors import ConfigError

#: Where script mode puts the hook config, and the variable smdebug reads it from.
CONFIG_ENV = "SMDEBUG_CONFIG_FILE_PATH"
DEFAULT_CONFIG_PATH = "/opt/ml/input/config/debughookconfig.json"
#: The interval weights, biases, gradients, activations and inputs are saved at unless told otherwise.
DEFAULT_SAVE_INTERVAL = 100


@dataclass
class SaveConfigMode:
    save_interval: int = DEFAULT_SAVE_INTERVAL
    start_step: int = 0
    end_step: int | None = None
    save_steps: tuple[int, ...] = ()

    def __post_init__(self):
        for name in ("save_interval", "start_step"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "save_interval" else 0):
                raise ConfigError(
                    f"save config {name}={value!r}: give a whole number "
                    f"{'of 1 or more' if name == 'save_interval' else '>= 0'}"
                )
        self.save_steps = tuple(int(s) for s in self.save_steps)

    def should_save(self, step: int) -> bool:
        if self.save_steps:
            return step in self.save_steps
        if step < self.start_step or (self.end_step is not None and step >= self.end_step):
            return False
        return (step - self.start_step) % self.save_interval == 0

    def to_dict(self) -> dict:
        return {
            "save_interval": self.save_interval,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "save_steps": list(self.save_steps),
        }


class SaveConfig:
    """A save config per mode: ``SaveConfig(save_interval=10)``, or ``SaveConfig(mode_save_configs=
    {TRAIN: SaveConfigMode(save_interval=10), EVAL: SaveConfigMode(save_interval=1)})``."""

    def __init__(
        self,
        mode_save_configs: dict | None = None,
        save_interval: int = DEFAULT_SAVE_INTERVAL,
        start_step: int = 0,
        end_step: int | None = None,
        save_steps=(),
    ):
        base = SaveConfigMode(
            int(save_interval), int(start_step), None if end_step is None else int(end_step), tuple(save_steps or ())
        )
        self.modes = {m: base for m in ModeKeys}
        for mode, cfg in (mode_save_configs or {}).items():
            if isinstance(cfg, dict):
                cfg = SaveConfigMode(**cfg)
            self.modes[as_mode(mode)] = cfg

    def should_save(self, mode: ModeKeys, step: int) -> bool:
        return self.modes[mode].should_save(step)

    def to_dict(self) -> dict:
        return {m.name: c.to_dict() for m, c in self.modes.items()}


@dataclass
class Collection:
    """A named group of tensors: chosen by regex (and, for the built-in ones, by what they are), saved on
    ``save_config``'s steps (``None``: every time they are saved), whole or as ``reductions``."""

    name: str
    include_regex: list[str] = field(default_factory=list)
    save_config: SaveConfig | None = None
    reductions: tuple[str, ...] = ()

    def include(self, regex) -> None:
        for r in [regex] if isinstance(regex, str) else list(regex):
            re.compile(r)
            self.include_regex.append(r)

    def matches(self, name: str) -> bool:
        return any(re.search(r, name) for r in self.include_regex)

    def should_save(self, mode: ModeKeys, step: int) -> bool:
        return self.save_config is None or self.save_config.should_save(mode, step)

    def to_dict(self) -> dict:
        return {
            "include_regex": self.include_regex,
            "reductions": list(self.reductions),
            "save_config": self.save_config.to_dict() if self.save_config else "every call",
        }


#: Collections a hook has from the start.  ``every``: saved whenever a value comes (losses, scalars,
#: what ``save_tensor`` is given); the rest on the hook's save config, as reductions.
BUILTIN_COLLECTIONS = (
    "losses",
    "scalars",
    "default",
    "weights",
    "biases",
    "gradients",
    "activations",
    "inputs",
    "weight_update_ratio",
    "labels",
    "predictions",
)
EVERY = {"losses", "scalars", "default", "labels", "predictions"}
DEFAULT_INCLUDE = BUILTIN_COLLECTIONS  #: what a hook saves unless its config names collections: all of them


def _parse_params(params: dict, where: str) -> dict:
    """SageMaker's string-valued HookParameters / CollectionParameters -> typed values."""
    out: dict = {"modes": {}}
    for key, value in (params or {}).items():
        text = str(value)
        mode = None
        if "." in key and key.split(".", 1)[0].upper() in ModeKeys.__members__:
            mode, key = ModeKeys[key.split(".", 1)[0].upper()], key.split(".", 1)[1]
        try:
            if key in ("save_interval", "start_step", "end_step"):
                parsed = int(text)
            elif key == "save_steps":
                parsed = tuple(int(s) for s in text.split(",") if s.strip())
            elif key in ("include_regex",):
                parsed = [r for r in text.split(",") if r]
            elif key in ("reductions", "abs_reductions", "norms", "abs_norms"):
                parsed = [r.strip() for r in text.split(",") if r.strip()]
            elif key in ("save_all", "save_raw_tensor", "save_histogram", "export_tensorboard", "dry_run"):
                parsed = text.lower() in ("true", "1", "yes")
            else:
                parsed = text
        except ValueError:
            raise ConfigError(f"{where}: {key}={value!r} is not a whole number (or a comma list of them)") from None
        if mode is not None:
            out["modes"].setdefault(mode, {})[key] = parsed
        else:
            out[key] = parsed
    return out


def _reduction_names(p: dict) -> tuple[str, ...]:
    names = list(p.get("reductions", []))
    names += [{"l1": "l1", "l2": "l2"}.get(n, n) for n in p.get("norms", [])]
    names += [{"mean": "abs_mean", "min": "abs_min", "max": "abs_max"}.get(n, n) for n in p.get("abs_reductions", [])]
    if p.get("save_histogram"):
        names.append("histogram")
    return red.check(dict.fromkeys(names))


def _save_config(p: dict, fallback: SaveConfig | None) -> SaveConfig | None:
    keys = {k: p[k] for k in ("save_interval", "start_step", "end_step", "save_steps") if k in p}
    if not keys and not p.get("modes"):
        return fallback
    base = fallback.modes[ModeKeys.TRAIN].to_dict() if fallback else {}
    base.pop("save_steps", None) if "save_steps" not in keys and keys else None
    cfg = SaveConfig(**{**{k: v for k, v in base.items() if k != "save_steps"}, **keys})
    for mode, mp in p.get("modes", {}).items():
        cfg.modes[mode] = SaveConfigMode(**{**cfg.modes[mode].to_dict(), **mp})
    return cfg


@dataclass
class HookConfig:
    """What a hook saves: its out_dir, default save config, collections and their settings."""

    out_dir: str
    save_config: SaveConfig = field(default_factory=SaveConfig)
    include_collections: tuple[str, ...] = DEFAULT_INCLUDE
    collections: dict = field(default_factory=dict)  # name -> Collection overrides
    include_regex: list[str] = field(default_factory=list)
    profile_steps: tuple[int, int] | None = None
    #: save nothing (the job runs with the debugger off; a script's hook calls still work)
    dry_run: bool = False

    @classmethod
    def from_json_file(cls, path: str | Path | None = None) -> "HookConfig":
        path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: no debugger hook config here; script mode writes one (and sets "
                f"{CONFIG_ENV}); elsewhere create the hook with Hook(out_dir=...)"
            ) from None
        except ValueError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict, where: str = "debugger hook config") -> "HookConfig":
        out_dir = raw.get("LocalPath") or raw.get("out_dir")
        if not out_dir:
            raise ConfigError(f"{where}: LocalPath (the folder the tensors go to) is missing")
        hp = _parse_params(raw.get("HookParameters") or {}, f"{where}: HookParameters")
        save = _save_config(hp, SaveConfig())
        collections = {}
        include = list(DEFAULT_INCLUDE)
        for entry in raw.get("CollectionConfigurations") or []:
            name = entry.get("CollectionName")
            if not name:
                raise ConfigError(f"{where}: a CollectionConfigurations entry has no CollectionName")
            cp = _parse_params(entry.get("CollectionParameters") or {}, f"{where}: collection {name}")
            coll = Collection(
                name,
                list(cp.get("include_regex", [])),
                _save_config(cp, None if name in EVERY else save),
                _reduction_names(cp)
                if any(k in cp for k in ("reductions", "norms", "abs_reductions", "save_histogram"))
                else (),
            )
            collections[name] = coll
            if name not in include:
                include.append(name)
        profile = None
        if "profile_steps" in hp:
            profile = parse_step_range(str(hp["profile_steps"]))
        return cls(
            str(out_dir),
            save,
            tuple(include),
            collections,
            list(hp.get("include_regex", [])),
            profile,
            bool(raw.get("DryRun") or hp.get("dry_run")),
        )

    def to_json(self) -> dict:
        """The SageMaker-format JSON for this config (what script mode writes for a script's hook)."""
        train = self.save_config.modes[ModeKeys.TRAIN]
        hp = {"save_interval": str(train.save_interval), "start_step": str(train.start_step)}
        if self.profile_steps:
            hp["profile_steps"] = f"{self.profile_steps[0]}:{self.profile_steps[1]}"
        colls = []
        for name, c in self.collections.items():
            params = {}
            if c.include_regex:
                params["include_regex"] = ",".join(c.include_regex)
            if c.reductions:
                params["reductions"] = ",".join(c.reductions)
            if c.save_config is not None:
                params["save_interval"] = str(c.save_config.modes[ModeKeys.TRAIN].save_interval)
            colls.append({"CollectionName": name, "CollectionParameters": params})
        return {"LocalPath": self.out_dir, "HookParameters": hp, "CollectionConfigurations": colls}


def parse_step_range(text: str) -> tuple[int, int]:
    """``"5:8"`` -> (5, 8), both TRAIN-mode steps, inclusive."""
    m = re.fullmatch(r"\s*(\d+)\s*[:-]\s*(\d+)\s*", text or "")
    if not m:
        raise ConfigError(f"profile steps {text!r}: give a range of training steps like 5:8 (first:last, both traced)")
    if int(m.group(1)) > int(m.group(2)):
        raise ConfigError(
            f"profile steps {text!r}: the first step comes after the last; write {m.group(2)}:{m.group(1)}"
        )
    return int(m.group(1)), int(m.group(2))
