"""Labeling jobs: a Ground Truth you run yourself.  ``create`` a job over a folder or manifest, add
workers (each gets a secret link), ``serve`` the web app, read ``status``, ``export`` the augmented
manifest (and class folders, train/validation splits) the engine trains on.  A job made with
``auto_label=True`` is labelled partly by a model: ``auto_label_round`` runs a round (``serve`` runs them)."""

from visiontune.label.active import AutoLabelSettings
from visiontune.label.active import run_round as auto_label_round
from visiontune.label.export import export, records
from visiontune.label.consolidate import consolidated
from visiontune.label.jobs import create, scan_images, status
from visiontune.label.store import LabelJob, LabelJobNotFound, LabelStore

__all__ = ["AutoLabelSettings", "auto_label_round", "LabelJob", "LabelJobNotFound", "LabelStore", "consolidated",
           "create", "export", "records", "scan_images", "status"]
