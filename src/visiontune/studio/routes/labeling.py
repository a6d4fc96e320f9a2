"""Labeling jobs as the studio shows them (``visiontune label status``) and "Export and train"."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from visiontune.studio.context import Studio, studio
from visiontune.studio.uploads import safe_name

router = APIRouter(prefix="/api/label")


@router.get("")
def api_labeling(s: Studio = Depends(studio)):
    """Labeling jobs: progress, answers, workers, agreement."""
    from visiontune.label.jobs import status
    from visiontune.label.store import LabelStore

    labels = LabelStore(s.store)
    return [{**status(j.name, labels), "multi_label": j.multi_label} for j in labels.list_jobs()]


@router.post("/{name}/export")
def api_label_export(name: str, s: Studio = Depends(studio)):
    """The labels so far as train/validation manifests split 80/20 (``label.export.export(NAME, DIR,
    for_training=True)``), written into the uploads root so the Train page can use them."""
    from visiontune.label.export import export
    from visiontune.label.store import LabelStore
    from visiontune.paths import timestamped

    dest = s.roots.uploads / timestamped(f"labels-{safe_name(name, 'labeling job')}")
    written = export(name, dest, split=0.8, for_training=True, store=LabelStore(s.store))
    index, rel = s.roots.relative(dest)
    return {
        "root": index,
        "path": rel,
        "train_images": written.get("train_images"),
        "validation_images": written.get("validation_images"),
        "notes": written.get("notes"),
    }
