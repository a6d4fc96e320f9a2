"""Labeling jobs: a Ground Truth you run yourself.  ``create`` a job over a folder or manifest, add
workers (each gets a secret link), ``serve`` the web app, read ``status`` (every image's label:
``job_labels``; the answers consolidated: ``consolidate_job``, ``consolidate_multilabel`` for several labels
per image), ``export`` the augmented manifest (and class folders, train/validation splits; ``for_training``:
the folder the Train page reads) the engine trains on.  A job made with ``auto_label=True`` is labelled
partly by a model: ``auto_label_round`` runs a round (``serve`` runs them)."""

from visiontune.lazy import exports, keep_functions

# the names load on first use (module __getattr__): listing jobs imports no torch (auto-labeling's features do)
_EXPORTS = {
    "AutoLabelSettings": ("active", "AutoLabelSettings"),
    "auto_label_round": ("active", "run_round"),
    "export": ("export", "export"),
    "records": ("export", "records"),
    "consolidated": ("results", "consolidated"),
    "consolidate_job": ("results", "consolidate_job"),
    "consolidate_multilabel": ("consolidate", "consolidate_multilabel"),
    "job_labels": ("results", "job_labels"),
    "create": ("jobs", "create"),
    "scan_images": ("jobs", "scan_images"),
    "status": ("jobs", "status"),
    "LabelJob": ("store", "LabelJob"),
    "LabelJobNotFound": ("store", "LabelJobNotFound"),
    "LabelStore": ("store", "LabelStore"),
}

__all__ = [
    "AutoLabelSettings",
    "auto_label_round",
    "LabelJob",
    "LabelJobNotFound",
    "LabelStore",
    "consolidate_job",
    "consolidate_multilabel",
    "consolidated",
    "create",
    "export",
    "job_labels",
    "records",
    "scan_images",
    "status",
]

__getattr__ = exports(__name__, _EXPORTS)
keep_functions(__name__, _EXPORTS)  # (visiontune.label.export is the function)
