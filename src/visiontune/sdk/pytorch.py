"""``from visiontune.sdk.pytorch import PyTorch, PyTorchModel`` (was ``sagemaker.pytorch``)."""

from visiontune.sdk.estimator import PyTorch
from visiontune.sdk.model import PyTorchModel

__all__ = ["PyTorch", "PyTorchModel"]
