"""Hyperparameter tuning: ranges, strategies (Optuna), executors (local processes, Ray), reports.

config = TuningConfig.load("tune.yaml")        # or built by sdk.HyperparameterTuner
Tuner(config).run()                             # runs or resumes; trials are jobs
leaderboard(store, name), write_report(store, name, out)
"""

from visiontune.tune.config import TuningConfig
from visiontune.tune.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter
from visiontune.tune.tuner import Tuner

__all__ = ["CategoricalParameter", "ContinuousParameter", "IntegerParameter", "Tuner", "TuningConfig"]
