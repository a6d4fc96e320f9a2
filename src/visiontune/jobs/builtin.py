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

        from visiontune.train.loop import PARTIAL, StopTraining, TrainResult

        try:
            if int(ctx.job.spec.get("instance_count") or 1) > 1:
                from visiontune.jobs.distributed import builtin_worker, run_distributed

                run_distributed(ctx, builtin_worker, {})
                result = TrainResult.from_dir(cfg.out)
            else:
                result = train(cfg, callbacks=callbacks, stop=ctx.stop)
        except StopTraining as exc:
            partial = Path(cfg.out) / PARTIAL / "model.tar.gz"  # the model of the last finished epoch, if any
            if ctx.stop.is_set() and partial.is_file():
                exc.result = RunResult({}, str(partial))  # type: ignore[attr-defined]
            raise
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
        "evaluate_test",
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
    waiting: list[tuple[int, float]] = []  # reports the store could not take yet, oldest first
    said: list[str] = []

    def prune(epoch: int, row: dict) -> None:
        if metric not in row:
            return
        waiting.append((epoch, float(row[metric])))
        try:
            while waiting:
                trial.report(waiting[0][1], waiting[0][0])
                waiting.pop(0)
            decide = trial.should_prune()
        except Exception as exc:  # noqa: BLE001 - Optuna wraps the store's errors in its own
            if not _store_unreachable(exc):
                raise
            # the store is away (a restart): training goes on, the reports wait for the next epoch's try and
            # the pruner decides once it is back; past STORE_OUTAGE_S the job's own writes fail it
            if not said:
                said.append(str(exc))
                print(
                    f"[visiontune] the job store is unreachable: epoch {epoch}'s report to the tuner waits "
                    "(training goes on; pruning resumes when the store is back)",
                    flush=True,
                )
            return
        if decide:
            raise StopTraining(f"pruned at epoch {epoch} ({metric}={row[metric]:.4g})")

    return prune


def _store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps: Optuna's StorageInternalError) says the store is away for now."""
    from sqlalchemy.exc import SQLAlchemyError

    from visiontune.jobs.store import store_trouble

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, SQLAlchemyError) and store_trouble(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
