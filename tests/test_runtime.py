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
