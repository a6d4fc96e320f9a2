"""What ``auto`` leaves beside the model: ``leaderboard.json`` / ``.csv`` (every run with its phase, mode,
size, epochs, seconds and validation score), ``best_vs_time.png`` (the best score so far against the budget's
seconds: whether more time would have helped), ``auto.json`` (the choice, the test score, the decision path)
and a self-contained ``report.html`` with all of it."""

from __future__ import annotations

import base64
import csv
import json
import time
from pathlib import Path

COLUMNS = [
    "rank",
    "id",
    "phase",
    "model",
    "image_size",
    "mode",
    "epochs",
    "seconds",
    "ended_s",
    "score",
    "status",
    "job",
]


def leaderboard(state: dict) -> list[dict]:
    """Every run, best validation score first (runs without a score last, in the order they ran)."""
    rows = []
    for r in state.get("runs", []):
        cfg = r.get("config", {})
        rows.append(
            {
                "id": r["id"],
                "phase": r["phase"],
                "model": cfg.get("model"),
                "image_size": cfg.get("image_size"),
                "mode": cfg.get("mode", "head")
                + (f" {cfg.get('trainable_stages', 1)}" if cfg.get("mode") == "partial" else ""),
                "epochs": r.get("epochs_done") if r.get("epochs_done") is not None else cfg.get("epochs"),
                "planned_epochs": cfg.get("epochs"),
                "learning_rate": cfg.get("learning_rate"),
                "augmentation": cfg.get("augmentation"),
                "label_smoothing": cfg.get("label_smoothing"),
                "seconds": r.get("seconds"),
                "ended_s": r.get("ended_s"),
                "score": r.get("score"),
                "status": r.get("status"),
                "job": r.get("job"),
                "chosen": r["id"] == state.get("chosen"),
                "rank": None,
            }
        )
    scored = sorted((x for x in rows if x["score"] is not None), key=lambda x: -x["score"])
    for i, x in enumerate(scored, 1):
        x["rank"] = i
    return scored + [x for x in rows if x["score"] is None]


def best_over_time(state: dict) -> list[tuple[float, float]]:
    """(budget second, best validation score so far) after each run that ended with a score."""
    points, best = [], None
    for r in sorted(state.get("runs", []), key=lambda r: r.get("ended_s") or 0):
        if r.get("score") is None or r.get("ended_s") is None:
            continue
        best = r["score"] if best is None else max(best, r["score"])
        points.append((float(r["ended_s"]), best))
    return points


def plot(state: dict, path: Path) -> None:
    from visiontune.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    colours = {"screen": "#6b7a8f", "climb": "#2f7ebc", "final": "#c2410c"}
    for phase, colour in colours.items():
        pts = [
            (r["ended_s"], r["score"])
            for r in state.get("runs", [])
            if r["phase"] == phase and r.get("score") is not None
        ]
        if pts:
            ax.scatter(*zip(*pts), s=18, color=colour, label=phase, zorder=3)
    best = best_over_time(state)
    if best:
        xs, ys = zip(*best)
        ax.step(
            [*xs, state.get("spent_s", xs[-1])],
            [*ys, ys[-1]],
            where="post",
            color="#111",
            lw=1.2,
            label="best so far",
        )
    ax.axvline(state.get("time_limit_s", 0), color="#999", ls="--", lw=1, label="time limit")
    ax.set_xlabel("seconds of the budget")
    ax.set_ylabel(f"validation {state.get('metric', 'score')}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summary(state: dict) -> dict:
    chosen = next((r for r in state.get("runs", []) if r["id"] == state.get("chosen")), None)
    return {
        "data": state.get("data"),
        "task": state.get("task"),
        "metric": state.get("metric"),
        "time_limit_s": state.get("time_limit_s"),
        "seconds": state.get("spent_s"),
        "stopped": state.get("stopped", False),
        "chosen": None
        if chosen is None
        else {
            "id": chosen["id"],
            "phase": chosen["phase"],
            "job": chosen.get("job"),
            "config": chosen.get("config"),
            "validation": chosen.get("score"),
        },
        "test": state.get("test"),
        "decisions": state.get("decisions", []),
        "counts": state.get("counts"),
    }


def write(state: dict, out: Path) -> dict:
    """Every report file into ``out``; returns their paths by name."""
    from visiontune.paths import atomic_write_text
    from visiontune.web.templates import render

    files = {
        "summary": out / "auto.json",
        "leaderboard": out / "leaderboard.json",
        "csv": out / "leaderboard.csv",
        "plot": out / "best_vs_time.png",
        "html": out / "report.html",
    }
    rows = leaderboard(state)
    atomic_write_text(files["summary"], json.dumps(summary(state), indent=2))
    atomic_write_text(files["leaderboard"], json.dumps(rows, indent=2))
    with open(files["csv"], "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    plot(state, files["plot"])
    picture = "data:image/png;base64," + base64.b64encode(files["plot"].read_bytes()).decode()
    html = render(
        "auto.html",
        str(Path(__file__).parent / "templates"),
        s=summary(state),
        rows=rows,
        picture=picture,
        made=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    atomic_write_text(files["html"], html)
    return {k: str(v) for k, v in files.items()}
