"""SageMaker Debugger's profiler rules, on the system samples and framework step times the profiler
records.  GPU rules say "no GPU" and end NoIssuesFound on a machine without one."""

from __future__ import annotations

import math

import numpy as np

from visiontune.debug.rules.base import Finding, Rule

_SCAN = {"scan_interval_us": 60000000}


class _ProfilerRule(Rule):
    kind = "profiler"
    needs_gpu = False

    def applies(self, ctx):
        if self.needs_gpu and ctx.profile.start and ctx.profile.gpus == 0:
            return "no GPU in this job: nothing to check"
        return None


def _gpu_series(ctx, key: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for row in ctx.profile.system:
        for i, g in enumerate(row.get("gpus") or []):
            if g.get(key) is not None:
                out.setdefault(i, []).append(float(g[key]))
    return out


class LowGPUUtilization(_ProfilerRule):
    name = "LowGPUUtilization"
    needs_gpu = True
    defaults = {"threshold_p95": 70, "threshold_p5": 10, "window": 500, "patience": 1000, **_SCAN}
    explanation = "The GPU is mostly idle, or its use swings between busy and idle."
    recommendation = (
        "Feed it faster (more loader workers, the device-side pipeline), use a larger batch, or a smaller GPU."
    )

    def check(self, ctx):
        for gpu, v in _gpu_series(ctx, "util").items():
            if len(v) > self.patience:
                w = np.asarray(v[-self.window :])
                p95, p5 = np.percentile(w, 95), np.percentile(w, 5)
                if p95 < self.threshold_p95:
                    return Finding(
                        f"GPU {gpu}: 95th percentile utilisation {p95:.0f}% < {self.threshold_p95}%",
                        [{"gpu": gpu, "p95": p95}],
                    )
                if p5 < self.threshold_p5:
                    return Finding(
                        f"GPU {gpu}: utilisation fluctuates (p95 {p95:.0f}%, p5 {p5:.0f}% < {self.threshold_p5}%)",
                        [{"gpu": gpu, "p95": p95, "p5": p5}],
                    )
        return None


def _bottleneck(rule, ctx, hit) -> Finding | None:
    rows = ctx.profile.system
    if len(rows) <= rule.patience:
        return None
    flagged = [
        r
        for r in rows
        if hit(r)
        and (ctx.profile.gpus == 0 or any((g.get("util") or 0) < rule.gpu_threshold for g in r.get("gpus") or []))
    ]
    share = 100 * len(flagged) / len(rows)
    if share > rule.threshold:
        return Finding(
            f"{share:.0f}% of {len(rows)} samples were bottlenecked (threshold {rule.threshold}%)",
            [{"t": r["t"]} for r in flagged[:5]],
        )
    return None


class CPUBottleneck(_ProfilerRule):
    name = "CPUBottleneck"
    needs_gpu = True
    defaults = {"threshold": 50, "gpu_threshold": 10, "cpu_threshold": 90, "patience": 1000, **_SCAN}
    explanation = "The CPU is saturated while the GPU waits."
    recommendation = "Move decoding and augmentation to the GPU or to cached tensors; use more data-loader workers."

    def check(self, ctx):
        return _bottleneck(self, ctx, lambda r: max(r["cpu"] or [0]) > self.cpu_threshold)


class IOBottleneck(_ProfilerRule):
    name = "IOBottleneck"
    defaults = {"threshold": 50, "gpu_threshold": 10, "io_threshold": 50, "patience": 1000, **_SCAN}
    explanation = "The CPU waits on disk I/O (with a GPU: while the GPU is idle)."
    recommendation = "Cache decoded images (visiontune does), read from a local disk, or prefetch."

    def check(self, ctx):
        return _bottleneck(self, ctx, lambda r: (r.get("iowait") or 0) > self.io_threshold)


class StepOutlier(_ProfilerRule):
    name = "StepOutlier"
    defaults = {"stddev": 3, "mode": None, "n_outliers": 10, **_SCAN}
    explanation = "Some training steps take far longer than the others."
    recommendation = "Look for periodic work in the loop (checkpoints, logging, evaluation) or a noisy machine."

    def check(self, ctx):
        for mode in [self.mode.upper()] if self.mode else ["TRAIN", "EVAL"]:
            times = [r["step_seconds"] for r in ctx.profile.steps(mode) if "step_seconds" in r]
            if len(times) > 100:
                t = np.asarray(times)
                thr = t.mean() + self.stddev * t.std()
                n = int((t > thr).sum())
                if n > self.n_outliers:
                    return Finding(
                        f"{n} {mode} steps took over {thr * 1000:.1f} ms (mean {t.mean() * 1000:.1f} ms "
                        f"+ {self.stddev} std)",
                        [{"mode": mode, "outliers": n, "threshold_s": thr}],
                    )
        return None


class Dataloader(_ProfilerRule):
    name = "Dataloader"
    defaults = {"min_threshold": 70, "max_threshold": 200, "patience": 10, **_SCAN}
    explanation = "The number of data-loading processes does not fit the number of CPU cores."
    recommendation = "Set the DataLoader's num_workers near the number of cores."

    def applies(self, ctx):
        if ctx.kind == "builtin":
            return "the built-in engine reads decoded batches from its cache: no data-loader processes to count"
        return None

    def check(self, ctx):
        """Workers as the script's hook recorded them for each pass over a DataLoader (the TRAIN mode's
        passes when there are some); a script without a hook: its worker processes, sampled while some
        ran (not during start-up or between passes).  No
        DataLoader seen and no worker process: nothing to count (a script may hold its data in memory)."""
        cores = ctx.profile.cores
        passes = ctx.profile.events("dataloader")
        if passes:
            train = [e for e in passes if e.get("mode") == "TRAIN"] or passes
            m = int(np.median([int(e.get("num_workers") or 0) for e in train]))
            what = f"the script's DataLoader used {m} worker process(es) (median over {len(train)} passes)"
        else:
            own = 1 if ctx.kind == "script" else 0  # a script job's monitor counts the script process too
            counts = [max(0, r["children"] - own) for r in ctx.profile.system if "children" in r]
            if len(counts) <= self.patience:
                return None
            running = [c for c in counts if c > 0]  # while workers ran: not start-up, not between passes
            if not running:
                if ctx.finished:
                    ctx.warn(
                        f"{self.name}: no DataLoader pass was recorded (a script's smdebug hook records "
                        "them) and no data-loader process ran: nothing to count"
                    )
                return None
            m = int(np.median(running))
            what = f"median {m} data-loader process(es) while they ran"
        if m < cores * self.min_threshold / 100:
            return Finding(
                f"{what} for {cores} cores (< {self.min_threshold}% of cores)", [{"median_workers": m, "cores": cores}]
            )
        if m > cores * self.max_threshold / 100:
            return Finding(
                f"{what} for {cores} cores (> {self.max_threshold}% of cores)", [{"median_workers": m, "cores": cores}]
            )
        return None


class BatchSize(_ProfilerRule):
    name = "BatchSize"
    needs_gpu = True
    defaults = {
        "cpu_threshold_p95": 70,
        "gpu_threshold_p95": 70,
        "gpu_memory_threshold_p95": 70,
        "patience": 1000,
        "window": 500,
        **_SCAN,
    }
    explanation = "CPU, GPU and GPU memory are all under-used: the batch is small for this machine."
    recommendation = "Raise the batch size (and the learning rate with it), or use a smaller instance."

    def check(self, ctx):
        cpu = [float(np.mean(r["cpu"])) for r in ctx.profile.system if r.get("cpu")]
        if (
            len(cpu) <= max(self.window, self.patience)
            or np.percentile(cpu[-self.window :], 95) >= self.cpu_threshold_p95
        ):
            return None
        util, mem = _gpu_series(ctx, "util"), _gpu_series(ctx, "memory")
        for gpu, u in util.items():
            m = mem.get(gpu, [])
            if (
                len(u) > self.window
                and m
                and np.percentile(u[-self.window :], 95) < self.gpu_threshold_p95
                and np.percentile(m[-self.window :], 95) < self.gpu_memory_threshold_p95
            ):
                return Finding(
                    f"GPU {gpu}: p95 utilisation and memory below {self.gpu_threshold_p95}% / "
                    f"{self.gpu_memory_threshold_p95}% while the CPU is under {self.cpu_threshold_p95}%",
                    [{"gpu": gpu}],
                )
        return None


class GPUMemoryIncrease(_ProfilerRule):
    name = "GPUMemoryIncrease"
    needs_gpu = True
    defaults = {"increase": 5, "patience": 1000, "window": 10, **_SCAN}
    explanation = "GPU memory keeps growing: a leak (tensors kept across steps) or growing batches."
    recommendation = "Keep .item() values rather than tensors in lists; check for tensors stored across steps."

    def check(self, ctx):
        for gpu, v in _gpu_series(ctx, "memory").items():
            if len(v) > max(self.patience, self.window + 1):
                diff = float(np.mean(v[-self.window :]) - np.mean(v[-self.window - 1 : -1]))
                if diff > self.increase:
                    return Finding(
                        f"GPU {gpu}: memory use rose {diff:.1f} points (threshold {self.increase})",
                        [{"gpu": gpu, "increase": diff}],
                    )
        return None


class MaxInitializationTime(_ProfilerRule):
    name = "MaxInitializationTime"
    defaults = {"threshold": 20, **_SCAN}
    explanation = "The job took too long before its first training step (downloads, data preparation)."
    recommendation = "Cache prepared data between runs (visiontune does) and check the log for what took the time."

    def check(self, ctx):
        first = ctx.profile.steps("TRAIN")
        start = ctx.started
        if not start:
            return None
        limit = self.threshold * 60
        if first:
            waited = first[0]["t"] - start
            if waited > limit:
                return Finding(
                    f"the first training step came {waited / 60:.1f} min after the start "
                    f"(threshold {self.threshold} min)",
                    [{"seconds": round(waited, 1)}],
                )
        elif not ctx.finished and ctx.now - start > limit:
            return Finding(
                f"no training step after {(ctx.now - start) / 60:.1f} min (threshold {self.threshold} min)",
                [{"seconds": round(ctx.now - start, 1)}],
            )
        return None


class OverallSystemUsage(_ProfilerRule):
    name = "OverallSystemUsage"
    defaults = dict(_SCAN)
    explanation = "A summary of the machine's use (this rule never fires)."
    recommendation = "Read it beside the step-time breakdown to see what the job waited on."

    def check(self, ctx):
        return None

    def summary(self, profile) -> dict:
        rows = profile.system
        out = {}
        series = {
            "cpu": [float(np.mean(r["cpu"])) for r in rows if r.get("cpu")],
            "memory": [r["memory"] for r in rows if "memory" in r],
            "iowait": [r.get("iowait", 0.0) for r in rows],
        }
        for key in ("util", "memory"):
            per = [
                float(np.mean([g[key] for g in r["gpus"] if g.get(key) is not None]))
                for r in rows
                if r.get("gpus") and any(g.get(key) is not None for g in r["gpus"])
            ]
            if per:
                series[f"gpu_{key}"] = per
        for k, v in series.items():
            if v:
                out[k] = {
                    p: round(float(np.percentile(v, q)), 1)
                    for p, q in (("max", 100), ("p99", 99), ("p95", 95), ("p50", 50), ("min", 0))
                }
        return out


class LoadBalancing(_ProfilerRule):
    name = "LoadBalancing"
    needs_gpu = True
    defaults = {"threshold": 0.5, "patience": 1000, **_SCAN}
    explanation = "The GPUs are not equally busy: one waits on another."
    recommendation = "Balance the work per device (equal batch shares), check data-parallel setup."

    def applies(self, ctx):
        if ctx.profile.start and ctx.profile.gpus < 2:
            return f"{ctx.profile.gpus or 'no'} GPU{'s' if ctx.profile.gpus != 1 else ''}: needs two or more to compare"
        return None

    def check(self, ctx):
        hists = {}
        for gpu, v in _gpu_series(ctx, "util").items():
            if len(v) > self.patience:
                h, _ = np.histogram(v, bins=np.arange(0, 102, 2))
                hists[gpu] = (h + 1e-12) / (h.sum() + 1e-12 * len(h))
        gpus = sorted(hists)
        for i, a in enumerate(gpus):
            for b in gpus[i + 1 :]:
                p, q = hists[a], hists[b]
                m = (p + q) / 2
                js = math.sqrt(max(0.0, (np.sum(p * np.log(p / m)) + np.sum(q * np.log(q / m))) / 2))
                if js > self.threshold:
                    return Finding(
                        f"GPUs {a} and {b}: utilisation distributions differ (Jensen-Shannon distance "
                        f"{js:.2f} > {self.threshold})",
                        [{"gpus": [a, b], "distance": js}],
                    )
        return None


#: registered in this order by visiontune.debug.rules.registry
BUILTIN = (
    LowGPUUtilization,
    CPUBottleneck,
    IOBottleneck,
    StepOutlier,
    Dataloader,
    BatchSize,
    GPUMemoryIncrease,
    MaxInitializationTime,
    OverallSystemUsage,
    LoadBalancing,
)
