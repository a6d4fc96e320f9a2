"""The device and precision policy (visiontune.runtime), the parts that hold without a GPU."""

import pytest
import torch

from visiontune.runtime import PRECISIONS, float32_math, resolve_precision


@pytest.fixture
def restore_float32_math():
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    yield
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before


def test_fp32_means_ieee_float32_on_cuda_and_tf32_asks_for_tf32(restore_float32_math):
    """cuDNN computes float32 convolutions in TF32 unless told not to; fp32 turns that off, tf32 on (these are
    torch's process settings, so no GPU is needed to check them)."""
    cuda = torch.device("cuda")
    assert resolve_precision("tf32", cuda) is None
    assert torch.backends.cudnn.conv.fp32_precision == "tf32" == torch.backends.cuda.matmul.fp32_precision
    assert resolve_precision("fp32", cuda) is None
    assert torch.backends.cudnn.conv.fp32_precision == "ieee" == torch.backends.cuda.matmul.fp32_precision
    float32_math(torch.device("cpu"), tf32=True)  # nothing to set on a CPU
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert "tf32" in PRECISIONS and resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16


def test_auto_trains_convolutions_in_bf16_from_the_measured_size_on_native_bf16_cpus(monkeypatch):
    import visiontune.runtime as runtime
    from visiontune.runtime import BF16_TRAINING_MIN_SIZE, training_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "native_bf16_cpu", lambda: True)
    assert training_precision("auto", cpu, False, image_size=BF16_TRAINING_MIN_SIZE) == torch.bfloat16
    assert training_precision("auto", cpu, False, image_size=224) == torch.bfloat16
    assert training_precision("auto", cpu, False, image_size=96) is None  # float32 measured as fast there
    assert training_precision("auto", cpu, True) == torch.bfloat16  # a hidden-layer head on cached features
    assert training_precision("fp32", cpu, False, image_size=224) is None  # asked for: never overridden
    monkeypatch.setattr(runtime, "native_bf16_cpu", lambda: False)  # emulated bf16 is slower than float32
    assert training_precision("auto", cpu, False, image_size=224) is None


def test_fastest_by_batch_picks_the_faster_candidate_at_each_batch_size():
    """A candidate quick on one image but slow on many (float32 at batch 1 on an H100) against one with a fixed
    cost: each batch size gets the one that measured faster there, and batches between sizes follow the size
    below them."""
    import time

    from visiontune.runtime import choice_for, fastest_by_batch

    calls = {"small": 0, "flat": 0}

    def small(batch):
        calls["small"] += 1
        time.sleep(0.001 * batch)

    def flat(batch):
        calls["flat"] += 1
        time.sleep(0.006)

    policy = fastest_by_batch({"small": small, "flat": flat}, (1, 16), repeats=3)
    assert policy[1]["choice"] == "small" and policy[16]["choice"] == "flat"
    assert policy[16]["seconds"]["small"] > policy[16]["seconds"]["flat"]
    assert calls == {"small": 8, "flat": 8}  # a warm-up and three timed calls per size, each
    assert [choice_for(policy, b) for b in (1, 2, 15, 16, 64)] == ["small", "small", "small", "flat", "flat"]


def test_auto_inference_on_a_measured_device_runs_each_batch_in_its_faster_copy(monkeypatch, tmp_path):
    """Where ``auto`` is measured (GPUs; forced here on the CPU), the model keeps a float32 and a bf16 copy,
    records what each batch size measured, and answers like float32 within bf16's error."""
    import numpy as np

    import visiontune as vt
    import visiontune.artifact.model as model_module
    from tests.conftest import FAST, make_folder_dataset

    data = make_folder_dataset(tmp_path / "d", per_class=6)
    r = vt.train(data=str(data), out=str(tmp_path / "m"), **{**FAST, "epochs": 1})
    monkeypatch.setattr(model_module, "measures_inference_precision", lambda device: True)
    monkeypatch.setattr(model_module, "resolve_precision", lambda precision, device: torch.bfloat16)
    auto = vt.load_model(r.out, device="cpu", precision="auto")
    exact = vt.load_model(r.out, device="cpu", precision="fp32")
    assert set(auto.precision_policy) == {1, 4, 16, 64}
    assert {v["choice"] for v in auto.precision_policy.values()} <= {"fp32", "bf16"}
    assert auto.how.startswith("auto, measured on this device (batch 1: ")
    assert exact.precision_policy is None
    pixels = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    pixels = np.stack([auto.pixels(p) for p in pixels])
    for n in (1, 5):
        np.testing.assert_allclose(
            auto.predict_proba_pixels(pixels[:n]), exact.predict_proba_pixels(pixels[:n]), atol=0.1
        )


def test_training_keeps_freed_memory_unless_the_environment_tunes_malloc(monkeypatch):
    import sys

    from visiontune.runtime import keep_freed_memory

    set_here = keep_freed_memory.__wrapped__  # the cached call is the process's one setting
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert set_here() is False  # the user's own malloc settings win
    monkeypatch.delenv("GLIBC_TUNABLES")
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    import platform

    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert set_here() is on_glibc
