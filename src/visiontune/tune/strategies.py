"""Search strategies: how the next trial's hyperparameters are chosen, and when a trial is stopped early.

One small class each, registered by SageMaker's strategy name; Optuna does the searching.

=============  =====================================  ===========================================
strategy       sampler                                pruner (early stopping)
=============  =====================================  ===========================================
Bayesian       TPE (multivariate, constant liar)      median rule when early_stopping is "Auto"
Random         random                                 median rule when early_stopping is "Auto"
Grid           every combination, in random order     median rule when early_stopping is "Auto"
Hyperband      TPE                                    Hyperband (epochs as the resource)
=============  =====================================  ===========================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from visiontune.errors import ConfigError
from visiontune.registry import Registry
from visiontune.tune.parameters import CategoricalParameter, IntegerParameter, Parameter

EARLY_STOPPING = ("Off", "Auto")


class Strategy(ABC):
    name = ""

    @abstractmethod
    def sampler(self, ranges: dict[str, Parameter], seed: int, max_jobs: int):
        """An Optuna sampler."""

    def pruner_spec(self, early_stopping: str, max_resource: int | None) -> dict:
        """The Optuna pruner as data (trials rebuild it where they run): the median rule for ``Auto``
        (SageMaker's), nothing for ``Off``."""
        if early_stopping == "Auto":
            return {"name": "MedianPruner", "kwargs": {"n_startup_trials": 3, "n_warmup_steps": 1}}
        return {"name": "NopPruner", "kwargs": {}}

    def pruner(self, early_stopping: str, max_resource: int | None):
        return build_pruner(self.pruner_spec(early_stopping, max_resource))

    def max_jobs(self, ranges: dict[str, Parameter], requested: int) -> int:
        return requested


def build_pruner(spec: dict):
    """An Optuna pruner from ``{"name": class name in optuna.pruners, "kwargs": {...}}``."""
    import optuna

    return getattr(optuna.pruners, spec["name"])(**spec["kwargs"])


def _startup(max_jobs: int) -> int:
    return max(2, min(10, max_jobs // 3))


class Bayesian(Strategy):
    name = "Bayesian"

    def sampler(self, ranges, seed, max_jobs):
        import optuna

        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=_startup(max_jobs), multivariate=True, constant_liar=True
        )


class Random(Strategy):
    name = "Random"

    def sampler(self, ranges, seed, max_jobs):
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)


class Grid(Strategy):
    name = "Grid"

    def _space(self, ranges):
        bad = [n for n, p in ranges.items() if not isinstance(p, (CategoricalParameter, IntegerParameter))]
        if bad:
            raise ConfigError(
                f"strategy Grid needs categorical or integer ranges; {', '.join(bad)} "
                "is continuous (list its values as a CategoricalParameter)"
            )
        return {n: p.grid() for n, p in ranges.items()}

    def sampler(self, ranges, seed, max_jobs):
        import optuna

        return optuna.samplers.GridSampler(self._space(ranges), seed=seed)

    def max_jobs(self, ranges, requested):
        size = 1
        for values in self._space(ranges).values():
            size *= len(values)
        return min(requested, size) if requested else size


class Hyperband(Strategy):
    name = "Hyperband"

    def sampler(self, ranges, seed, max_jobs):
        return Bayesian().sampler(ranges, seed, max_jobs)

    def pruner_spec(self, early_stopping, max_resource):
        if not max_resource:
            raise ConfigError(
                "strategy Hyperband needs the number of epochs (its resource): set a fixed "
                "'epochs' hyperparameter or an 'epochs' range"
            )
        return {
            "name": "HyperbandPruner",
            "kwargs": {"min_resource": 1, "max_resource": int(max_resource), "reduction_factor": 3},
        }


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (Bayesian, Random, Grid, Hyperband):
    STRATEGIES.register(_cls)


def get_strategy(name: str) -> Strategy:
    return STRATEGIES.get(name)()
