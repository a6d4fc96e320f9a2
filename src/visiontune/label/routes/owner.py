"""The owner's page and API, behind the owner's link: progress, workers, labels (people's and the model's
apart), what is not resolved, disagreements."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from visiontune.label.routes.common import image_file, label_store, render
from visiontune.web.auth import capability

router = APIRouter()


def owner(secret: str, request: Request):
    """The job the owner's link opens, or 403."""
    return capability(label_store(request).owner_job)(secret)


@router.get("/o/{secret}", response_class=HTMLResponse)
def owner_page(secret: str, request: Request, job=Depends(owner)):
    return HTMLResponse(render("owner.html", **owner_view(label_store(request), job, secret)))


@router.get("/api/o/{secret}/status")
def owner_status(request: Request, job=Depends(owner)):
    from visiontune.label.jobs import status

    return status(job.name, label_store(request))


@router.get("/api/o/{secret}/image/{item_id}")
def owner_image(item_id: int, request: Request, job=Depends(owner)):
    return image_file(label_store(request), job, item_id)


def _names(job, label) -> str:
    values = label if isinstance(label, list) else [label]
    return ", ".join(job.labels[int(v)] for v in values) or "(none)"


def _shown_label(job, row) -> str:
    if row["consolidation"] in ("tie", "pending", "unresolved"):
        return {"tie": "tie: not decided", "pending": "waiting for another answer"}.get(
            row["consolidation"], "unresolved"
        )
    return _names(job, row["label"]) if row["label"] is not None else "no label"


def _percent(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def _workers(st: dict) -> list[dict]:
    stats = st.get("worker_stats", {})
    return [
        {
            "name": w,
            "answers": n,
            "skips": stats.get(w, {}).get("skips", 0),
            "agreement": _percent(stats.get(w, {}).get("agreement")),
            "accuracy": _percent(stats.get(w, {}).get("estimated_accuracy")),
            "warning": stats.get(w, {}).get("warning"),
        }
        for w, n in sorted(st["per_worker"].items())
    ]


def _per_label(st: dict) -> list[dict]:
    """Images per label so far, people's and the model's apart (``label status``'s labels_so_far)."""
    so_far = st.get("labels_so_far", {"human": {}, "model": {}})
    names = sorted(set(so_far["human"]) | set(so_far["model"]))
    return [{"label": n, "people": so_far["human"].get(n, 0), "model": so_far["model"].get(n, 0)} for n in names]


def owner_view(store, job, secret: str) -> dict:
    """What the owner's page shows, as plain values for its template (``label status`` computes the same)."""
    from visiontune.label.results import job_labels
    from visiontune.label.jobs import status

    st = status(job.name, store)
    rows, _ = job_labels(job, store)
    image = f"/api/o/{secret}/image/"

    def votes(r) -> str:
        return "; ".join(f"{w}: {_names(job, v)}" for w, v in r["votes"].items()) or "no answers"

    split = [r for r in rows if len({repr(v) for v in r["votes"].values()}) > 1]
    split.sort(key=lambda r: r["confidence"] if r["confidence"] is not None else 0.0)
    stuck = [r for r in rows if r["consolidation"] in ("tie", "unresolved")]
    return {
        "job": job,
        "st": st,
        "auto": st.get("auto_label"),
        "workers": _workers(st),
        "skips": st.get("skips", 0),
        "few_answers": job.workers_per_image < 3 and len(st["per_worker"]) >= 2,
        "per_label": _per_label(st),
        "method": st.get("consolidation") or {},
        "problems": st.get("problems") or [],
        "per_class": sorted((st.get("per_class_agreement") or {}).items()),
        "disagreements": [
            {
                "image": f"{image}{r['item']}",
                "label": _shown_label(job, r),
                "confidence": _percent(r["confidence"]),
                "votes": votes(r),
            }
            for r in split[:50]
        ],
        "stuck": [
            {
                "image": f"{image}{r['item']}",
                "votes": votes(r),
                "kind": "tie"
                if r["consolidation"] == "tie"
                else f"skipped by {', '.join(r['skipped_by'])}"
                if r["skips"]
                else "unresolved",
            }
            for r in stuck[:100]
        ],
    }
