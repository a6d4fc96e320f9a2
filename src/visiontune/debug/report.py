"""``visiontune report JOB``: one self-contained HTML file per training job, and a one-screen summary.

The report holds the training summary, train vs. validation loss and accuracy curves, every rule's
result with its evidence (the steps and values that triggered it), an explanation and a recommendation,
the system-usage timelines, the step-time breakdown, the profiler rules' findings, the confusion matrix
with the most-confused class pairs, and every warning (tensors a save config left with too few points, a
regex that matched nothing, a damaged store).  Charts are drawn by matplotlib into inline ``<svg>``; the
file loads nothing from anywhere (no scripts, no fonts, no images from outside it).
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from visiontune.debug.modes import ModeKeys, as_mode
from visiontune.debug.profiler import Profile
from visiontune.debug.rules.runner import read_rules
from visiontune.debug.trial import Trial, debug_dir
from visiontune.errors import ConfigError
from visiontune.paths import atomic_write_text

REPORT_FILE = "report.html"
#: The parts of a training step the profiler times (the rest of a step is "other").
COMPONENTS = ("data", "forward", "backward", "optimizer")
STATUS_ORDER = ("IssuesFound", "Error", "InProgress", "NoIssuesFound", "NotRun")
#: Most points a line is drawn with (longer series are thinned; means are taken on every point).
MAX_POINTS = 2000
#: A tensor with fewer points than this in a mode is too short for a rule or a chart to read a trend.
MIN_POINTS = 3

_MODE_COLORS = {"TRAIN": "#1f77b4", "EVAL": "#ff7f0e", "PREDICT": "#2ca02c", "GLOBAL": "#7f7f7f"}
_COMPONENT_COLORS = {"data": "#d62728", "forward": "#1f77b4", "backward": "#ff7f0e", "optimizer": "#2ca02c",
                     "other": "#9a9a9a"}

# the evaluated rules of a job whose rules.json was missing, kept for terminal_summary after build_report
_EVALUATED: dict[tuple, dict] = {}
# where build_report last wrote each job's report (terminal_summary names it)
_WRITTEN: dict[Path, Path] = {}


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# -- what the report reads ------------------------------------------------------------------------------
@dataclass
class JobData:
    """Everything a report is made from, read once."""

    folder: Path                  # the debug folder
    run: Path                     # the job's output folder
    name: str
    kind: str                     # "builtin" (the engine) or "script"
    record: object = None         # the job store's Job, when the report was asked for by job name
    metrics: dict = field(default_factory=dict)
    trial: Trial | None = None
    profile: Profile | None = None
    rules: dict = field(default_factory=dict)
    rules_note: str = ""          # how the rules' results were obtained, when not from rules.json
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (source, message)
    few_points: list[dict] = field(default_factory=list)

    @property
    def history(self) -> list[dict]:
        h = self.metrics.get("history")
        return [r for r in h if isinstance(r, dict)] if isinstance(h, list) else []

    def rules_of(self, kind: str) -> list[dict]:
        return [r for r in self.rules.get("rules", []) if r.get("kind", "debug") == kind]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rules.get("rules", []):
            out[r.get("status", "?")] = out.get(r.get("status", "?"), 0) + 1
        return out


def _store_job(job_or_path):
    """The job store's record of a job named ``job_or_path`` (None for a folder)."""
    if Path(str(job_or_path)).expanduser().exists():
        return None
    try:
        from visiontune.debug.trial import find_job

        return find_job(str(job_or_path))
    except Exception:  # noqa: BLE001 - the folder was found, the job's record is only extra detail
        return None


def load(job_or_path, evaluate: bool = True) -> JobData:
    """Read a job's debugger output (raises :class:`TensorUnavailable` when it has none)."""
    folder = debug_dir(job_or_path)
    run = folder.parent if folder.name == "debug" else folder
    record = _store_job(job_or_path)
    data = JobData(folder=folder, run=run, name=getattr(record, "name", None) or run.name, kind="script",
                   record=record)
    mpath = run / "metrics.json"
    if mpath.is_file():
        try:
            metrics = json.loads(mpath.read_text(encoding="utf-8"))
            if not isinstance(metrics, dict):
                raise ValueError("not a JSON object")
            data.metrics = metrics
        except ValueError as e:
            data.warnings.append(("metrics", f"{mpath} could not be read ({e}); the curves come from the tensors"))
    data.kind = getattr(record, "kind", None) if getattr(record, "kind", None) in ("builtin", "script") else (
        "builtin" if data.metrics or (run / "model.safetensors").exists() else "script")
    data.trial = Trial(folder, data.name)
    data.trial.refresh()
    data.profile = Profile(folder)
    data.profile.refresh()
    rules = read_rules(folder)
    if rules is None:
        key = (folder, data.trial.records, len(data.profile.system), len(data.profile.framework))
        if key in _EVALUATED:
            rules = _EVALUATED[key]
        elif evaluate:
            from visiontune.debug.rules import evaluate_rules

            try:
                rules = evaluate_rules(folder, kind=data.kind)
            except Exception as e:  # noqa: BLE001 - the report shows what there is
                data.warnings.append(("rules", f"the rules could not be evaluated ({type(e).__name__}: {e})"))
            else:
                _EVALUATED.clear()  # only the last job's: terminal_summary right after build_report
                _EVALUATED[key] = rules
        data.rules_note = ("this job has no rules.json (it crashed, or stopped before its rules finished): "
                           "the rules were evaluated now, on everything it saved")
        data.warnings.append(("rules", data.rules_note))
    data.rules = rules or {"rules": []}
    _collect_warnings(data)
    return data


