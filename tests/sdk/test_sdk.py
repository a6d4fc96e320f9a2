"""The SageMaker-shaped SDK: a seed notebook's calls, with only the imports changed (issue 8.3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import cli_run, make_folder_dataset
from visiontune.sdk import ImageClassifier, PyTorch, PyTorchModel
from visiontune.sdk.deserializers import JSONDeserializer
from visiontune.sdk.serializers import IdentitySerializer
from visiontune.sdk.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner, IntegerParameter

SCRIPTS = Path(__file__).parents[1] / "jobs" / "scripts"
METRICS = [{"Name": "test_acc", "Regex": "Testing Accuracy: ([0-9.]+)"}]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("sdk") / "d", per_class=8, split_layout=True)


def _png(data) -> bytes:
    return next((data / "test" / "red").iterdir()).read_bytes()


def test_seed_notebook_tunes_a_script_and_deploys_the_best(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="framework_version, instance_type, py_version, role.*ignores them"):
        estimator = PyTorch(
            entry_point="hpo.py",
            source_dir=str(SCRIPTS),
            role="arn:aws:iam::1:role/x",
            instance_type="ml.m5.xlarge",
            framework_version="1.12",
            py_version="py38",
            hyperparameters={"epochs": 2},
            metric_definitions=METRICS,
        )
    tuner = HyperparameterTuner(
        estimator,
        "test_acc",
        {"lr": ContinuousParameter(0.001, 0.1), "batch-size": CategoricalParameter([8, 16])},
        metric_definitions=METRICS,
        objective_type="Maximize",
        max_jobs=3,
        max_parallel_jobs=2,
        strategy="Random",
        base_tuning_job_name="seed",
    )
    tuner.fit({"train": str(data / "train"), "test": str(data / "test")})
    df = tuner.analytics().dataframe()
    assert {
        "lr",
        "batch-size",
        "TrainingJobName",
        "TrainingJobStatus",
        "FinalObjectiveValue",
        "TrainingElapsedTimeSeconds",
    } <= set(df.columns) and len(df) == 3
    best = tuner.best_training_job()
    assert best == df.sort_values("FinalObjectiveValue", ascending=False).iloc[0]["TrainingJobName"]
    described = json.loads(cli_run("tune", "describe", tuner.latest_tuning_job).output)
    assert described["BestTrainingJob"]["TrainingJobName"] == best  # the CLI agrees
    best_est = tuner.best_estimator()
    assert best_est.model_data.endswith("model.tar.gz") and Path(best_est.model_data).exists()
    # SageMaker's framework estimators answer JSON strings (notebooks .strip('"') them)
    assert float(best_est.hyperparameters()["lr"].strip('"')) == df.set_index("TrainingJobName").loc[best, "lr"]
    predictor = best_est.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        entry_point="inference.py",
        serializer=IdentitySerializer("image/png"),
        deserializer=JSONDeserializer(),
    )
    try:
        probs = predictor.predict(_png(data))
        assert len(probs[0]) == 3 and abs(sum(probs[0]) - 1) < 1e-4
    finally:
        predictor.delete_endpoint()


def test_estimator_fit_and_pytorchmodel_deploy(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    est = PyTorch(
        entry_point="hpo.py",
        source_dir=str(SCRIPTS),
        hyperparameters={"epochs": 1, "lr": 0.05},
        metric_definitions=METRICS,
        base_job_name="dogs",
    )
    est.fit({"train": str(data / "train"), "test": str(data / "test")}, logs=False)
    job = est.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed" and job["TrainingJobName"].startswith("dogs-")
    with pytest.warns(UserWarning, match="framework_version, py_version, role"):
        model = PyTorchModel(
            model_data=est.model_data,
            entry_point="inference.py",
            source_dir=str(SCRIPTS),
            role="r",
            framework_version="1.12",
            py_version="py38",
        )
    with model.deploy(
        initial_instance_count=1, instance_type="ml.m5.large", serializer=IdentitySerializer("image/png")
    ) as predictor:
        assert len(predictor.predict(_png(data))[0]) == 3
    images = tmp_path / "to-score"
    shutil.copytree(data / "test" / "red", images)
    (images / "broken.png").write_bytes(b"not a png")
    transformer = model.transformer(output_path=str(tmp_path / "bt"))  # through the script's own inference.py
    transformer.transform(str(images), logs=False)
    n = len(list(images.iterdir()))
    assert transformer.result == {"written": n, "errors": 1, "out": str(tmp_path / "bt")} and n >= 3
    answer = json.loads(next((tmp_path / "bt").glob("red*.out")).read_text())
    assert len(answer[0]) == 3 and "error" in json.loads((tmp_path / "bt" / "broken.png.out").read_text())
    (tmp_path / "lists").mkdir()  # a manifest whose images lie elsewhere: one .out, a line per image, in order
    refs = sorted(images.glob("red*"))
    (tmp_path / "lists" / "in.manifest").write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in refs))
    model.transformer(output_path=str(tmp_path / "bt2")).transform(str(tmp_path / "lists" / "in.manifest"))
    assert sorted(p.name for p in (tmp_path / "bt2").iterdir()) == ["in.manifest.out"]
    lines = (tmp_path / "bt2" / "in.manifest.out").read_text().splitlines()
    assert len(lines) == len(refs) and all(len(json.loads(x)[0]) == 3 for x in lines)
    with pytest.raises(TypeError, match="unexpected argument.*hyperparamters"):
        PyTorch(entry_point="hpo.py", hyperparamters={})  # a typo is an error, not ignored


def test_a_failed_job_raises_on_wait_and_says_why_it_has_no_model(data, tmp_path, monkeypatch):
    """As SageMaker: wait() on a Failed job raises; deploy names the job's status and reason."""
    from visiontune.errors import ConfigError, VisiontuneError

    monkeypatch.chdir(tmp_path)
    est = PyTorch(entry_point="crash.py", source_dir=str(SCRIPTS), base_job_name="crashes")
    est.fit({"train": str(data / "train")}, wait=False)
    with pytest.raises(VisiontuneError, match=r"crashes-.* Failed: .*ValueError"):
        est.latest_training_job.wait(logs=False)
    with pytest.raises(ConfigError, match=r"is Failed \(.*the data loader found 0 images"):
        est.deploy(initial_instance_count=1, instance_type="ml.m5.large")


