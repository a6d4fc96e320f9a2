"""visiontune: fine-tune, evaluate and serve image classifiers on your own machine."""

__version__ = "0.1.0"

from visiontune.artifact import load_model  # noqa: E402
from visiontune.errors import VisiontuneError  # noqa: E402
from visiontune.train import TrainConfig, train  # noqa: E402

__all__ = ["__version__", "load_model", "train", "TrainConfig", "VisiontuneError"]
