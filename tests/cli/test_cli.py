"""The command line, driven as a user would, through click's runner."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FAST, cli_run, write_fashion_idx
from visiontune.cli.main import cli

run = cli_run


def test_models_list():
    out = run("models", "list", "--json").output
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["mobilenet_v2"]["offline"] and rows["efficientnet_lite0"]["offline"]
    assert "mobilenet_v2" in run("models", "list").output


def test_train_then_predict(tiny_split, tmp_path):
    out = tmp_path / "m"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    res = run("train", "--data", tiny_split, "--out", out, *flags, "--epochs", "4", "--learning-rate", "0.01")
    assert re.search(r"^epoch=4 train_loss=\S+ train_acc=\S+ val_loss=\S+ val_acc=", res.output, re.M)
    assert "test_accuracy=" in res.output
    pred = run("predict", out / "model.tar.gz", tiny_split / "test", "--json", "--top-k", "2").output
    rows = [json.loads(line) for line in pred.splitlines()]
    assert len(rows) == 12 and all(len(r["top_k"]) == 2 for r in rows)
    hits = sum(r["label"] == Path(r["source"]).parent.name for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert hits / 12 == pytest.approx(metrics["test_accuracy"])
    table = run("predict", out, tiny_split / "test" / "red").output
    assert "red" in table


def test_errors_are_one_line_not_a_traceback(tmp_path):
    res = run("train", "--data", tmp_path / "nope", "--out", tmp_path / "o", ok=False)
    assert res.exit_code == 2
    assert "error:" in res.output and "no such file or folder" in res.output and "Traceback" not in res.output
    res = run("train", "--data", tmp_path, "--optimizer", "lbfgs", ok=False)
    assert res.exit_code == 2 and "lbfgs" in res.output
    (tmp_path / "d").mkdir()
    res = run("train", "--data", tmp_path / "d", "--out", tmp_path / "o2", "--model", "nosuchnet", ok=False)
    assert "unknown model 'nosuchnet'" in res.output


def test_data_inspect_and_split(tiny_folder, tmp_path):
    (tiny_folder / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    grid = tmp_path / "grid.png"
    res = run("data", "inspect", tiny_folder, "--grid", grid, "--json", ok=False)
    assert res.exit_code == 1  # train would refuse the broken file
    report = json.loads(res.output)
    assert report["classes"] == ["blue", "green", "red"]
    assert report["counts"]["train"]["red"] == 11
    assert [u["source"] for u in report["unreadable"]] == [str(tiny_folder / "red" / "broken.jpg")]
    assert report["modes"] == {"RGB": 30} and grid.stat().st_size > 1000
    assert not report["ok"] and "--on-bad-image skip" in report["problems"][0]["message"]
    (tiny_folder / "red" / "broken.jpg").unlink()
    assert json.loads(run("data", "inspect", tiny_folder, "--no-grid", "--json").output)["ok"]
    res = run("data", "split", tiny_folder, "--ratios", "0.6,0.2,0.2", "--seed", "3", "--out", tmp_path / "s")
    lines = {n: (tmp_path / "s" / f"{n}.manifest").read_text().splitlines() for n in ("train", "validation", "test")}
    assert [len(v) for v in lines.values()] == [18, 6, 6]
    rec = json.loads(lines["test"][0])
    assert rec["class-metadata"]["class-name"] in ("blue", "green", "red")
    assert not Path(rec["source-ref"]).is_absolute()  # relative to the manifest: the folder can move
    # the split folder trains directly, after the dataset and its manifests moved together
    import shutil

    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(tiny_folder), moved / tiny_folder.name)
    shutil.move(str(tmp_path / "s"), moved / "s")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    run("train", "--data", moved / "s", "--out", tmp_path / "m", *flags, "--epochs", "1")
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["counts"] == {
        "train": 18,
        "validation": 6,
        "test": 6,
    }


def test_quickstart_flow(tmp_path, monkeypatch):
    """The quickstart's whole flow, on small synthetic IDX files (the real run is `make demo`)."""
    monkeypatch.setenv("FASHION_MNIST_DIR", str(write_fashion_idx(tmp_path / "idx")))
    res = run(
        "quickstart",
        "--out",
        tmp_path / "qs",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--n-train",
        "100",
        "--n-test",
        "30",
    )
    assert re.search(r"test accuracy: 0\.\d{4} \(30 test images\)", res.output)
    assert len(list((tmp_path / "qs" / "fashion-mnist" / "train").rglob("*.png"))) == 100
    assert sorted(p.name for p in (tmp_path / "qs" / "fashion-mnist" / "train").iterdir()) == sorted(
        ["Ankle_boot", "Bag", "Coat", "Dress", "Pullover", "Sandal", "Shirt", "Sneaker", "T-shirt_top", "Trouser"]
    )
    assert (tmp_path / "qs" / "model" / "model.tar.gz").exists()
    assert res.output.count(" -> ") == 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import visiontune as vt
    from tests.conftest import make_folder_dataset

    root = tmp_path_factory.mktemp("cli")
    data = make_folder_dataset(root / "d", per_class=12, split_layout=True)
    return vt.train(data=str(data), out=str(root / "m"), **{**FAST, "epochs": 4}, learning_rate=0.01).out, data


