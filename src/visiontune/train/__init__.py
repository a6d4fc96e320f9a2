"""Fine-tuning: config, loop, fast path, metrics, checkpoints."""

from visiontune.train.config import TrainConfig
from visiontune.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
