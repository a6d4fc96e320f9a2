"""Caches: content fingerprints, and the CPU feature pass that runs one batch per core."""

import sys

import numpy as np
import pytest
import torch

from tests.conftest import make_folder_dataset
from visiontune.data.cache import feature_cache, fingerprint
from visiontune.runtime import resolve_precision
from visiontune.data.dataset import Sample, content_hash
from visiontune.data.decode import load_pixels
from visiontune.data.loading import open_dataset
from visiontune.data.transforms import normalize
from visiontune.errors import BadImageError, ConfigError
from visiontune.zoo.optimize import inference_copy
from visiontune.zoo.registry import create_model, default_preprocessing


@pytest.mark.parametrize("io_bound", [False, True], ids=["cached-files-on-one-thread", "slow-files-on-threads"])
def test_fingerprint_maps_every_file_to_its_content(tmp_path, monkeypatch, io_bound):
    import visiontune.data.cache as cache

    cache._HASHES.clear()
    monkeypatch.setattr(cache, "IO_BOUND_SECONDS_PER_FILE", 0.0 if io_bound else 1.0)
    samples = []
    for i in range(600):  # more than one chunk of files per thread
        p = tmp_path / f"{i}.bin"
        p.write_bytes(f"image {i % 450}".encode())  # some files share content
        samples.append(Sample(str(p), 0))
    samples.append(Sample(str(tmp_path / "missing.bin"), 0))
    hashes = fingerprint(samples, workers=3)
    assert len(hashes) == 601
    for i in (0, 255, 256, 449, 450, 599):
        assert hashes[str(tmp_path / f"{i}.bin")] == content_hash(f"image {i % 450}".encode())
    assert hashes[str(tmp_path / "450.bin")] == hashes[str(tmp_path / "0.bin")]
    assert hashes[str(tmp_path / "missing.bin")].startswith("unreadable:")


@pytest.fixture(scope="module")
def backbone_and_prep():
    model, spec, wspec = create_model("mobilenet_v2", num_classes=3)
    return model.backbone.eval(), default_preprocessing(spec, wspec, 32)


def test_per_core_feature_pass_matches_one_batch_at_a_time(tmp_path, backbone_and_prep):
    backbone, prep = backbone_and_prep
    (tmp_path / "cache").mkdir()
    data = open_dataset(str(make_folder_dataset(tmp_path / "d", per_class=9)))
    samples = data.splits["train"]
    hashes = fingerprint(samples)
    cpu = torch.device("cpu")
    fast = inference_copy(backbone, cpu, None)
    switch, threads = sys.getswitchinterval(), torch.get_num_threads()
    feats, ok, bad, hit = feature_cache(
        backbone,
        "k",
        samples,
        hashes,
        prep,
        device=cpu,
        dtype=None,
        batch_size=4,
        root=tmp_path / "cache",
        extractor=fast,
    )
    assert not hit and ok.all() and not bad and feats.shape == (27, 1280)
    # the same images, in order, one batch at a time on the calling thread
    pixels = torch.from_numpy(np.stack([load_pixels(s.source, 32) for s in samples]))
    with torch.inference_mode():
        expected = fast[0](normalize(pixels, prep, cpu))
    assert torch.allclose(feats, expected, atol=1e-4)
    # the pass leaves the process as it found it
    assert sys.getswitchinterval() == switch and torch.get_num_threads() == threads


def test_per_core_feature_pass_names_a_bad_image(tmp_path, backbone_and_prep):
    backbone, prep = backbone_and_prep
    (tmp_path / "cache").mkdir()
    root = make_folder_dataset(tmp_path / "d", per_class=6)
    (root / "red" / "red_003.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    samples = open_dataset(str(root)).splits["train"]
    hashes = fingerprint(samples)
    cpu = torch.device("cpu")
    with pytest.raises(BadImageError, match="red_003.png"):
        feature_cache(
            backbone, "k", samples, hashes, prep, device=cpu, dtype=None, batch_size=2, root=tmp_path / "cache"
        )
    feats, ok, bad, _ = feature_cache(
        backbone,
        "k",
        samples,
        hashes,
        prep,
        device=cpu,
        dtype=None,
        batch_size=2,
        on_bad_image="skip",
        root=tmp_path / "cache",
    )
    assert ok.sum() == 17 and [src.endswith("red_003.png") for src, _ in bad] == [True]
    assert not feats[~torch.from_numpy(ok)].any()


def test_precision_names():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu, training=True) is None
    with pytest.raises(ConfigError, match="precision='half'"):
        resolve_precision("half", cpu)