def _collect_warnings(data: JobData) -> None:
    trial, warn = data.trial, data.warnings
    for msg in trial.damaged:
        warn.append(("store", f"damaged tensor store: {msg}"))
    from visiontune.debug.store import MAGIC

    for path, reader in sorted(trial._readers.items()):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if not reader.damaged and reader.offset >= len(MAGIC) and size > reader.offset:
            warn.append(("store", f"{path.name}: the last {size - reader.offset} byte(s) are not a complete record "
                                  "(the job stopped while writing it, or is still writing): read up to the last "
                                  "complete record"))
    for r in data.rules.get("rules", []):
        if r.get("status") == "InProgress":
            warn.append(("rules", f"rule {r['name']} was still InProgress when its results were last written: the job "
                                  "is still running, or stopped before the rule could decide"))
        for w in r.get("warnings") or []:
            warn.append((f"rule {r['name']}", w.removeprefix(f"{r['name']}: ")))
    data.few_points = few_points(trial)
    budget = next((c.get("budget") for c in trial.hook_configs() if c.get("budget")), None)
    for g in data.few_points:
        names = ", ".join(g["tensors"][:6]) + (f" and {len(g['tensors']) - 6} more" if len(g["tensors"]) > 6 else "")
        how = (f"saved on steps spaced by their cost, about {budget:.0%} of the training time; "
               "--debug-save-interval N (debug_save_interval=N) saves them every N steps" if budget else
               f"save config {g['config']}; lower the save_interval to see how they change")
        warn.append(("save config", f"{len(g['tensors'])} tensor(s) of collection {g['collection']} have fewer than "
                                    f"{MIN_POINTS} points in {g['mode']} mode ({g['points']} of the mode's "
                                    f"{g['mode_steps']} steps; {how}): {names}"))
    names = trial.tensor_names()
    for cfg in trial.hook_configs():
        pats = [("the hook's include_regex", p) for p in cfg.get("include_regex") or []]
        for cname, c in (cfg.get("collections") or {}).items():
            pats += [(f"collection {cname}'s include_regex", p) for p in (c or {}).get("include_regex") or []]
        for what, pat in pats:
            try:
                hit = any(re.search(pat, n) for n in names)
            except re.error as e:
                warn.append(("hook", f"{what} {pat!r} is not a valid regex ({e})"))
                continue
            if not hit:
                warn.append(("hook", f"{what} {pat!r} matched no saved tensor"))
    if not names:
        warn.append(("store", f"no tensor was saved in {data.folder / 'tensors'}"))
    data.warnings = list(dict.fromkeys(warn))  # several workers' hook configs say the same


def few_points(trial: Trial) -> list[dict]:
    """Tensors a save config left with fewer than MIN_POINTS points in a mode that had more steps than
    that, grouped by collection, mode and count: [{collection, mode, points, mode_steps, config, tensors}]."""
    configs: dict[str, object] = {}
    hooks = trial.hook_configs()
    for cfg in hooks:
        for cname, c in (cfg.get("collections") or {}).items():
            configs.setdefault(cname, (c or {}).get("save_config"))
    from visiontune.debug.hook import Hook

    step_saved = set(Hook._SAVED_ON_STEPS)
    mode_steps = {int(m): len(trial.steps(m)) for m in trial.modes() if m != ModeKeys.GLOBAL}
    groups: dict[tuple, dict] = {}
    for name in trial.tensor_names():
        s = trial._series[name]
        colls = [c for c in sorted(s.collections) if isinstance(configs.get(c), dict)]
        if not colls and not hooks:  # no hook config written: the collections saved on the save config's steps
            colls = [c for c in sorted(s.collections) if c in step_saved]
        if not colls:
            continue
        for m, recs in sorted(s.by_mode.items()):
            n, total = len(recs), mode_steps.get(m, 0)
            if n >= MIN_POINTS or total <= n:
                continue
            mode = ModeKeys(m).name
            cfg = configs.get(colls[0])
            key = (colls[0], mode, n, total)
            g = groups.setdefault(key, {"collection": colls[0], "mode": mode, "points": n, "mode_steps": total,
                                        "config": _describe_config(cfg.get(mode) if isinstance(cfg, dict) else None),
                                        "tensors": []})
            g["tensors"].append(name)
    return list(groups.values())


def _describe_config(cfg) -> str:
    if not isinstance(cfg, dict):
        return "unknown (no hook config was written)"
    if cfg.get("save_steps"):
        return f"save_steps={cfg['save_steps']}"
    out = f"save_interval={cfg.get('save_interval')}"
    if cfg.get("start_step"):
        out += f", start_step={cfg['start_step']}"
    if cfg.get("end_step") is not None:
        out += f", end_step={cfg['end_step']}"
    return out


def job_status(data: JobData) -> str:
    m, counts = data.metrics, data.counts()
    rec = data.record
    if m.get("stopped_by_rule"):
        base = f"Stopped by a rule ({m['stopped_by_rule']})"
    elif rec is not None:
        base = rec.status + (f" ({rec.secondary_status})" if getattr(rec, "secondary_status", None) and
                             rec.secondary_status != rec.status else "")
    elif m:
        base = "Completed"
    elif data.rules_note:
        base = "Incomplete (no rules.json: it crashed or is still running)"
    elif counts.get("InProgress"):
        base = "Running, or stopped before its rules finished"
    else:
        base = "Finished"
    issues = counts.get("IssuesFound", 0)
    return base + (f"; {issues} rule(s) found issues" if issues else "")


def _fmt(v, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.{digits}g}"
    if isinstance(v, (dict, list, tuple)):
        text = json.dumps(v, default=str, separators=(", ", ": "))
        return text if len(text) <= 240 else text[:237] + "..."
    return str(v)


def _thin(x, *ys):
    """At most MAX_POINTS points of each series (every k-th, and the last)."""
    n = len(x)
    if n <= MAX_POINTS:
        return (list(x), *[list(y) for y in ys])
    idx = sorted(set(range(0, n, math.ceil(n / MAX_POINTS))) | {n - 1})
    return ([x[i] for i in idx], *[[y[i] for i in idx] for y in ys])


def _rolling(v: list[float], k: int) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if k <= 1 or len(a) < k:
        return a
    c = np.cumsum(np.insert(a, 0, 0.0))
    head = c[1:k] / np.arange(1, k)
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


