"""Fine-tuning: config, loop, fast path, metrics, checkpoints."""

from visiontune.train.config import TrainConfig
from visiontune.train.loop import StopTraining, TrainResult, train

__all__ = ["StopTraining", "TrainConfig", "TrainResult", "train"]
