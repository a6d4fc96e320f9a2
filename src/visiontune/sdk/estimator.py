"""Estimators with the SageMaker SDK's shape, running here: ``fit`` records a job, ``deploy`` a local endpoint.

from visiontune.sdk import PyTorch                 # was: from sagemaker.pytorch import PyTorch
est = PyTorch(entry_point="hpo.py", source_dir=".", role=role, instance_type="ml.m5.xlarge",
              framework_version="1.12", py_version="py38", hyperparameters={"epochs": 2})
est.fit({"train": "dogImages/train", "test": "dogImages/test"})
predictor = est.deploy(entry_point="inference.py")  # a local endpoint
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from visiontune.errors import ConfigError, VisiontuneError
from visiontune.jobs.api import default_store
from visiontune.jobs.runner import launch, submit
from visiontune.jobs.store import TERMINAL, Job
from visiontune.paths import run_folder
from visiontune.sdk._compat import Session, ignore_cloud_args
from visiontune.sdk.predictor import Predictor, start_endpoint


class TrainingJob:
    """``estimator.latest_training_job``: its name, ``describe()``, ``wait()``, ``stop()``."""

    def __init__(self, name: str, process=None):
        self.name = self.job_name = name
        self.process = process  # the runner we started, when we started it

    def describe(self) -> dict:
        """The job as SageMaker's DescribeTrainingJob, with ``DebugRuleEvaluationStatuses`` and
        ``ProfilerRuleEvaluationStatuses``."""
        job = default_store().get_job(self.name)
        return {**job.to_dict(), **_rule_statuses(job)}

    def rule_job_summary(self) -> list[dict]:
        """Every rule's status (debugger rules, then profiler rules), as the SageMaker SDK's."""
        described = self.describe()
        return described["DebugRuleEvaluationStatuses"] + described["ProfilerRuleEvaluationStatuses"]

    def wait(self, logs: bool = True) -> Job:
        """Wait for the job to end; a Failed job raises (as SageMaker's ``UnexpectedStatusException``), a
        Completed or Stopped one is returned."""
        job = _follow(self.name, logs, self.process)
        if job.status == "Failed":
            raise VisiontuneError(f"training job {job.name} Failed: {job.failure_reason}")
        return job

    def stop(self) -> None:
        from visiontune.jobs.runner import stop

        stop(default_store(), self.name)


def _rule_statuses(job: Job) -> dict:
    from visiontune.debug.rules import read_rules

    rules = (read_rules(Path(job.output_dir) / "debug") or {"rules": []})["rules"]

    def one(rule: dict) -> dict:
        status, details = rule["status"], rule["message"]
        if status == "InProgress" and job.status in TERMINAL:  # the rules ended with the job's process
            status, details = "Stopped", f"the job ended ({job.status}) before this rule finished"
        return {"RuleConfigurationName": rule["name"], "RuleEvaluationStatus": status, "StatusDetails": details}

    return {
        key: [one(r) for r in rules if r["kind"] == kind]
        for key, kind in (("DebugRuleEvaluationStatuses", "debug"), ("ProfilerRuleEvaluationStatuses", "profiler"))
    }


def _follow(name: str, logs: bool, process=None) -> Job:
    """Wait for a job, printing its log as it grows (as ``fit(logs=True)`` streams CloudWatch); a runner that
    died (killed, out of memory) ends the wait with the job Failed, never a hang."""
    import time

    store = default_store()
    last = 0
    while True:
        job = store.get_job(name)
        if job.status not in TERMINAL and process is not None and process.poll() is not None:
            store.reap_orphans()
            job = store.get_job(name)
            if job.status not in TERMINAL:
                store.finish(
                    name,
                    "Failed",
                    reason=f"its runner exited ({process.returncode}) before recording an "
                    f"end; see {Path(job.output_dir) / 'worker.out'}",
                )
                job = store.get_job(name)
        if logs:
            text, last = store.logs(name, last)
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
        if job.status in TERMINAL:
            if logs:
                text, last = store.logs(name, last)
                sys.stdout.write(text)
            return job
        time.sleep(0.5)


def _channels(inputs: Any) -> dict[str, str]:
    if inputs is None:
        return {}
    if isinstance(inputs, (str, Path)):
        return {"training": str(inputs)}  # SageMaker's name for a lone input
    if isinstance(inputs, dict):
        out = {}
        for k, v in inputs.items():
            out[str(k)] = (
                str(getattr(v, "config", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri") or v)
                if not isinstance(v, (str, Path))
                else str(v)
            )
        return out
    raise ConfigError(f"fit(inputs=...): give a path or {{'train': path, 'test': path}}, not {type(inputs).__name__}")


class _EstimatorBase:
    kind = ""

    def __init__(
        self,
        base_job_name: str | None,
        output_dir: str | None,
        rules=None,
        debugger_hook_config=None,
        profiler_config=None,
        disable_profiler: bool = False,
    ):
        from visiontune.sdk.debugger import job_settings

        self.base_job_name, self.output_dir = base_job_name, output_dir
        #: rules=, debugger_hook_config=, profiler_config= as the SageMaker SDK takes them
        self.debugger = job_settings(rules, debugger_hook_config, profiler_config, disable_profiler)
        self.latest_training_job: TrainingJob | None = None
        self._model_data: str | None = None

    # what the job runs, from the inputs
    def _spec(self, channels: dict[str, str], job_dir: Path) -> dict:
        raise NotImplementedError

    def _job_name(self, job_name: str | None) -> str | None:
        if job_name:
            return job_name
        if self.base_job_name:
            from visiontune.paths import timestamped

            return timestamped(self.base_job_name)
        return None

    def fit(
        self,
        inputs: Any = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
        experiment_config: dict | None = None,
    ) -> None:
        """Train: a job in a child process (its log streams here while ``wait``)."""
        store = default_store()
        name = self._job_name(job_name)
        from visiontune.paths import timestamped

        name = name or timestamped(self._default_base())
        out = Path(self.output_dir or run_folder(name)).resolve()
        job = submit(store, self.kind, self._spec(_channels(inputs), out), name=name, output_dir=out)
        process = launch(store, job.name, tie_to_parent=False)
        self.latest_training_job = TrainingJob(job.name, process)
        if wait:
            done = _follow(job.name, logs, process)
            if done.status != "Completed":
                raise VisiontuneError(f"training job {done.name} {done.status}: {done.failure_reason}")

    def _default_base(self) -> str:
        return self.kind

    def _latest_output(self) -> Path:
        if self.latest_training_job is None:
            raise ConfigError("no training job yet: call fit() first (or attach to a training job)")
        return Path(default_store().get_job(self.latest_training_job.name).output_dir)

    @property
    def sagemaker_session(self) -> Session:
        """A stand-in session (``default_bucket()``, ``upload_data(path)`` -> the local path)."""
        return Session()

    @property
    def output_path(self) -> str:
        """Where the training jobs write (SageMaker: the S3 prefix of ``<job>/output/model.tar.gz``): the latest
        job's folder's parent, or the folder ``output_dir`` names."""
        if self.latest_training_job is not None:
            return str(self._latest_output().parent)
        return str(Path(self.output_dir).resolve().parent) if self.output_dir else str(run_folder("x").parent.resolve())

    def latest_job_debugger_artifacts_path(self) -> str:
        """The latest job's debugger output (tensors): ``create_trial(path)`` reads it."""
        return str(self._latest_output() / "debug")

    def latest_job_profiler_artifacts_path(self) -> str:
        """The latest job's profiler output (system and framework metrics, in the same folder here)."""
        return str(self._latest_output() / "debug")

    @property
    def model_data(self) -> str | None:
        """The trained ``model.tar.gz`` (a local path)."""
        if self._model_data:
            return self._model_data
        if self.latest_training_job is None:
            return None
        return default_store().get_job(self.latest_training_job.name).model_data

    @classmethod
    def attach(cls, training_job_name: str, **kwargs) -> "_EstimatorBase":
        """An estimator for a finished job (``best_estimator()`` uses it)."""
        job = default_store().get_job(training_job_name)
        est = cls._from_job(job, **kwargs)
        est.latest_training_job = TrainingJob(job.name)
        return est

    def wait(self, logs: bool = True) -> Job:
        if self.latest_training_job is None:
            raise ConfigError("no training job yet: call fit() first")
        return self.latest_training_job.wait(logs)

    def _model_dir(self) -> str:
        if self.latest_training_job is None and self.model_data is None:
            raise ConfigError("no model yet: fit() first (or attach to a finished training job)")
        if self.latest_training_job is not None:
            job = default_store().get_job(self.latest_training_job.name)
            if job.status != "Completed":
                why = f" ({job.failure_reason})" if job.failure_reason else ""
                raise ConfigError(
                    f"training job {job.name} is {job.status}{why}; only a Completed job's model "
                    "is deployed (fit again, or deploy a model.tar.gz with Model(model_data=...))"
                )
        if self.model_data is None:
            raise ConfigError(f"training job {self.latest_training_job.name} recorded no model")
        return self.model_data


class Estimator(_EstimatorBase):
    """A SageMaker training script (``sagemaker.pytorch.PyTorch`` / ``sagemaker.estimator.Estimator``)."""

    kind = "script"

    def __init__(
        self,
        entry_point: str,
        source_dir: str | None = None,
        hyperparameters: dict | None = None,
        metric_definitions: list[dict] | None = None,
        instance_count: int = 1,
        base_job_name: str | None = None,
        output_dir: str | None = None,
        rules=None,
        debugger_hook_config=None,
        profiler_config=None,
        disable_profiler: bool = False,
        model_data: str | None = None,
        **sagemaker_only,
    ):
        """``model_data``: a trained ``model.tar.gz`` to ``deploy()`` without fitting (as notebooks pass it)."""
        ignore_cloud_args(type(self).__name__, sagemaker_only)
        super().__init__(base_job_name, output_dir, rules, debugger_hook_config, profiler_config, disable_profiler)
        self._model_data = str(Path(model_data).expanduser().resolve()) if model_data else None
        self.entry_point, self.source_dir = entry_point, source_dir
        self._hyperparameters = dict(hyperparameters or {})
        self.metric_definitions = list(metric_definitions or [])
        self.instance_count = int(instance_count)

    def hyperparameters(self) -> dict[str, str]:
        """As the SageMaker SDK's framework estimators: each value JSON-encoded (``{"lr": "0.01", "model":
        '"resnet18"'}``), what notebooks read back with ``json.loads`` or ``.strip('"')``."""
        return {str(k): json.dumps(v) for k, v in self._hyperparameters.items()}

    def set_hyperparameters(self, **values) -> None:
        self._hyperparameters.update(values)

    def _default_base(self) -> str:
        return Path(self.entry_point).stem.replace("_", "-")

    def _spec(self, channels, job_dir):
        debugger = self.debugger
        return {
            "entry_point": self.entry_point,
            "source_dir": self.source_dir,
            "channels": channels,
            "hyperparameters": self._hyperparameters,
            "metric_definitions": self.metric_definitions,
            "instance_count": self.instance_count,
            **({"debugger": debugger} if debugger else {}),
        }

    @classmethod
    def _from_job(cls, job: Job, **kwargs) -> "Estimator":
        s = job.spec
        est = cls(
            entry_point=s["entry_point"],
            source_dir=s["source_dir"],
            hyperparameters=s["hyperparameters"],
            metric_definitions=s["metric_definitions"],
            **kwargs,
        )
        est._channels = s.get("channels", {})
        return est

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str | None = None,
        serializer=None,
        deserializer=None,
        endpoint_name: str | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        trust_pickled_model: bool = False,
        **sagemaker_only,
    ) -> Predictor:
        """A local endpoint serving the trained model with ``entry_point`` (default: the training script,
        which must then define ``model_fn``...; usually ``inference.py``, as seed notebooks pass);
        ``trust_pickled_model``: as :class:`PyTorchModel`'s."""
        from visiontune.sdk.model import PyTorchModel

        ignore_cloud_args("deploy", sagemaker_only)
        return PyTorchModel(
            self._model_dir(),
            entry_point or self.entry_point,
            source_dir=source_dir or self.source_dir,
            trust_pickled_model=trust_pickled_model,
        ).deploy(serializer=serializer, deserializer=deserializer, endpoint_name=endpoint_name)

    def transformer(
        self,
        instance_count: int = 1,
        instance_type: str | None = None,
        output_path: str | None = None,
        accept: str | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        **sagemaker_only,
    ):
        """Batch transform with the trained model and ``entry_point``'s handler (as :meth:`deploy`)."""
        from visiontune.sdk.transformer import Transformer

        return Transformer(
            self._model_dir(),
            output_path,
            entry_point or self.entry_point,
            source_dir or self.source_dir,
            accept,
            **sagemaker_only,
        )