# -- charts ----------------------------------------------------------------------------------------------
def chart(name: str, draw: Callable, size=(7.0, 3.0), caption: str = "") -> str:
    """``draw(fig)`` on a new matplotlib figure, as ``<figure class="chart" data-chart=NAME><svg>...``;
    a chart that fails to draw is a sentence saying why, never a broken report."""
    import matplotlib
    from matplotlib.figure import Figure

    rc = {"svg.fonttype": "none", "svg.hashsalt": f"visiontune-{name}", "font.size": 8.5, "axes.grid": True,
          "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 7.5,
          "legend.frameon": False, "axes.titlesize": 9}
    try:
        with matplotlib.rc_context(rc):
            fig = Figure(figsize=size, layout="constrained")
            draw(fig)
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
    except Exception as e:  # noqa: BLE001
        return skip(f"The {name} chart could not be drawn ({type(e).__name__}: {e}).")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" data-chart="{esc(name)}">{svg}{cap}</figure>'


def skip(sentence: str) -> str:
    return f'<p class="skip">{esc(sentence)}</p>'


def _line(ax, x, y, label=None, color=None, **kw):
    x, y = _thin(x, y)
    marker = kw.pop("marker", None)
    if len(x) < 3 or (marker and len(x) > 60):
        marker = "o" if len(x) < 3 else None
    ax.plot(x, y, label=label, color=color, marker=marker, markersize=3.5, linewidth=1.3, **kw)


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[1]:
        ax.legend(**kw)


def history_charts(data: JobData) -> list[str]:
    from matplotlib.ticker import MaxNLocator

    h = data.history
    out = []
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(h)]
    best = data.metrics.get("best_epoch")

    def series(key):
        pts = [(e, r[key]) for e, r in zip(epochs, h) if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    for name, keys, ylabel in (("loss", ("train_loss", "val_loss"), "loss"),
                               ("accuracy", ("train_acc", "val_acc"), "accuracy")):
        got = {k: series(k) for k in keys if series(k)[0]}
        if not got:
            out.append(skip(f"No {name} curve: metrics.json's history has no {' or '.join(keys)}."))
            continue

        def draw(fig, got=got, ylabel=ylabel, name=name):
            ax = fig.add_subplot()
            for k, (x, y) in got.items():
                _line(ax, x, y, "train" if k.startswith("train") else "validation",
                      _MODE_COLORS["TRAIN" if k.startswith("train") else "EVAL"], marker="o")
            if best:
                ax.axvline(best, color="#555", linestyle=":", linewidth=1, label=f"best epoch ({best})")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(f"train vs. validation {name}, per epoch")
            _legend(ax)

        out.append(chart(name, draw))
    x, y = series("lr")
    if x:
        def draw_lr(fig):
            ax = fig.add_subplot()
            _line(ax, x, y, "learning rate", "#8c564b", marker="o")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("learning rate")
            ax.set_title("learning rate, per epoch")

        out.append(chart("learning-rate", draw_lr, size=(7.0, 2.2)))
    return out


def tensor_curve_charts(data: JobData) -> list[str]:
    """Curves from the tensors, for a job without an epoch history (a script): per-pass mean loss in TRAIN
    and EVAL, and any accuracy the script saved."""
    from matplotlib.ticker import MaxNLocator

    from visiontune.debug.rules.debugger import passes

    trial, out = data.trial, []
    losses = trial.tensor_names(collection="losses")
    per_loss = {}
    for name in losses[:4]:
        train, ev, n_train = [], [], 0
        for mode, vals in passes(trial, name):
            mean = float(np.mean([v for _, v in vals]))
            if mode == ModeKeys.TRAIN:
                n_train += 1
                train.append((n_train, mean))
            elif mode == ModeKeys.EVAL:
                ev.append((max(n_train, 1), mean))
        if train or ev:
            per_loss[name] = (train, ev)
    if per_loss:
        def draw(fig):
            ax = fig.add_subplot()
            for name, (train, ev) in per_loss.items():
                suffix = f" ({name})" if len(per_loss) > 1 else ""
                if train:
                    _line(ax, [p[0] for p in train], [p[1] for p in train], "train" + suffix, _MODE_COLORS["TRAIN"],
                          marker="o")
                if ev:
                    _line(ax, [p[0] for p in ev], [p[1] for p in ev], "validation (EVAL)" + suffix,
                          _MODE_COLORS["EVAL"], marker="o")
            ax.set_xlabel("training pass (epoch)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("mean loss")
            ax.set_title("train vs. validation loss: the mean of each pass over the data")
            _legend(ax)

        out.append(chart("loss", draw, caption="From the losses collection: each run of TRAIN (or EVAL) steps is one "
                                               "pass; its mean is one point."))
    else:
        out.append(skip("No loss curve: the job saved no tensor in the losses collection (register_loss(...) "
                        "saves one) and wrote no metrics.json."))
    scalars = sorted(set(trial.tensor_names(collection="scalars")) | set(trial.tensor_names(collection="default")))
    acc = [n for n in scalars if "acc" in n.lower()]
    got = {(n, m.name): trial.series(n, m) for n in acc for m in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.GLOBAL)}
    got = {k: v for k, v in got.items() if v[0]}
    if got:
        def draw_acc(fig):
            ax = fig.add_subplot()
            for (n, mode), (x, y) in got.items():
                _line(ax, x, y, f"{n} ({mode})", _MODE_COLORS.get(mode) if len(acc) == 1 else None, marker="o")
            ax.set_xlabel("step (of its mode)")
            ax.set_ylabel("accuracy")
            ax.set_title("accuracy saved by the job")
            _legend(ax)

        out.append(chart("accuracy", draw_acc))
    else:
        out.append(skip("No accuracy curve: the job saved no scalar with 'acc' in its name "
                        "(hook.save_scalar('val_acc', value) saves one)."))
    others = [n for n in scalars if n not in acc and n not in losses]
    got = {}
    for n in others[:6]:
        for m in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.GLOBAL):
            x, y = trial.series(n, m)
            if x:
                got.setdefault(n, {})[m.name] = (x, y)
    if got:
        def draw_scalars(fig):
            axes = fig.subplots(1, len(got), squeeze=False)[0]
            for ax, (n, modes) in zip(axes, got.items()):
                for mode, (x, y) in modes.items():
                    _line(ax, x, y, mode, _MODE_COLORS.get(mode))
                ax.set_title(n)
                ax.set_xlabel("step")
                _legend(ax)

        out.append(chart("scalars", draw_scalars, size=(min(3.2 * len(got), 10.0), 2.6)))
    return out


