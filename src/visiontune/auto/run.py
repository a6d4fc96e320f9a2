"""``visiontune auto``: the best model for the data within a time budget.

Three phases, every run of each an engine job in the job store (``visiontune jobs list`` shows them, ``jobs logs
-f`` follows one, ``jobs stop`` stops one, and with it ``auto``, keeping the best model so far):

* **screen**: each offline backbone that fits the limits, at one or two image sizes, in head mode on its
  cached features (the feature cache is shared with any later run): a validation score and the seconds each
  took, cheapest first, within about a quarter of the budget;
* **climb**: the rest goes to fine-tuning (full, or partial with N stages) of the screen's leaders.  Where the
  budget holds a few runs, successive halving: short runs of configurations Optuna proposes (its study in the
  job store; the first one the README's hand-picked full fine-tuning), the better half again with twice the
  epochs, then the winner with all the time left.  Each run's epochs are planned from measured seconds per
  epoch; a run whose first epoch says the plan is off by more than a fifth is started again with the epochs
  that fit, and a run that would pass the deadline is stopped, keeping its last finished epoch's model;
* **finish**: the run with the best validation score is copied to ``<out>/model`` (an ordinary model folder:
  serve, predict, evaluate, batch transform and export take it) and scored once on the test split, which no
  run saw (``evaluate_test=False``: the engine carves it and leaves it).

``state.json`` in ``<out>`` is written after every run: ``--resume`` continues with the time that is left."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from visiontune.auto import plan
from visiontune.errors import ConfigError, DataError, VisiontuneError, option
from visiontune.progress import note

STATE = "state.json"
#: share of the budget the screen may take (at least one entry always runs)
SCREEN_SHARE = 0.25
#: share of the climb the search (rungs) may take before the final run
SEARCH_SHARE = 0.4
#: the fewest epochs the final run must keep after a search (its runs' overheads counted); a climb that cannot
#: is one run of the hand-picked configuration, no search
FINAL_MIN_EPOCHS = 12
#: a run whose first epoch says its planned epochs are off by more than this share is re-planned
REPLAN_TOLERANCE = 0.2
#: the splits every run holds out where the data lacks them (the plan counts the same ones)
HOLD_OUT = {"valid_fraction": 0.1, "test_fraction": 0.1}


@dataclass
class AutoResult:
    """What ``auto`` chose and why: the model folder, its validation and test scores, every run."""

    out: Path
    model: Path | None
    task: str
    metric: str
    best: dict | None
    test: dict | None
    leaderboard: list[dict]
    decisions: list[str]
    seconds: float
    time_limit: float
    stopped: bool
    files: dict = field(default_factory=dict)


def auto(
    data: str | Path,
    *,
    time_limit: str | float | None = "20m",
    metric: str | None = None,
    max_model_size: str | float | None = None,
    out: str | Path = "runs/auto",
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    models: list[str] | None = None,
    task: str = "auto",
) -> AutoResult:
    """Find the best model for ``data`` within ``time_limit`` (seconds, or ``"20m"``, ``"1h30m"``): screen the
    offline backbones, fine-tune the leaders, keep the best; see :mod:`visiontune.auto.run`.

    ``models``: screen only these zoo models (default: every model with offline weights that fits
    ``max_model_size``, in millions of parameters or ``"20MB"``).  ``task``: what the data is (``auto``: what it
    holds; ``segmentation`` / ``detection`` where a folder holds masks or boxes beside class labels).
    ``time_limit=None`` with ``resume=True``: the limit the run was started with."""
    limit = None if time_limit is None else plan.parse_duration(time_limit)
    if limit is None and not resume:
        limit = plan.parse_duration("20m")
    runner = _Auto(data, limit, metric, plan.parse_model_size(max_model_size), Path(out), seed, device, models, task)
    return runner.run(resume, overwrite)


class _Auto:
    def __init__(self, data, limit_s, metric, max_params_m, out: Path, seed, device, models, task):
        self.data, self.limit_s, self.metric_arg, self.max_params_m = str(data), limit_s, metric, max_params_m
        self.out, self.seed, self.device, self.models = out, seed, device, models
        self.t0 = time.monotonic()
        self.spent_before = 0.0
        self.state: dict = {}
        self.stopped = False
        self.task_arg = task

    # ----------------------------------------------------------------- time
    def now(self) -> float:
        """Seconds of the budget used: earlier sessions' (``--resume``) and this one's."""
        return self.spent_before + time.monotonic() - self.t0

    def left(self) -> float:
        return self.limit_s - self.now()

    # ----------------------------------------------------------------- state
    def save(self) -> None:
        from visiontune.paths import atomic_write_text

        self.state["spent_s"] = round(self.now(), 2)
        atomic_write_text(self.out / STATE, json.dumps(self.state, indent=2))

    def say(self, text: str) -> None:
        self.state.setdefault("decisions", []).append(text)
        note(f"auto: {text}")

    def _open(self, resume: bool, overwrite: bool) -> None:
        from visiontune.paths import timestamped

        data = Path(self.data).expanduser().resolve()
        if data.is_dir() and self.out.resolve().is_relative_to(data):
            raise ConfigError(
                f"{option('out', str(self.out))} is inside the data folder {data}: auto would write among the data; choose an "
                "output folder of its own (e.g. runs/auto)"
            )
        path = self.out / STATE
        if resume:
            if not path.is_file():
                raise ConfigError(
                    f"{option('resume', True)}: {self.out} holds no auto run ({STATE} is missing); start one without it"
                )
            self.state = json.loads(path.read_text())
            if Path(self.state["data"]) != Path(self.data).resolve():
                raise ConfigError(
                    f"{option('resume', True)}: {self.out} searched {self.state['data']}, not {self.data}; give the same data or "
                    f"another {option('out')}"
                )
            self.spent_before = float(self.state.get("spent_s", 0.0))
            o = self.state.get("options", {})  # what the run was started with: its plan depends on them
            self.models, self.max_params_m = o.get("models"), o.get("max_params_m")
            self.metric_arg, self.task_arg = o.get("metric"), o.get("task", "auto")
            self.seed, self.device = o.get("seed", self.seed), o.get("device", self.device)
            self.limit_s = float(self.state["time_limit_s"]) if self.limit_s is None else self.limit_s
            self.state["time_limit_s"] = self.limit_s
            self.say(f"resumed with {self.spent_before:.0f} s of {self.limit_s:.0f} s used")
            return
        if self.out.exists() and any(self.out.iterdir()):
            if not overwrite:
                raise ConfigError(
                    f"{self.out} is not empty; give {option('resume', True)} to continue the auto run there, "
                    f"{option('overwrite', True)} to replace it, or another {option('out')}"
                )
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state = {
            "version": 1,
            "data": str(Path(self.data).resolve()),
            "time_limit_s": self.limit_s,
            "prefix": timestamped("auto"),
            "options": {
                "models": self.models,
                "max_params_m": self.max_params_m,
                "metric": self.metric_arg,
                "task": self.task_arg,
                "seed": self.seed,
                "device": self.device,
            },
            "runs": [],
            "decisions": [],
            "calibration": {},
        }

    # ----------------------------------------------------------------- the data
    def _look(self) -> None:
        from visiontune.data.loading import open_dataset
        from visiontune.data.split import hold_out

        ds = open_dataset(self.data, task=self.task_arg)
        ds.check()
        task = ds.task
        self.task = task
        self.metric = plan.metric_for(task, self.metric_arg)
        self.epoch_key = plan.EPOCH_KEYS[(task, self.metric)]
        held = hold_out(ds, HOLD_OUT["valid_fraction"], HOLD_OUT["test_fraction"], self.seed, say=False)
        self.counts = {k: len(v) for k, v in held.splits.items()}
        self.n_images = sum(self.counts.values())
        self.side = plan.median_side(held.splits["train"])
        self.state.update(task=task, metric=self.metric, counts=self.counts, median_side=self.side)

    def _candidates(self) -> list[plan.Candidate]:
        from visiontune.zoo.registry import get_model_spec

        specs = plan.backbones(self.max_params_m)
        if self.models:
            wanted = [get_model_spec(m) for m in self.models]  # unknown names fail here, with the zoo's list
            names = {s.name for s in specs}
            missing = [s.name for s in wanted if s.name not in names]
            if missing:
                raise ConfigError(
                    f"{option('models')} {', '.join(missing)}: no offline weights here, or larger than {option('max_model_size')}; "
                    f"these fit: {', '.join(sorted(names))}"
                )
            specs = [s for s in specs if s.name in {w.name for w in wanted}]
        spatial = self.task in ("segmentation", "detection")
        out = []
        for size_rank in range(2):
            for s in specs:
                sizes = plan.screen_sizes(self.side, s.weights.input_size, spatial)
                if size_rank < len(sizes):
                    out.append(plan.Candidate(s.name, sizes[size_rank], s.params_m or 1.0, s.weights.imagenet_top1))
        first = [c for c in out if c.image_size == out[0].image_size]
        return sorted(first, key=lambda c: c.cost) + [c for c in out if c not in first]

    def _check_budget(self, cheapest: plan.Candidate) -> None:
        """Refuse a budget that cannot hold one screen pass and the final test, measured on this machine."""
        per_image = self._forward_seconds(cheapest)
        need = 1.3 * per_image * (self.n_images + self.counts.get("test", 0)) + 20
        if self.left() < need:
            raise ConfigError(
                f"{option('time_limit', f'{self.limit_s:.0f}s')} is too small for this data: one screen pass over its "
                f"{self.n_images} images with {cheapest.model} at {cheapest.image_size} px and the final test take "
                f"about {need:.0f} s on this machine; give at least {math.ceil(need / 60)}m"
            )

    def _forward_seconds(self, c: plan.Candidate) -> float:
        """Seconds per image of a forward pass of ``c``'s backbone (a batch of 32, measured once here)."""
        import torch

        from visiontune.runtime import autocast, pick_device, resolve_precision
        from visiontune.zoo.registry import create_model

        net, _, _ = create_model(c.model, pretrained=False, num_classes=2)
        dev = pick_device(self.device)
        net = net.to(dev).eval().to(memory_format=torch.channels_last)
        x = torch.randn(32, 3, c.image_size, c.image_size, device=dev).to(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(dev, resolve_precision("auto", dev)):
            net.backbone(x[:4])
            t = time.perf_counter()
            net.backbone(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return (time.perf_counter() - t) / 32

    def _train_seconds(self, c: plan.Candidate, mode: str, stages: int = 1) -> float:
        """Seconds per training image of ``c`` in ``mode``: forward, backward and an AdamW step on batches of
        32 random images, at the precision the engine would train at (measured here: 4 steps after one)."""
        import torch

        from visiontune.runtime import autocast, pick_device, training_precision
        from visiontune.zoo.registry import create_model

        key = f"{c.key}:{mode}:{stages}"
        known = self.state["calibration"].setdefault("train_s_per_image", {})
        if key in known:
            return known[key]
        net, _, _ = create_model(c.model, pretrained=False, num_classes=10)
        net.freeze(mode, stages)
        dev = pick_device(self.device)
        net = net.to(dev).train().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        x = torch.randn(32, 3, c.image_size, c.image_size, device=dev).to(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (32,), device=dev)
        dtype = training_precision("auto", dev, False, c.image_size)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            with autocast(dev, dtype):
                loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        known[key] = sorted(times[1:])[1] / 32  # the lower median of 4 timed steps (a shared machine wobbles)
        return known[key]

    # ----------------------------------------------------------------- one run
    def _base(self) -> dict:
        return {
            "data": self.data,
            "seed": self.seed,
            "device": self.device,
            "evaluate_test": False,
            "debugger": False,
            **HOLD_OUT,
            "task": self.task,
        }

    def _execute(self, run: dict, must_end: float, replan: bool = False, final: bool = False) -> dict:
        """Run one engine job; fill ``run`` with its status, score, seconds per epoch.  ``must_end``: the budget
        second by which it should have ended (re-planned after its first epoch when off, stopped past it)."""
        from visiontune.jobs.api import default_store
        from visiontune.jobs.runner import run_job, submit
        from visiontune.train import TrainConfig
        from visiontune.train.loop import StopTraining

        store = default_store()
        out = self.out / "runs" / run["job"]
        if out.exists():
            shutil.rmtree(out)
        cfg = TrainConfig.from_dict({**self._base(), **run["config"], "out": str(out)})
        run.update(out=str(out), started_s=round(self.now(), 2), status="Running", epoch_seconds=[])
        started = self.now()
        epochs = int(run["config"].get("epochs", 10))
        calib = self.state["calibration"]
        deadline_asked: list[str] = []

        def watch(epoch: int, row: dict) -> None:
            t = float(row.get("epoch_seconds") or 0.0)
            run["epoch_seconds"].append(t)
            if epoch == 1:
                overhead = max(0.0, self.now() - started - t)  # the feature pass or pixel cache, model, start
                calib["screen_overhead_s" if run["phase"] == "screen" else "overhead_s"] = overhead
                run["overhead_s"] = overhead
                run["first_epoch_s"] = t
            end = self.now() + (epochs - epoch) * t + calib.get("finish_s", 3.0)
            if epoch == 1 and replan and t > 0:
                # a fresh run with the epochs that fit (this one's epoch is lost: only when the plan is well off)
                fit = self._epochs_that_fit(
                    must_end - self.now() - self._overhead() - calib.get("finish_s", 3.0), t, 0.04 * self.limit_s
                )
                late = end > must_end + REPLAN_TOLERANCE * (must_end - started)
                early = final and fit >= max(epochs + 2, 1.5 * epochs)
                if (late or early) and fit >= 1 and fit != epochs:
                    run["replan_epochs"] = fit
                    raise StopTraining(f"re-planned: an epoch takes {t:.1f} s, so {fit} epochs fit, not {epochs}")
            if end > 1.08 * self.limit_s and epoch < epochs and not deadline_asked:  # past the budget's +-10 %
                deadline_asked.append("deadline")
                store.request_stop(run["job"])  # the engine stops at its next batch, keeping this epoch's model

        job = submit(store, "builtin", {"config": cfg.to_dict()}, name=run["job"], output_dir=str(out))
        try:
            done = run_job(store, job.name, callbacks=(watch,))
        except VisiontuneError as exc:
            if isinstance(exc, DataError) and not any(r.get("score") is not None for r in self.state["runs"]):
                raise  # the data, not a candidate: every run would fail the same way
            run.update(status="Failed", reason=str(exc), seconds=round(self.now() - started, 2))
            return run
        run.update(status=done.status, seconds=round(self.now() - started, 2), ended_s=round(self.now(), 2))
        run["reason"] = done.failure_reason
        if done.status == "Completed":
            metrics = json.loads((out / "metrics.json").read_text())
            run["score"] = metrics.get(f"validation_{self.metric}")
            run["model"] = str(out)
            run["epochs_done"] = len(metrics.get("history", []))
            if run["epoch_seconds"]:
                calib["finish_s"] = max(
                    1.0, float(metrics.get("seconds", 0)) - sum(run["epoch_seconds"]) - run.get("overhead_s", 0)
                )
        elif done.status == "Stopped" and "replan_epochs" in run and not deadline_asked:
            run["status"] = "Replanned"
        elif done.status == "Stopped":
            partial = out / "partial"
            if (partial / "metrics.json").is_file():
                metrics = json.loads((partial / "metrics.json").read_text())
                run["score"] = metrics.get(self.epoch_key)
                run["model"] = str(partial)
                run["epochs_done"] = metrics.get("epochs_completed")
            if not deadline_asked:
                self.stopped = True  # `jobs stop` or Ctrl-C: auto ends too, with the best model so far
        return run

    def _record(self, run: dict) -> None:
        self.state["runs"].append(run)
        self.save()
        score = run.get("score")
        what = f"{run['phase']} {run['entry']} {self._describe(run['config'])}"
        result = f"{self.metric} {score:.4f}" if score is not None else run["status"].lower()
        note(f"auto: {what}: {result} in {run.get('seconds', 0):.0f} s ({self.left():.0f} s left)")

    @staticmethod
    def _describe(cfg: dict) -> str:
        bits = [cfg.get("mode", "head")]
        if cfg.get("mode") == "partial":
            bits.append(f"{cfg.get('trainable_stages', 1)} stages")
        if cfg.get("mode") != "head":
            bits.append(f"lr {cfg.get('learning_rate', 0):.2g}")
            bits.append(f"aug {cfg.get('augmentation', 'none')}")
            if cfg.get("label_smoothing"):
                bits.append(f"ls {cfg['label_smoothing']:.2f}")
        bits.append(f"{cfg.get('epochs', 10)} ep")
        return "(" + ", ".join(bits) + ")"

    def _job_name(self, tag: str) -> str:
        return f"{self.state['prefix']}-{tag}"

    def _done(self, run_id: str) -> dict | None:
        for r in self.state["runs"]:
            if r["id"] == run_id and r["status"] in ("Completed", "Failed", "Stopped", "Replanned"):
                return r
        return None

    # ----------------------------------------------------------------- screen
    def _screen(self, candidates: list[plan.Candidate]) -> list[dict]:
        share = max(SCREEN_SHARE * self.limit_s, 0.0)
        for i, c in enumerate(candidates):
            rid = f"s{i + 1}"
            if self._done(rid) or self.stopped:
                continue
            runs_so_far = [r for r in self.state["runs"] if r["phase"] == "screen"]
            if any(r.get("score") is not None for r in runs_so_far):  # (one scored entry always runs)
                spent = sum(r.get("seconds", 0) for r in runs_so_far)
                per_cost = spent / sum(plan.Candidate(**r["candidate"]).cost for r in runs_so_far)
                guess = per_cost * c.cost  # seconds, scaled from the screen runs so far by parameters x pixels
                if spent + guess > share:
                    self.say(
                        f"the screen skipped {c.key}: about {guess:.0f} s more would pass its share of the budget "
                        f"({share:.0f} s)"
                    )
                    continue
            config = {"model": c.model, "image_size": c.image_size, **plan.SCREEN_HEAD}
            if self.task not in ("classification",):
                config.pop("hidden_units")
                config.pop("dropout")
            if self.task in ("classification", "multi-label"):
                config["label_smoothing"] = 0.1
            run = {"id": rid, "phase": "screen", "entry": c.key, "candidate": c.__dict__, "config": config}
            run["job"] = self._job_name(f"screen-{c.model.replace('_', '-')}-{c.image_size}")
            self._execute(run, must_end=self.limit_s)
            self._record(run)
        screened = [r for r in self.state["runs"] if r["phase"] == "screen" and r.get("score") is not None]
        if not screened:
            failed = [r for r in self.state["runs"] if r["phase"] == "screen"]
            raise VisiontuneError(
                "auto: no screen run finished" + (f"; the first failed: {failed[0].get('reason')}" if failed else "")
            )
        ranked = sorted(screened, key=lambda r: -r["score"])
        if len(ranked) > 1:
            self.say(
                f"{ranked[0]['entry']} led the screen ({self.metric} {ranked[0]['score']:.4f} vs "
                f"{ranked[1]['score']:.4f} for {ranked[1]['entry']})"
            )
        else:
            self.say(f"{ranked[0]['entry']} was the one backbone screened ({self.metric} {ranked[0]['score']:.4f})")
        return ranked

    # ----------------------------------------------------------------- climb
    def _leaders(self, ranked: list[dict]) -> list[dict]:
        """The screen entries worth fine-tuning: the best and, when within its noise (2 standard errors of the
        validation score, at least 0.01), the next."""
        best = ranked[0]["score"]
        n = max(1, self.counts.get("validation", 1))
        noise = max(0.01, 2 * math.sqrt(max(best * (1 - best), 1e-4) / n))
        return [r for r in ranked[:2] if best - r["score"] <= noise]

    def _epoch_seconds(self, entry: dict, mode: str, stages: int = 1) -> float:
        """The planned seconds of one fine-tuning epoch of ``entry`` in ``mode``: a measured training step per
        image times the training images, corrected by what the epochs run so far took against the same
        measure (``loop_factor``: augmentation, data movement, the validation pass)."""
        calib = self.state["calibration"]
        per = self._train_seconds(plan.Candidate(**entry["candidate"]), mode, stages)
        fwd = entry.get("forward_s_per_image") or self._screen_forward(entry)
        return calib.get("loop_factor", 1.15) * (per * self.counts["train"] + fwd * self.counts["validation"])

    def _screen_forward(self, entry: dict) -> float:
        """Seconds per image of ``entry``'s forward pass, from its screen run (the run less its epochs)."""
        epochs = sum(entry.get("epoch_seconds") or [])
        total = float(entry.get("seconds") or 0.0)
        if self.task in ("segmentation", "detection"):  # head mode on pixels: each epoch is a forward pass
            per = (epochs / max(1, len(entry.get("epoch_seconds") or [1]))) / max(1, self.n_images)
        else:
            per = max(total - epochs, 1.0) / max(1, self.n_images)
        entry["forward_s_per_image"] = per
        return per

    def _calibrate(self, run: dict, entry: dict) -> None:
        """The loop's measured epochs against the step measure: later plans use the ratio (the median epoch)."""
        times = sorted(run.get("epoch_seconds") or [])
        if not times:
            return
        cfg = run["config"]
        measured = times[len(times) // 2]
        self.state["calibration"]["loop_factor"] = 1.0  # the plain measure, to divide by
        planned = self._epoch_seconds(entry, cfg["mode"], cfg.get("trainable_stages", 1))
        self.state["calibration"]["loop_factor"] = min(4.0, max(0.5, measured / planned))

    def _climb(self, ranked: list[dict]) -> None:
        leaders = self._leaders(ranked)
        by_key = {r["entry"]: r for r in ranked}
        reserve = self._finish_reserve(ranked[0])
        budget = self.left() - reserve
        first = plan.prior(leaders[0]["entry"], self.task)
        t_e = self._epoch_seconds(leaders[0], "full")
        overhead = self._overhead()
        affordable = (budget - overhead) / t_e
        if affordable < 1:
            self.say(
                f"no time for fine-tuning: an epoch of {leaders[0]['entry']} takes about {t_e:.0f} s and "
                f"{max(budget, 0):.0f} s are left; the best head is the model"
            )
            return
        per_run = overhead + self.state["calibration"].get("finish_s", 3.0)  # a run's cost beyond its epochs
        r0 = max(1, int((SEARCH_SHARE * budget / 8 - per_run) // t_e))
        search_cost = 4 * (per_run + r0 * t_e) + 2 * (per_run + 2 * r0 * t_e)
        final_epochs = (budget - search_cost - per_run) / t_e
        if final_epochs < FINAL_MIN_EPOCHS:
            self.say(
                f"the budget holds about {affordable:.1f} epoch(s) of full fine-tuning ({t_e:.0f} s each, planned): "
                f"a search would leave the final run under {FINAL_MIN_EPOCHS}, so one run of the hand-picked "
                "configuration"
            )
            self._final(first, by_key, reserve)
            return
        if len(leaders) > 1:
            self.say(f"{leaders[1]['entry']} is within the screen's noise of the leader: the search tries both")
        winner = self._search(leaders, by_key, r0, reserve + per_run + FINAL_MIN_EPOCHS * t_e)
        self._final(winner, by_key, reserve)

    def _epochs_that_fit(self, seconds: float, t_e: float, slack: float) -> int:
        """Whole epochs of ``t_e`` seconds in ``seconds``: the floor, or one more where it ends within
        ``slack`` seconds past them (an epoch can be a sixth of a short budget: the floor alone left 20 % of a
        10-minute budget unused, outside its +-10 %)."""
        x = seconds / t_e
        whole = int(x)
        return whole + 1 if x > whole and (whole + 1 - x) * t_e <= slack else whole

    def _overhead(self) -> float:
        """Seconds a fine-tuning run takes before its first epoch: measured by the last one, else guessed as
        half the screen's (the pixel cache decodes what the feature pass decoded, without the forward pass)."""
        calib = self.state["calibration"]
        return calib.get("overhead_s", 5.0 + 0.5 * calib.get("screen_overhead_s", 10.0))

    def _finish_reserve(self, entry: dict) -> float:
        fwd = entry.get("forward_s_per_image") or self._screen_forward(entry)
        return 10.0 + 3 * fwd * self.counts.get("test", 0)

    def _config(self, proposal: dict, by_key: dict, epochs: int) -> dict:
        entry = by_key[proposal["entry"]]
        cfg = {k: v for k, v in proposal.items() if k != "entry"}
        cfg.update(model=entry["candidate"]["model"], image_size=entry["candidate"]["image_size"], epochs=epochs)
        if self.task == "classification":
            cfg.setdefault("dropout", 0.2)
        return cfg

    def _search(self, leaders: list[dict], by_key: dict, r0: int, keep: float) -> dict:
        """Successive halving: 4 configurations x ``r0`` epochs, the better 2 x 2 ``r0``; a run that would leave
        less than ``keep`` seconds (the final run's minimum) is not started.  Returns the winning proposal."""
        import optuna

        from visiontune.jobs.api import default_store

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=self.state["prefix"],
            storage=default_store().optuna_storage(),
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            load_if_exists=True,
        )
        entries = [r["entry"] for r in leaders]
        if not study.trials:
            prior = plan.prior(entries[0], self.task)
            study.enqueue_trial({k: v for k, v in prior.items() if k != "dropout"})
            if len(entries) > 1:
                study.enqueue_trial({**{k: v for k, v in prior.items() if k != "dropout"}, "entry": entries[1]})
        self.say(
            f"successive halving: 4 configurations x {r0} epoch(s), the better 2 x {2 * r0}, then the winner with "
            "the time left (Optuna proposes; the first is the hand-picked full fine-tuning)"
        )
        rung: list[tuple[dict, dict]] = []  # (proposal, run)
        for i in range(4):
            rid = f"c0-{i + 1}"
            done = self._done(rid)
            if done is None and self.stopped:
                break
            if done is not None:
                rung.append((done["proposal"], done))
                continue
            trial = study.ask()
            proposal = plan.propose(trial, entries, self.task)
            if not self._fits(proposal, by_key, r0, keep):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            run = self._climb_run(rid, proposal, by_key, r0, rung=0)
            rung.append((proposal, run))
            if run.get("score") is not None:
                study.tell(trial, run["score"])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        scored = sorted([pr for pr in rung if pr[1].get("score") is not None], key=lambda pr: -pr[1]["score"])
        if not scored:
            return plan.prior(entries[0], self.task)
        best_two = scored[:2]
        rung1 = []
        for i, (proposal, _) in enumerate(best_two):
            rid = f"c1-{i + 1}"
            done = self._done(rid)
            if done is None and not self.stopped and self._fits(proposal, by_key, 2 * r0, keep):
                done = self._climb_run(rid, proposal, by_key, 2 * r0, rung=1)
            if done is not None:
                rung1.append((proposal, done))
        final = sorted([pr for pr in rung1 if pr[1].get("score") is not None], key=lambda pr: -pr[1]["score"])
        winner = (final or scored)[0]
        self.say(
            f"the search's winner: {winner[0]['entry']} {self._describe({**winner[0], 'epochs': winner[1]['config']['epochs']})} "
            f"at {self.metric} {winner[1]['score']:.4f}"
        )
        return winner[0]

    def _fits(self, proposal: dict, by_key: dict, epochs: int, keep: float) -> bool:
        """Whether a search run of ``epochs`` leaves ``keep`` seconds for the final run (said when not)."""
        entry = by_key[proposal["entry"]]
        cost = self._overhead() + epochs * self._epoch_seconds(
            entry, proposal["mode"], proposal.get("trainable_stages", 1)
        )
        if self.left() - cost >= keep:
            return True
        self.say(f"the search ended early: its next run (about {cost:.0f} s) would leave the final run too little time")
        return False

    def _climb_run(self, rid: str, proposal: dict, by_key: dict, epochs: int, rung: int) -> dict:
        entry = by_key[proposal["entry"]]
        run = {
            "id": rid,
            "phase": "climb",
            "rung": rung,
            "entry": proposal["entry"],
            "proposal": proposal,
            "config": self._config(proposal, by_key, epochs),
        }
        run["job"] = self._job_name(rid)
        must_end = (
            self.now()
            + self._overhead()
            + epochs * self._epoch_seconds(entry, proposal["mode"], proposal.get("trainable_stages", 1))
        )
        self._execute(run, must_end=must_end)
        self._calibrate(run, entry)
        self._record(run)
        return run

    def _final(self, proposal: dict, by_key: dict, reserve: float) -> None:
        finals = [r for r in self.state["runs"] if r["phase"] == "final"]
        if self.stopped or any(r["status"] in ("Completed", "Failed") for r in finals):
            return  # (a final run stopped by the user is run again by --resume, with the time left)
        entry = by_key[proposal["entry"]]
        for attempt in range(len(finals) + 1, len(finals) + 4):
            must_end = self.limit_s - reserve
            overhead = self._overhead()
            t_e = self._epoch_seconds(entry, proposal["mode"], proposal.get("trainable_stages", 1))
            epochs = self._epochs_that_fit(
                must_end - self.now() - overhead - self.state["calibration"].get("finish_s", 3.0),
                t_e,
                0.5 * reserve + 0.06 * self.limit_s,
            )
            if epochs < 1:
                self.say("no time left for the final fine-tuning run")
                return
            rid = "final" if attempt == 1 else f"final-{attempt}"
            run = {
                "id": rid,
                "phase": "final",
                "entry": proposal["entry"],
                "proposal": proposal,
                "config": self._config(proposal, by_key, epochs),
                "job": self._job_name(rid),
            }
            self._execute(run, must_end=must_end, replan=attempt < len(finals) + 3, final=True)
            self._calibrate(run, entry)
            self._record(run)
            if run["status"] != "Replanned":
                if run.get("score") is not None:
                    self.say(
                        f"the final run: {run['entry']} {self._describe(run['config'])}, {self.metric} "
                        f"{run['score']:.4f} in {run['seconds']:.0f} s"
                    )
                return
            self.say(
                f"the final run was re-planned after its first epoch ({run['first_epoch_s']:.0f} s, not the "
                f"{t_e:.0f} s planned): {run['replan_epochs']} epochs"
            )
            if self.stopped:
                return

    # ----------------------------------------------------------------- finish
    def _finish(self) -> AutoResult:
        from visiontune.auto import report

        scored = [r for r in self.state["runs"] if r.get("score") is not None and r.get("model")]
        later = {"screen": 0, "climb": 1, "final": 2}  # equal scores: the run that trained more of the network
        best = max(scored, key=lambda r: (r["score"], later[r["phase"]], r.get("ended_s") or 0)) if scored else None
        test = None
        model = None
        if best is not None:
            model = self.out / "model"
            _copy_model(Path(best["model"]), model)
            self.state["chosen"] = best["id"]
            self.say(
                f"chosen: {best['entry']} {self._describe(best['config'])} from the {best['phase']} "
                f"(validation {self.metric} {best['score']:.4f}); kept as trained on the training split "
                "(not re-trained on train + validation; no ensemble)"
            )
            test = self._test(model)
        self.state["test"] = test
        self.state["finished"] = True
        self.state["stopped"] = self.stopped
        self.save()
        files = report.write(self.state, self.out)
        return AutoResult(
            out=self.out,
            model=model,
            task=self.task,
            metric=self.metric,
            best=best,
            test=test,
            leaderboard=report.leaderboard(self.state),
            decisions=list(self.state["decisions"]),
            seconds=self.now(),
            time_limit=self.limit_s,
            stopped=self.stopped,
            files=files,
        )

    def _test(self, model: Path) -> dict | None:
        """The chosen model's one score on the test split (the data's own, or the one every run held out)."""
        from visiontune.evaluate import evaluate

        if not self.counts.get("test"):
            self.say("no test score: the data is too small to hold a test split out (add images, or give a test split)")
            return None
        try:
            result = evaluate(model, self.data, out=self.out / "test", device=self.device)
        except VisiontuneError as exc:
            self.say(f"the test split could not be scored: {exc}")
            return None
        value = result.metrics.get(self.metric)
        self.say(f"the chosen model's test {self.metric}: {value:.4f} (the test split's only use)")
        return {"metric": self.metric, "value": value, "images": self.counts.get("test")}

    # ----------------------------------------------------------------- all
    def run(self, resume: bool, overwrite: bool) -> AutoResult:
        self._open(resume, overwrite)
        self._look()
        candidates = self._candidates()
        if not resume:
            self._check_budget(candidates[0])
            self.say(
                f"{self.task} data, {self.counts.get('train', 0)} training / {self.counts.get('validation', 0)} "
                f"validation / {self.counts.get('test', 0)} test images, scored by {self.metric}; "
                f"{len(candidates)} screen entries: {', '.join(c.key for c in candidates)}"
            )
        self.save()
        try:
            ranked = self._screen(candidates)
            if not self.stopped:
                self._climb(ranked)
        except KeyboardInterrupt:
            self.stopped = True
            note("auto: interrupted; keeping the best model so far")
        if self.stopped:
            self.say("stopped before the budget ran out; --resume continues with the time left")
        return self._finish()


def _copy_model(src: Path, dst: Path) -> None:
    """The chosen run's artifact (not its checkpoint, debugger data or log) as ``dst``, replaced whole."""
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    skip = {"checkpoint.pt", "debug", "partial", "log.txt"}
    shutil.copytree(src, tmp, ignore=lambda d, names: [n for n in names if n in skip])
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
