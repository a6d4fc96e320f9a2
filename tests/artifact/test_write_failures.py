"""Clear errors instead of tracebacks (issue 33, item 11): a truncated model.tar.gz, a read-only and a full
output folder; and no temp files left behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

import visiontune as vt
from tests.conftest import FAST, cli_run, make_folder_dataset
from visiontune.errors import ArtifactError
from visiontune.writes import OutputError

FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf")
    data = make_folder_dataset(root / "d", per_class=6, split_layout=True)
    return vt.train(data=str(data), out=str(root / "model"), **{**FAST, "epochs": 1}), data


@pytest.fixture
def truncated(trained, tmp_path):
    r, _ = trained
    whole = (r.out / "model.tar.gz").read_bytes()
    path = tmp_path / "cut" / "model.tar.gz"
    path.parent.mkdir()
    path.write_bytes(whole[: len(whole) // 2])  # a copy that stopped halfway
    return path


def _one_line(res, path) -> str:
    lines = [x for x in res.output.strip().splitlines() if x.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output and "Aborted" not in res.output, res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert str(path) in lines[0]
    return lines[0]


def test_a_truncated_model_tar_gz_is_one_clear_error(truncated, trained):
    _, data = trained
    with pytest.raises(ArtifactError, match="truncated or damaged") as info:
        vt.load_model(truncated)
    assert str(truncated) in str(info.value) and "copy it again" in str(info.value)
    for args in (("predict", truncated, data / "test"), ("evaluate", truncated, data)):
        line = _one_line(cli_run(*args, ok=False), truncated)
        assert "truncated or damaged" in line
    r = subprocess.run(
        [sys.executable, "-m", "visiontune.cli.main", "serve", str(truncated), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Aborted" not in r.stderr, r.stderr
    assert str(truncated) in r.stderr and "truncated or damaged" in r.stderr


def _temp_files(folder):
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_pack_and_checkpoint_on_a_full_disk_leave_no_temp_file(trained, tmp_path, monkeypatch):
    import tarfile

    from visiontune.artifact.store import pack
    from visiontune.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint

    r, _ = trained
    out = tmp_path / "run"
    shutil.copytree(r.out, out)
    (out / "model.tar.gz").unlink()
    add = tarfile.TarFile.add

    def full(self, name, *a, **kw):
        add(self, name, *a, **kw)
        raise OSError(errno.ENOSPC, "No space left on device", str(name))

    monkeypatch.setattr(tarfile.TarFile, "add", full)
    with pytest.raises(OutputError, match="disk is full"):
        pack(out)
    assert _temp_files(out) == [] and not (out / "model.tar.gz").exists()
    monkeypatch.undo()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"checkpoint.pt: No space left on device; the disk is full"):
        save_checkpoint(out, {"identity": "{}"})
    assert _temp_files(out) == [] and not has_checkpoint(out)
    monkeypatch.undo()

    # a run killed while writing its checkpoint left one; the resume that reads the checkpoint removes it
    save_checkpoint(out, {"identity": "{}"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / f".checkpoint.pt.tmp-{dead.pid}").write_bytes(b"half")
    load_checkpoint(out, {})
    assert _temp_files(out) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs (a full disk for a model of several MB), as root; skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: a read-only bind mount as root (root writes anywhere else), chmod 555 otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a read-only bind mount")
        yield folder
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_train_into_a_full_disk_is_one_line_and_leaves_no_temp_file(trained, tiny_disk):
    _, data = trained
    out = tiny_disk / "run"
    res = cli_run("train", "--data", data, "--out", out, *FLAGS, "--epochs", "1", ok=False)
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output[-3000:]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "disk is full" in lines[0], res.output[-2000:]
    assert _temp_files(tiny_disk) == []
    from visiontune.jobs.api import default_store

    (job,) = [j for j in default_store().list_jobs() if j.output_dir == str(out.resolve())]
    assert job.status == "Failed" and "disk is full" in job.failure_reason


def test_train_into_a_read_only_folder_is_one_line_and_records_no_job(trained, read_only):
    from visiontune.jobs.api import default_store

    _, data = trained
    before = len(default_store().list_jobs())
    res = cli_run("train", "--data", data, "--out", read_only / "run", *FLAGS, ok=False)
    line = _one_line(res, read_only / "run")
    assert "not writable" in line and "--out" in line
    assert len(default_store().list_jobs()) == before
    res = cli_run("batch-predict", trained[0].out, data / "test", "--out", read_only / "bp", ok=False)
    assert "not writable" in _one_line(res, read_only / "bp")
    res = cli_run("evaluate", trained[0].out, data, "--out", read_only / "ev", ok=False)
    assert "not writable" in _one_line(res, read_only / "ev")


def test_export_and_data_commands_into_a_full_disk_are_one_line(trained, tiny_disk):
    """Issue 33: every command, not just train, says a full disk in one line (the CLI's last resort for a write
    that fails), and export leaves no half-written file behind."""
    r, data = trained
    res = cli_run("export", r.out, "--out", tiny_disk / "model.onnx", ok=False)
    line = _one_line(res, tiny_disk / "model.onnx")
    assert "No space left on device" in line and "disk is full" in line, res.output[-2000:]
    assert sorted(p.name for p in tiny_disk.iterdir()) == [], list(tiny_disk.iterdir())
    from visiontune.data.fashion_mnist import locate

    try:
        locate(download=False)
    except Exception:  # noqa: BLE001 - the scenes need Fashion-MNIST's pixels
        return
    # 400 scenes of 128 px are several MB: they fill the 1 MB disk part way
    res = cli_run(
        "data", "synth", "fashion-scenes", "--out", tiny_disk / "scenes", "--train", 400, "--validation", 1, ok=False
    )
    line = _one_line(res, tiny_disk / "scenes")
    assert "disk is full" in line, res.output[-2000:]