def loss_step_chart(data: JobData) -> str:
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
        return skip("No per-step loss: no tensor of the losses collection was saved.")

    def draw(fig):
        axes = fig.subplots(1, len(got), squeeze=False)[0]
        for ax, (mode, series) in zip(axes, got.items()):
            for n, (x, y) in series.items():
                _line(ax, x, y, n if len(series) > 1 else None, _MODE_COLORS[mode] if len(series) == 1 else None,
                      alpha=0.55 if len(x) > 20 else 1.0)
                if len(x) > 20:
                    k = max(2, len(x) // 20)
                    xs, ys = _thin(x, list(_rolling(y, k)))
                    ax.plot(xs, ys, color="#222", linewidth=1.2, label=f"running mean ({k} steps)")
            ax.set_title(f"{mode} loss, every saved step")
            ax.set_xlabel(f"{mode} step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _legend(ax)

    return chart("loss-steps", draw, size=(min(3.6 * len(got), 10.0) if len(got) > 1 else 7.0, 2.8),
                 caption="The loss tensors as saved, per mode (each mode counts its own steps).")


def system_chart(data: JobData) -> str:
    rows = [r for r in data.profile.system if isinstance(r.get("cpu"), list)]
    if not rows:
        if data.profile.start:
            return skip("No system-usage timeline: the job ended before the system monitor's first sample "
                        "(--profile-interval sets how often it samples).")
        return skip("No system-usage timeline: this job has no system.jsonl (the system monitor runs beside the "
                    "built-in engine and script jobs, not beside a bare hook; --profile-interval 0 turns it off).")
    t0 = data.profile.start.get("t") or rows[0]["t"]
    x = [r["t"] - t0 for r in rows]
    cpu = [np.asarray(r["cpu"] or [0.0], dtype=float) for r in rows]
    gpus = max(len(r.get("gpus") or []) for r in rows)
    cores = data.profile.cores

    def draw(fig):
        n = 3 + (1 if gpus else 0)
        axes = fig.subplots(n, 1, sharex=True)
        ax = axes[0]
        xs, lo, hi, mean = _thin(x, [c.min() for c in cpu], [c.max() for c in cpu], [c.mean() for c in cpu])
        ax.fill_between(xs, lo, hi, color="#1f77b4", alpha=0.2, linewidth=0, label=f"per-core range ({cores} cores)")
        _line(ax, xs, mean, "CPU, mean of cores", "#1f77b4")
        if any("process_cpu" in r for r in rows):
            _line(ax, x, [(r.get("process_cpu") or 0.0) / max(cores, 1) for r in rows], "this job's processes",
                  "#9467bd")
        if any("iowait" in r for r in rows):
            _line(ax, x, [r.get("iowait") or 0.0 for r in rows], "I/O wait", "#d62728")
        ax.set_ylabel("CPU %")
        ax.set_ylim(0, 105)
        _legend(ax, loc="upper right", ncols=2)
        ax.set_title("system usage over the job")
        ax = axes[1]
        _line(ax, x, [r.get("memory") or 0.0 for r in rows], "memory used (machine)", "#2ca02c")
        ax.set_ylabel("memory %")
        _legend(ax, loc="upper right")
        ax = axes[2]
        for key, label, color in (("disk_read_mb_s", "disk read", "#1f77b4"),
                                  ("disk_write_mb_s", "disk write", "#ff7f0e"), ("net_mb_s", "network", "#7f7f7f")):
            if any(key in r for r in rows):
                _line(ax, x, [r.get(key) or 0.0 for r in rows], label, color)
        ax.set_ylabel("MB/s")
        _legend(ax, loc="upper right", ncols=3)
        if gpus:
            ax = axes[3]
            for i in range(gpus):
                for key, style in (("util", "-"), ("memory", "--")):
                    vals = [((r.get("gpus") or [])[i] if i < len(r.get("gpus") or []) else {}).get(key) for r in rows]
                    pts = [(a, v) for a, v in zip(x, vals) if v is not None]
                    if pts:
                        _line(ax, [p[0] for p in pts], [p[1] for p in pts], f"GPU {i} {key}", None, linestyle=style)
            ax.set_ylabel("GPU %")
            ax.set_ylim(0, 105)
            _legend(ax, loc="upper right", ncols=2)
        axes[-1].set_xlabel("seconds since the monitor started")

    return chart("system", draw, size=(7.5, 2.0 * (3 + (1 if gpus else 0))))


def step_rows(data: JobData, mode: str = "TRAIN") -> list[dict]:
    return [r for r in data.profile.steps(mode) if isinstance(r.get("step_seconds"), (int, float))]


def step_split(rows: list[dict]) -> dict[str, float]:
    """Mean seconds of each part of a step, and "other" (the rest of step_seconds)."""
    if not rows:
        return {}
    parts = [c for c in COMPONENTS if any(isinstance(r.get(c), (int, float)) for r in rows)]
    out = {c: float(np.mean([r.get(c) or 0.0 for r in rows])) for c in parts}
    total = float(np.mean([r["step_seconds"] for r in rows]))
    out["other"] = max(0.0, total - sum(out.values()))
    out["step"] = total
    return out


def step_chart(data: JobData) -> str:
    rows = step_rows(data)
    if not rows:
        return skip("No step-time breakdown: no training step was timed (framework-worker-*.jsonl has no TRAIN "
                    "steps).")
    split = step_split(rows)
    parts = [c for c in (*COMPONENTS, "other") if c in split]
    series = {c: [1000 * (r.get(c) or 0.0) for r in rows] for c in parts if c != "other"}
    series["other"] = [max(0.0, 1000 * r["step_seconds"] - sum(series[c][i] for c in series if c != "other"))
                       for i, r in enumerate(rows)]
    order = sorted(range(len(rows)), key=lambda i: (rows[i].get("worker", ""), rows[i]["step"]))
    steps = [rows[i]["step"] for i in order]

    def draw(fig):
        left, right = fig.subplots(1, 2, width_ratios=[1, 2])
        means = [1000 * split[c] for c in parts]
        bars = left.barh(parts[::-1], means[::-1], color=[_COMPONENT_COLORS[c] for c in parts[::-1]])
        for b, v in zip(bars, means[::-1]):
            left.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.1f} ms ({v / (1000 * split['step']):.0%})"
                      if split["step"] else f" {v:.1f} ms", va="center", fontsize=7.5)
        left.set_xlabel("mean ms per step")
        left.set_title(f"mean TRAIN step: {1000 * split['step']:.1f} ms")
        left.set_xlim(0, max(means + [1e-6]) * 1.6)
        ys = [[series[c][i] for i in order] for c in parts]
        if len(steps) >= 2:
            idx = list(range(len(steps)))
            xs, *thin = _thin(idx, *ys)
            right.stackplot([steps[i] for i in xs], *thin, labels=parts,
                            colors=[_COMPONENT_COLORS[c] for c in parts], alpha=0.85)
        else:
            bottom = 0.0
            for c, y in zip(parts, ys):
                right.bar(steps, y, bottom=bottom, color=_COMPONENT_COLORS[c], label=c)
                bottom += y[0]
        right.set_xlabel("TRAIN step")
        right.set_ylabel("ms")
        right.set_title("each step, split")
        _legend(right, loc="upper right", ncols=len(parts))

    return chart("step-time", draw, size=(8.0, 2.8))


