from visiontune.debug.trial import create_trial  # noqa: F401
