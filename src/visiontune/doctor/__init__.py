"""``visiontune data doctor``: why a model may be bad, found in the data.

    vt.doctor("dogImages/", out="runs/doctor")   # doctor.json, label_issues.csv, duplicates.csv, doctor.html

One pass of a pretrained backbone over every image (the feature cache that head-mode training reads: computed
once, shared), then the checks of :mod:`visiontune.doctor.checks` and the outputs of
:mod:`visiontune.doctor.report`.  ``fix=True`` writes cleaned split manifests that ``visiontune train``
takes (label errors relabelled where the suggestion is sure enough, duplicates within a split kept once,
test images that leak from train or validation dropped)."""

from __future__ import annotations

from visiontune.doctor.run import DoctorResult, doctor

__all__ = ["DoctorResult", "doctor"]
