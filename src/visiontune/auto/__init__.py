"""``visiontune auto``: the best model for a dataset within a time budget (screen, climb, finish)."""

from visiontune.auto.run import AutoResult, auto

__all__ = ["AutoResult", "auto"]