def confusion_chart(cm: np.ndarray, classes: list[str]) -> str:
    n = cm.shape[0]

    def draw(fig):
        ax = fig.add_subplot()
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
        if n <= 40:
            mesh = ax.pcolormesh(np.arange(n + 1) - 0.5, np.arange(n + 1) - 0.5, norm, cmap="Blues", vmin=0, vmax=1,
                                 edgecolors="#ffffff", linewidth=0.3)
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
                        ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7.5,
                                color="white" if norm[i, j] > 0.6 else "#222")
        if n <= 40:
            ax.set_xticks(range(n), [c[:18] for c in classes], rotation=45 if n > 4 else 0,
                          ha="right" if n > 4 else "center")
            ax.set_yticks(range(n), [c[:18] for c in classes])
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title("confusion matrix (rows: true class)")

    side = min(3.0 + 0.32 * n, 12.0)
    return chart("confusion", draw, size=(side + 1.2, side))


def confused_pairs(cm: np.ndarray, classes: list[str], top: int = 10) -> list[tuple[str, str, int, float]]:
    """The most-confused (true, predicted) pairs: [(true, predicted, count, share of the true class)]."""
    rows = cm.sum(axis=1)
    pairs = [(int(cm[i, j]), i, j) for i in range(cm.shape[0]) for j in range(cm.shape[1]) if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(classes[i], classes[j], c, c / rows[i] if rows[i] else 0.0) for c, i, j in pairs[:top]]


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


def rule_chart(data: JobData, rule: dict) -> str:
    """The tensor series a finding's evidence names, with the steps that triggered it marked."""
    from matplotlib.ticker import MaxNLocator

    groups: dict[tuple[str, str], dict] = {}
    for ev in rule.get("evidence") or []:
        if not isinstance(ev, dict) or not isinstance(ev.get("tensor"), str):
            continue
        key = (ev["tensor"], str(ev.get("mode") or "TRAIN"))
        g = groups.setdefault(key, {"steps": [], "keys": []})
        if isinstance(ev.get("step"), int):
            g["steps"].append(ev["step"])
        g["keys"] += [k for k, v in ev.items() if k not in ("tensor", "mode", "step") and isinstance(v, (int, float))
                      and k not in g["keys"]]
    found = []
    for (tensor, mode), g in list(groups.items()):
        if not g["steps"]:
            continue  # nothing to mark (a count, a class): the evidence table says it
        s = _evidence_series(data.trial, tensor, mode, g["keys"])
        if s is not None:
            found.append((tensor, mode, g["steps"], *s))
        if len(found) == 3:
            break
    if not found:
        if not any(g["steps"] for g in groups.values()):
            return ""  # nothing to mark: the evidence table says it all
        return skip("No chart for this finding: the tensor its evidence names has no saved series of single values "
                    "to draw.")

    def draw(fig):
        axes = fig.subplots(1, len(found), squeeze=False)[0]
        for ax, (tensor, mode, marks, x, y, what) in zip(axes, found):
            _line(ax, x, y, what, _MODE_COLORS.get(mode.upper(), "#1f77b4"))
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

    return chart(f"rule-{rule['name']}", draw, size=(min(3.6 * len(found), 10.0) if len(found) > 1 else 6.5, 2.6))


