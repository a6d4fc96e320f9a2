"""Jobs as child processes: follow, stop, and no job left InProgress after its runner is killed (issue 8.1)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FAST, cli_run, make_folder_dataset
from visiontune.jobs import JobStore, launch, submit, wait

SCRIPTS = Path(__file__).parent / "scripts"


run = cli_run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("rn") / "d", per_class=8, split_layout=True)


def _slow_script(store, data, tmp_path, name):
    return submit(
        store,
        "script",
        {
            "entry_point": "hpo.py",
            "source_dir": str(SCRIPTS),
            "channels": {"train": str(data / "train"), "test": str(data / "test")},
            "hyperparameters": {"epochs": 30, "sleep": 1.0},
            "metric_definitions": ["test_acc=Testing Accuracy: ([0-9.]+)"],
        },
        name=name,
        output_dir=tmp_path / name,
    )


def _until(pred, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_stop_a_running_job(data, tmp_path):
    store = JobStore()
    job = _slow_script(store, data, tmp_path, "to-stop")
    launch(store, job.name, tie_to_parent=False)
    assert _until(lambda: "test_acc" in store.metrics(job.name))  # it is training
    res = run("jobs", "stop", job.name, "--wait", "60")
    assert "Stopped" in res.output
    j = store.get_job(job.name)
    assert j.status == "Stopped" and "stopped" in j.failure_reason and j.ended_at is not None
    # hpo.py saves its model at the end only: nothing to keep, and the job says so instead of an empty tar
    assert "saved nothing" in j.failure_reason and j.model_data is None
    assert "test_acc" in j.final_metrics  # the last value each series reached, as SageMaker's final metrics


def test_a_stopped_script_keeps_what_it_saved(tmp_path):
    """Regression: a script that saved its model before being stopped left model_data empty (not deployable)."""
    (tmp_path / "saver.py").write_text(
        "import os, time\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.pth'), 'w').write('weights')\n"
        "for i in range(600):\n"
        "    print(f'loss={1 / (i + 1):.4f}', flush=True)\n"
        "    time.sleep(0.1)\n"
    )
    store = JobStore()
    job = submit(
        store,
        "script",
        {"entry_point": "saver.py", "source_dir": str(tmp_path), "metric_definitions": ["loss=loss=([0-9.]+)"]},
        name="saver",
        output_dir=tmp_path / "saver",
    )
    launch(store, job.name, tie_to_parent=False)
    assert _until(lambda: len(store.metrics(job.name).get("loss", [])) >= 3)
    res = run("jobs", "stop", job.name, "--wait", "60")
    assert "Stopped" in res.output
    j = store.get_job(job.name)
    assert j.model_data == str(tmp_path / "saver" / "model.tar.gz") and "model.tar.gz" in j.failure_reason
    assert 0 < j.final_metrics["loss"] < 1
    assert "SIGTERM" in j.failure_reason or "status" in j.failure_reason


def test_a_killed_runner_never_leaves_its_job_in_progress(data, tmp_path):
    store = JobStore()
    job = _slow_script(store, data, tmp_path, "to-kill")
    proc = launch(store, job.name, tie_to_parent=False)
    assert _until(lambda: store.get_job(job.name).pid == proc.pid and "test_acc" in store.metrics(job.name))
    follower = subprocess.Popen(
        [sys.executable, "-m", "visiontune.cli.main", "jobs", "logs", "to-kill", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.5)  # following it
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its script, as an OOM killer or a lost machine would
    proc.wait()
    followed, _ = follower.communicate(timeout=60)  # a pipeline following it learns that it died
    assert follower.returncode == 1 and "job to-kill Failed: orphaned" in followed.splitlines()[-1], followed[-500:]
    listing = run("jobs", "list", "--format", "json").output
    row = next(j for j in json.loads(listing) if j["TrainingJobName"] == "to-kill")
    assert row["TrainingJobStatus"] == "Failed" and "orphaned" in row["FailureReason"]
    assert "test_acc" in row["FinalMetrics"]  # its last values, as a stopped job keeps


def test_builtin_job_in_the_background_is_followed_and_described(data, tmp_path):
    res = run(
        "train",
        "--data",
        data,
        "--out",
        tmp_path / "bg",
        "--job-name",
        "bg",
        *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()],
        "--detach",
    )
    assert res.output.strip().splitlines()[-1] == "bg"
    logs = run("jobs", "logs", "bg", "-f").output  # follows until the job has finished
    assert "epoch=2 train_loss=" in logs and "job bg Completed" in logs
    doc = json.loads(run("jobs", "describe", "bg").output)
    assert doc["TrainingJobStatus"] == "Completed" and doc["MetricSeries"]["val_acc"]["points"] == 2
    assert doc["HyperParameters"]["learning_rate"] == 1e-3  # the value used, not null
    assert doc["ModelArtifacts"]["S3ModelArtifacts"] == str(tmp_path / "bg" / "model.tar.gz")
    assert "test_accuracy" in doc["FinalMetrics"]


def test_foreground_train_and_python_train_are_jobs(data, tmp_path):
    import visiontune as vt

    run(
        "train",
        "--data",
        data,
        "--out",
        tmp_path / "fg",
        "--job-name",
        "fg",
        *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()],
    )
    r = vt.train(data=str(data), out=str(tmp_path / "py"), **FAST)
    store = JobStore()
    assert store.get_job("fg").status == "Completed"
    assert r.job and store.get_job(r.job).status == "Completed" and store.get_job(r.job).kind == "builtin"
    with pytest.raises(vt.VisiontuneError):
        vt.train(data=str(tmp_path / "missing"), **FAST)
    failed = store.list_jobs(status="Failed")
    assert failed and "no such file or folder" in failed[0].failure_reason
    res = run("jobs", "delete", "fg", "--files")
    assert "deleted fg" in res.output and not (tmp_path / "fg").exists()


def test_wait_returns_a_finished_job(data, tmp_path):
    store = JobStore()
    job = submit(store, "builtin", {"config": {"data": str(data), **FAST, "epochs": 1}}, output_dir=tmp_path / "w")
    launch(store, job.name)
    done = wait(store, job.name, timeout=120)
    assert done.status == "Completed" and done.final_metrics["test_accuracy"] >= 0


def test_a_folder_a_running_job_writes_to_is_refused(data, tmp_path):
    """Two jobs writing one output folder would mix their models, logs and debug data."""
    store = JobStore()
    first = submit(store, "builtin", {"config": {"data": str(data), **FAST}}, name="owner", output_dir=tmp_path / "o")
    res = run("train", "--data", data, "--out", tmp_path / "o", ok=False)
    assert res.exit_code == 2 and "output folder of job owner, which is InProgress" in res.output
    assert "visiontune jobs stop owner" in res.output
    assert [j.name for j in store.list_jobs() if j.output_dir == str((tmp_path / "o").resolve())] == ["owner"]
    store.finish(first.name, "Stopped", reason="test")
    assert (
        submit(store, "builtin", {"config": {"data": str(data), **FAST}}, name="next", output_dir=tmp_path / "o").status
        == "InProgress"
    )  # the folder is free once its job has ended


def test_deleting_a_jobs_files_keeps_what_it_did_not_write(data, tmp_path):
    """Regression: `jobs delete --files` removed the whole output folder, a user's files in it included."""
    out = tmp_path / "proj"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    run(
        "train",
        "--data",
        data,
        "--out",
        out,
        "--job-name",
        "mixed",
        *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()],
    )
    assert (out / "model.safetensors").exists() and (out / "debug").is_dir()
    res = run("jobs", "delete", "mixed", "--files")
    assert "kept the folder" in res.output and "notes.txt" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    # data named like an output ("input") in the output folder: the job read it, so it is not the job's to delete
    shutil.copytree(data, out / "input")
    run(
        "train",
        "--data",
        out / "input",
        "--out",
        out,
        "--job-name",
        "reads-input",
        *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()],
    )
    assert "input" in run("jobs", "delete", "reads-input", "--files").output
    assert sorted(p.name for p in out.iterdir()) == ["input", "notes.txt"] and any((out / "input").rglob("*.png"))