PyTorch = Estimator

#: SageMaker's built-in image classification hyperparameter names -> visiontune's.
BUILTIN_NAMES = {
    "mini_batch_size": "batch_size",
    "use_pretrained_model": "pretrained",
    "augmentation_type": "augmentation",
    "num_epochs": "epochs",
}
BUILTIN_IGNORED = {
    "num_classes",
    "num_training_samples",
    "num_layers",
    "precision_dtype",
    "kv_store",
    "checkpoint_frequency",
    "multi_label",
    "early_stopping_min_epochs",
    "early_stopping_tolerance",
    "optimizer_epsilon",
    "beta_1",
    "beta_2",
    "eps",
    "gamma",
    "resize",
}


def builtin_hyperparameters(values: dict) -> dict:
    """SageMaker's names (``mini_batch_size``, ``image_shape``, ``use_pretrained_model``...) -> TrainConfig fields."""
    out = {}
    for k, v in values.items():
        if k in BUILTIN_IGNORED:
            continue
        if k == "image_shape":
            out["image_size"] = int(str(v).split(",")[-1])
            continue
        if k == "use_pretrained_model":
            v = bool(int(v)) if isinstance(v, (int, str)) and str(v).isdigit() else bool(v)
        out[BUILTIN_NAMES.get(k, k)] = v
    return out


