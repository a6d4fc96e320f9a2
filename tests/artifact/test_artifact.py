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
