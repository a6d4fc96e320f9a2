"""The one typed configuration of a fine-tuning run.

The CLI's ``visiontune train`` flags are generated from these fields (same
names, ``--learning-rate`` for ``learning_rate``), Python callers pass the
same names to :func:`visiontune.train`, unknown keys are rejected, and the
final config is saved next to the run as ``hyperparameters.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from visiontune.choices import AUGMENTATIONS, BOUNDS, DEVICES, ON_BAD_IMAGE, PRECISIONS, out_of_bounds
from visiontune.errors import ConfigError, option

MODES = ("head", "partial", "full")
#: options that must be 1 or more
POSITIVE = (
    "epochs",
    "batch_size",
    "eval_batch_size",
    "trainable_stages",
    "top_k",
    "lr_scheduler_step",
    "early_stopping_patience",
)
TASKS = (
    "auto",
    "classification",
    "multi-label",
    "segmentation",
    "detection",
)  # "auto": what the data says (visiontune.tasks has each)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "one-cycle")


def opt(default, help: str, choices: tuple | None = None, cli: bool = True):
    return field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


@dataclass
class TrainConfig:
    data: str = opt("", "dataset: class folders, split folders, a manifest, a .lst, or a folder of split files")
    out: str = opt(
        "", "output folder for the model artifact, metrics, plots and checkpoints (default: runs/<job name>)"
    )
    task: str = opt(
        "auto",
        "what to predict: auto (from the data), classification (one label per image), "
        "multi-label (several per image: sigmoid outputs, per-class thresholds), segmentation "
        "(a class per pixel, from masks), detection (boxes and their classes)",
        TASKS,
    )
    model: str = opt("mobilenet_v2", "model name (`visiontune models list`) or any timm/torchvision architecture")
    weights: str | None = opt(None, "start from this .pth/.safetensors file instead of the model's own weights")
    pretrained: bool = opt(True, "start from pretrained weights (--no-pretrained: random init)")
    mode: str = opt("head", "what learns: head (backbone frozen), partial (last N stages + head), full", MODES)
    trainable_stages: int = opt(1, "partial mode: how many of the backbone's last stages learn")
    hidden_units: int = opt(0, "head: 0 = one linear layer; N = Linear(N) -> ReLU -> Dropout -> Linear")
    dropout: float = opt(0.0, "head dropout probability")
    epochs: int = opt(10, "passes over the training data")
    learning_rate: float | None = opt(None, "initial learning rate (default: 1e-3 head, 3e-4 partial/full; 0.01 sgd)")
    batch_size: int = opt(64, "training mini-batch size")
    eval_batch_size: int = opt(256, "batch size for evaluation and feature extraction")
    optimizer: str = opt("adamw", "optimizer", OPTIMIZERS)
    momentum: float = opt(0.9, "momentum (sgd, rmsprop)")
    weight_decay: float = opt(1e-4, "weight decay")
    lr_scheduler: str = opt("cosine", "learning-rate schedule", SCHEDULERS)
    lr_scheduler_step: int = opt(3, "step schedule: epochs between decays")
    lr_scheduler_factor: float = opt(0.1, "step schedule: decay factor")
    label_smoothing: float = opt(0.0, "label smoothing (multi-label: targets pulled towards 0.5 by this share)")
    multi_label_loss: str = opt(
        "bce",
        "multi-label loss: bce, focal (easy examples count less), asymmetric "
        "(negatives focused harder and shifted by a margin)",
        ("bce", "focal", "asymmetric"),
    )
    segmentation_decoder: str = opt(
        "deeplabv3plus",
        "segmentation: the decoder on the pretrained encoder (segmentation-models-pytorch)",
        ("deeplabv3plus", "fpn", "unet", "pan"),
    )
    class_weights: bool = opt(
        False,
        "weight the loss by inverse class frequency (imbalanced data; multi-label: "
        "each class's positives by its negatives per positive)",
    )
    early_stopping: bool = opt(False, "stop when validation loss stops improving; keep the best epoch")
    early_stopping_patience: int = opt(3, "epochs without improvement before stopping")
    early_stopping_min_delta: float = opt(0.0, "smallest decrease of validation loss that counts")
    augmentation: str = opt(
        "none", "random augmentation of training images (SageMaker's augmentation_type)", AUGMENTATIONS
    )
    image_size: int | None = opt(None, "input size in pixels (default: the weights' own size)")
    seed: int = opt(0, "random seed: the same seed gives the same result")
    valid_fraction: float = opt(
        0.1, "share of training images held out for validation when the data has no validation split"
    )
    test_fraction: float = opt(
        0.1,
        "share of training images held out for the final test when the data has no test split "
        "(0: report the validation split instead)",
    )
    evaluate_test: bool = opt(
        True,
        "score the finished model on the test split (--no-evaluate-test: leave it unseen; `auto`'s candidates "
        "do, so the test split scores only the model it chose)",
    )
    label_attribute: str | None = opt(None, "manifest label attribute (detected when there is one)")
    allow_empty_labels: bool = opt(
        False, "multi-label data: an image with no label (no class present) is a training example instead of an error"
    )
    on_bad_image: str = opt("error", "unreadable images: stop with an error, or skip and report them", ON_BAD_IMAGE)
    precision: str = opt("auto", "compute precision (auto: bf16 where the hardware has it, mixed on GPUs)", PRECISIONS)
    device: str = opt("auto", "device (auto: CUDA when present, else CPU)", DEVICES)
    num_workers: int | None = opt(
        None, "image decoding processes for the pixel cache and GPU feature pass (default: from the CPU count)"
    )
    top_k: int = opt(5, "report top-k accuracy for this k")
    resume: bool = opt(False, "continue an interrupted run in --out from its last checkpoint")
    checkpoints: bool = opt(True, "write a checkpoint after every epoch, for --resume (tuning trials skip them)")
    plots: bool = opt(
        True,
        "draw learning_curves.png and confusion_matrix.png (tuning trials skip them; the "
        "best trial's are drawn when the tuning job ends)",
    )
    overwrite: bool = opt(False, "replace a finished (or interrupted) run in --out instead of refusing")
    debugger: bool = opt(
        True,
        "record losses, metrics, weight/gradient summaries and system usage in <out>/debug, "
        "evaluate the debugger rules beside the run (visiontune report shows them)",
    )
    debug_rules: str = opt(
        "default",
        "rules beside the run: default (every rule that applies), none, or a comma "
        "list of name[:key=value...][:action=stop] (visiontune debug rules lists them)",
    )
    debug_save_interval: int = opt(
        0, "steps between saves of weights, gradients and activations (0: spaced to cost ~1% of the training time)"
    )
    profile_interval: float = opt(0.5, "seconds between system-usage samples (0: no system profiling)")
    profile_steps: str = opt(
        "",
        "a torch.profiler trace of these training steps, both ends included, e.g. 5:8 "
        "(open it in https://ui.perfetto.dev)",
    )

    def __post_init__(self):
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise ConfigError(f"{f.name}={value!r}: choose one of {', '.join(choices)}")
        for name in POSITIVE:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be 1 or more")
        for name in BOUNDS:  # image_size: the one bounds table (the CLI, forms and Preprocessing read it too)
            value = getattr(self, name, None)
            if value is not None and out_of_bounds(name, value):
                raise ConfigError(out_of_bounds(name, value))
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: must be greater than 0")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction={self.valid_fraction}: must be between 0 and 1")
        if not 0.0 <= self.test_fraction < 1.0 or self.valid_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                f"test_fraction={self.test_fraction}: must be in [0, 1) and leave training images "
                f"(valid_fraction + test_fraction < 1; now {self.valid_fraction + self.test_fraction:g})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.hidden_units < 0:
            raise ConfigError(f"hidden_units={self.hidden_units}: must be 0 (one linear layer) or more")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing={self.label_smoothing}: must be in [0, 1)")
        if not self.data:
            raise ConfigError("data: give the dataset to train on (--data PATH)")
        if self.debug_save_interval < 0 or self.profile_interval < 0:
            raise ConfigError("debug_save_interval and profile_interval must be 0 or more")
        if self.debugger:
            from visiontune.debug.config import parse_step_range
            from visiontune.debug.rules import parse_rules

            try:  # an unknown rule or a bad parameter fails before any work, naming the option
                parse_rules(self.debug_rules)
                if self.profile_steps:
                    parse_step_range(self.profile_steps)
            except ConfigError as e:
                which = "debug_rules" if "profile steps" not in str(e) else "profile_steps"
                raise ConfigError(f"{option(which)}: {e}") from None

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.optimizer == "sgd":
            return 0.01
        return 1e-3 if self.mode == "head" else 3e-4

    def resolved(self, *, image_size: int, num_classes: int) -> "TrainConfig":
        """The values a run actually uses, every default filled in (what ``hyperparameters.json`` records)."""
        from visiontune.data.cache import default_workers

        return dataclasses.replace(
            self,
            learning_rate=self.lr,
            image_size=int(image_size),
            top_k=min(self.top_k, num_classes),
            num_workers=default_workers() if self.num_workers is None else self.num_workers,
        )

    @property
    def uses_feature_cache(self) -> bool:
        return self.mode == "head" and self.augmentation == "none" and self.task not in ("segmentation", "detection")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(names))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_identity(self) -> dict[str, Any]:
        """What must match for ``--resume`` to continue a run (everything but bookkeeping)."""
        d = self.to_dict()
        for k in (
            "resume",
            "overwrite",
            "num_workers",
            "out",
            "eval_batch_size",
            "checkpoints",
            "plots",
            "debugger",
            "debug_rules",
            "debug_save_interval",
            "profile_interval",
            "profile_steps",
            "evaluate_test",
        ):
            d.pop(k)
        return d

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))


#: the fields a form shows first (the studio's Train page); the rest sit under "More options"
CORE_FIELDS = (
    "model",
    "task",
    "mode",
    "epochs",
    "learning_rate",
    "batch_size",
    "image_size",
    "augmentation",
    "optimizer",
    "lr_scheduler",
    "hidden_units",
    "dropout",
    "weight_decay",
    "early_stopping",
    "class_weights",
    "label_smoothing",
    "seed",
)
#: fields a form never shows (set by whoever submits: the data chosen, the output folder)
_NOT_IN_FORMS = ("data", "out", "resume", "overwrite", "weights")
_MINIMUM = {
    **dict.fromkeys(POSITIVE, 1),
    "hidden_units": 0,
    "debug_save_interval": 0,
    "profile_interval": 0,
    "dropout": 0,
    "label_smoothing": 0,
    "weight_decay": 0,
    "num_workers": 0,
}


def bounds(name: str) -> tuple[int | float | None, int | float | None]:
    """(minimum, maximum) of a field, None where unbounded: visiontune.choices.BOUNDS, else the minimum."""
    return BOUNDS.get(name, (_MINIMUM.get(name), None))


def _field_type(f) -> tuple[str, bool]:
    """(int | float | bool | str, whether None is allowed) from a field's annotation."""
    text = str(f.type).replace(" ", "")
    optional = "None" in text
    base = text.replace("|None", "").replace("None|", "")
    return (base if base in ("int", "float", "bool", "str") else "str"), optional


