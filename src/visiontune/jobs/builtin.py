"""The ``builtin`` job kind: visiontune's fine-tuning engine (:func:`visiontune.train.train`), one
process or data-parallel over Ray Train workers; tuning trials report and prune at each epoch's end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visiontune.errors import ConfigError
from visiontune.jobs.base import METRIC_ALIASES, JobKind, RunResult

if TYPE_CHECKING:
    from visiontune.jobs.context import RunContext


#: Per-epoch values that are bookkeeping, not metrics worth a series.
_NOT_METRICS = {"epoch"}


class BuiltinJob(JobKind):
    """visiontune's fine-tuning engine; ``spec = {"config": TrainConfig fields}``."""

    name = "builtin"
    outputs = (
        "model.safetensors",
        "config.json",
        "labels.json",
        "metrics.json",
        "hyperparameters.json",
        "checkpoint.pt",
        "confusion_matrix.json",
        "confusion_matrix.png",
        "learning_curves.png",
        "misclassified.json",
        "per_class.json",
        "pr_curves.png",
        "segmentation_examples.png",
    )

    def prepare(self, spec: dict, output_dir: Path) -> tuple[dict, dict]:
        from visiontune.train.config import TrainConfig

        config = dict(spec.get("config") or {})
        config["out"] = str(output_dir)
        cfg = TrainConfig.from_dict(config)  # unknown or bad options fail now
        unknown = set(spec) - {"config", "instance_count", "ray_address", "cpus_per_worker", "pruning"}
        if unknown:
            raise ConfigError(f"unknown job setting(s) {', '.join(sorted(unknown))}")
        n = int(spec.get("instance_count") or 1)
        if n < 1:
            raise ConfigError(f"instance_count={n}: must be 1 or more")
        from visiontune.train.loop import check_out_folder

        check_out_folder(output_dir, cfg)  # a refused folder records no job (and writes nothing into it)
        return {**spec, "config": cfg.to_dict(), "instance_count": n}, _hyperparameters(cfg.to_dict())

    def default_base_name(self, spec: dict) -> str:
        return str((spec.get("config") or {}).get("model") or "train").replace("_", "-").replace(":", "-")

    def inputs(self, spec: dict) -> dict[str, Path]:
        data = (spec.get("config") or {}).get("data")
        return {"data": Path(str(data))} if data and "://" not in str(data) else {}

    def run(self, ctx: "RunContext") -> RunResult:
        from visiontune.train import TrainConfig, train

        cfg = TrainConfig.from_dict(ctx.job.spec["config"])

        def record(epoch: int, row: dict) -> None:
            ctx.metrics({k: v for k, v in row.items() if k not in _NOT_METRICS}, step=epoch)

        callbacks = (record, *ctx.callbacks)
        if ctx.job.spec.get("pruning"):
            callbacks += (optuna_pruning(ctx.store, ctx.job.spec["pruning"]),)

        if int(ctx.job.spec.get("instance_count") or 1) > 1:
            from visiontune.jobs.distributed import builtin_worker, run_distributed
            from visiontune.train.loop import TrainResult

            run_distributed(ctx, builtin_worker, {})
            result = TrainResult.from_dir(cfg.out)
        else:
            result = train(cfg, callbacks=callbacks, stop=ctx.stop)
        final = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        ctx.metrics(final, step=len(result.history))
        ctx.record_hyperparameters(result.out / "hyperparameters.json")
        return RunResult(final, str(result.out / "model.tar.gz"))


def _hyperparameters(config: dict) -> dict:
    """What a user would call the hyperparameters (not paths and bookkeeping)."""
    skip = {
        "data",
        "out",
        "resume",
        "overwrite",
        "num_workers",
        "device",
        "label_attribute",
        "on_bad_image",
        "eval_batch_size",
        "checkpoints",
        "plots",
        "debugger",
        "debug_rules",
        "debug_save_interval",
        "profile_interval",
        "profile_steps",
    }
    return {k: v for k, v in config.items() if k not in skip}


def optuna_pruning(store, cfg: dict):
    """An epoch callback for a tuning trial of the built-in engine: report the objective to the trial's
    Optuna study (in the job store) and stop at once when its pruner says so, in the trial's own process.

    ``cfg``: ``{"study", "trial" (number), "metric", "pruner": {"name", "kwargs"}}``."""
    import optuna

    from visiontune.train.loop import StopTraining

    pruner = getattr(optuna.pruners, cfg["pruner"]["name"])(**cfg["pruner"]["kwargs"])
    study = optuna.load_study(study_name=cfg["study"], storage=store.optuna_storage(), pruner=pruner)
    storage = store.optuna_storage()  # Optuna's public storage API, not the study's private fields
    trial = optuna.trial.Trial(
        study,
        storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(cfg["study"]), int(cfg["trial"])
        ),
    )
    metric = METRIC_ALIASES.get(cfg["metric"], cfg["metric"])

    def prune(epoch: int, row: dict) -> None:
        if metric not in row:
            return
        trial.report(float(row[metric]), epoch)
        if trial.should_prune():
            raise StopTraining(f"pruned at epoch {epoch} ({metric}={row[metric]:.4g})")

    return prune
