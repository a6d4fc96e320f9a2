"""The script launcher (issue 27): logging configured as SageMaker's training toolkit does, and hard-coded
``/opt/ml`` paths mapped onto the job's folder."""

from __future__ import annotations

import json
import subprocess
import sys

from visiontune.jobs.contract import LAUNCHER, OPT_ML_ENV


def _run(tmp_path, code: str, env: dict | None = None) -> str:
    script = tmp_path / "train.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(LAUNCHER), str(script), "--lr", "0.1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_info_lines_of_a_script_that_never_configures_logging_are_kept(tmp_path):
    text = _run(
        tmp_path,
        "import logging, sys\nlogger = logging.getLogger(__name__)\n"
        "logger.info('Test Accuracy: 0.75')\nlogger.debug('hidden')\n"
        "print(sys.argv[1:], __name__)\n",
    )
    assert "INFO     Test Accuracy: 0.75" in text and "hidden" not in text
    assert "['--lr', '0.1'] __main__" in text


def test_a_script_that_configures_logging_keeps_its_own_and_nothing_is_written_twice(tmp_path):
    text = _run(
        tmp_path,
        "import logging, sys\nlogger = logging.getLogger(__name__)\n"
        "logger.setLevel(logging.DEBUG)\nlogger.addHandler(logging.StreamHandler(sys.stdout))\n"
        "logger.info('Test Loss: 0.5')\n"
        "logging.basicConfig(format='own %(message)s', level=logging.INFO)\n"
        "logging.getLogger('other').info('second')\n",
    )
    assert text.count("Test Loss: 0.5") == 1
    assert "own second" in text and "INFO     second" not in text


def test_hard_coded_opt_ml_paths_reach_the_jobs_folder(tmp_path):
    job = tmp_path / "job"
    (job / "model").mkdir(parents=True)
    (job / "input" / "data" / "train" / "cat").mkdir(parents=True)
    code = (
        "import os, pathlib\n"
        "open('/opt/ml/model/a.txt', 'w').write('x')\n"
        "os.makedirs('/opt/ml/output/data', exist_ok=True)\n"
        "pathlib.Path('/opt/ml/output/data/b.txt').write_text('y')\n"
        "print(sorted(os.listdir('/opt/ml/input/data/train')), os.path.isfile('/opt/ml/model/a.txt'))\n"
    )
    text = _run(tmp_path, code, {OPT_ML_ENV: json.dumps({"/opt/ml": str(job)})})
    assert "['cat'] True" in text
    assert (job / "model" / "a.txt").read_text() == "x" and (job / "output" / "data" / "b.txt").read_text() == "y"


def test_the_working_folder_copies_the_code_not_data_or_other_jobs(tmp_path):
    from visiontune.jobs.contract import COPY_MAX_BYTES, prepare_working_dir

    src = tmp_path / "project"
    (src / "utils").mkdir(parents=True)
    (src / "train.py").write_text("print(1)")
    (src / "utils" / "helpers.py").write_text("x = 1")
    (src / "big.bin").write_bytes(b"0" * (COPY_MAX_BYTES + 1))
    (src / ".git").mkdir()
    old = src / "runs" / "earlier-job"
    (old / "input").mkdir(parents=True)
    (old / "log.txt").write_text("done")
    out = src / "runs" / "this-job"
    out.mkdir(parents=True)
    work = prepare_working_dir({"source_dir": str(src)}, out)
    assert work == out / "code"
    assert (work / "train.py").read_text() == "print(1)" and not (work / "train.py").is_symlink()
    assert (work / "utils" / "helpers.py").is_file() and (work / "big.bin").is_symlink()
    assert not (work / ".git").exists() and not (work / "runs" / "earlier-job").exists()
    assert not (work / "runs" / "this-job").exists()


def test_the_failure_reason_names_the_scripts_frame_and_its_exception(tmp_path):
    """issue 27 (11): not torch's frame, not a warning printed after the traceback."""
    from visiontune.jobs.contract import last_error

    tail = [
        "[debugger] rule LossNotDecreasing: InProgress\n",
        "Traceback (most recent call last):\n",
        '  File "/x/visiontune/jobs/_launch.py", line 9, in <module>\n',
        '  File "/home/me/project/train_model.py", line 40, in train\n',
        "    out = model(data)\n",
        '  File "/venv/lib/torch/nn/modules/conv.py", line 456, in forward\n',
        "    return F.conv2d(x)\n",
        "RuntimeError: Given groups=1, weight of size [8, 3, 3, 3], expected 3 channels\n",
        "/x/visiontune/debug/hook.py:600: UserWarning: profile steps 5:6 were never reached\n",
        "  warnings.warn(\n",
    ]
    reason = last_error(tail, source="/home/me/project")
    assert reason.startswith("RuntimeError: Given groups=1") and 'train_model.py", line 40' in reason
    assert "UserWarning" not in reason
    assert "conv.py" in last_error(tail)  # without the source folder: the deepest frame
