"""Tasks: single-label classification, multi-label classification, semantic segmentation, object detection (one registry; a new task is one class
registered here, as a data source or a serving runtime is).

``get_task(name)``; ``task_of(config)`` reads the task an artifact was trained for (classification for
artifacts written before tasks existed)."""

from __future__ import annotations

from visiontune.registry import Registry
from visiontune.tasks.base import Task, label_set


def _builtins() -> None:
    from visiontune.tasks.classification import ClassificationTask
    from visiontune.tasks.detection import DetectionTask
    from visiontune.tasks.multilabel import MultiLabelTask
    from visiontune.tasks.segmentation import SegmentationTask

    TASKS.register(ClassificationTask())
    TASKS.register(MultiLabelTask())
    TASKS.register(SegmentationTask())
    TASKS.register(DetectionTask())


TASKS: Registry[Task] = Registry("task", load_builtins=_builtins)


def get_task(name: str) -> Task:
    return TASKS.get(name)


def task_of(config: dict) -> tuple[Task, dict]:
    """The task and its extras (thresholds...) recorded in an artifact's ``config.json``."""
    doc = config.get("task")
    if not isinstance(doc, dict):  # artifacts of visiontune 0.x wrote "image-classification"
        doc = {"name": "classification"}
    return get_task(doc["name"]), {k: v for k, v in doc.items() if k != "name"}


__all__ = ["TASKS", "Task", "get_task", "label_set", "task_of"]
