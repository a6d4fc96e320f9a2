"""Device, precision and thread policy: one place that training, the data pipeline,
prediction, serving and export all ask.

* :func:`pick_device`: CUDA when present (``auto``), else the CPU.
* :func:`resolve_precision`: the reduced-precision dtype for a precision name on a device.
  ``auto`` means bf16 for inference on CPUs that compute it natively (AMX / AVX512-BF16,
  about 2x faster here) and mixed precision on GPUs; :func:`training_precision` decides training's
  (on CPUs: bf16 from ``BF16_TRAINING_MIN_SIZE`` px and for heads on features, float32 below).
* ``auto`` inference on a GPU is measured, not assumed: :func:`fastest_by_batch` times float32 against
  bf16/fp16 at a few batch sizes when a model loads, and each batch runs in what was faster at its size.
* ``fp32`` means IEEE float32 on GPUs too (cuDNN computes float32 convolutions in TF32 unless told not
  to: on an H100 that made fp32 answers differ from ONNX's by 8e-4); ``tf32`` asks for TF32 explicitly.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from visiontune.errors import ConfigError, option

# the names (and INFERENCE_PRECISION, the one default of everything that answers with a saved model) live in
# visiontune.choices, which the CLI reads without importing torch
from visiontune.choices import DEVICES, INFERENCE_PRECISION, PRECISIONS  # noqa: E402,F401


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


def training_precision(
    precision: str, device: torch.device, head_on_features: bool, image_size: int | None = None
) -> torch.dtype | None:
    """The autocast dtype for training.  ``auto`` on a CPU with native bf16: bf16 for a head with a hidden
    layer trained on cached features (measured 1.4-2.3x faster per epoch on one core, 1.2-1.7x on two, for
    256/512 hidden units at batch 64-256; a single linear layer gained nothing), and bf16 for networks with
    convolutions from ``BF16_TRAINING_MIN_SIZE`` px up; float32 below it, and on CPUs that emulate bf16."""
    if (
        precision == "auto"
        and device.type == "cpu"
        and native_bf16_cpu()
        and (head_on_features or (image_size is not None and image_size >= BF16_TRAINING_MIN_SIZE))
    ):
        return torch.bfloat16
    return resolve_precision(precision, device, training=True)


#: the batch sizes at which ``auto`` inference on a GPU times float32 against reduced precision
POLICY_BATCH_SIZES = (1, 4, 16, 64)


def measures_inference_precision(device: torch.device) -> bool:
    """Whether ``auto`` inference on ``device`` is decided by timing both precisions at load: on GPUs (on an
    H100 bf16 ran slower than float32 at batch 1 and faster on large batches).  CPUs follow the constants
    measured here (bf16 on native-bf16 CPUs was faster at every batch size, benchmarks/serve.py)."""
    return device.type == "cuda"


def fastest_by_batch(
    candidates: dict[str, Callable[[int], object]],
    batch_sizes=POLICY_BATCH_SIZES,
    repeats: int = 5,
    sync: Callable[[], None] = lambda: None,
) -> dict[int, dict]:
    """For each batch size, each candidate's median seconds per call (after one warm-up call; ``sync``
    waits for the device after each) and the fastest: ``{batch: {"choice": name, "seconds": {name: s}}}``.
    Candidates alternate call by call, so drift in the machine hits them alike."""
    out = {}
    for batch in batch_sizes:
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for i in range(repeats + 1):
            for name, run in candidates.items():
                sync()
                t = time.perf_counter()
                run(batch)
                sync()
                if i:  # the first call of each is its warm-up
                    times[name].append(time.perf_counter() - t)
        seconds = {name: statistics.median(ts) for name, ts in times.items()}
        out[batch] = {"choice": min(seconds, key=seconds.get), "seconds": {k: round(v, 6) for k, v in seconds.items()}}
    return out


def choice_for(policy: dict[int, dict], batch: int) -> str:
    """The measured choice for a batch of ``batch``: that of the largest measured size not above it (the
    smallest measured size for smaller batches)."""
    sizes = sorted(policy)
    below = [b for b in sizes if b <= batch]
    return policy[below[-1] if below else sizes[0]]["choice"]


#: glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _mallopt(*settings: tuple[int, int]) -> bool:
    """glibc's ``mallopt`` for each ``(parameter, value)``; False off glibc (musl has no mallopt to speak of)
    or when glibc refuses one."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all([bool(libc.mallopt(param, value)) for param, value in settings])
    except (OSError, AttributeError):
        return False


@lru_cache(maxsize=1)
def keep_freed_memory(mmap_mb: int = 32, trim_mb: int = 512) -> bool:
    """Let this process reuse the memory a training step frees instead of handing it back to the OS and
    faulting it in again on the next step.  glibc serves blocks over 128 KB with mmap and trims the heap top
    eagerly: a head-mode epoch (10k x 1280 features, 512 hidden units, batch 128) took 50k page faults, 0.18-
    0.26 s an epoch, against 0-300 faults and 0.13-0.14 s with blocks up to 32 MB kept in the heap and up to
    512 MB of free heap kept; full fine-tuning at 96 px ran 1.2x faster.  The setting stays for the rest of
    the process (glibc has no way back to its adaptive threshold).  Skipped off glibc and where the
    environment already tunes malloc (``GLIBC_TUNABLES``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``).
    Returns whether it was set."""
    import os

    if any(k in os.environ for k in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    return _mallopt((_M_MMAP_THRESHOLD, mmap_mb << 20), (_M_TRIM_THRESHOLD, trim_mb << 20))


def fewer_malloc_arenas(arenas: int = 2) -> None:
    """For servers: glibc gives each thread that allocates its own memory arena (up to 8 per core) and
    seldom hands their memory back, so request threads decoding images keep the RSS creeping up.  Two
    arenas, as ``MALLOC_ARENA_MAX=2`` would set, keep it level.  Only glibc has this; an explicit
    ``MALLOC_ARENA_MAX`` wins."""
    import os

    if not os.environ.get("MALLOC_ARENA_MAX"):
        _mallopt((_M_ARENA_MAX, arenas))


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
