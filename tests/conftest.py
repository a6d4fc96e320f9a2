"""Shared fixtures: an isolated visiontune home and tiny, learnable image datasets."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

COLORS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def pytest_configure(config):
    """Session and module fixtures (trained models shared by many tests) run before the per-test home below:
    give the whole session a home of its own too, so no test ever writes to the user's real one."""
    import os
    import tempfile

    os.environ["VISIONTUNE_HOME"] = tempfile.mkdtemp(prefix="visiontune-tests-")
    os.environ.pop("VISIONTUNE_DB", None)


def pytest_unconfigure(config):
    import os
    import shutil

    home = os.environ.get("VISIONTUNE_HOME", "")
    if "visiontune-tests-" in home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    """Each test gets its own caches and job store, and runs in its own folder (default outputs such as
    runs/<job> land there, never in the checkout): no test sees another's files."""
    monkeypatch.setenv("VISIONTUNE_HOME", str(tmp_path_factory.mktemp("vthome")))
    monkeypatch.delenv("VISIONTUNE_DB", raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def draw_image(color, seed: int, size: int = 40) -> Image.Image:
    """A noisy picture dominated by ``color``, with a random shape (so images differ)."""
    rng = random.Random(seed)
    arr = np.random.default_rng(seed).integers(0, 60, (size, size, 3)).astype(np.int16) + np.array(color) * 0.7
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    x, y = rng.randint(0, size // 2), rng.randint(0, size // 2)
    d.ellipse([x, y, x + rng.randint(8, size // 2), y + rng.randint(8, size // 2)], fill=tuple(color))
    return img


def make_folder_dataset(
    root: Path,
    per_class: int = 10,
    classes=("blue", "green", "red"),
    split_layout: bool = False,
    seed: int = 0,
    ext: str = ".png",
) -> Path:
    """``root/<class>/*.png`` or ``root/{train,val,test}/<class>/*.png``."""
    counter = seed * 10_000
    splits = (
        {"train": per_class, "val": max(2, per_class // 3), "test": max(2, per_class // 3)}
        if split_layout
        else {"": per_class}
    )
    for split, n in splits.items():
        for c in classes:
            d = root / split / c if split else root / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                counter += 1
                draw_image(COLORS[c], counter).save(d / f"{c}_{i:03d}{ext}")
    return root


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return make_folder_dataset(tmp_path / "tiny", per_class=10)


@pytest.fixture
def tiny_split(tmp_path) -> Path:
    return make_folder_dataset(tmp_path / "tiny_split", per_class=12, split_layout=True)


@pytest.fixture(scope="session")
def device():
    """The device training and prediction pick here (CUDA where there is one): tests that build tensors for a
    model build them on it, and no test assumes the CPU."""
    from visiontune.runtime import pick_device

    return pick_device("auto")


#: The options that make a training test fast: a small image, the offline model.
FAST = dict(model="mobilenet_v2", image_size=32, epochs=2, batch_size=8, eval_batch_size=32, num_workers=0)


def cli_run(*args, ok: bool = True):
    """``visiontune ARGS...`` through click's runner, as a user types it; asserts success unless ``ok=False``."""
    from click.testing import CliRunner

    from visiontune.cli.main import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def apt_install(package: str) -> str | None:
    """Install a Debian package for a test that needs it (postgresql, chromium) when running as root;
    returns why it could not, or None."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{package} is not installed and this user cannot install it (apt-get install {package} as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if r.returncode:
            return f"`{' '.join(cmd)}` failed: {r.stderr.strip()[-300:]}"
    return None


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium_path() -> str | None:
    import os
    import shutil

    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, for Playwright to drive (installed here when missing and this user can)."""
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
    if _chromium_path() is None:
        why = apt_install("chromium")
        if why or _chromium_path() is None:
            pytest.skip(f"no Chromium for the browser tests: {why or 'chromium not found after installing it'}")
    return _chromium_path()


def write_fashion_idx(folder: Path, n_train: int = 200, n_test: int = 60, seed: int = 0) -> Path:
    """Fashion-MNIST's four IDX files, small and synthetic (a bright blob per item, brighter for a higher
    class): tests that must run where Debian's dataset-fashion-mnist is not installed point
    FASHION_MNIST_DIR here."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28)) + labels[:, None, None] * 20
        for i in range(n):  # an item: an ellipse of its own size, the background dark
            a, b = rng.integers(6, 13, 2)
            images[i][((yy - 14) / a) ** 2 + ((xx - 14) / b) ** 2 > 1] = 0
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as fh:
                fh.write(header + arr.astype(np.uint8).tobytes())
    return folder


def make_detection_dataset(root: Path, per_split=(("train", 24), ("val", 8)), size: int = 64, seed: int = 0) -> Path:
    """A YOLO folder (images/<split>/, labels/<split>/, classes.txt) of grey scenes, each with one or two
    filled squares whose colour is their class (red, green, blue); every third training image also holds
    nothing (a negative).  Exact boxes: a detector can learn them in a few epochs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = [(220, 30, 30), (30, 200, 30), (30, 30, 220)]
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    for split, n in per_split:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(100, 156, (size, size, 3)).astype(np.uint8)  # grey noise: no two images alike
            lines = []
            count = 0 if (split == "train" and i % 3 == 2) else 1 + i % 2
            for _ in range(count):
                c = int(rng.integers(3))
                side = int(rng.integers(size // 4, size // 2))
                x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
                img[y0 : y0 + side, x0 : x0 + side] = colours[c]
                lines.append(
                    f"{c} {(x0 + side / 2) / size:.5f} {(y0 + side / 2) / size:.5f} {side / size:.5f} {side / size:.5f}"
                )
            Image.fromarray(img).save(root / "images" / split / f"{split}_{i:03d}.png")
            (root / "labels" / split / f"{split}_{i:03d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return root
