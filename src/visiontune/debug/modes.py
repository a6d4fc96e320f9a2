"""The phases a tensor is saved in, as SageMaker Debugger (smdebug) names them."""

from __future__ import annotations

from enum import IntEnum


class ModeKeys(IntEnum):
    TRAIN = 1
    EVAL = 2
    PREDICT = 3
    GLOBAL = 4


TRAIN, EVAL, PREDICT, GLOBAL = ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT, ModeKeys.GLOBAL


def as_mode(value) -> ModeKeys:
    """``ModeKeys``, an int, or a name (``"train"``, ``"EVAL"``)."""
    if isinstance(value, ModeKeys):
        return value
    if hasattr(value, "name") and str(getattr(value, "name")).upper() in ModeKeys.__members__:  # smdebug's own enum
        return ModeKeys[str(value.name).upper()]
    if isinstance(value, str) and value.upper() in ModeKeys.__members__:
        return ModeKeys[value.upper()]
    try:
        return ModeKeys(int(value))
    except (TypeError, ValueError):
        from visiontune.errors import ConfigError

        raise ConfigError(f"mode {value!r}: use one of {', '.join(ModeKeys.__members__)}") from None
