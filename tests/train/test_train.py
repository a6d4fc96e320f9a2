"""Fine-tuning end to end on tiny data: modes, outputs, determinism, resume, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

import visiontune as vt
from tests.conftest import FAST
from visiontune.errors import CheckpointError, ConfigError
from visiontune.jobs import JobStore
from visiontune.train.checkpoint import CHECKPOINT


def _weights(out):
    return load_file(str(out / "model.safetensors"))


def test_head_mode_learns_and_writes_everything(tiny_split, tmp_path, capsys):
    out = tmp_path / "run"
    r = vt.train(data=str(tiny_split), out=str(out), **{**FAST, "epochs": 6}, learning_rate=0.01)
    assert r.metrics["evaluated_on"] == "test"
    assert r.metrics["test_accuracy"] >= 0.8  # colours are easy; chance is 1/3
    for f in (
        "model.safetensors",
        "config.json",
        "labels.json",
        "metrics.json",
        "model.tar.gz",
        "confusion_matrix.json",
        "confusion_matrix.png",
        "learning_curves.png",
        "hyperparameters.json",
    ):
        assert (out / f).exists(), f
    assert not (out / CHECKPOINT).exists()
    assert json.loads((out / "labels.json").read_text()) == ["blue", "green", "red"]
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["evaluation"]["per_class"]["red"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, m["evaluation"]["confusion_matrix"])) == m["counts"]["test"] == 12
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch=")]
    assert len(lines) == 6
    assert dict(kv.split("=") for kv in lines[0].split()).keys() >= {"train_loss", "train_acc", "val_loss", "val_acc"}


def test_feature_cache_is_reused(tiny_split, tmp_path, capsys):
    vt.train(data=str(tiny_split), out=str(tmp_path / "a"), **FAST)
    assert "reused cached" not in capsys.readouterr().err
    vt.train(data=str(tiny_split), out=str(tmp_path / "b"), **FAST, learning_rate=0.005)
    assert capsys.readouterr().err.count("reused cached features") == 3


def test_same_seed_same_result(tiny_folder, tmp_path):
    a = vt.train(data=str(tiny_folder), out=str(tmp_path / "a"), **FAST, mode="full", augmentation="crop_color")
    b = vt.train(data=str(tiny_folder), out=str(tmp_path / "b"), **FAST, mode="full", augmentation="crop_color")
    strip = lambda hs: [{k: v for k, v in h.items() if k not in ("epoch_seconds", "train_seconds")} for h in hs]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    wa, wb = _weights(a.out), _weights(b.out)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = vt.train(data=str(tiny_folder), out=str(tmp_path / "c"), **FAST, mode="full", augmentation="crop_color", seed=1)
    assert strip(c.history) != strip(a.history)


def test_batches_gathered_ahead_train_like_batches_read_in_turn(tiny_folder, tmp_path, monkeypatch):
    from visiontune.train.inputs import SplitInputs

    a = vt.train(data=str(tiny_folder), out=str(tmp_path / "a"), **FAST, mode="full", augmentation="crop")
    monkeypatch.setattr(SplitInputs, "batches", lambda self, order, pin=False: (self.batch(i) for i in order))
    b = vt.train(data=str(tiny_folder), out=str(tmp_path / "b"), **FAST, mode="full", augmentation="crop")
    wa, wb = _weights(a.out), _weights(b.out)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize(
    "mode,extra",
    [
        ("head", {}),
        ("full", {"augmentation": "crop", "dropout": 0.2}),
        ("partial", {"trainable_stages": 2, "lr_scheduler": "step", "lr_scheduler_step": 1, "optimizer": "sgd"}),
    ],
)
def test_resume_gives_the_same_result(tiny_split, tmp_path, mode, extra):
    opts = {**FAST, "epochs": 3, "mode": mode, **extra}
    ref = vt.train(data=str(tiny_split), out=str(tmp_path / "ref"), **opts)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise _Interrupt

    out = tmp_path / "cut"
    with pytest.raises(_Interrupt):
        vt.train(data=str(tiny_split), out=str(out), callbacks=(stop_after_first,), **opts)
    assert (out / CHECKPOINT).exists() and not (out / "model.safetensors").exists()
    with pytest.raises(CheckpointError, match="interrupted run.*resume=True.*overwrite=True"):
        vt.train(data=str(tiny_split), out=str(out), **opts)
    with pytest.raises(CheckpointError, match="options differ.*learning_rate"):
        vt.train(data=str(tiny_split), out=str(out), resume=True, **{**opts, "learning_rate": 0.5})
    res = vt.train(data=str(tiny_split), out=str(out), resume=True, **opts)
    strip = lambda hs: [{k: v for k, v in h.items() if k not in ("epoch_seconds", "train_seconds")} for h in hs]  # noqa: E731
    assert strip(res.history) == strip(ref.history)
    assert res.metrics["test_accuracy"] == ref.metrics["test_accuracy"]
    assert res.metrics["evaluation"]["confusion_matrix"] == ref.metrics["evaluation"]["confusion_matrix"]
    wa, wb = _weights(ref.out), _weights(out)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_without_checkpoint_starts_with_a_notice(tiny_folder, tmp_path, capsys):
    """Interrupted before the first checkpoint (the Ctrl-C message suggests --resume): it starts, it says so."""
    r = vt.train(data=str(tiny_folder), out=str(tmp_path / "x"), resume=True, **FAST)
    assert "has no checkpoint yet" in capsys.readouterr().err and r.metrics["test_accuracy"] >= 0


def test_early_stopping_keeps_best(tiny_split, tmp_path):
    r = vt.train(
        data=str(tiny_split),
        out=str(tmp_path / "es"),
        **{**FAST, "epochs": 30},
        early_stopping=True,
        early_stopping_patience=1,
        early_stopping_min_delta=10.0,
    )
    assert len(r.history) == 2 and r.metrics["best_epoch"] == 1  # nothing improves by 10: stop after patience


def test_class_weights_and_hidden_head(tiny_folder, tmp_path):
    r = vt.train(
        data=str(tiny_folder),
        out=str(tmp_path / "cw"),
        **FAST,
        class_weights=True,
        hidden_units=8,
        dropout=0.1,
        optimizer="rmsprop",
        lr_scheduler="one-cycle",
        label_smoothing=0.1,
    )
    cfg = json.loads((r.out / "config.json").read_text())
    assert cfg["model"]["head"] == {"num_classes": 3, "hidden_units": 8, "dropout": 0.1}
    assert cfg["hyperparameters"]["class_weights"] is True


def test_bad_image_stops_or_is_skipped(tiny_split, tmp_path):
    bad = tiny_split / "train" / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(vt.VisiontuneError, match=r"broken\.png.*on_bad_image='skip'"):
        vt.train(data=str(tiny_split), out=str(tmp_path / "a"), **FAST)
    r = vt.train(data=str(tiny_split), out=str(tmp_path / "b"), **FAST, on_bad_image="skip")
    assert [s["source"] for s in r.metrics["skipped_images"]] == [str(bad)]
    assert r.metrics["counts"]["train"] == 36


def test_config_errors(tiny_folder, tmp_path):
    with pytest.raises(ConfigError, match="unknown option.*lr_rate.*learning_rate"):
        vt.train(data=str(tiny_folder), lr_rate=0.1)
    with pytest.raises(ConfigError, match="optimizer='lbfgs': choose one of sgd, adam, adamw, rmsprop"):
        vt.train(data=str(tiny_folder), optimizer="lbfgs")
    with pytest.raises(ConfigError, match="epochs=0"):
        vt.train(data=str(tiny_folder), epochs=0)


def test_too_few_images_for_validation(tmp_path):
    from tests.conftest import make_folder_dataset

    data = make_folder_dataset(tmp_path / "d", per_class=1)
    with pytest.raises(vt.VisiontuneError, match="validation split is empty"):
        vt.train(data=str(data), out=str(tmp_path / "o"), **FAST)


def test_cached_bad_images_are_reported_under_their_own_names(tiny_split, tmp_path):
    """The cache follows content: a copy of the dataset reports the copy's file names."""
    import shutil

    (tiny_split / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    vt.train(data=str(tiny_split), out=str(tmp_path / "a"), **FAST, on_bad_image="skip")
    copy = shutil.copytree(tiny_split, tmp_path / "copy")
    r = vt.train(data=str(copy), out=str(tmp_path / "b"), **FAST, on_bad_image="skip")
    assert [s["source"] for s in r.metrics["skipped_images"]] == [str(copy / "train" / "red" / "broken.png")]
    with pytest.raises(vt.VisiontuneError, match=r"copy/train/red/broken\.png"):
        vt.train(data=str(copy), out=str(tmp_path / "c"), **FAST)


def test_recorded_hyperparameters_are_the_ones_used(tiny_split, tmp_path, device):
    """Regression (issue 14.3): learning_rate was recorded as null, top_k as 5 for a top-3 metric."""
    r = vt.train(data=str(tiny_split), out=str(tmp_path / "r"), **{**FAST, "image_size": None}, top_k=5)
    hp = json.loads((r.out / "hyperparameters.json").read_text())
    cfg = json.loads((r.out / "config.json").read_text())["hyperparameters"]
    assert hp == cfg
    assert hp["learning_rate"] == 1e-3 and hp["top_k"] == 3 and hp["image_size"] == 224 and hp["num_workers"] == 0
    assert "test_top_3_accuracy" in r.metrics and r.metrics["runtime"]["device"] == device.type
    assert hp["device"] == "auto"  # the artifact records what was asked for, never the machine's device
    assert [k for k, v in hp.items() if v is None] == ["weights", "label_attribute"]


def test_header_counts_images_after_skipping(tiny_split, tmp_path, capsys):
    """Regression (issue 14.3): the header said train=37 while one of the 37 was then left out."""
    (tiny_split / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    vt.train(data=str(tiny_split), out=str(tmp_path / "r"), **FAST, on_bad_image="skip")
    header = [ln for ln in capsys.readouterr().err.splitlines() if "classes:" in ln][-1]
    assert "train=36" in header and "1 unreadable image(s) left out" in header


def test_a_last_batch_of_one_image_waits_for_the_next_epoch(tiny_folder, tmp_path):
    """Regression: at 32 px mobilenet_v2's last feature map is 1x1, and BatchNorm cannot normalise a batch of
    one such image ("Expected more than 1 value per channel when training")."""
    r = vt.train(data=str(tiny_folder), out=str(tmp_path / "r"), **{**FAST, "batch_size": 23, "epochs": 2}, mode="full")
    assert r.metrics["counts"]["train"] % 23 == 1 and len(r.history) == 2
    # batches of one image by choice still train where the last feature map is larger than 1x1 (64 px: 2x2)
    one = vt.train(
        data=str(tiny_folder),
        out=str(tmp_path / "one"),
        **{**FAST, "batch_size": 1, "epochs": 1, "image_size": 64},
        mode="full",
    )
    assert one.history[0]["train_loss"] > 0


def test_a_finished_run_is_not_overwritten(tiny_split, tmp_path):
    """Regression (issue 14.4): `train --out` into a finished run's folder silently replaced it."""
    out = tmp_path / "r"
    first = vt.train(data=str(tiny_split), out=str(out), **FAST)
    before, log = (out / "model.safetensors").read_bytes(), (out / "log.txt").read_text()
    with pytest.raises(ConfigError, match=r"finished run.*overwrite=True.*another out"):
        vt.train(data=str(tiny_split), out=str(out), **FAST, learning_rate=0.5)
    with pytest.raises(ConfigError, match="finished run"):
        vt.train(data=str(tiny_split), out=str(out), **FAST, resume=True)
    assert (out / "model.safetensors").read_bytes() == before
    # refused before a job exists: no Failed job in the store, nothing appended to the finished run's log
    assert [j.name for j in JobStore().list_jobs() if j.output_dir == str(out.resolve())] == [first.job]
    assert (out / "log.txt").read_text() == log
    again = vt.train(data=str(tiny_split), out=str(out), **FAST, learning_rate=0.5, overwrite=True)
    assert again.history != first.history
    assert json.loads((out / "hyperparameters.json").read_text())["learning_rate"] == 0.5


def test_every_layout_reports_test_metrics(tiny_folder, tmp_path, capsys):
    """Regression (issue 14.5): plain class folders had no test split, so metrics["test_accuracy"] was a KeyError."""
    r = vt.train(data=str(tiny_folder), out=str(tmp_path / "r"), **FAST)
    assert r.metrics["evaluated_on"] == "test" and "test_accuracy" in r.metrics
    assert r.metrics["counts"] == {"train": 24, "validation": 3, "test": 3}
    assert "holding out 3 validation and 3 test" in capsys.readouterr().err
    r = vt.train(data=str(tiny_folder), out=str(tmp_path / "r0"), **FAST, test_fraction=0)
    assert r.metrics["evaluated_on"] == "validation" and "validation_accuracy" in r.metrics


def test_a_loss_that_becomes_nan_stops_the_run_with_what_to_do(tiny_split, tmp_path):
    # the loss is summed on the device and checked every FINITE_CHECK_STEPS steps and at each epoch's end
    with pytest.raises(ConfigError, match=r"the loss became (nan|inf) at epoch 1; lower learning_rate \(now 1e\+30\)"):
        vt.train(data=str(tiny_split), out=str(tmp_path / "run"), **FAST, optimizer="sgd", learning_rate=1e30)


def test_a_stopped_run_keeps_the_model_of_its_last_finished_epoch(tiny_split, tmp_path):
    """Issue 33: a stopped job offers Resume and its partial model.  The stop (a job's threading.Event) comes
    during epoch 2: <out>/partial/ holds epoch 1's model as a whole artifact that load_model predicts with,
    the run folder stays resumable, and the finished run removes the partial model."""
    import threading

    from visiontune.train.loop import PARTIAL, StopTraining, train

    out, stop = tmp_path / "stopped", threading.Event()
    opts = {**FAST, "epochs": 3}
    with pytest.raises(StopTraining) as stopped:
        train(data=str(tiny_split), out=str(out), stop=stop, callbacks=(lambda epoch, row: stop.set(),), **opts)
    partial = out / PARTIAL
    assert stopped.value.partial == partial and (partial / "model.tar.gz").is_file()
    metrics = json.loads((partial / "metrics.json").read_text())
    assert metrics["partial"] is True and metrics["epochs_completed"] == 1 and len(metrics["history"]) == 1
    model = vt.load_model(str(partial / "model.tar.gz"))
    image = next((tiny_split / "test").rglob("*.png"))
    assert model.predict(str(image))  # the partial model answers like any other
    # the checkpoint's weights, not the half-trained ones of the interrupted epoch
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    saved = _weights(partial)
    head = {k: v for k, v in saved.items() if k.startswith("head.")}
    assert head and all(torch.equal(v, ckpt[k.removeprefix("head.")]) for k, v in head.items())
    done = vt.train(data=str(tiny_split), out=str(out), resume=True, **opts)
    assert len(done.history) == 3 and not partial.exists()
