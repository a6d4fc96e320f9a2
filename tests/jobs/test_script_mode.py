"""Script mode: seed-style SageMaker scripts run unchanged as jobs (issue 8.2)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import cli_run, make_folder_dataset
from visiontune.jobs import JobStore

SCRIPTS = Path(__file__).parent / "scripts"
METRIC = "test_acc=Testing Accuracy: ([0-9.]+)"


run = cli_run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("sm") / "d", per_class=8, split_layout=True)


def _train(data, out, *extra, ok=True, hps='{"lr": 0.05, "batch-size": 8, "epochs": 2}'):
    return run(
        "train",
        "--entry-point",
        "hpo.py",
        "--source-dir",
        SCRIPTS,
        "--channel",
        f"train={data / 'train'}",
        "--channel",
        f"test={data / 'test'}",
        "--hyperparameters",
        hps,
        "--metric-definition",
        METRIC,
        "--out",
        out,
        *extra,
        ok=ok,
    )


def test_seed_script_runs_unchanged_as_a_job(data, tmp_path):
    res = _train(data, tmp_path / "job", "--job-name", "seed-hpo")
    assert "Testing Accuracy" in res.output  # the script's own output reaches the terminal
    store = JobStore()
    job = store.get_job("seed-hpo")
    assert job.status == "Completed" and job.kind == "script"
    assert job.hyperparameters == {"lr": 0.05, "batch-size": 8, "epochs": 2}
    series = store.metrics("seed-hpo")["test_acc"]
    assert [s for s, _, _ in series] == [1, 2] and job.final_metrics["test_acc"] == series[-1][1]
    with tarfile.open(job.model_data) as tar:
        assert tar.getnames() == ["model.pth"]
    seen = json.loads((tmp_path / "job" / "output" / "data" / "env.json").read_text())
    env = seen["env"]
    assert seen["argv"] == ["--batch-size", "8", "--epochs", "2", "--lr", "0.05"]  # sorted, as SageMaker passes them
    assert env["SM_CHANNEL_TRAIN"] == str(data / "train") and json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert env["SM_MODEL_DIR"] == str(tmp_path / "job" / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "job" / "output" / "data")
    assert json.loads(env["SM_HPS"]) == {"lr": 0.05, "batch-size": 8, "epochs": 2}
    assert env["SM_HP_BATCH-SIZE"] == env["SM_HP_BATCH_SIZE"] == "8" and env["SM_HP_LR"] == "0.05"
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert int(env["SM_NUM_CPUS"]) >= 1 and int(env["SM_NUM_GPUS"]) >= 0
    training = json.loads(env["SM_TRAINING_ENV"])
    assert training["channel_input_dirs"]["test"] == str(data / "test") and training["job_name"] == "seed-hpo"
    assert seen["cwd"] == str(tmp_path / "job" / "code")  # its own working folder, as /opt/ml/code
    logs = run("jobs", "logs", "seed-hpo").output
    assert "Epoch 2: train loss" in logs and "surely-not-installed-pkg" in logs  # requirements reported, not installed
    listing = run("jobs", "list").output
    assert "seed-hpo" in listing and "Completed" in listing


def test_a_crashing_script_fails_with_its_last_error(data, tmp_path):
    res = run(
        "train",
        "--entry-point",
        "crash.py",
        "--source-dir",
        SCRIPTS,
        "--channel",
        f"train={data / 'train'}",
        "--out",
        tmp_path / "c",
        "--job-name",
        "crash",
        ok=False,
    )
    assert res.exit_code == 2
    job = JobStore().get_job("crash")
    assert job.status == "Failed"
    assert "exited with status 1" in job.failure_reason
    assert "ValueError: the data loader found 0 images" in job.failure_reason and "crash.py" in job.failure_reason
    assert "ValueError: the data loader found 0 images" in res.output


@pytest.mark.parametrize(
    "args,words",
    [
        (("--entry-point", "nope.py", "--source-dir", SCRIPTS), "nope.py: no such file"),
        (
            ("--entry-point", "hpo.py", "--source-dir", SCRIPTS, "--channel", "train=/no/such/dir"),
            "channel train=/no/such/dir: no such file or folder",
        ),
        (("--entry-point", "hpo.py", "--source-dir", SCRIPTS, "--hyperparameters", "{lr: 1}"), "is not JSON"),
        (("--entry-point", "hpo.py", "--source-dir", SCRIPTS, "--metric-definition", "acc=no group"), "needs a group"),
        (
            ("--entry-point", "hpo.py", "--source-dir", SCRIPTS, "--model", "resnet18"),
            "--model set the built-in engine",
        ),
    ],
)
def test_bad_script_mode_input_is_one_line(tmp_path, args, words):
    res = run("train", *args, "--out", tmp_path / "x", ok=False)
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output


def test_a_syntax_error_names_the_line(tmp_path):
    (tmp_path / "bad.py").write_text("import os\ndef f(:\n    pass\n")
    res = run("train", "--entry-point", "bad.py", "--source-dir", tmp_path, ok=False)
    assert res.exit_code == 2 and "bad.py, line 2" in res.output


def test_script_model_deploys_with_its_own_inference_py(data, tmp_path):
    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app
    from visiontune.serve.bundle import bundle

    _train(data, tmp_path / "job", "--job-name", "to-deploy")
    job = JobStore().get_job("to-deploy")
    folder = bundle(job.model_data, "inference.py", SCRIPTS)
    app = create_app(ServerSettings(models={"m": str(folder)}))
    png = next((data / "test" / "red").iterdir()).read_bytes()
    with TestClient(app) as c:
        app.state.loader.join(60)
        assert c.get("/ping").status_code == 200, app.state.load_error
        r = c.post("/invocations", content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and len(r.json()[0]) == 3 and abs(sum(r.json()[0]) - 1) < 1e-4


def test_a_bundle_from_a_source_dir_that_holds_the_job_copies_only_the_code(tmp_path):
    """Regression: source_dir="." with the job's output under it copied the bundle into itself without end."""
    import shutil
    import tarfile

    from visiontune.serve.bundle import bundle

    project = tmp_path / "project"
    (project / "runs" / "job" / "model").mkdir(parents=True)
    shutil.copy(SCRIPTS / "inference.py", project / "inference.py")
    (project / "helpers.py").write_text("X = 1\n")
    (project / ".git").mkdir()
    (project / "runs" / "job" / "model" / "weights.bin").write_bytes(b"\0" * 16)
    with tarfile.open(project / "runs" / "job" / "model.tar.gz", "w:gz") as tar:
        tar.add(project / "runs" / "job" / "model" / "weights.bin", arcname="weights.bin")
    folder = bundle(project / "runs" / "job" / "model.tar.gz", "inference.py", project)
    assert folder.parent == project / "runs" / "job"
    assert sorted(p.name for p in (folder / "code").iterdir()) == ["helpers.py", "inference.py", "runs"]
    assert not any((folder / "code" / "runs").iterdir())  # the job's folder (and the bundle in it) stayed out
    assert (folder / "weights.bin").exists()


