"""What a job runs: one small class per kind, registered by name.

``builtin`` trains with visiontune's own engine (:func:`visiontune.train.train`);
``script`` runs a user's SageMaker training script (:mod:`visiontune.jobs.script`).
A kind checks its spec when the job is submitted (so mistakes fail before anything
starts) and runs it inside a :class:`~visiontune.jobs.runner.RunContext`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from visiontune.errors import ConfigError
from visiontune.registry import Registry

if TYPE_CHECKING:
    from visiontune.jobs.runner import RunContext


@dataclass
class RunResult:
    final_metrics: dict = field(default_factory=dict)
    model_data: str | None = None


class JobKind(ABC):
    name = ""

    @abstractmethod
    def prepare(self, spec: dict, output_dir: Path) -> tuple[dict, dict]:
        """Check and complete ``spec`` before the job exists; returns (spec, hyperparameters to record)."""

    @abstractmethod
    def run(self, ctx: "RunContext") -> RunResult:
        """Run the job; raise to fail it (the message becomes its failure reason)."""

    def default_base_name(self, spec: dict) -> str:
        return self.name


def _builtins() -> None:
    from visiontune.jobs.script import ScriptJob

    KINDS.register(BuiltinJob)
    KINDS.register(ScriptJob)


KINDS: Registry[type[JobKind]] = Registry("job kind", _builtins)
register_kind = KINDS.register


def get_kind(name: str) -> JobKind:
    return KINDS.get(name)()


def list_kinds() -> list[str]:
    return KINDS.names()


#: Per-epoch values that are bookkeeping, not metrics worth a series.
_NOT_METRICS = {"epoch"}
#: SageMaker's built-in image classifier metric names -> visiontune's.
METRIC_ALIASES = {"validation:accuracy": "val_acc", "validation:loss": "val_loss", "train:accuracy": "train_acc",
                  "train:loss": "train_loss", "test:accuracy": "test_accuracy"}


class BuiltinJob(JobKind):
    """visiontune's fine-tuning engine; ``spec = {"config": TrainConfig fields}``."""

    name = "builtin"

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
        return {**spec, "config": cfg.to_dict(), "instance_count": n}, _hyperparameters(cfg.to_dict())

    def default_base_name(self, spec: dict) -> str:
        return str((spec.get("config") or {}).get("model") or "train").replace("_", "-").replace(":", "-")

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
    skip = {"data", "out", "resume", "overwrite", "num_workers", "device", "label_attribute", "on_bad_image",
            "eval_batch_size", "checkpoints", "plots"}
    return {k: v for k, v in config.items() if k not in skip}


def optuna_pruning(store, cfg: dict):
    """An epoch callback for a tuning trial of the built-in engine: report the objective to the trial's
    Optuna study (in the job store) and stop at once when its pruner says so, in the trial's own process.

    ``cfg``: ``{"study", "trial" (number), "metric", "pruner": {"name", "kwargs"}}``."""
    import optuna

    from visiontune.train.loop import StopTraining

    pruner = getattr(optuna.pruners, cfg["pruner"]["name"])(**cfg["pruner"]["kwargs"])
    study = optuna.load_study(study_name=cfg["study"], storage=store.optuna_storage(), pruner=pruner)
    trial = optuna.trial.Trial(study, study._storage.get_trial_id_from_study_id_trial_number(  # noqa: SLF001
        study._study_id, int(cfg["trial"])))  # noqa: SLF001
    metric = METRIC_ALIASES.get(cfg["metric"], cfg["metric"])

    def prune(epoch: int, row: dict) -> None:
        if metric not in row:
            return
        trial.report(float(row[metric]), epoch)
        if trial.should_prune():
            raise StopTraining(f"pruned at epoch {epoch} ({metric}={row[metric]:.4g})")

    return prune
