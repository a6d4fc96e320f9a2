"""``HyperparameterTuner`` with the SageMaker SDK's arguments and methods, over visiontune's tuner.

from visiontune.sdk.tuner import HyperparameterTuner, ContinuousParameter, CategoricalParameter
tuner = HyperparameterTuner(estimator, "test_acc", {"lr": ContinuousParameter(1e-4, 1e-1)},
                            metric_definitions=[{"Name": "test_acc", "Regex": "..."}],
                            max_jobs=20, max_parallel_jobs=2, strategy="Bayesian")
tuner.fit({"train": ..., "test": ...})
tuner.best_training_job(); tuner.best_estimator().deploy(...); tuner.analytics().dataframe()
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from visiontune.errors import ConfigError, VisiontuneError
from visiontune.jobs.api import default_store
from visiontune.paths import run_folder, timestamped
from visiontune.sdk._compat import ignore_cloud_args
from visiontune.sdk.estimator import (
    BUILTIN_NAMES,
    Estimator,
    ImageClassifier,
    _channels,
    data_from_channels,
)
from visiontune.tune.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
)

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IntegerParameter",
    "TuningJobCompletionCriteriaConfig",
    "WarmStartConfig",
    "WarmStartTypes",
]


class WarmStartTypes:
    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class WarmStartConfig:
    def __init__(self, warm_start_type: str = WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, parents=None):
        self.type, self.parents = warm_start_type, sorted(parents or [])


class TuningJobCompletionCriteriaConfig:
    def __init__(
        self,
        max_number_training_jobs_not_improving: int | None = None,
        complete_on_convergence: bool | None = None,
        target_objective_metric_value: float | None = None,
    ):
        self.max_number_training_jobs_not_improving = max_number_training_jobs_not_improving
        self.target_objective_metric_value = target_objective_metric_value


class HyperparameterTuningJobAnalytics:
    def __init__(self, name: str, names: dict[str, str] | None = None):
        self.name = name
        self.names = names or {}  # visiontune's hyperparameter names -> the ones the ranges were given in

    def dataframe(self, force_refresh: bool = False):
        """One row per training job: the hyperparameters (named as the ranges were), TrainingJobName,
        TrainingJobStatus, FinalObjectiveValue, TrainingElapsedTimeSeconds (best first)."""
        from visiontune.tune.report import dataframe

        return dataframe(default_store(), self.name).rename(columns=self.names)


class HyperparameterTuner:
    def __init__(
        self,
        estimator,
        objective_metric_name: str,
        hyperparameter_ranges: dict,
        metric_definitions: list[dict] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int = 1,
        max_parallel_jobs: int = 1,
        early_stopping_type: str = "Off",
        base_tuning_job_name: str | None = None,
        warm_start_config: WarmStartConfig | None = None,
        completion_criteria_config: TuningJobCompletionCriteriaConfig | None = None,
        random_seed: int | None = None,
        backend: str = "local",
        ray_address: str | None = None,
        resources_per_trial: dict | None = None,
        **sagemaker_only,
    ):
        ignore_cloud_args("HyperparameterTuner", sagemaker_only)
        if not isinstance(estimator, (Estimator, ImageClassifier)):
            raise ConfigError("HyperparameterTuner: give a visiontune.sdk Estimator / PyTorch or ImageClassifier")
        self.estimator = estimator
        self.objective_metric_name, self.objective_type = objective_metric_name, objective_type
        self.hyperparameter_ranges = dict(hyperparameter_ranges)
        self.metric_definitions = metric_definitions
        self.strategy, self.max_jobs, self.max_parallel_jobs = strategy, max_jobs, max_parallel_jobs
        self.early_stopping_type, self.base_tuning_job_name = early_stopping_type, base_tuning_job_name
        self.warm_start_config, self.completion = warm_start_config, completion_criteria_config
        self.random_seed, self.backend, self.ray_address = random_seed, backend, ray_address
        self.resources_per_trial = resources_per_trial
        self.latest_tuning_job: str | None = None

    def _config(self, inputs: Any, name: str):
        from visiontune.tune.config import TuningConfig

        out = (run_folder(name)).resolve()
        # absolute paths: the configuration is also written to a file and may run from another folder
        channels = {k: v if "://" in v else str(Path(v).expanduser().resolve()) for k, v in _channels(inputs).items()}
        est = self.estimator
        if isinstance(est, ImageClassifier):
            base = {**est.hyperparameters(), "data": data_from_channels(channels, out)}
            ranges = {BUILTIN_NAMES.get(k, k): v for k, v in self.hyperparameter_ranges.items()}
            kind_key = "train"
        else:
            defs = self.metric_definitions if self.metric_definitions is not None else est.metric_definitions
            source = str(Path(est.source_dir).expanduser().resolve()) if est.source_dir else None
            entry = est.entry_point if source else str(Path(est.entry_point).expanduser().resolve())
            base = {
                "entry_point": entry,
                "source_dir": source,
                "channels": channels,
                "hyperparameters": dict(est._hyperparameters),
                "metric_definitions": defs,
            }
            ranges = self.hyperparameter_ranges
            kind_key = "script"
        doc = {
            "name": name,
            kind_key: base,
            "objective": {"metric": self.objective_metric_name, "type": self.objective_type},
            "ranges": ranges,
            "strategy": self.strategy,
            "early_stopping": self.early_stopping_type,
            "max_jobs": self.max_jobs,
            "max_parallel_jobs": self.max_parallel_jobs,
            "seed": self.random_seed or 0,
            "backend": self.backend,
            "output": str(out),
        }
        if self.ray_address:
            doc["ray_address"] = self.ray_address
        if self.resources_per_trial:
            doc["resources_per_trial"] = self.resources_per_trial
        if self.warm_start_config is not None:
            doc["warm_start"] = list(self.warm_start_config.parents)
        if self.completion is not None:
            doc["completion"] = {
                k: v
                for k, v in (
                    ("max_jobs_not_improving", self.completion.max_number_training_jobs_not_improving),
                    ("target_objective", self.completion.target_objective_metric_value),
                )
                if v is not None
            }
        return TuningConfig.from_dict(doc)

    def fit(self, inputs: Any = None, job_name: str | None = None, wait: bool = True, **_ignored) -> None:
        """Run the tuning job (here, or in the background with ``wait=False``)."""
        name = job_name or timestamped(self.base_tuning_job_name or "tuning")
        config = self._config(inputs, name)
        self.latest_tuning_job = name
        if wait:
            from visiontune.tune.tuner import Tuner

            tj = Tuner(config).run()
            if tj.status == "Failed":
                raise VisiontuneError(f"tuning job {name} failed: {tj.failure_reason}")
            return
        import yaml

        path = Path(config.output) / "tuning.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        self._log = path.parent / "tuner.out"
        with open(self._log, "ab") as fh:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "visiontune.cli.main", "tune", "run", "--config", str(path)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _name(self) -> str:
        if not self.latest_tuning_job:
            raise ConfigError("no tuning job yet: call fit() first (or HyperparameterTuner.attach(name))")
        return self.latest_tuning_job

    def wait(self) -> None:
        """Until the tuning job has ended (``fit(wait=False)`` runs it in the background)."""
        import time

        store = default_store()
        while True:
            tj = store.find_tuning_job(self._name())
            if tj is not None and tj.status != "InProgress":
                return
            process = getattr(self, "_process", None)
            if process is not None and process.poll() is not None:
                tj = store.find_tuning_job(self._name())
                if tj is None or tj.status == "InProgress":
                    tail = self._log.read_text(errors="replace")[-1500:] if self._log.exists() else ""
                    raise VisiontuneError(f"the tuning job {self._name()} stopped before it finished: {tail}")
                return
            time.sleep(0.5)

    def describe(self) -> dict:
        from visiontune.tune.report import leaderboard

        store = default_store()
        tj = store.get_tuning_job(self._name())
        rows = leaderboard(store, tj.name)
        best = next((r for r in rows if r["FinalObjectiveValue"] is not None), None)
        names = self._names()
        return {
            "HyperParameterTuningJobName": tj.name,
            "HyperParameterTuningJobStatus": tj.status,
            "BestTrainingJob": best
            and {
                "TrainingJobName": best["TrainingJobName"],
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": self.objective_metric_name,
                    "Value": best["FinalObjectiveValue"],
                },
                "TunedHyperParameters": {
                    names.get(k, k): v for k, v in best.items() if names.get(k, k) in self.hyperparameter_ranges
                },
            },
            "FailureReason": tj.failure_reason,
        }

    def best_training_job(self) -> str:
        best = self.describe()["BestTrainingJob"]
        if best is None:
            raise VisiontuneError(f"tuning job {self._name()} has no completed training job")
        return best["TrainingJobName"]

    def best_estimator(self):
        """An estimator attached to the best training job: ``.model_data``, ``.deploy()``."""
        return type(self.estimator).attach(self.best_training_job())

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        return HyperparameterTuningJobAnalytics(self._name(), self._names())

    def _names(self) -> dict[str, str]:
        """visiontune's name -> SageMaker's, for the built-in ranges given by SageMaker's names
        (``mini_batch_size`` trains as ``batch_size``)."""
        if not isinstance(self.estimator, ImageClassifier):
            return {}
        return {BUILTIN_NAMES[k]: k for k in self.hyperparameter_ranges if k in BUILTIN_NAMES}

    def stop_tuning_job(self) -> None:
        store = default_store()
        store.update_tuning_job(self._name(), stop_requested=True)

    @classmethod
    def attach(cls, tuning_job_name: str, estimator=None) -> "HyperparameterTuner":
        from visiontune.tune.config import TuningConfig

        tj = default_store().get_tuning_job(tuning_job_name)
        config = TuningConfig.from_dict(tj.config)
        if estimator is None:
            estimator = (
                ImageClassifier(model=config.base.get("model", "mobilenet_v2"))
                if config.kind == "builtin"
                else Estimator(config.base["entry_point"], config.base.get("source_dir"))
            )
        tuner = cls(
            estimator,
            config.objective_metric,
            config.ranges,
            strategy=config.strategy,
            objective_type=config.objective_type,
            max_jobs=config.max_jobs,
            max_parallel_jobs=config.max_parallel_jobs,
        )
        tuner.latest_tuning_job = tuning_job_name
        return tuner