def test_image_classifier_fit_tune_and_deploy(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    est = ImageClassifier(
        model="mobilenet_v2",
        mode="head",
        hyperparameters={
            "epochs": 2,
            "mini_batch_size": 8,
            "image_shape": "3,32,32",
            "learning_rate": 0.01,
            "num_classes": 3,
            "num_workers": 0,
        },
    )
    channels = {"train": str(data / "train"), "validation": str(data / "val"), "test": str(data / "test")}
    est.fit(channels, logs=False)
    described = est.latest_training_job.describe()
    assert "test_accuracy" in described["FinalMetrics"] and est.hyperparameters()["batch_size"] == 8
    assert {"MetricName": "test_accuracy", "Value": described["FinalMetrics"]["test_accuracy"]} in described[
        "FinalMetricDataList"
    ]
    transformer = est.transformer(instance_count=1, instance_type="ml.m5.large", output_path=str(tmp_path / "bt"))
    transformer.transform(str(data / "test"), content_type="application/x-image")
    transformer.wait()
    outs = sorted((tmp_path / "bt").rglob("*.out"))
    n = len(list((data / "test").rglob("*.png")))
    assert len(outs) == n == transformer.result["written"] > 0
    assert json.loads(outs[0].read_text())["label"] in ("blue", "green", "red")
    tuner = HyperparameterTuner(
        est,
        "validation:accuracy",
        {
            "learning_rate": ContinuousParameter(1e-3, 1e-1),
            "mini_batch_size": CategoricalParameter([8, 16]),
            "epochs": IntegerParameter(1, 2),
        },
        max_jobs=2,
        max_parallel_jobs=1,
        strategy="Random",
    )
    tuner.fit(channels)
    frame = tuner.analytics().dataframe()  # the ranges' own (SageMaker's) names, not the engine's
    assert "mini_batch_size" in frame.columns and "batch_size" not in frame.columns
    assert set(tuner.describe()["BestTrainingJob"]["TunedHyperParameters"]) == {
        "learning_rate",
        "mini_batch_size",
        "epochs",
    }
    best = tuner.best_estimator()
    with best.deploy(serializer=IdentitySerializer("image/png"), deserializer=JSONDeserializer()) as predictor:
        probs = predictor.predict(_png(data), initial_args={"Accept": "application/json;verbose"})
        assert probs["labels"] == ["blue", "green", "red"] and len(probs["probabilities"]) == 3


def test_tuner_in_the_background_then_wait(tmp_path, monkeypatch):
    """Relative paths keep their meaning when the tuning job runs in the background (a review finding)."""
    import shutil

    shutil.copytree(SCRIPTS, tmp_path / "code")
    monkeypatch.chdir(tmp_path)
    est = PyTorch(entry_point="quality.py", source_dir="code", hyperparameters={"epochs": 2, "pause": 0.05})
    tuner = HyperparameterTuner(
        est,
        "score",
        {"quality": CategoricalParameter([0.2, 0.6])},
        metric_definitions=[{"Name": "score", "Regex": r"score: ([0-9.]+)"}],
        strategy="Grid",
        max_jobs=2,
        max_parallel_jobs=2,
        base_tuning_job_name="bg",
    )
    tuner.fit(wait=False)
    tuner.wait()
    assert tuner.describe()["HyperParameterTuningJobStatus"] == "Completed"
    assert json.loads(tuner.best_estimator().hyperparameters()["quality"]) == 0.6


def test_course_notebook_runs_unchanged(data, tmp_path, monkeypatch):
    """Issue 27's acceptance flow, as a course notebook writes it: tune a script that logs with ``logger.info``
    (never configuring logging), registers the hook without ``register_loss`` and pickles the hooked model to
    ``/opt/ml/model``; read the debugger's output; deploy with an ``inference.py`` whose ``input_fn`` has a
    default and whose ``predict_fn`` answers ``(1, C)``; query with ``Accept: */*`` as the SDK's plain
    ``Predictor`` sends it."""
    import urllib.request

    import numpy as np

    from visiontune.debug import create_trial

    monkeypatch.chdir(tmp_path)
    est = PyTorch(
        entry_point="course_train.py",
        source_dir=str(SCRIPTS),
        role="r",
        instance_type="ml.m5.xlarge",
        framework_version="1.8",
        py_version="py36",
        hyperparameters={"epochs": 2},
    )
    assert est.hyperparameters() == {"epochs": "2"}  # JSON strings, as SageMaker's framework estimators answer
    assert PyTorch(entry_point="x.py", hyperparameters={"model": "cnn"}).hyperparameters() == {"model": '"cnn"'}
    tuner = HyperparameterTuner(
        est,
        "test_acc",
        {"lr": ContinuousParameter(0.01, 0.1)},
        metric_definitions=[{"Name": "test_acc", "Regex": "Test Accuracy: ([0-9.]+)"}],
        max_jobs=2,
        max_parallel_jobs=2,
        objective_type="Maximize",
    )
    tuner.fit({"train": str(data / "train"), "test": str(data / "test")})
    df = tuner.analytics().dataframe()
    assert list(df["TrainingJobStatus"]) == ["Completed", "Completed"], df
    best = tuner.best_estimator()
    assert float(best.hyperparameters()["lr"].strip('"')) > 0
    trial = create_trial(best.latest_job_debugger_artifacts_path())
    assert "CrossEntropyLoss_output_0" in trial.tensor_names()
    assert Path(best.latest_job_profiler_artifacts_path()).is_dir() and Path(best.output_path).is_dir()
    assert not (SCRIPTS / "checkpoint.pt").exists()  # each trial wrote in its own working folder
    summary = best.latest_training_job.rule_job_summary()
    assert summary and {"RuleConfigurationName", "RuleEvaluationStatus", "StatusDetails"} <= set(summary[0])
    assert "DebugRuleEvaluationStatuses" in best.latest_training_job.describe()
    assert best.sagemaker_session.upload_data(str(data)) == str(data.resolve())
    predictor = best.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        entry_point="course_inference.py",
        trust_pickled_model=True,
    )
    try:
        req = urllib.request.Request(
            f"{predictor.url}/endpoints/{predictor.endpoint_name}/invocations",
            data=_png(data),
            method="POST",
            headers={"Content-Type": "image/jpeg", "Accept": "*/*"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            response = json.loads(r.read())
        assert np.asarray(response).shape == (1, 3)
        assert np.argmax(response, 1).shape == (1,)
    finally:
        predictor.delete_endpoint()


def test_a_notebook_imports_smdebug_on_request(tmp_path, monkeypatch):
    """Issue 27: ``from smdebug.trials import create_trial`` in the notebook's own process."""
    import sys

    from visiontune.debug import Hook
    from visiontune.sdk import install_smdebug_alias

    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m == "smdebug" or m.startswith("smdebug.")]:
        monkeypatch.delitem(sys.modules, name)
    install_smdebug_alias()
    from smdebug.trials import create_trial

    hook = Hook(out_dir=tmp_path)
    hook.save_scalar("acc", 0.5)
    hook.close()
    assert create_trial(str(tmp_path)).tensor("acc").value(0) == 0.5
    for name in [m for m in sys.modules if m == "smdebug" or m.startswith("smdebug.")]:
        del sys.modules[name]  # the alias leaves with the test
