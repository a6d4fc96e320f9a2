"""Device, precision and thread policy: one place that training, the data pipeline,
prediction, serving and export all ask.

* :func:`pick_device`: CUDA when present (``auto``), else the CPU.
* :func:`resolve_precision`: the reduced-precision dtype for a precision name on a device.
  ``auto`` means bf16 for inference on CPUs that compute it natively (AMX / AVX512-BF16,
  about 2x faster here), float32 for training on CPUs (bf16 autocast measured slower
  there), and mixed precision on GPUs.
* ``fp32`` means IEEE float32 on GPUs too (cuDNN computes float32 convolutions in TF32 unless told not
  to: on an H100 that made fp32 answers differ from ONNX's by 8e-4); ``tf32`` asks for TF32 explicitly.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

import torch

from visiontune.errors import ConfigError, option

PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device='cuda' but no CUDA GPU is visible; use {option('device', 'cpu')} or 'auto'")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device={device!r}: choose one of {', '.join(DEVICES)}") from exc


def resolve_precision(precision: str, device: torch.device, training: bool = False) -> torch.dtype | None:
    """The reduced-precision dtype for ``precision`` on ``device`` (None = float32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision in ("fp32", "tf32"):
        float32_math(device, tf32=precision == "tf32")
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    # auto
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and training:
        return None
    if device.type == "cpu" and native_bf16_cpu():
        return torch.bfloat16
    return None


#: from this input size up, ``auto`` trains convolutional networks in bf16 autocast on CPUs with native bf16:
#: forward + backward + AdamW of mobilenet_v2 (channels-last, 2 cores, two interleaved rounds each) ran
#: 0.90-1.03x float32's speed at 96 px (batch 64), 1.15-1.54x at 128, 1.32-1.40x at 160 and 1.76-2.04x at
#: 224 px (batch 32)
BF16_TRAINING_MIN_SIZE = 128


def training_precision(precision: str, device: torch.device, head_on_features: bool,
                       image_size: int | None = None) -> torch.dtype | None:
    """The autocast dtype for training.  ``auto`` on a CPU with native bf16: bf16 for a head with a hidden
    layer trained on cached features (measured 1.4-2.3x faster per epoch on one core, 1.2-1.7x on two, for
    256/512 hidden units at batch 64-256; a single linear layer gained nothing), and bf16 for networks with
    convolutions from ``BF16_TRAINING_MIN_SIZE`` px up; float32 below it, and on CPUs that emulate bf16."""
    if precision == "auto" and device.type == "cpu" and native_bf16_cpu() and (
            head_on_features or (image_size is not None and image_size >= BF16_TRAINING_MIN_SIZE)):
        return torch.bfloat16
    return resolve_precision(precision, device, training=True)


def float32_math(device: torch.device, tf32: bool) -> None:
    """On CUDA, float32 matrix products and convolutions in IEEE float32 (``tf32=False``) or TF32 (process-wide
    settings of torch: the last model loaded or trained in this process decides)."""
    if device.type != "cuda":
        return
    mode = "tf32" if tf32 else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:  # pragma: no cover - older torch
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def dtype_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


@lru_cache(maxsize=1)
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16); elsewhere it is emulated and slower."""
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: trust oneDNN's answer
        return True
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
