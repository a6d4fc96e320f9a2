"""``import smdebug.pytorch as smd``: the hook, modes, save configs and collections."""

from visiontune.debug import modes  # noqa: F401
from visiontune.debug.config import Collection as CollectionConfig  # noqa: F401
from visiontune.debug.config import SaveConfig, SaveConfigMode  # noqa: F401
from visiontune.debug.hook import Hook, get_hook  # noqa: F401
from visiontune.debug.modes import ModeKeys  # noqa: F401
from visiontune.debug.trial import create_trial  # noqa: F401


class ReductionConfig:
    def __init__(self, reductions=None, abs_reductions=None, norms=None, abs_norms=None, save_raw_tensor=False,
                 save_shape=False):
        self.reductions, self.abs_reductions = list(reductions or []), list(abs_reductions or [])
        self.norms, self.abs_norms = list(norms or []), list(abs_norms or [])
        self.save_raw_tensor = save_raw_tensor


def del_hook() -> None:
    hook = get_hook()
    if hook is not None:
        hook.close()
