"""The fashion-scenes builder (issue 11.4): tiny builds on scikit-image's photos."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import cli_run, write_fashion_idx
from visiontune.data import fashion_mnist
from visiontune.data.sources import iter_manifest, resolve_ref
from visiontune.data.synth import ATTRIBUTE, fashion_scenes
from visiontune.errors import ConfigError, DataError

pytest.importorskip("skimage.data", reason="scikit-image (the backgrounds) is not installed")
TINY = dict(n_train=6, n_validation=3, size=64)


@pytest.fixture(scope="module", autouse=True)
def fashion_data(tmp_path_factory):
    """Small synthetic IDX files in Fashion-MNIST's place, so the tests run the same where Debian's
    dataset-fashion-mnist is not installed (the benchmark builds from the real items)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHION_MNIST_DIR", str(write_fashion_idx(tmp_path_factory.mktemp("idx"))))
        yield


@pytest.fixture(scope="module")
def scenes(fashion_data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scenes")
    return out, fashion_scenes(out, **TINY)


def _pngs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/scene_*.png"))}


def _lines(out: Path, split: str) -> list[dict]:
    rows = [rec for _, rec in iter_manifest(out / f"{split}.manifest")]
    for rec in rows:
        rec[f"{ATTRIBUTE}-metadata"].pop("creation-date")
    return rows


def test_layout_masks_and_labels_agree(scenes):
    out, summary = scenes
    assert json.loads((out / "label_map" / "train_label_map.json").read_text()) == {"scale": 1}
    assert (out / "label_map" / "validation_label_map.json").exists()
    classes = json.loads((out / "classes.json").read_text())
    assert classes["segmentation"] == ["background", *fashion_mnist.CLASSES]
    assert classes["multi-label"] == fashion_mnist.CLASSES
    for split, n in (("train", 6), ("validation", 3)):
        images = sorted(p.name for p in (out / split).iterdir())
        assert images == [f"scene_{i:06d}.png" for i in range(1, n + 1)]
        assert sorted(p.name for p in (out / f"{split}_annotation").iterdir()) == images
        assert summary["splits"][split]["images"] == n and 1 * n <= summary["splits"][split]["items"] <= 4 * n
        manifest = out / f"{split}.manifest"
        rows = list(iter_manifest(manifest))  # visiontune's own manifest reader takes every line
        assert len(rows) == n
        for (_, rec), name in zip(rows, images):
            src = Path(resolve_ref(rec["source-ref"], manifest.parent))
            assert src == out / split / name
            image, mask_png = Image.open(src), Image.open(out / f"{split}_annotation" / name)
            assert image.mode == "RGB" and mask_png.mode in ("L", "P") and image.size == mask_png.size == (64, 64)
            mask = np.asarray(mask_png)
            assert mask.max() <= len(fashion_mnist.CLASSES)
            in_mask = sorted(int(v) - 1 for v in np.unique(mask) if v)
            assert rec[ATTRIBUTE] == in_mask and in_mask  # every label has pixels, every class in the mask a label
            meta = rec[f"{ATTRIBUTE}-metadata"]
            assert meta["type"] == "groundtruth/image-classification-multilabel"
            assert meta["class-map"] == {str(c): fashion_mnist.CLASSES[c] for c in in_mask}
            assert set(meta["confidence-map"]) == set(meta["class-map"])


def test_same_seed_same_bytes_other_seed_differs(scenes, tmp_path):
    out, _ = scenes
    again = tmp_path / "again"
    fashion_scenes(again, **TINY)
    assert _pngs(again) == _pngs(out)
    assert _lines(again, "train") == _lines(out, "train")
    other = tmp_path / "other"
    fashion_scenes(other, **TINY, seed=1)
    assert _pngs(other).keys() == _pngs(out).keys()
    assert all(_pngs(other)[k] != v for k, v in _pngs(out).items())


def test_finished_build_is_kept_and_other_options_rebuild(scenes, tmp_path):
    out = tmp_path / "s"
    fashion_scenes(out, n_train=4, n_validation=2, size=48)
    first = out / "train" / "scene_000001.png"
    stamp = first.stat().st_mtime_ns
    assert fashion_scenes(out, n_train=4, n_validation=2, size=48)["splits"]["train"]["images"] == 4
    assert first.stat().st_mtime_ns == stamp  # found finished, not redrawn
    (out / ".complete").unlink()  # as an interrupted build leaves it
    fashion_scenes(out, n_train=3, n_validation=2, size=40)
    assert len(list((out / "train").iterdir())) == len(list((out / "train_annotation").iterdir())) == 3
    assert Image.open(first).size == (40, 40)
    assert len((out / "train.manifest").read_text().splitlines()) == 3


def test_cli(scenes, tmp_path):
    res = cli_run(
        "data",
        "synth",
        "fashion-scenes",
        "--out",
        tmp_path / "c",
        "--train",
        3,
        "--validation",
        2,
        "--size",
        40,
        "--max-items",
        2,
    )
    assert "train: 3 scenes of 40x40 px" in res.output and "validation: 2 scenes" in res.output
    assert str(tmp_path / "c") in res.output
    assert len(list((tmp_path / "c" / "validation_annotation").iterdir())) == 2


@pytest.mark.parametrize(
    "args,named",
    [
        (["--train", "0"], "--train"),
        (["--validation", "-1"], "--validation"),
        (["--size", "16"], "--size"),
        (["--max-items", "5"], "--max-items"),
        (["--min-items", "0"], "--min-items"),
        (["--min-items", "3", "--max-items", "2"], "--min-items"),
    ],
)
def test_bad_options_name_the_option(tmp_path, args, named):
    res = cli_run("data", "synth", "fashion-scenes", "--out", tmp_path / "x", *args, ok=False)
    assert res.exit_code == 2 and "error:" in res.output and named in res.output
    assert not (tmp_path / "x").exists()


def test_python_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="n_train must be at least 1"):
        fashion_scenes(tmp_path, n_train=0)
    with pytest.raises(ConfigError, match="max_items must be 1 to 4"):
        fashion_scenes(tmp_path, max_items=5)
    monkeypatch.setattr(fashion_mnist, "SEARCH", [])
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DataError, match="Fashion-MNIST not found.*dataset-fashion-mnist"):
        fashion_scenes(tmp_path / "none", **TINY)