class ImageClassifier(_EstimatorBase):
    """visiontune's built-in engine (SageMaker's built-in image classification / JumpStart fine-tuning)."""

    kind = "builtin"

    def __init__(
        self,
        model: str = "mobilenet_v2",
        mode: str = "head",
        hyperparameters: dict | None = None,
        instance_count: int = 1,
        base_job_name: str | None = None,
        output_dir: str | None = None,
        rules=None,
        debugger_hook_config=None,
        profiler_config=None,
        disable_profiler: bool = False,
        **sagemaker_only,
    ):
        ignore_cloud_args(type(self).__name__, sagemaker_only)
        super().__init__(base_job_name, output_dir, rules, debugger_hook_config, profiler_config, disable_profiler)
        self.model, self.mode, self.instance_count = model, mode, int(instance_count)
        self._hyperparameters = builtin_hyperparameters(hyperparameters or {})

    def hyperparameters(self) -> dict:
        return {"model": self.model, "mode": self.mode, **self._hyperparameters}

    def set_hyperparameters(self, **values) -> None:
        self._hyperparameters.update(builtin_hyperparameters(values))

    def _default_base(self) -> str:
        return self.model.replace("_", "-").replace(":", "-")

    def _spec(self, channels, job_dir):
        from visiontune.sdk.debugger import engine_options

        return {
            "config": {
                **self.hyperparameters(),
                **engine_options(self.debugger),
                "data": data_from_channels(channels, job_dir),
            },
            "instance_count": self.instance_count,
        }

    @classmethod
    def _from_job(cls, job: Job, **kwargs) -> "ImageClassifier":
        c = dict(job.spec["config"])
        est = cls(model=c.pop("model"), mode=c.pop("mode"), **kwargs)
        est._hyperparameters = {k: v for k, v in c.items() if k not in ("data", "out")}
        return est

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str | None = None,
        serializer=None,
        deserializer=None,
        endpoint_name: str | None = None,
        **sagemaker_only,
    ) -> Predictor:
        """A local endpoint (``visiontune serve``) for the trained model."""
        ignore_cloud_args("deploy", sagemaker_only)
        return start_endpoint(
            self._model_dir(), endpoint_name or self.latest_training_job.name, serializer, deserializer
        )

    def transformer(
        self,
        instance_count: int = 1,
        instance_type: str | None = None,
        output_path: str | None = None,
        accept: str | None = None,
        **sagemaker_only,
    ):
        """Batch transform with the trained model: ``visiontune batch-predict`` (resumable, ``.out`` per image)."""
        from visiontune.sdk.transformer import Transformer

        return Transformer(self._model_dir(), output_path, accept=accept, **sagemaker_only)


def data_from_channels(channels: dict[str, str], job_dir: Path) -> str:
    """One dataset from SageMaker channels: a lone channel as it is, or train/validation/test joined as the
    split layout (links in the job's input folder, nothing copied)."""
    if not channels:
        raise ConfigError("fit(): give the data, e.g. fit({'train': 'data/train', 'validation': 'data/val'})")
    names = {
        "train": "train",
        "training": "train",
        "train_lst": "train",
        "validation": "validation",
        "val": "validation",
        "validation_lst": "validation",
        "test": "test",
        "testing": "test",
    }
    if len(channels) == 1:
        return str(Path(next(iter(channels.values()))).expanduser().resolve())
    unknown = sorted(set(channels) - set(names))
    if unknown:
        raise ConfigError(f"channel(s) {', '.join(unknown)}: the built-in engine reads train, validation and test")
    root = job_dir / "input" / "data"
    root.mkdir(parents=True, exist_ok=True)
    for channel, path in channels.items():
        src = Path(path).expanduser().resolve()
        if not src.exists():
            raise ConfigError(f"channel {channel}={path}: no such file or folder")
        link = root / (names[channel] + (src.suffix if src.is_file() else ""))
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(src, link)
    return str(root)
