"""Labeling jobs: a Ground Truth you run yourself.  ``create`` a job over a folder or manifest, add
workers (each gets a secret link), ``serve`` the web app, read ``status``, ``export`` the augmented
manifest (and class folders, train/validation splits) the engine trains on."""

from visiontune.label.export import export, records
from visiontune.label.jobs import consolidated, create, scan_images, status
from visiontune.label.store import LabelJob, LabelJobNotFound, LabelStore

__all__ = ["LabelJob", "LabelJobNotFound", "LabelStore", "consolidated", "create", "export", "records",
           "scan_images", "status"]