def form_fields() -> list[dict]:
    """Every TrainConfig option a form may set: name, type, default, help, choices, minimum and maximum (None:
    unbounded; what TrainConfig checks), core or not."""
    rows = []
    for f in fields(TrainConfig):
        if f.name in _NOT_IN_FORMS or not f.metadata.get("cli", True):
            continue
        kind, optional = _field_type(f)
        rows.append(
            {
                "name": f.name,
                "type": kind,
                "optional": optional,
                "default": f.default,
                "help": f.metadata.get("help", ""),
                "choices": list(f.metadata.get("choices") or []) or None,
                "minimum": bounds(f.name)[0],
                "maximum": bounds(f.name)[1],
                "core": f.name in CORE_FIELDS,
            }
        )
    order = {n: i for i, n in enumerate(CORE_FIELDS)}
    return sorted(rows, key=lambda r: (not r["core"], order.get(r["name"], 0)))


def coerce_form(values: dict[str, Any]) -> dict[str, Any]:
    """Form values (strings or JSON) -> typed options; a value of the wrong type is a ConfigError naming its
    field.  Empty optional values mean the default (None)."""
    types = {f.name: _field_type(f) for f in fields(TrainConfig)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in types:
            out[name] = value  # from_dict names unknown options
            continue
        kind, optional = types[name]
        if value is None or (isinstance(value, str) and not value.strip() and kind != "str"):
            if optional:
                out[name] = None
                continue
            raise ConfigError(f"{name}: give a value")
        try:
            if kind == "bool":
                if isinstance(value, str) and value.lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError
                out[name] = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "on")
            elif kind == "int":
                number = float(value)
                if number != int(number):
                    raise ValueError
                out[name] = int(number)
            elif kind == "float":
                out[name] = float(value)
            else:
                out[name] = str(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name}={value!r}: give {'a whole number' if kind == 'int' else 'a number' if kind == 'float' else 'true or false'}"
            ) from None
    return out
