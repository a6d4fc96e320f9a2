"""The report's charts: matplotlib figures drawn into inline ``<svg>`` markup (no files, no fonts: text
stays text).  Each function returns a :class:`Chart`, or a :class:`Skip` sentence saying why there is none;
a chart that fails to draw is a Skip too, never a broken report."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from visiontune.debug.modes import ModeKeys, as_mode
from visiontune.debug.report.data import COMPONENTS, JobData, step_rows, step_split
from visiontune.debug.trial import Trial

#: Most points a line is drawn with (longer series are thinned; means are taken on every point).
MAX_POINTS = 2000

MODE_COLORS = {"TRAIN": "#1f77b4", "EVAL": "#ff7f0e", "PREDICT": "#2ca02c", "GLOBAL": "#7f7f7f"}
COMPONENT_COLORS = {
    "data": "#d62728",
    "forward": "#1f77b4",
    "backward": "#ff7f0e",
    "optimizer": "#2ca02c",
    "other": "#9a9a9a",
}
_RC = {
    "svg.fonttype": "none",
    "font.size": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "axes.titlesize": 9,
}


@dataclass(frozen=True)
class Chart:
    """A drawn chart: ``svg`` is matplotlib's markup (trusted: it escapes the text it draws)."""

    kind: ClassVar[str] = "chart"
    name: str
    svg: str
    caption: str = ""


@dataclass(frozen=True)
class Skip:
    """No chart, and the sentence that says why."""

    kind: ClassVar[str] = "skip"
    sentence: str


def chart(name: str, draw: Callable, size=(7.0, 3.0), caption: str = "") -> Chart | Skip:
    """``draw(fig)`` on a new matplotlib figure, as a :class:`Chart` named ``name``."""
    import matplotlib
    from matplotlib.figure import Figure

    try:
        with matplotlib.rc_context({**_RC, "svg.hashsalt": f"visiontune-{name}"}):
            fig = Figure(figsize=size, layout="constrained")
            draw(fig)
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
    except Exception as e:  # noqa: BLE001
        return Skip(f"The {name} chart could not be drawn ({type(e).__name__}: {e}).")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return Chart(name, svg, caption)


def thin(x, *ys):
    """At most MAX_POINTS points of each series (every k-th, and the last)."""
    n = len(x)
    if n <= MAX_POINTS:
        return (list(x), *[list(y) for y in ys])
    idx = sorted(set(range(0, n, math.ceil(n / MAX_POINTS))) | {n - 1})
    return ([x[i] for i in idx], *[[y[i] for i in idx] for y in ys])


def rolling(v: list[float], k: int) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if k <= 1 or len(a) < k:
        return a
    c = np.cumsum(np.insert(a, 0, 0.0))
    head = c[1:k] / np.arange(1, k)
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


def _line(ax, x, y, label=None, color=None, **kw):
    x, y = thin(x, y)
    marker = kw.pop("marker", None)
    if len(x) < 3 or (marker and len(x) > 60):
        marker = "o" if len(x) < 3 else None
    ax.plot(x, y, label=label, color=color, marker=marker, markersize=3.5, linewidth=1.3, **kw)


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[1]:
        ax.legend(**kw)


def _epoch_axis(ax, ylabel: str, title: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)


