"""Image embeddings: a trained model's backbone and a zoo model's cached features, written as .npy and
.parquet; the endpoint's embedding equals embed's; similar finds an image's own near-copy first."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import visiontune as vt
from tests.conftest import FAST, cli_run, make_folder_dataset
from visiontune.errors import ConfigError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("emb")
    data = make_folder_dataset(root / "d", per_class=6)
    r = vt.train(data=str(data), out=str(root / "model"), **{**FAST, "epochs": 1}, debugger=False)
    return r.out, data


def test_embed_writes_one_row_per_image(trained, tmp_path):
    model, data = trained
    r = vt.embed(str(model), str(data), tmp_path / "e.npy")
    vectors = np.load(tmp_path / "e.npy")
    sources = json.loads((tmp_path / "e.npy.sources.json").read_text())
    assert vectors.shape == (18, 1280) and len(sources) == 18 and r.sources == sources
    assert np.isfinite(vectors).all() and not np.allclose(vectors[0], vectors[-1])
    zoo = vt.embed("mobilenet_v2", str(data), tmp_path / "z.parquet", image_size=32)  # the feature cache
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "z.parquet")
    assert list(frame.columns) == ["source", "embedding"] and len(frame) == 18
    assert np.allclose(np.stack(frame["embedding"]), zoo.vectors)
    with pytest.raises(ConfigError, match=".npy or a .parquet"):
        vt.embed(str(model), str(data), tmp_path / "e.csv")


def test_the_endpoint_answers_the_same_embedding(trained):
    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app

    model, data = trained
    image = sorted(data.rglob("*.png"))[0]
    expected = vt.embed(str(model), str(image)).vectors[0]
    with TestClient(create_app(ServerSettings(models={"m": str(model)}))) as c:
        c.app.state.loader.join(60)
        r = c.post(
            "/invocations",
            content=image.read_bytes(),
            headers={"Content-Type": "image/png", "Accept": "application/x-embedding"},
        )
        assert r.status_code == 200, r.text
        assert np.allclose(r.json()["embedding"], expected, atol=1e-4)


def test_similar_finds_the_near_copy_first(trained, tmp_path):
    model, data = trained
    original = sorted(data.rglob("*.png"))[4]
    copy = tmp_path / "copy.jpg"
    Image.open(original).convert("RGB").resize((36, 36)).save(copy, quality=80)
    rows = vt.similar(str(model), str(copy), str(data), k=3)
    assert rows[0]["source"] == str(original) and rows[0]["similarity"] >= rows[1]["similarity"]
    out = cli_run("similar", model, copy, "--in", data, "-k", 2).output.splitlines()
    assert len(out) == 2 and out[0].endswith(str(original))
    assert "embeddings of 1280 values" in cli_run("embed", model, data, "--out", tmp_path / "c.npy").output