# -- HTML --------------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9;line-height:1.45;font-size:14px}
header{background:#1d2b3a;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d3de;font-size:13px}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:8px 28px;position:sticky;top:0;z-index:2}
nav a{margin-right:16px;color:#2456a6;text-decoration:none;font-size:13px}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:6px 18px 14px;margin:16px 0}
h2{font-size:17px;margin:12px 0 8px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #e6e8eb;padding:4px 10px 4px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.evidence{font-size:12px;background:#fafbfc}table.evidence td,table.evidence th{padding:2px 8px}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff;
white-space:nowrap}
.IssuesFound{background:#c62828}.Error{background:#6a1b9a}.InProgress{background:#ef8f00}
.NoIssuesFound{background:#2e7d32}.NotRun{background:#78838f}
.kv th{width:220px}.skip{color:#6b7280;font-style:italic}.muted{color:#6b7280}
figure.chart{margin:10px 0;overflow-x:auto}figure.chart svg{max-width:100%;height:auto}
figcaption{color:#6b7280;font-size:12px}
ul.warnings li{margin:3px 0}.src{font-weight:600;color:#8a4b00}
pre{background:#f3f4f6;padding:6px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
.rec{border-left:3px solid #2456a6;padding-left:8px;margin:4px 0}
tr.rule>td{padding-top:8px}
"""


def _kv(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v if isinstance(v, _Html) else esc(v)}</td></tr>"
                   for k, v in rows if v is not None and v != "")
    return f'<table class="kv">{body}</table>'


class _Html(str):
    """Markup already escaped."""


def _badge(status: str) -> _Html:
    cls = status if status in STATUS_ORDER else "NotRun"
    return _Html(f'<span class="badge {cls}">{esc(status)}</span>')


def _accuracy(data: JobData) -> tuple[float | None, str]:
    m = data.metrics
    ev = m.get("evaluation") if isinstance(m.get("evaluation"), dict) else {}
    if isinstance(ev.get("accuracy"), (int, float)):
        return float(ev["accuracy"]), f"on the {m.get('evaluated_on', 'evaluation')} set"
    for key in ("test_accuracy", "validation_accuracy"):
        if isinstance(m.get(key), (int, float)):
            return float(m[key]), key.replace("_", " ")
    trial = data.trial
    for n in trial.tensor_names(collection="scalars") + trial.tensor_names(collection="default"):
        if "acc" in n.lower():
            for mode in (ModeKeys.EVAL, ModeKeys.TRAIN, ModeKeys.GLOBAL):
                x, y = trial.series(n, mode)
                if y:
                    return y[-1], f"the last {mode.name} value of {n}"
    return None, ""


def _seconds(data: JobData) -> float | None:
    if isinstance(data.metrics.get("seconds"), (int, float)):
        return float(data.metrics["seconds"])
    rec = data.record
    if rec is not None and getattr(rec, "elapsed", None) is not None:
        return float(rec.elapsed)
    walls = data.trial._walls
    starts = [c.get("started") for c in data.trial.hook_configs() if isinstance(c.get("started"), (int, float))]
    if walls and starts:
        return max(walls) - min(starts)
    return None


def summary_section(data: JobData) -> str:
    m, trial = data.metrics, data.trial
    acc, where = _accuracy(data)
    ev = m.get("evaluation") if isinstance(m.get("evaluation"), dict) else {}
    seconds = _seconds(data)
    counts = data.counts()
    chips = " ".join(f"{_badge(s)} {counts[s]}" for s in STATUS_ORDER if counts.get(s))
    steps = ", ".join(f"{mo.name} {len(trial.steps(mo))}" for mo in trial.modes() if mo != ModeKeys.GLOBAL)
    topk = [(k, v) for k, v in ev.items() if k.startswith("top_") and isinstance(v, (int, float))]
    rows = [("job", data.name), ("output folder", str(data.run)),
            ("kind", "built-in engine" if data.kind == "builtin" else "script"),
            ("status", job_status(data)),
            ("accuracy", f"{acc:.4f} ({where})" if acc is not None else "not recorded"),
            ("validation accuracy", _fmt(m.get("validation_accuracy")) if "validation_accuracy" in m else None),
            ("evaluation loss", _fmt(ev.get("loss")) if "loss" in ev else None),
            *[(k.replace("_", " "), _fmt(v)) for k, v in topk],
            ("macro F1", _fmt(ev.get("macro_f1")) if "macro_f1" in ev else None),
            ("epochs", len(data.history) or None),
            ("best epoch", m.get("best_epoch")),
            ("stopped by rule", m.get("stopped_by_rule")),
            ("classes", len(m["classes"]) if isinstance(m.get("classes"), list) else None),
            ("images", ", ".join(f"{k} {v}" for k, v in m["counts"].items()) if isinstance(m.get("counts"), dict)
             else None),
            ("device", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m["runtime"].items() if v is not None)
             if isinstance(m.get("runtime"), dict) else None),
            ("training time", f"{seconds:.1f} s" if seconds is not None else None),
            ("tensors saved", f"{len(trial.tensor_names())} tensors, {trial.records} records; "
                              f"steps: {steps or 'none'}"),
            ("workers", ", ".join(trial.workers()) if len(trial.workers()) > 1 else None),
            ("rules", _Html(chips) if chips else "none ran"),
            ("warnings", f"{len(data.warnings)} (see Warnings)" if data.warnings else "none")]
    note = f'<p class="muted">{esc(data.rules_note)}</p>' if data.rules_note else ""
    return f'<section id="summary"><h2>Training summary</h2>{_kv(rows)}{note}</section>'


def _evidence_table(evidence: list) -> str:
    rows = [e for e in evidence if isinstance(e, dict)]
    if not rows:
        return ""
    pre = "".join(f"<pre>{esc(e['traceback'])}</pre>" for e in rows if "traceback" in e)
    rows = [{k: v for k, v in e.items() if k != "traceback"} for e in rows]
    rows = [e for e in rows if e]
    if not rows:
        return pre
    cols = [c for c in ("tensor", "mode", "step") if any(c in e for e in rows)]
    cols = list(dict.fromkeys(cols + [k for e in rows for k in e]))
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(e.get(c, '')))}</td>" for c in cols) + "</tr>" for e in rows)
    return f'{pre}<table class="evidence"><tr>{head}</tr>{body}</table>'


def _rule_row(data: JobData, r: dict) -> str:
    status = r.get("status", "?")
    parts = [f"<div>{esc(r.get('message') or '')}</div>"]
    serious = status in ("IssuesFound", "Error")
    if r.get("evidence"):
        parts.append("<h3>Evidence</h3>" + _evidence_table(r["evidence"]))
    if status == "IssuesFound" and r.get("kind", "debug") == "debug":
        parts.append(rule_chart(data, r))
    if r.get("warnings"):
        parts.append("<ul class=\"warnings\">" + "".join(
            f"<li><span class=\"src\">warning</span> {esc(str(w).removeprefix(r.get('name', '') + ': '))}</li>"
            for w in r["warnings"]) + "</ul>")
    explain = []
    if r.get("explanation"):
        explain.append(f"<div><b>What it means:</b> {esc(r['explanation'])}</div>")
    if r.get("recommendation"):
        explain.append(f'<div class="rec"><b>Recommendation:</b> {esc(r["recommendation"])}</div>')
    params = {k: v for k, v in (r.get("parameters") or {}).items() if k != "scan_interval_us"}
    if params:
        actions = f'; actions: {esc(", ".join(r.get("actions") or []))}' if r.get("actions") else ""
        explain.append(f'<div class="muted">parameters: {esc(", ".join(f"{k}={v}" for k, v in params.items()))}'
                       f"{actions}</div>")
    if explain:
        parts.append("".join(explain) if serious else
                     f"<details><summary class=\"muted\">what it checks</summary>{''.join(explain)}</details>")
    return (f'<tr class="rule" id="rule-{esc(r.get("name"))}"><td><b>{esc(r.get("name"))}</b></td>'
            f"<td>{_badge(status)}</td><td>{''.join(parts)}</td></tr>")


def _rules_table(data: JobData, kind: str) -> str:
    rules = sorted(data.rules_of(kind), key=lambda r: (STATUS_ORDER.index(r["status"]) if r.get("status") in
                                                       STATUS_ORDER else 9, r.get("name", "")))
    if not rules:
        return skip(f"No {kind} rule ran for this job.")
    body = "".join(_rule_row(data, r) for r in rules)
    return f'<table class="rules {esc(kind)}"><tr><th>rule</th><th>status</th><th>result</th></tr>{body}</table>'


def rules_section(data: JobData) -> str:
    note = f'<p class="muted">{esc(data.rules_note)}</p>' if data.rules_note else ""
    updated = data.rules.get("updated")
    when = (f'<p class="muted">results written {esc(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)))}'
            "</p>") if isinstance(updated, (int, float)) else ""
    return (f'<section id="rules"><h2>Debugger rules</h2>{note}{when}{_rules_table(data, "debug")}</section>')


def curves_section(data: JobData) -> str:
    if data.history:
        charts = history_charts(data)
        src = '<p class="muted">Per epoch, from metrics.json; the per-step loss below comes from the saved tensors.</p>'
    else:
        charts = tensor_curve_charts(data)
        src = ('<p class="muted">This job wrote no epoch history (metrics.json): the curves come from the tensors it '
               "saved.</p>")
    return (f'<section id="curves"><h2>Training curves</h2>{src}{"".join(charts)}<h3>Loss at every saved step</h3>'
            f"{loss_step_chart(data)}</section>")


def system_section(data: JobData) -> str:
    from visiontune.debug.rules.profiler import OverallSystemUsage

    usage = OverallSystemUsage().summary(data.profile) if data.profile.system else {}
    table = ""
    if usage:
        cols = ("max", "p99", "p95", "p50", "min")
        labels = {"cpu": "CPU % (mean of cores)", "memory": "memory %", "iowait": "I/O wait %",
                  "gpu_util": "GPU utilisation %", "gpu_memory": "GPU memory %"}
        body = "".join(f"<tr><td>{esc(labels.get(k, k))}</td>" + "".join(f'<td class="num">{esc(_fmt(v.get(c)))}</td>'
                                                                          for c in cols) + "</tr>"
                       for k, v in usage.items())
        table = ("<h3>Percentiles (OverallSystemUsage)</h3><table><tr><th>metric</th>"
                 + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{body}</table>")
    p = data.profile
    info = (f'<p class="muted">{len(p.system)} samples; {p.cores} CPU cores; {p.gpus or "no"} GPU(s).</p>'
            if p.system else "")
    return f'<section id="system"><h2>System usage</h2>{info}{system_chart(data)}{table}</section>'


def steps_section(data: JobData) -> str:
    rows = step_rows(data)
    table = ""
    if rows:
        split = step_split(rows)
        body = "".join(f"<tr><td>{esc(c)}</td><td class=\"num\">{1000 * split[c]:.2f}</td>"
                       f"<td class=\"num\">{split[c] / split['step']:.0%}</td></tr>" if split["step"] else ""
                       for c in (*COMPONENTS, "other") if c in split)
        times = np.asarray([r["step_seconds"] for r in rows]) * 1000
        ev = step_rows(data, "EVAL")
        extra = [("TRAIN steps timed", len(rows)),
                 ("step time p50 / p95 / max", f"{np.percentile(times, 50):.1f} / {np.percentile(times, 95):.1f} / "
                                                f"{times.max():.1f} ms")]
        if ev:
            mean_ev = 1000 * np.mean([r["step_seconds"] for r in ev])
            extra.append(("EVAL steps timed, mean", f"{len(ev)}, {mean_ev:.1f} ms"))
        table = (f"<table><tr><th>part of a TRAIN step</th><th>mean ms</th><th>share</th></tr>{body}"
                 f"<tr><th>whole step</th><th class=\"num\">{1000 * split['step']:.2f}</th><th></th></tr></table>"
                 f"{_kv(extra)}")
    return (f'<section id="steps"><h2>Step-time breakdown</h2>{step_chart(data)}{table}</section>')


def profiler_section(data: JobData) -> str:
    return f'<section id="profiler"><h2>Profiler rules</h2>{_rules_table(data, "profiler")}</section>'


def confusion_section(data: JobData) -> str:
    ev = data.metrics.get("evaluation") if isinstance(data.metrics.get("evaluation"), dict) else {}
    cm = ev.get("confusion_matrix")
    head = '<section id="confusion"><h2>Confusion matrix</h2>'
    try:
        arr = np.asarray(cm, dtype=np.int64)
        ok = arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.size > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        why = ("metrics.json has no confusion matrix" if data.metrics else
               "this job wrote no metrics.json (a script job records none)")
        return head + skip(f"No confusion matrix: {why}.") + "</section>"
    n = arr.shape[0]
    classes = data.metrics.get("classes")
    if not (isinstance(classes, list) and len(classes) == n):
        classes = list(range(n))
    classes = [str(c) for c in classes]
    where = data.metrics.get("evaluated_on")
    parts = [f'<p class="muted">On the {esc(where)} set ({int(arr.sum())} images).</p>' if where else "",
             confusion_chart(arr, classes)]
    pairs = confused_pairs(arr, classes)
    if pairs:
        body = "".join(f"<tr><td>{esc(t)}</td><td>{esc(p)}</td><td class=\"num\">{c}</td>"
                       f"<td class=\"num\">{s:.0%}</td></tr>" for t, p, c, s in pairs)
        parts.append("<h3>Most-confused pairs</h3><table class=\"pairs\"><tr><th>true class</th><th>predicted as</th>"
                     f"<th>images</th><th>of the true class</th></tr>{body}</table>")
    else:
        parts.append("<p>No image was misclassified.</p>")
    per = ev.get("per_class")
    if isinstance(per, dict) and per:
        keys = ("precision", "recall", "f1", "support")
        body = "".join(f"<tr><td>{esc(c)}</td>" + "".join(f'<td class="num">{esc(_fmt(v.get(k), 3))}</td>'
                                                          for k in keys) + "</tr>"
                       for c, v in per.items() if isinstance(v, dict))
        parts.append(f"<h3>Per class</h3><table><tr><th>class</th>{''.join(f'<th>{k}</th>' for k in keys)}</tr>"
                     f"{body}</table>")
    return head + "".join(parts) + "</section>"


def warnings_section(data: JobData) -> str:
    items = "".join(f'<li><span class="src">{esc(src)}</span>: {esc(msg)}</li>' for src, msg in data.warnings)
    body = f'<ul class="warnings">{items}</ul>' if items else "<p>No warnings.</p>"
    if data.few_points:
        rows = "".join(f"<tr><td>{esc(', '.join(g['tensors'][:12]) + (' ...' if len(g['tensors']) > 12 else ''))}</td>"
                       f"<td>{esc(g['collection'])}</td><td>{esc(g['mode'])}</td><td class=\"num\">{g['points']}</td>"
                       f"<td class=\"num\">{g['mode_steps']}</td><td>{esc(g['config'])}</td></tr>"
                       for g in data.few_points)
        body += (f"<h3>Tensors with fewer than {MIN_POINTS} points</h3><table class=\"few\"><tr><th>tensors</th>"
                 "<th>collection</th><th>mode</th><th>points</th><th>steps in the mode</th><th>save config</th></tr>"
                 f"{rows}</table>")
    return f'<section id="warnings"><h2>Warnings</h2>{body}</section>'


def traces_section(data: JobData) -> str:
    traces = sorted(data.folder.glob("trace-*.json"))
    if not traces:
        body = ("<p>No framework trace was recorded (the hook's profile_steps, e.g. <code>--profile-steps 5:8</code>, "
                "records one).</p>")
    else:
        body = ("<p>Open a trace in the Perfetto UI (ui.perfetto.dev: drag the file onto the page; it is read in "
                "the browser) or in chrome://tracing.</p><ul>"
                + "".join(f"<li><code>{esc(t)}</code> ({t.stat().st_size / 1e6:.1f} MB)</li>" for t in traces)
                + "</ul>")
    return f'<section id="traces"><h2>Framework traces</h2>{body}</section>'


SECTIONS = (("summary", "Summary"), ("rules", "Rules"), ("curves", "Curves"), ("system", "System"),
            ("steps", "Step time"), ("profiler", "Profiler rules"), ("confusion", "Confusion"),
            ("warnings", "Warnings"), ("traces", "Traces"))


def render(data: JobData) -> str:
    body = "".join((summary_section(data), rules_section(data), curves_section(data), system_section(data),
                    steps_section(data), profiler_section(data), confusion_section(data), warnings_section(data),
                    traces_section(data)))
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    made = time.strftime("%Y-%m-%d %H:%M:%S")
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(data.name)}: visiontune debugger report</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(data.name)}</h1><p>visiontune debugger and profiler report &middot; "
            f"{esc(job_status(data))} &middot; made {esc(made)} from {esc(data.folder)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")


# -- the public functions ----------------------------------------------------------------------------------
def default_path(job_or_path) -> Path:
    return debug_dir(job_or_path) / REPORT_FILE


def build_report(job_or_path, out: str | Path | None = None) -> Path:
    """Write the job's HTML report (default ``<job output>/debug/report.html``) and return its path.

    ``job_or_path``: a job name, its output folder, or its debug folder.  Raises
    :class:`visiontune.debug.TensorUnavailable` for a job without debugger output (one that never started,
    or ran with the debugger off)."""
    data = load(job_or_path)
    path = Path(out).expanduser() if out is not None else data.folder / REPORT_FILE
    if path.is_dir():
        path = path / REPORT_FILE  # --out FOLDER: the report goes inside it
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, render(data))
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write the report there ({e.strerror or e}); give a writable "
                          "file or folder") from None
    _WRITTEN[data.folder] = path.resolve()
    return path.resolve()


def terminal_summary(job_or_path, report: str | Path | None = None) -> str:
    """One screen of text: the job, its accuracy, the rules' outcomes (each issue with its message), the
    mean step-time split, the warnings, and where the HTML report is."""
    data = load(job_or_path)
    lines = [f"job {data.name} ({'built-in engine' if data.kind == 'builtin' else 'script'}): {job_status(data)}"]
    acc, where = _accuracy(data)
    facts = [f"accuracy {acc:.4f} ({where})" if acc is not None else "accuracy not recorded"]
    if data.history:
        facts.append(f"{len(data.history)} epoch(s)")
    seconds = _seconds(data)
    if seconds is not None:
        facts.append(f"{seconds:.1f} s")
    lines.append(", ".join(facts))
    counts = data.counts()
    lines.append("rules: " + (", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts.get(s)) or "none ran")
                 + (" (evaluated now: no rules.json)" if data.rules_note else ""))
    bad = [r for r in data.rules.get("rules", []) if r.get("status") in ("IssuesFound", "Error")]
    for r in bad[:8]:
        msg = (r.get("message") or "").replace("\n", " ")
        lines.append(f"  ! {r['name']} ({r['status']}): {msg[:110] + ('...' if len(msg) > 110 else '')}")
    if len(bad) > 8:
        lines.append(f"  ... and {len(bad) - 8} more (see the report)")
    rows = step_rows(data)
    if rows:
        split = step_split(rows)
        total = split["step"] or 1.0
        parts = ", ".join(f"{c} {1000 * split[c]:.1f} ms ({split[c] / total:.0%})" for c in (*COMPONENTS, "other")
                          if c in split)
        lines.append(f"step time (mean of {len(rows)} TRAIN steps): {1000 * split['step']:.1f} ms = {parts}")
    if data.warnings:
        first = data.warnings[0][1]
        lines.append(f"warnings: {len(data.warnings)} (in the report), e.g. "
                     f"{first[:100] + ('...' if len(first) > 100 else '')}")
    where_report = Path(report) if report is not None else _WRITTEN.get(data.folder, data.folder / REPORT_FILE)
    if report is not None or where_report.exists():
        lines.append(f"report: {where_report}")
    return "\n".join(lines)
