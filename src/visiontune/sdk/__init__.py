"""The SageMaker SDK's shape, running on this machine: port a seed notebook by changing its imports.

    sagemaker.pytorch.PyTorch            -> visiontune.sdk.PyTorch            (= Estimator: a training script)
    sagemaker.pytorch.PyTorchModel       -> visiontune.sdk.PyTorchModel
    sagemaker.tuner.HyperparameterTuner  -> visiontune.sdk.tuner.HyperparameterTuner (and the Parameters)
    sagemaker.serializers / deserializers -> visiontune.sdk.serializers / deserializers
    estimator.transformer(...)           -> visiontune.sdk.Transformer (batch transform, on this machine)
    built-in image classification        -> visiontune.sdk.ImageClassifier
    sagemaker.Session()                  -> visiontune.sdk.Session (upload_data answers the local folder)
    smdebug in the notebook's process    -> visiontune.sdk.install_smdebug_alias()

Cloud settings (``role``, ``instance_type``, ``framework_version``, ``py_version``, ``sagemaker_session``...)
are accepted and ignored with one warning.
"""

from visiontune.debug.scripts import install_smdebug_alias
from visiontune.sdk._compat import Session
from visiontune.sdk.estimator import Estimator, ImageClassifier, PyTorch, TrainingJob
from visiontune.sdk.model import Model, PyTorchModel
from visiontune.sdk.predictor import Predictor
from visiontune.sdk.transformer import Transformer
from visiontune.sdk.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
    TuningJobCompletionCriteriaConfig,
    WarmStartConfig,
    WarmStartTypes,
)

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "Estimator",
    "HyperparameterTuner",
    "ImageClassifier",
    "IntegerParameter",
    "Model",
    "Predictor",
    "PyTorch",
    "PyTorchModel",
    "Session",
    "TrainingJob",
    "Transformer",
    "TuningJobCompletionCriteriaConfig",
    "WarmStartConfig",
    "WarmStartTypes",
    "install_smdebug_alias",
]
