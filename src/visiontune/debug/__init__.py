"""The training debugger and profiler: a hook that saves tensors into the job's store, the trials API
that reads them back, SageMaker's built-in rules evaluated beside the job, system and framework
profiling, and one HTML report per job."""

from visiontune.debug import modes
from visiontune.debug.config import Collection, HookConfig, SaveConfig, SaveConfigMode
from visiontune.debug.hook import Hook, get_hook
from visiontune.debug.modes import ModeKeys
from visiontune.debug.trial import Tensor, TensorUnavailable, Trial, create_trial

__all__ = ["Collection", "Hook", "HookConfig", "ModeKeys", "SaveConfig", "SaveConfigMode", "Tensor",
           "TensorUnavailable", "Trial", "create_trial", "get_hook", "modes"]
