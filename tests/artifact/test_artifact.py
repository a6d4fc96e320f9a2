"""The artifact loads with no training code and no pickle, and predicts what training measured."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

import visiontune as vt
from tests.conftest import COLORS, FAST, draw_image
from visiontune.errors import ArtifactError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import make_folder_dataset

    root = tmp_path_factory.mktemp("art")
    data = make_folder_dataset(root / "d", per_class=12, split_layout=True)
    return vt.train(data=str(data), out=str(root / "model"), **{**FAST, "epochs": 5}, learning_rate=0.01), data


def test_folder_and_targz_agree(trained):
    r, data = trained
    a, b = vt.load_model(r.out), vt.load_model(r.out / "model.tar.gz")
    img = data / "test" / "red" / sorted(p.name for p in (data / "test" / "red").iterdir())[0]
    pa, pb = a.predict(str(img)), b.predict(str(img))
    assert pa.label == pb.label and pa.probability == pytest.approx(pb.probability, abs=1e-6)


def test_reproduces_test_accuracy(trained):
    r, data = trained
    m = vt.load_model(r.out)
    files = sorted((data / "test").rglob("*.png"))
    preds = m.predict([str(f) for f in files])
    acc = np.mean([p.label == f.parent.name for p, f in zip(preds, files)])
    assert acc == pytest.approx(r.metrics["test_accuracy"], abs=1e-6)


def test_inputs_of_every_kind_agree(trained):
    r, _ = trained
    m = vt.load_model(r.out)
    img = draw_image(COLORS["green"], 4242)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    probs = [m.predict(x, top_k=3) for x in (img, buf.getvalue(), np.asarray(img))]
    assert len({p.label for p in probs}) == 1
    assert len(probs[0].top_k) == 3
    assert all(p.probability == pytest.approx(probs[0].probability, abs=1e-5) for p in probs)


def test_no_pickle_in_the_artifact(trained):
    r, _ = trained
    with tarfile.open(r.out / "model.tar.gz") as tar:
        names = set(tar.getnames())
    assert names == {"model.safetensors", "config.json", "labels.json", "metrics.json"}
    cfg = json.loads((r.out / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["preprocessing"]["image_size"] == 32
    assert cfg["model"]["library"] == "torchvision" and cfg["visiontune_version"] == vt.__version__


def test_bad_artifacts_are_named(tmp_path, trained):
    with pytest.raises(ArtifactError, match="not a visiontune model"):
        vt.load_model(tmp_path)
    r, _ = trained
    cfg = json.loads((r.out / "config.json").read_text())
    bad = tmp_path / "future"
    bad.mkdir()
    for f in ("model.safetensors", "labels.json"):
        (bad / f).write_bytes((r.out / f).read_bytes())
    (bad / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version 99"):
        vt.load_model(bad)


def test_bad_image_in_predict(trained):
    r, _ = trained
    with pytest.raises(vt.VisiontuneError, match="not an image"):
        vt.load_model(r.out).predict(b"definitely not a picture")


def test_every_input_kind_predicts_the_same(trained):
    """Regression (issue 14.2): predict_proba("img.png") iterated the path's characters."""
    r, data = trained
    m = vt.load_model(r.out)
    path = sorted((data / "test" / "red").iterdir())[0]
    img = Image.open(path).convert("RGB")
    arr = np.asarray(img)
    reference = m.predict_proba(str(path))
    assert isinstance(reference, np.ndarray) and reference.shape == (1, 3)
    for x in (
        path,
        path.read_bytes(),
        img,
        arr,
        torch.from_numpy(arr.copy()),
        torch.from_numpy(arr.copy()).permute(2, 0, 1),
    ):
        assert np.allclose(m.predict_proba(x), reference, atol=1e-6), type(x)
        assert m.predict(x).label == m.predict(str(path)).label
    batch = m.predict_proba([str(path), path, img])
    assert batch.shape == (3, 3) and np.allclose(batch, reference[0], atol=1e-6)
    assert m.predict_proba(np.stack([arr, arr])).shape == (2, 3)  # a 4-D array is a batch
    assert len(m.predict([path, path])) == 2


def test_python_errors_name_python_arguments(trained, tmp_path):
    """Regression (issue 14.2): the Python API's errors suggested CLI flags the call does not have."""
    r, data = trained
    m = vt.load_model(r.out)
    bad = tmp_path / "notes.jpg"
    bad.write_text("just text")
    with pytest.raises(vt.VisiontuneError) as err:
        m.predict(str(bad))
    assert "notes.jpg" in str(err.value) and "--" not in str(err.value) and "<_io" not in str(err.value)
    shutil_copy = tmp_path / "d"
    import shutil

    shutil.copytree(data, shutil_copy)
    (shutil_copy / "train" / "red" / "notes.jpg").write_text("just text")
    with pytest.raises(
        vt.VisiontuneError, match=r"notes\.jpg: not an image file Pillow can identify.*on_bad_image='skip'"
    ) as err:
        vt.train(data=str(shutil_copy), out=str(tmp_path / "o"), **FAST)
    assert "--on-bad-image" not in str(err.value)


def test_artifact_files_are_world_readable(trained):
    """Regression (issue 14.10): model.safetensors was 0600 while the other files were 0644."""
    r, _ = trained
    mode = (r.out / "config.json").stat().st_mode & 0o777
    assert mode & 0o444 == 0o444  # readable by all under any usual umask
    for f in ("model.safetensors", "labels.json", "metrics.json", "model.tar.gz"):
        assert (r.out / f).stat().st_mode & 0o777 == mode, f
    with tarfile.open(r.out / "model.tar.gz") as tar:
        assert all(m.mode & 0o777 == mode for m in tar.getmembers() if m.isfile())