def test_course_script_logs_pickles_a_hooked_model_and_writes_in_its_own_folder(data, tmp_path):
    """Issue 27 (items 1, 7, 8, 9): INFO lines of a script that never configures logging reach the log and the
    metric definitions; ``torch.save(model, '/opt/ml/model/model.pt')`` after ``register_hook``; relative writes and hard-coded
    ``/opt/ml`` paths stay in the job; the loss is recorded without ``register_loss``."""
    import torch

    from visiontune.debug import create_trial, modes

    for job in ("course-a", "course-b"):
        run(
            "train",
            "--entry-point",
            "course_train.py",
            "--source-dir",
            SCRIPTS,
            "--channel",
            f"train={data / 'train'}",
            "--channel",
            f"test={data / 'test'}",
            "--hyperparameters",
            '{"epochs": 2}',
            "--metric-definition",
            "test_acc=Test Accuracy: ([0-9.]+)",
            "--out",
            tmp_path / job,
            "--job-name",
            job,
        )
        store = JobStore()
        record = store.get_job(job)
        assert record.status == "Completed", record.failure_reason
        assert [s for s, _, _ in store.metrics(job)["test_acc"]] == [1, 2]  # parsed from logger.info lines
        assert (tmp_path / job / "code" / "checkpoint.pt").is_file()
        assert (tmp_path / job / "code" / "where.txt").read_text() == str(tmp_path / job / "code")
        assert (tmp_path / job / "output" / "data" / "classes.txt").read_text() == "blue,green,red"  # /opt/ml/...
        with tarfile.open(record.model_data) as tar:
            tar.extractall(tmp_path / job / "unpacked", filter="data")
        model = torch.load(tmp_path / job / "unpacked" / "model.pt", weights_only=False)
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
        trial = create_trial(tmp_path / job / "debug")  # the loss, never given to register_loss (item 9)
        assert len(trial.tensor("CrossEntropyLoss_output_0").steps(mode=modes.TRAIN)) > 0
    assert not (SCRIPTS / "checkpoint.pt").exists() and not (SCRIPTS / "where.txt").exists()
