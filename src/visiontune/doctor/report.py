"""The doctor's outputs: ``doctor.json`` (everything, machine-readable), ``label_issues.csv``,
``duplicates.csv`` and one self-contained ``doctor.html`` with thumbnail galleries per finding."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from pathlib import Path

#: thumbnails per gallery in the HTML report (the CSVs and the JSON list everything)
GALLERY = 48
THUMB = 96


def thumbnail(path: str) -> str | None:
    """A small PNG of the image as a data: URI, or None when it cannot be read."""
    from PIL import Image

    from visiontune.data.dataset import read_bytes

    try:
        with Image.open(io.BytesIO(read_bytes(path))) as im:
            im.draft("RGB", (THUMB, THUMB))
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, "PNG")
    except Exception:  # noqa: BLE001 - the gallery shows the name instead
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write(findings: dict, samples, out: Path) -> dict:
    """Every output file into ``out``; returns their paths by name."""
    from visiontune.paths import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "doctor.json",
        "label_issues": out / "label_issues.csv",
        "duplicates": out / "duplicates.csv",
        "html": out / "doctor.html",
    }
    atomic_write_text(files["json"], json.dumps(findings, indent=2))
    _csv(
        files["label_issues"],
        findings["label_issues"],
        ["source", "split", "label", "suggested", "suggested_probability", "label_probability"],
    )
    _csv(files["duplicates"], findings["duplicates"], ["a", "b", "split_a", "split_b", "similarity", "kind", "where"])
    atomic_write_text(files["html"], html(findings))
    return {k: str(v) for k, v in files.items()}


def html(findings: dict) -> str:
    from visiontune.web.templates import render

    thumbs: dict[str, str | None] = {}

    def thumb(path: str) -> str | None:
        if path not in thumbs:
            thumbs[path] = thumbnail(path)
        return thumbs[path]

    return render(
        "doctor.html",
        str(Path(__file__).parent / "templates"),
        f=findings,
        made=time.strftime("%Y-%m-%d %H:%M:%S"),
        issues=findings["label_issues"][:GALLERY],
        duplicates=findings["duplicates"][:GALLERY],
        outliers=findings["outliers"][:GALLERY],
        quality=findings["quality"][:GALLERY],
        thumb=thumb,
        basename=lambda p: Path(p).name,
    )
