"""Fashion-MNIST as PNG class folders (train/val/test), for the quickstart and benchmarks.

Looks for the IDX files in Debian's ``dataset-fashion-mnist`` package, then in
the visiontune home cache, then downloads them from the public source.
"""

from __future__ import annotations

import gzip
import os
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from visiontune.errors import DataError
from visiontune.paths import cache_dir

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
FILES = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}
SEARCH = [Path("/usr/share/datasets/fashion-mnist")]
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def locate(download: bool = True) -> Path:
    extra = os.environ.get("FASHION_MNIST_DIR")
    for d in ([Path(extra)] if extra else []) + SEARCH + [cache_dir("fashion-mnist")]:
        if all((d / f).exists() for f in FILES.values()):
            return d
    if not download:
        raise DataError("Fashion-MNIST not found")
    dest = cache_dir("fashion-mnist")
    try:
        for f in FILES.values():
            if not (dest / f).exists():
                tmp = dest / f".{f}.part"
                urllib.request.urlretrieve(URL + f, tmp)  # noqa: S310 - fixed public https/http source
                tmp.replace(dest / f)
    except OSError as exc:
        raise DataError(
            f"Fashion-MNIST is not on this machine and could not be downloaded ({exc}). Install Debian's "
            "package (apt-get install dataset-fashion-mnist), or put the four IDX .gz files in "
            f"{dest} or in a folder named by FASHION_MNIST_DIR"
        ) from exc
    return dest


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_png_folders(out: Path, n_train: int = 10_000, n_val: int = 2_000, n_test: int = 2_000, seed: int = 0) -> Path:
    """Write ``out/{train,val,test}/<class>/*.png`` (a stratified random subset, by seed)."""
    out = Path(out)
    marker = out / ".complete"
    want = f"{n_train},{n_val},{n_test},{seed}"
    if marker.exists() and marker.read_text() == want:
        return out
    src = locate()
    tr_x, tr_y = read_idx(src / FILES["train-images"]), read_idx(src / FILES["train-labels"])
    te_x, te_y = read_idx(src / FILES["test-images"]), read_idx(src / FILES["test-labels"])
    if n_train + n_val > len(tr_x) or n_test > len(te_x):
        raise DataError(
            f"asked for {n_train}+{n_val} training and {n_test} test images; "
            f"Fashion-MNIST has {len(tr_x)} and {len(te_x)}"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(tr_x))
    parts = {
        "train": (tr_x, tr_y, perm[:n_train]),
        "val": (tr_x, tr_y, perm[n_train : n_train + n_val]),
        "test": (te_x, te_y, rng.permutation(len(te_x))[:n_test]),
    }
    marker.unlink(missing_ok=True)
    for split, (x, y, idx) in parts.items():
        for c in CLASSES:
            for stale in (out / split / c).glob(f"{split}_*.png"):  # written for another size or seed
                stale.unlink()
            (out / split / c).mkdir(parents=True, exist_ok=True)
        for i in idx:
            Image.fromarray(x[i], mode="L").save(out / split / CLASSES[y[i]] / f"{split}_{i:05d}.png")
    marker.write_text(want)
    return out
