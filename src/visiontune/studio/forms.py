"""The studio's forms (Train, Tune) -> the same typed configurations the CLI builds, every error beside the
field it belongs to; then the library starts the job.  Nothing is recorded for a form that would fail."""

from __future__ import annotations

from dataclasses import fields as dc_fields
from pathlib import Path

from visiontune.errors import ConfigError, PathRefused, VisiontuneError


class FieldError(ConfigError):
    """A form value the engine refused, with the field it belongs to."""

    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.field = field


class FieldErrors(FieldError):
    """Every refused value of a form at once: ``fields`` = [{"field", "error"}, ...] (the first also as
    ``field``, the messages joined as the error's text, for clients that show one)."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(e["error"] for e in errors), errors[0]["field"] if errors else None)
        self.fields = list(errors)


def submit_training(body: dict, studio) -> str:
    """The Train form -> a running job: the same checks as ``visiontune train`` (the typed config, the model
    and its weights, then the data as ``visiontune data inspect`` sees it), every field's error at once;
    then ``start_training``."""
    from visiontune.jobs.api import start_training
    from visiontune.paths import home, timestamped

    errors: list[dict] = []
    folder = None
    try:
        folder = data_folder(body, studio.roots)
    except FieldError as e:
        errors.append({"field": e.field, "error": str(e)})
    options = form_object(body, "config")
    name = timestamped(str(options.get("model") or "train").replace("_", "-").replace(":", "-"))
    cfg = checked_config(options, folder, home() / "runs" / name, studio.roots, errors)
    return start_training(cfg.to_dict(), job_name=name, store=studio.store).name


def resume_training(store, name: str) -> str:
    """A stopped engine job continued from its last checkpoint (``visiontune train --resume`` into the same
    folder, with the same options), started as a new job; returns its name."""
    from visiontune.jobs.api import start_training
    from visiontune.paths import timestamped

    job = store.get_job(name)
    if job.kind != "builtin":
        raise ConfigError(
            f"job {name} runs a script: only the engine's runs resume from a checkpoint; start the script again"
        )
    if job.status != "Stopped":
        raise ConfigError(f"job {name} is {job.status}: only a Stopped run resumes")
    if not (Path(job.output_dir) / "checkpoint.pt").is_file():
        raise ConfigError(
            f"job {name} stopped before its first epoch ended: it has no checkpoint to resume from; train it again"
        )
    config = {**(job.spec.get("config") or {}), "resume": True, "overwrite": False}
    base = str(config.get("model") or "train").replace("_", "-").replace(":", "-")
    return start_training(config, job_name=timestamped(base), store=store).name


def problems_for_training(folder: Path, cfg, roots) -> list[str]:
    """The problems ``train`` would stop at, as ``visiontune data inspect`` words them (every image the data
    names checked to lie inside the data roots first)."""
    from visiontune.data.inspect import inspect

    report = inspect(
        folder,
        task=cfg.task,
        label_attribute=cfg.label_attribute,
        allow_empty_labels=cfg.allow_empty_labels,
        confine=roots.confine,
    )
    skip = cfg.on_bad_image == "skip"
    return [p["message"] for p in report["problems"] if not (skip and p["check"] in ("unreadable", "not an image"))]


def form_object(body: dict, key: str) -> dict:
    """A form's object of options (``config``, ``base``), refused by name when it is something else."""
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise FieldError(f"{key}: an object of training options (name: value), not {type(value).__name__}", key)
    return dict(value)


def data_folder(body: dict, roots) -> Path:
    data = body.get("data")
    if not isinstance(data, dict):
        raise FieldError(
            'choose a data folder on the Data page first (API: "data": {"root": N, "path": "folder"})', "data"
        )
    try:
        folder = roots.resolve(data.get("root", 0), data.get("path", ""))
    except PathRefused as e:
        raise FieldError(str(e), "data") from None
    if not folder.exists():
        raise FieldError(f"{data.get('path')!r} does not exist: choose a folder on the Data page", "data")
    return folder


def _field_of(text: str, names) -> str | None:
    return next((n for n in sorted(names, key=len, reverse=True) if text.startswith((f"{n}=", f"{n}:", f"{n} "))), None)