def test_deleting_an_interrupted_jobs_files_keeps_the_run_that_resumed_it(tmp_path):
    """Regression: deleting the files of a stopped (or crashed) job removed the model of the job that resumed
    it in the same folder.  Its files are kept until the last job of the folder goes."""
    store = JobStore()
    out = tmp_path / "run"
    out.mkdir()
    store.create_job("interrupted", "builtin", {}, {}, str(out.resolve()))
    store.finish("interrupted", "Stopped", reason="stopped on request")
    store.create_job("resumed", "builtin", {}, {}, str(out.resolve()))
    store.finish("resumed", "Completed")
    for name in ("model.safetensors", "metrics.json", "model.tar.gz"):
        (out / name).write_text("x")
    res = run("jobs", "delete", "interrupted", "--files")
    assert "kept its files" in res.output and "output folder of resumed" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.safetensors", "model.tar.gz"]
    assert "deleted resumed and" in run("jobs", "delete", "resumed", "--files").output
    assert not out.exists()  # the last job of the folder takes its files


def test_describe_says_rules_left_running_by_an_ended_job_stopped(tmp_path):
    """A runner killed with its rules mid-evaluation: describe does not report them InProgress for ever."""
    from visiontune.debug.rules.runner import RULES_FILE

    store = JobStore()
    out = tmp_path / "killed"
    (out / "debug").mkdir(parents=True)
    (out / "debug" / RULES_FILE).write_text(
        json.dumps(
            {
                "rules": [
                    {"name": "StepOutlier", "kind": "profiler", "status": "InProgress", "message": ""},
                    {"name": "overfit", "kind": "debug", "status": "IssuesFound", "message": "val rose"},
                ]
            }
        )
    )
    store.create_job("killed-rules", "builtin", {}, {}, str(out))
    store.finish("killed-rules", "Failed", reason="orphaned: its runner is gone")
    doc = json.loads(run("jobs", "describe", "killed-rules").output)
    prof = doc["ProfilerRuleEvaluationStatuses"][0]
    assert prof["RuleEvaluationStatus"] == "Stopped" and "debug evaluate killed-rules" in prof["StatusDetails"]
    assert doc["DebugRuleEvaluationStatuses"][0]["RuleEvaluationStatus"] == "IssuesFound"


