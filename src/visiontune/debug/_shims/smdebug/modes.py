from visiontune.debug.modes import EVAL, GLOBAL, PREDICT, TRAIN, ModeKeys  # noqa: F401
