"""A tuning job's configuration: what to train, the objective, the ranges, the search and its limits.

Written as YAML (``visiontune tune --config tune.yaml``) or built by the SDK's ``HyperparameterTuner``::

    name: fmnist-hpo
    train:                         # the built-in engine: any `visiontune train` option (fixed values)
      data: quickstart/fashion-mnist
      model: mobilenet_v2
      epochs: 10
    # script:                      # or a SageMaker training script
    #   entry_point: hpo.py
    #   source_dir: scripts
    #   channels: {train: data/train, test: data/test}
    #   hyperparameters: {epochs: 5}
    #   metric_definitions: [{Name: test_acc, Regex: "Testing Accuracy: ([0-9.]+)"}]
    objective: {metric: val_acc, type: Maximize}
    ranges:
      learning_rate: {type: continuous, min: 0.0001, max: 0.1, scaling: Logarithmic}
      batch_size: [64, 128, 256]
    strategy: Bayesian             # Bayesian | Random | Grid | Hyperband
    early_stopping: Auto           # Off | Auto (the median rule)
    max_jobs: 20
    max_parallel_jobs: 2
    completion: {target_objective: 0.95, max_jobs_not_improving: 10}
    warm_start: [an-earlier-tuning-job]
    backend: local                 # local | ray  (ray_address: HOST:PORT)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from visiontune.errors import ConfigError
from visiontune.jobs.base import METRIC_ALIASES
from visiontune.names import check_name
from visiontune.tune.parameters import Parameter, parse_range
from visiontune.tune.strategies import EARLY_STOPPING, get_strategy

OBJECTIVE_TYPES = ("Maximize", "Minimize")
#: What the built-in engine reports every epoch (and can be tuned on).
#: val_mAP: multi-label runs; val_mIoU: segmentation runs
BUILTIN_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss", "val_mAP", "val_mIoU")


@dataclass
class TuningConfig:
    name: str
    kind: str  # builtin | script
    base: dict  # builtin: TrainConfig fields; script: the script's spec
    objective_metric: str
    ranges: dict[str, Parameter]
    objective_type: str = "Maximize"
    max_jobs: int = 10
    max_parallel_jobs: int = 1
    strategy: str = "Bayesian"
    early_stopping: str = "Off"
    target_objective: float | None = None
    max_jobs_not_improving: int | None = None
    warm_start: list[str] = field(default_factory=list)
    seed: int = 0
    backend: str = "local"
    ray_address: str | None = None
    resources_per_trial: dict = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    output: str | None = None

    def __post_init__(self):
        if self.kind == "builtin":  # SageMaker's built-in names; a script's metrics are named by its definitions
            self.objective_metric = METRIC_ALIASES.get(self.objective_metric, self.objective_metric)
        self.check()

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        check_name(self.name, "tuning job name", reserve=TRIAL_SUFFIX)
        if self.kind not in ("builtin", "script"):
            raise ConfigError("give what to tune: a `train:` section (the built-in engine) or a `script:` section")
        if self.objective_type not in OBJECTIVE_TYPES:
            raise ConfigError(f"objective type {self.objective_type!r}: choose Maximize or Minimize")
        if self.early_stopping not in EARLY_STOPPING:
            raise ConfigError(f"early_stopping {self.early_stopping!r}: choose Off or Auto")
        strategy = get_strategy(self.strategy)
        if not self.ranges:
            raise ConfigError("ranges: give at least one hyperparameter range to search")
        for name, p in self.ranges.items():
            p.check(name)
        if self.max_jobs < 1 or self.max_parallel_jobs < 1:
            raise ConfigError(
                f"max_jobs={self.max_jobs}, max_parallel_jobs={self.max_parallel_jobs}: both must be 1 or more"
            )
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"backend {self.backend!r}: choose local or ray")
        if self.kind == "builtin":
            from visiontune.train.config import TrainConfig

            names = {f.name for f in fields(TrainConfig)}
            unknown = sorted(set(self.ranges) - names)
            if unknown:
                raise ConfigError(
                    f"ranges: {', '.join(unknown)} is not an option of the built-in engine; tunable "
                    f"options: {', '.join(sorted(names - {'data', 'out', 'resume', 'overwrite'}))}"
                )
            fixed = sorted(set(self.ranges) & {"data", "out", "resume", "overwrite", "device"})
            if fixed:
                raise ConfigError(f"ranges: {', '.join(fixed)} cannot be tuned")
            if self.objective_metric not in BUILTIN_METRICS:
                raise ConfigError(
                    f"objective metric {self.objective_metric!r}: the built-in engine reports "
                    f"{', '.join(BUILTIN_METRICS)} every epoch (or validation:accuracy, validation:loss, "
                    "validation:mAP, validation:mIoU)"
                )
            TrainConfig.from_dict({**self.base, **{n: _example(p) for n, p in self.ranges.items()}})
        else:
            defined = [
                d["Name"] if isinstance(d, dict) else str(d).partition("=")[0]
                for d in self.base.get("metric_definitions") or []
            ]
            if self.objective_metric not in defined:
                raise ConfigError(
                    f"objective metric {self.objective_metric!r} has no metric definition; define it "
                    f"(name and regex) in metric_definitions (defined: {', '.join(defined) or 'none'})"
                )
        strategy.pruner_spec(self.early_stopping if self.strategy != "Hyperband" else "Auto", self.max_epochs())
        self.max_jobs = strategy.max_jobs(self.ranges, self.max_jobs)

    def max_epochs(self) -> int | None:
        """The resource Hyperband allocates: the (largest) number of epochs a trial runs."""
        if "epochs" in self.ranges:
            p = self.ranges["epochs"]
            return int(max(p.grid())) if hasattr(p, "grid") else int(p.max_value)
        hps = self.base if self.kind == "builtin" else self.base.get("hyperparameters") or {}
        value = hps.get("epochs", 10 if self.kind == "builtin" else None)
        return int(value) if value is not None else None

    @property
    def maximize(self) -> bool:
        return self.objective_type == "Maximize"

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        doc = {
            "name": self.name,
            ("train" if self.kind == "builtin" else "script"): self.base,
            "objective": {"metric": self.objective_metric, "type": self.objective_type},
            "ranges": {n: p.to_dict() for n, p in self.ranges.items()},
            "strategy": self.strategy,
            "early_stopping": self.early_stopping,
            "max_jobs": self.max_jobs,
            "max_parallel_jobs": self.max_parallel_jobs,
            "seed": self.seed,
            "backend": self.backend,
            "resources_per_trial": self.resources_per_trial,
        }
        if self.target_objective is not None or self.max_jobs_not_improving is not None:
            doc["completion"] = {
                k: v
                for k, v in (
                    ("target_objective", self.target_objective),
                    ("max_jobs_not_improving", self.max_jobs_not_improving),
                )
                if v is not None
            }
        for key in ("warm_start", "ray_address", "output"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc

    @classmethod
    def from_dict(cls, doc: dict, base_dir: Path | None = None) -> "TuningConfig":
        if not isinstance(doc, dict):
            raise ConfigError("a tuning configuration is a mapping (name, train|script, objective, ranges, ...)")
        known = {
            "name",
            "train",
            "script",
            "objective",
            "ranges",
            "strategy",
            "early_stopping",
            "max_jobs",
            "max_parallel_jobs",
            "completion",
            "warm_start",
            "seed",
            "backend",
            "ray_address",
            "resources_per_trial",
            "output",
        }
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if ("train" in doc) == ("script" in doc):
            raise ConfigError("give exactly one of `train:` (the built-in engine) and `script:` (a training script)")
        kind = "builtin" if "train" in doc else "script"
        base = dict(doc.get("train") or doc.get("script") or {})
        if base_dir is not None:
            base = _relative_to(base, kind, base_dir)
        objective = doc.get("objective") or {}
        if isinstance(objective, str):
            objective = {"metric": objective}
        if "metric" not in objective:
            raise ConfigError("objective: give {metric: NAME, type: Maximize|Minimize}")
        completion = doc.get("completion") or {}
        warm = doc.get("warm_start") or []
        return cls(
            name=str(doc.get("name") or ""),
            kind=kind,
            base=base,
            objective_metric=str(objective["metric"]),
            objective_type=str(objective.get("type", "Maximize")),
            ranges={n: parse_range(n, r) for n, r in (doc.get("ranges") or {}).items()},
            max_jobs=_count(doc, "max_jobs", 10),
            max_parallel_jobs=_count(doc, "max_parallel_jobs", 1),
            strategy=str(doc.get("strategy", "Bayesian")),
            early_stopping=str(doc.get("early_stopping", "Off")),
            target_objective=completion.get("target_objective"),
            max_jobs_not_improving=completion.get("max_jobs_not_improving"),
            warm_start=[warm] if isinstance(warm, str) else list(warm),
            seed=_count(doc, "seed", 0),
            backend=str(doc.get("backend", "local")),
            ray_address=doc.get("ray_address"),
            resources_per_trial=dict(doc.get("resources_per_trial") or {"cpu": 1, "gpu": 0}),
            output=doc.get("output"),
        )

    @classmethod
    def load(cls, path: str | Path) -> "TuningConfig":
        import yaml

        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        try:
            return cls.from_dict(doc, base_dir=path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


#: what a trial's job name adds to the tuning job's: ``-NNN`` and, for a re-run attempt, ``-N``
TRIAL_SUFFIX = 8


def _count(doc: dict, key: str, default: int) -> int:
    """A whole-number setting (also from a form's text); a message naming it otherwise."""
    value = doc.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
        if isinstance(value, bool) or not number.is_integer():
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: give a whole number (got {value!r})") from None
    return int(number)


def study_name(name: str) -> str:
    """The Optuna study of tuning job ``name`` (in the job store's database)."""
    return f"visiontune-{name}"


def _example(p: Parameter):
    """One valid value of a range (to check the engine accepts it)."""
    if hasattr(p, "grid"):
        return p.grid()[0]
    return p.value(p.distribution("x").low)


def _relative_to(base: dict, kind: str, root: Path) -> dict:
    """Paths in a config file are relative to the file, not to where the command runs."""

    def fix(value: str) -> str:
        p = Path(value).expanduser()
        return value if "://" in value or p.is_absolute() else str((root / p).resolve())

    base = dict(base)
    if kind == "builtin":
        for key in ("data", "weights"):
            if base.get(key):
                base[key] = fix(str(base[key]))
    else:
        if base.get("source_dir"):
            base["source_dir"] = fix(str(base["source_dir"]))
        elif base.get("entry_point"):
            base["entry_point"] = fix(str(base["entry_point"]))
        base["channels"] = {k: fix(str(v)) for k, v in (base.get("channels") or {}).items()}
    return base


#: the objectives a form offers (the built-in engine's validation metrics)
OBJECTIVES = [
    {"metric": "validation:accuracy", "type": "Maximize"},
    {"metric": "validation:loss", "type": "Minimize"},
    {"metric": "validation:mAP", "type": "Maximize"},
    {"metric": "validation:mIoU", "type": "Maximize"},
]
#: the ranges a form offers, with a starting suggestion each (log scale where it is the usual one)
SUGGESTED_RANGES = {
    "learning_rate": (1e-4, 1e-2, True),
    "weight_decay": (1e-6, 1e-2, True),
    "dropout": (0.0, 0.5, False),
    "hidden_units": (0, 512, False),
    "batch_size": (16, 128, True),
    "label_smoothing": (0.0, 0.2, False),
    "momentum": (0.8, 0.99, False),
    "epochs": (2, 20, False),
    "trainable_stages": (1, 4, False),
}
TUNABLE_CHOICES = ("augmentation", "optimizer", "lr_scheduler", "mode")


def tunable_fields() -> list[dict]:
    """The built-in engine's options a tuning form offers as ranges, with the field's help text."""
    from visiontune.train.config import form_fields

    by_name = {f["name"]: f for f in form_fields()}
    rows = []
    for name, (lo, hi, log) in SUGGESTED_RANGES.items():
        f = by_name[name]
        rows.append(
            {
                "name": name,
                "type": "integer" if f["type"] == "int" else "continuous",
                "min": lo,
                "max": hi,
                "log": log,
                "help": f["help"],
                "suggested": name == "learning_rate",
            }
        )
    for name in TUNABLE_CHOICES:
        f = by_name[name]
        rows.append(
            {"name": name, "type": "categorical", "values": f["choices"], "help": f["help"], "suggested": False}
        )
    return rows
