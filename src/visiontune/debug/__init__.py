"""The training debugger and profiler: a hook that saves tensors into the job's store, the trials API
that reads them back, SageMaker's built-in rules evaluated beside the job, system and framework
profiling, and one HTML report per job."""

from visiontune.debug import modes
from visiontune.debug.modes import ModeKeys
from visiontune.lazy import exports

# the rest loads on first use (module __getattr__): reading a job's rules or its trial imports no torch
_EXPORTS = {
    "Collection": "config",
    "HookConfig": "config",
    "SaveConfig": "config",
    "SaveConfigMode": "config",
    "Hook": "hook",
    "get_hook": "hook",
    "Tensor": "trial",
    "TensorUnavailable": "trial",
    "Trial": "trial",
    "create_trial": "trial",
}

__all__ = [
    "Collection",
    "Hook",
    "HookConfig",
    "ModeKeys",
    "SaveConfig",
    "SaveConfigMode",
    "Tensor",
    "TensorUnavailable",
    "Trial",
    "create_trial",
    "get_hook",
    "modes",
]

__getattr__ = exports(__name__, _EXPORTS)