# -- curves ------------------------------------------------------------------------------------------------
def history_charts(data: JobData) -> list[Chart | Skip]:
    """Train vs. validation loss and accuracy per epoch (metrics.json's history), and the learning rate."""
    h = data.history
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(h)]
    best = data.metrics.get("best_epoch")

    def series(key):
        pts = [(e, r[key]) for e, r in zip(epochs, h) if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    out: list[Chart | Skip] = []
    for name, keys in (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_acc", "val_acc"))):
        got = {k: series(k) for k in keys if series(k)[0]}
        if not got:
            out.append(Skip(f"No {name} curve: metrics.json's history has no {' or '.join(keys)}."))
            continue

        def draw(fig, got=got, name=name):
            ax = fig.add_subplot()
            for k, (x, y) in got.items():
                train = k.startswith("train")
                _line(
                    ax, x, y, "train" if train else "validation", MODE_COLORS["TRAIN" if train else "EVAL"], marker="o"
                )
            if best:
                ax.axvline(best, color="#555", linestyle=":", linewidth=1, label=f"best epoch ({best})")
            _epoch_axis(ax, name, f"train vs. validation {name}, per epoch")
            _legend(ax)

        out.append(chart(name, draw))
    x, y = series("lr")
    if x:

        def draw_lr(fig):
            ax = fig.add_subplot()
            _line(ax, x, y, "learning rate", "#8c564b", marker="o")
            _epoch_axis(ax, "learning rate", "learning rate, per epoch")

        out.append(chart("learning-rate", draw_lr, size=(7.0, 2.2)))
    return out


def tensor_curve_charts(data: JobData) -> list[Chart | Skip]:
    """Curves from the tensors, for a job without an epoch history (a script): per-pass mean loss in TRAIN
    and EVAL, and any accuracy or other scalar the script saved."""
    trial = data.trial
    losses = trial.tensor_names(collection="losses")
    scalars = sorted(set(trial.tensor_names(collection="scalars")) | set(trial.tensor_names(collection="default")))
    acc = [n for n in scalars if "acc" in n.lower()]
    out = [_pass_loss_chart(trial, losses), _accuracy_chart(trial, acc)]
    scalars_chart = _scalars_chart(trial, [n for n in scalars if n not in acc and n not in losses])
    return out + ([scalars_chart] if scalars_chart is not None else [])


def _pass_means(trial: Trial, name: str) -> tuple[list, list]:
    from visiontune.debug.rules.debugger import passes

    train, ev, n_train = [], [], 0
    for mode, vals in passes(trial, name):
        mean = float(np.mean([v for _, v in vals]))
        if mode == ModeKeys.TRAIN:
            n_train += 1
            train.append((n_train, mean))
        elif mode == ModeKeys.EVAL:
            ev.append((max(n_train, 1), mean))
    return train, ev


def _pass_loss_chart(trial: Trial, losses: list[str]) -> Chart | Skip:
    from matplotlib.ticker import MaxNLocator

    per_loss = {n: means for n in losses[:4] if any(means := _pass_means(trial, n))}
    if not per_loss:
        return Skip(
            "No loss curve: the job saved no tensor in the losses collection (register_loss(...) "
            "saves one) and wrote no metrics.json."
        )

    def draw(fig):
        ax = fig.add_subplot()
        for name, (train, ev) in per_loss.items():
            suffix = f" ({name})" if len(per_loss) > 1 else ""
            if train:
                _line(
                    ax, [p[0] for p in train], [p[1] for p in train], "train" + suffix, MODE_COLORS["TRAIN"], marker="o"
                )
            if ev:
                _line(
                    ax,
                    [p[0] for p in ev],
                    [p[1] for p in ev],
                    "validation (EVAL)" + suffix,
                    MODE_COLORS["EVAL"],
                    marker="o",
                )
        ax.set_xlabel("training pass (epoch)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("mean loss")
        ax.set_title("train vs. validation loss: the mean of each pass over the data")
        _legend(ax)

    return chart(
        "loss",
        draw,
        caption="From the losses collection: each run of TRAIN (or EVAL) steps is one pass; its mean is one point.",
    )


def _accuracy_chart(trial: Trial, acc: list[str]) -> Chart | Skip:
    got = {(n, m.name): trial.series(n, m) for n in acc for m in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.GLOBAL)}
    got = {k: v for k, v in got.items() if v[0]}
    if not got:
        return Skip(
            "No accuracy curve: the job saved no scalar with 'acc' in its name "
            "(hook.save_scalar('val_acc', value) saves one)."
        )

    def draw(fig):
        ax = fig.add_subplot()
        for (n, mode), (x, y) in got.items():
            _line(ax, x, y, f"{n} ({mode})", MODE_COLORS.get(mode) if len(acc) == 1 else None, marker="o")
        ax.set_xlabel("step (of its mode)")
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy saved by the job")
        _legend(ax)

    return chart("accuracy", draw)


def _scalars_chart(trial: Trial, others: list[str]) -> Chart | Skip | None:
    got: dict[str, dict[str, tuple]] = {}
    for n in others[:6]:
        for m in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.GLOBAL):
            x, y = trial.series(n, m)
            if x:
                got.setdefault(n, {})[m.name] = (x, y)
    if not got:
        return None

    def draw(fig):
        axes = fig.subplots(1, len(got), squeeze=False)[0]
        for ax, (n, modes) in zip(axes, got.items()):
            for mode, (x, y) in modes.items():
                _line(ax, x, y, mode, MODE_COLORS.get(mode))
            ax.set_title(n)
            ax.set_xlabel("step")
            _legend(ax)

    return chart("scalars", draw, size=(min(3.2 * len(got), 10.0), 2.6))


def loss_step_chart(data: JobData) -> Chart | Skip:
    """The loss tensors as saved, every step, one panel per mode, with a running mean on long series."""
    from matplotlib.ticker import MaxNLocator

    trial = data.trial
    losses = trial.tensor_names(collection="losses")[:4]
    got: dict[str, dict[str, tuple]] = {}
    for mode in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT):
        for n in losses:
            x, y = trial.series(n, mode)
            if x:
                got.setdefault(mode.name, {})[n] = (x, y)
    if not got:
        return Skip("No per-step loss: no tensor of the losses collection was saved.")

    def draw(fig):
        axes = fig.subplots(1, len(got), squeeze=False)[0]
        for ax, (mode, series) in zip(axes, got.items()):
            for n, (x, y) in series.items():
                _line(
                    ax,
                    x,
                    y,
                    n if len(series) > 1 else None,
                    MODE_COLORS[mode] if len(series) == 1 else None,
                    alpha=0.55 if len(x) > 20 else 1.0,
                )
                if len(x) > 20:
                    k = max(2, len(x) // 20)
                    xs, ys = thin(x, list(rolling(y, k)))
                    ax.plot(xs, ys, color="#222", linewidth=1.2, label=f"running mean ({k} steps)")
            ax.set_title(f"{mode} loss, every saved step")
            ax.set_xlabel(f"{mode} step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _legend(ax)

    return chart(
        "loss-steps",
        draw,
        size=(min(3.6 * len(got), 10.0) if len(got) > 1 else 7.0, 2.8),
        caption="The loss tensors as saved, per mode (each mode counts its own steps).",
    )


# -- system and step time ------------------------------------------------------------------------------------
def system_chart(data: JobData) -> Chart | Skip:
    """CPU (per-core range, mean, the job's processes, I/O wait), memory, disk and network, and GPUs."""
    rows = [r for r in data.profile.system if isinstance(r.get("cpu"), list)]
    if not rows:
        if data.profile.start:
            return Skip(
                "No system-usage timeline: the job ended before the system monitor's first sample "
                "(--profile-interval sets how often it samples)."
            )
        return Skip(
            "No system-usage timeline: this job has no system.jsonl (the system monitor runs beside the "
            "built-in engine and script jobs, not beside a bare hook; --profile-interval 0 turns it off)."
        )
    t0 = data.profile.start.get("t") or rows[0]["t"]
    x = [r["t"] - t0 for r in rows]
    gpus = max(len(r.get("gpus") or []) for r in rows)

    def draw(fig):
        axes = fig.subplots(3 + (1 if gpus else 0), 1, sharex=True)
        _draw_cpu(axes[0], x, rows, data.profile.cores)
        _line(axes[1], x, [r.get("memory") or 0.0 for r in rows], "memory used (machine)", "#2ca02c")
        axes[1].set_ylabel("memory %")
        _legend(axes[1], loc="upper right")
        _draw_io(axes[2], x, rows)
        if gpus:
            _draw_gpus(axes[3], x, rows, gpus)
        axes[-1].set_xlabel("seconds since the monitor started")

    return chart("system", draw, size=(7.5, 2.0 * (3 + (1 if gpus else 0))))


def _draw_cpu(ax, x, rows, cores: int) -> None:
    cpu = [np.asarray(r["cpu"] or [0.0], dtype=float) for r in rows]
    xs, lo, hi, mean = thin(x, [c.min() for c in cpu], [c.max() for c in cpu], [c.mean() for c in cpu])
    ax.fill_between(xs, lo, hi, color="#1f77b4", alpha=0.2, linewidth=0, label=f"per-core range ({cores} cores)")
    _line(ax, xs, mean, "CPU, mean of cores", "#1f77b4")
    if any("process_cpu" in r for r in rows):
        _line(ax, x, [(r.get("process_cpu") or 0.0) / max(cores, 1) for r in rows], "this job's processes", "#9467bd")
    if any("iowait" in r for r in rows):
        _line(ax, x, [r.get("iowait") or 0.0 for r in rows], "I/O wait", "#d62728")
    ax.set_ylabel("CPU %")
    ax.set_ylim(0, 105)
    _legend(ax, loc="upper right", ncols=2)
    ax.set_title("system usage over the job")


def _draw_io(ax, x, rows) -> None:
    for key, label, color in (
        ("disk_read_mb_s", "disk read", "#1f77b4"),
        ("disk_write_mb_s", "disk write", "#ff7f0e"),
        ("net_mb_s", "network", "#7f7f7f"),
    ):
        if any(key in r for r in rows):
            _line(ax, x, [r.get(key) or 0.0 for r in rows], label, color)
    ax.set_ylabel("MB/s")
    _legend(ax, loc="upper right", ncols=3)


def _draw_gpus(ax, x, rows, gpus: int) -> None:
    for i in range(gpus):
        for key, style in (("util", "-"), ("memory", "--")):
            vals = [((r.get("gpus") or [])[i] if i < len(r.get("gpus") or []) else {}).get(key) for r in rows]
            pts = [(a, v) for a, v in zip(x, vals) if v is not None]
            if pts:
                _line(ax, [p[0] for p in pts], [p[1] for p in pts], f"GPU {i} {key}", None, linestyle=style)
    ax.set_ylabel("GPU %")
    ax.set_ylim(0, 105)
    _legend(ax, loc="upper right", ncols=2)


def step_chart(data: JobData) -> Chart | Skip:
    """The mean TRAIN step split into its parts (bars), and every timed step split (stacked)."""
    rows = step_rows(data)
    if not rows:
        return Skip("No step-time breakdown: no training step was timed (framework-worker-*.jsonl has no TRAIN steps).")
    split = step_split(rows)
    parts = [c for c in (*COMPONENTS, "other") if c in split]
    series = {c: [1000 * (r.get(c) or 0.0) for r in rows] for c in parts if c != "other"}
    series["other"] = [
        max(0.0, 1000 * r["step_seconds"] - sum(series[c][i] for c in series if c != "other"))
        for i, r in enumerate(rows)
    ]
    order = sorted(range(len(rows)), key=lambda i: (rows[i].get("worker", ""), rows[i]["step"]))
    steps = [rows[i]["step"] for i in order]
    ys = [[series[c][i] for i in order] for c in parts]

    def draw(fig):
        left, right = fig.subplots(1, 2, width_ratios=[1, 2])
        _draw_mean_split(left, split, parts)
        _draw_each_step(right, steps, ys, parts)

    return chart("step-time", draw, size=(8.0, 2.8))


def _draw_mean_split(ax, split: dict, parts: list[str]) -> None:
    means = [1000 * split[c] for c in parts]
    bars = ax.barh(parts[::-1], means[::-1], color=[COMPONENT_COLORS[c] for c in parts[::-1]])
    for b, v in zip(bars, means[::-1]):
        ax.text(
            b.get_width(),
            b.get_y() + b.get_height() / 2,
            f" {v:.1f} ms ({v / (1000 * split['step']):.0%})" if split["step"] else f" {v:.1f} ms",
            va="center",
            fontsize=7.5,
        )
    ax.set_xlabel("mean ms per step")
    ax.set_title(f"mean TRAIN step: {1000 * split['step']:.1f} ms")
    ax.set_xlim(0, max(means + [1e-6]) * 1.6)


def _draw_each_step(ax, steps: list, ys: list[list[float]], parts: list[str]) -> None:
    if len(steps) >= 2:
        xs, *thinned = thin(list(range(len(steps))), *ys)
        ax.stackplot(
            [steps[i] for i in xs], *thinned, labels=parts, colors=[COMPONENT_COLORS[c] for c in parts], alpha=0.85
        )
    else:
        bottom = 0.0
        for c, y in zip(parts, ys):
            ax.bar(steps, y, bottom=bottom, color=COMPONENT_COLORS[c], label=c)
            bottom += y[0]
    ax.set_xlabel("TRAIN step")
    ax.set_ylabel("ms")
    ax.set_title("each step, split")
    _legend(ax, loc="upper right", ncols=len(parts))


# -- confusion and rules --------------------------------------------------------------------------------------
def confusion_chart(cm: np.ndarray, classes: list[str]) -> Chart | Skip:
    """The confusion matrix, each row as shares of its true class (counts written in up to 15 classes)."""
    n = cm.shape[0]

    def draw(fig):
        ax = fig.add_subplot()
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
        if n <= 40:
            mesh = ax.pcolormesh(
                np.arange(n + 1) - 0.5,
                np.arange(n + 1) - 0.5,
                norm,
                cmap="Blues",
                vmin=0,
                vmax=1,
                edgecolors="#ffffff",
                linewidth=0.3,
            )
            ax.set_xlim(-0.5, n - 0.5)
            ax.set_ylim(n - 0.5, -0.5)
        else:
            mesh = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        ax.grid(False)
        fig.colorbar(mesh, ax=ax, shrink=0.8, label="share of the true class")
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            str(int(cm[i, j])),
                            ha="center",
                            va="center",
                            fontsize=7.5,
                            color="white" if norm[i, j] > 0.6 else "#222",
                        )
        if n <= 40:
            ax.set_xticks(
                range(n), [c[:18] for c in classes], rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center"
            )
            ax.set_yticks(range(n), [c[:18] for c in classes])
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title("confusion matrix (rows: true class)")

    side = min(3.0 + 0.32 * n, 12.0)
    return chart("confusion", draw, size=(side + 1.2, side))


def _evidence_series(trial: Trial, tensor: str, mode: str, keys: list[str]):
    """(steps, values, what) of the series an evidence row points at, or None."""
    if not trial.has_tensor(tensor):
        return None
    try:
        m = as_mode(mode or "TRAIN")
    except Exception:  # noqa: BLE001
        m = ModeKeys.TRAIN
    for key in [*keys, None, "abs_mean", "mean", "l2"]:
        try:
            x, y = trial.series(tensor, m, key)
        except Exception:  # noqa: BLE001 - an evidence value that is not a reduction (ratio, mean_before...)
            continue
        if x:
            return x, y, key or "value"
    return None


def _evidence_groups(rule: dict) -> dict[tuple[str, str], dict]:
    """{(tensor, mode): {"steps": the steps the evidence names, "keys": its numeric fields}}."""
    groups: dict[tuple[str, str], dict] = {}
    for ev in rule.get("evidence") or []:
        if not isinstance(ev, dict) or not isinstance(ev.get("tensor"), str):
            continue
        g = groups.setdefault((ev["tensor"], str(ev.get("mode") or "TRAIN")), {"steps": [], "keys": []})
        if isinstance(ev.get("step"), int):
            g["steps"].append(ev["step"])
        g["keys"] += [
            k
            for k, v in ev.items()
            if k not in ("tensor", "mode", "step") and isinstance(v, (int, float)) and k not in g["keys"]
        ]
    return groups


def rule_chart(data: JobData, rule: dict) -> Chart | Skip | None:
    """The tensor series a finding's evidence names, with the steps that triggered it marked (None: the
    evidence names no step, and its table says it all)."""
    groups = _evidence_groups(rule)
    found = []
    for (tensor, mode), g in groups.items():
        if not g["steps"]:
            continue  # nothing to mark (a count, a class): the evidence table says it
        s = _evidence_series(data.trial, tensor, mode, g["keys"])
        if s is not None:
            found.append((tensor, mode, g["steps"], *s))
        if len(found) == 3:
            break
    if not found:
        if not any(g["steps"] for g in groups.values()):
            return None
        return Skip(
            "No chart for this finding: the tensor its evidence names has no saved series of single values to draw."
        )

    def draw(fig):
        for ax, item in zip(fig.subplots(1, len(found), squeeze=False)[0], found):
            _draw_evidence(ax, *item)

    return chart(f"rule-{rule['name']}", draw, size=(min(3.6 * len(found), 10.0) if len(found) > 1 else 6.5, 2.6))


def _draw_evidence(ax, tensor: str, mode: str, marks: list[int], x, y, what: str) -> None:
    from matplotlib.ticker import MaxNLocator

    _line(ax, x, y, what, MODE_COLORS.get(mode.upper(), "#1f77b4"))
    at = dict(zip(x, y))
    hit = [s for s in marks if s in at]
    if hit:
        ax.scatter(hit, [at[s] for s in hit], color="#d62728", zorder=5, s=28, label="evidence")
    for s in marks:
        if s not in at:
            ax.axvline(s, color="#d62728", linestyle="--", linewidth=1)
    ax.set_title(f"{tensor[-48:]} ({mode}): {what}")
    ax.set_xlabel(f"{mode} step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(ax)