def test_predict_several_inputs_globs_and_formats(trained):
    """Issue 14.6: several paths, folders and globs; csv and json with full paths."""
    import csv
    import io

    model, data = trained
    one = sorted((data / "test" / "red").iterdir())[0]
    rows = [
        json.loads(x)
        for x in run(
            "predict", model, one, data / "test" / "blue", f"{data}/test/gr*/*.png", "--format", "json"
        ).output.splitlines()
    ]
    assert len(rows) == 1 + 4 + 4 and rows[0]["source"] == str(one)
    assert all(Path(r["source"]).is_absolute() for r in rows)
    table = list(csv.DictReader(io.StringIO(run("predict", model, data / "test", "--format", "csv").output)))
    assert len(table) == 12 and {r["source"] for r in table} == {str(p) for p in (data / "test").rglob("*.png")}
    wide = run("predict", model, one).output  # the table folds long paths, never cuts them with an ellipsis
    assert "…" not in wide
    res = run("predict", model, f"{data}/nothing/*.png", ok=False)
    assert res.exit_code == 2 and "matches no file" in res.output


def test_evaluate_reports_metrics_and_misclassified(trained, tmp_path):
    model, data = trained
    res = run("evaluate", model, data, "--out", tmp_path / "ev", "--json")
    report = json.loads(res.output)
    assert report["split"] == "test" and report["samples"] == 12
    assert set(report["per_class"]) == {"blue", "green", "red"}
    assert (tmp_path / "ev" / "confusion_matrix.png").stat().st_size > 1000
    lines = (tmp_path / "ev" / "misclassified.csv").read_text().splitlines()
    assert lines[0] == "source,true,predicted,probability,true_probability"
    assert len(lines) - 1 == len(report["misclassified"]) == round((1 - report["accuracy"]) * 12)
    metrics = json.loads((model / "metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_evaluate_on_the_folder_a_model_trained_on_scores_its_held_out_test_images(tiny_folder, tmp_path):
    """A plain class folder has no test split: evaluate carves the one training held out (not every image,
    which would score the training images too), and finds the test accuracy training reported, computed
    as the saved model answers (full mode: the inference copy at the default precision)."""
    import visiontune as vt

    r = vt.train(data=str(tiny_folder), out=str(tmp_path / "m"), **FAST, mode="full")
    report = json.loads(run("evaluate", r.out, tiny_folder, "--json").output)
    assert report["split"] == "test" and report["samples"] == r.metrics["counts"]["test"] > 0
    assert "training held out" in report["held_out"] and report["computed_with"]
    assert report["accuracy"] == pytest.approx(r.metrics["test_accuracy"])
    assert "training held out" in run("evaluate", r.out, tiny_folder).output
    every = json.loads(run("evaluate", r.out, tiny_folder, "--split", "all", "--json").output)
    assert every["samples"] == sum(r.metrics["counts"].values()) and "held_out" not in every
    elsewhere = tmp_path / "copy"
    shutil.copytree(tiny_folder, elsewhere)  # the same images moved: the same held-out split
    assert json.loads(run("evaluate", r.out, elsewhere, "--json").output)["samples"] == report["samples"]
    shutil.copy(next((tiny_folder / "red").iterdir()), tiny_folder / "red" / "added.png")  # the data changed since
    changed = run("evaluate", r.out, tiny_folder, "--json")
    assert json.loads(changed.stdout)["samples"] == every["samples"] + 1 and "changed since" in changed.stderr


def test_models_list_never_cuts_the_install_command():
    """Issue 14.7: the install command a user copies was cut by the table width."""
    rows = json.loads(run("models", "list", "--format", "json").output)
    wanted = [r["install"] for r in rows if r["install"]]
    out = CliRunner().invoke(cli, ["models", "list"], terminal_width=60).output
    for cmd in wanted:
        assert cmd in out.replace("\n", "") and cmd in out  # on one line, whole


def _commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_option_has_a_description():
    """Issue 14.11: every option in every --help says what it does."""
    missing = [
        f"{' '.join(path)} {p.opts[0]}"
        for path, cmd in _commands(cli)
        for p in cmd.params
        if getattr(p, "param_type_name", "") == "option" and not p.hidden and not (p.help or "").strip()
    ]
    assert missing == []


def test_tune_help_lists_what_tune_config_takes():
    """`visiontune tune --config FILE` is the run command: its options belong in `tune --help`."""
    out = run("tune", "--help").output
    assert all(flag in out for flag in ("--config", "--detach", "--max-parallel-jobs", "--backend"))


def test_python_api_has_the_cli_names(trained, tmp_path):
    """Issue 14.11: what the CLI does, Python does under the same names."""
    import visiontune as vt

    model, data = trained
    assert vt.inspect(data)["ok"]
    parts = vt.split(data / "train", out=tmp_path / "s", ratios="0.5,0.5")
    assert [p.name for p, _ in parts] == ["train.manifest", "validation.manifest"]
    assert len(vt.predict(model, data / "test")) == 12
    assert vt.evaluate(model, data).metrics["samples"] == 12
    assert vt.export(model, "onnx", out=tmp_path / "m.onnx").path.exists()
    assert vt.batch_predict(model, data / "test", tmp_path / "bp").written == 12