def test_an_output_folder_among_the_data_is_refused(data, tmp_path):
    store = JobStore()
    before = len(store.list_jobs())
    inside = run("train", "--data", data, "--out", data / "train", ok=False)
    assert inside.exit_code == 2 and "is inside the data folder" in inside.output
    script = run(
        "train",
        "--entry-point",
        "hpo.py",
        "--source-dir",
        SCRIPTS,
        "--channel",
        f"train={data / 'train'}",
        "--out",
        data / "train" / "m",
        ok=False,
    )
    assert script.exit_code == 2 and "inside the channel train folder" in script.output
    assert len(store.list_jobs()) == before  # refused before any job was recorded


def test_a_run_piped_into_head_finishes(data, tmp_path):
    """Regression: `visiontune train ... | head` failed the job with BrokenPipeError once head had exited."""
    import shlex
    import subprocess
    import sys

    flags = " ".join(f"--{k.replace('_', '-')}={v}" for k, v in FAST.items())
    cmd = (
        f"{shlex.quote(sys.executable)} -m visiontune.cli.main train --data {shlex.quote(str(data))} "
        f"--out {shlex.quote(str(tmp_path / 'piped'))} --job-name piped {flags} | head -c 1"
    )
    subprocess.run(cmd, shell=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)
    job = JobStore().get_job("piped")
    assert job.status == "Completed", job.failure_reason
