"""Fine-tuning: config, loop, fast path, metrics, checkpoints."""

from visiontune.lazy import exports
from visiontune.train.config import TrainConfig

__all__ = ["StopTraining", "TrainConfig", "TrainResult", "train"]

# the loop (torch) loads on first use: the CLI reads TrainConfig without it
__getattr__ = exports(__name__, {"StopTraining": "loop", "TrainResult": "loop", "train": "loop"})
