"""smdebug's API on visiontune's debugger.

visiontune puts this folder on a script job's import path only (``--debugger-compat smdebug``, on by
default for scripts that import smdebug); it is never installed as a package.  Scripts written for
SageMaker Debugger run unchanged, and their tensors are read with ``visiontune.debug.create_trial``."""

from visiontune.debug import modes  # noqa: F401
from visiontune.debug.config import SaveConfig, SaveConfigMode  # noqa: F401
from visiontune.debug.hook import get_hook  # noqa: F401
from visiontune.debug.modes import ModeKeys  # noqa: F401

__version__ = "1.0.34+visiontune"