def _each_field(options: dict, required: dict, errors: list[dict]) -> dict:
    """The options the engine accepts one by one (each typed and checked beside the defaults), every refused
    one added to ``errors`` beside its field."""
    from visiontune.train.config import TrainConfig, coerce_form

    names = {f.name for f in dc_fields(TrainConfig)}
    good: dict = {}
    for key, value in options.items():
        if key not in names:
            errors.append({"field": key, "error": f"unknown option {key}"})
            continue
        try:
            typed = coerce_form({key: value})
            TrainConfig.from_dict({**required, **typed})
        except VisiontuneError as e:
            errors.append({"field": _field_of(str(e), names) or key, "error": str(e)})
            continue
        good.update(typed)
    return good


def _model_error(cfg) -> str | None:
    """Why a run of ``cfg`` could not get its model here: an unknown name, or pretrained weights that are
    not on this machine (the studio trains offline)."""
    from visiontune.zoo import get_model_spec

    try:
        spec = get_model_spec(cfg.model)
    except VisiontuneError as e:
        return str(e)
    if cfg.pretrained and not (spec.weights and spec.weights.offline):
        how = spec.describe().get("install") or "they are downloaded on first use, which needs the internet"
        return (
            f"model {cfg.model!r} has no pretrained weights on this machine ({how}): choose a model with "
            "offline weights (Models page), or turn off pretrained"
        )
    return None


def checked_config(options: dict, folder: Path | None, out: Path, roots, errors: list[dict] | None = None):
    """The typed config of a form, and the data as ``train`` would see it; every field's error at once (a
    :class:`FieldErrors`, with ``errors`` found before), or the config."""
    from visiontune.train.config import TrainConfig

    errors = list(errors or [])
    required = {"data": str(folder or "."), "out": str(out)}
    good = _each_field(options, required, errors)
    try:
        cfg = TrainConfig.from_dict({**good, **required})
    except VisiontuneError as e:  # values fine alone, not together (valid_fraction + test_fraction)
        names = {f.name for f in dc_fields(TrainConfig)}
        errors.append({"field": _field_of(str(e), names), "error": str(e)})
        cfg = TrainConfig.from_dict(required)
    if "model" not in {e["field"] for e in errors}:
        problem = _model_error(cfg)
        if problem:
            errors.append({"field": "model", "error": problem})
    if folder is not None:
        errors.extend({"field": "data", "error": text} for text in _data_problems(folder, cfg, roots))
    if errors:
        raise FieldErrors(errors)
    return cfg


def _data_problems(folder: Path, cfg, roots) -> list[str]:
    try:
        problems = problems_for_training(folder, cfg, roots)
    except VisiontuneError as e:
        return [str(e)]
    if not problems:
        return []
    return ["; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")]


def _tuning_field(text: str, ranges: dict) -> str | None:
    field = next((f"range-{k}" for k in ranges if text.startswith((f"ranges.{k}", f"{k}:"))), None)
    for key in ("max_parallel_jobs", "max_jobs", "name", "tuning job name"):
        if field is None and (text.startswith(key) or f"{key}:" in text):
            field = "name" if "name" in key else key
    return field


def submit_tuning(body: dict, studio) -> str:
    """The Tune form -> a tuning job running in its own process (``visiontune tune --config F --detach``)."""
    from visiontune.paths import home, timestamped
    from visiontune.tune.config import OBJECTIVES, TuningConfig
    from visiontune.tune.tuner import launch

    folder = data_folder(body, studio.roots)
    name = str(body.get("name") or "").strip() or timestamped("tune")
    base = form_object(body, "base")
    ranges = body.get("ranges") or {}
    if not isinstance(ranges, dict):
        raise FieldError("ranges: an object of option name -> range", None)
    doc = {
        "name": name,
        "ranges": ranges,
        "objective": body.get("objective") or OBJECTIVES[0],
        "strategy": body.get("strategy") or "Bayesian",
        "early_stopping": body.get("early_stopping") or "Off",
        "max_jobs": body.get("max_jobs"),
        "max_parallel_jobs": body.get("max_parallel_jobs"),
    }
    try:
        from visiontune.names import check_name
        from visiontune.tune.config import TRIAL_SUFFIX

        check_name(name, "tuning job name", reserve=TRIAL_SUFFIX)  # before it becomes a folder
        out = home() / "tuning" / name
        cfg = checked_config(base, folder, out / "base", studio.roots)
        doc["train"] = {k: v for k, v in cfg.to_dict().items() if k in base or k == "data"}
        config = TuningConfig.from_dict({**doc, "output": str(out)})
    except FieldError:
        raise
    except VisiontuneError as e:
        raise FieldError(str(e), _tuning_field(str(e), ranges)) from None
    launch(config)
    return config.name
