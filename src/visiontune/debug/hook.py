"""The debugger hook: saves losses, scalars, chosen tensors, weights, gradients, activations and inputs
(whole or reduced) into the job's tensor store, per mode and step, as smdebug's PyTorch hook does.

Steps: each forward pass of the registered model starts a step (a global step and a per-mode step).  A
script that registers no model still gets distinct steps: saving a name a second time in the same step
starts the next one.  Losses, scalars and whatever ``save_tensor`` is given are saved every time unless
their collection was given a save config (smdebug saved them only on its save interval, which is how a
per-epoch accuracy ended up with two points); weights, biases, gradients, activations and inputs are
saved on the save config's steps, as reductions.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.debug import reductions as red
from visiontune.debug.config import (
    BUILTIN_COLLECTIONS,
    EVERY,
    Collection,
    HookConfig,
    SaveConfig,
    parse_step_range,
)
from visiontune.debug.modes import ModeKeys, as_mode
from visiontune.debug.store import Record, TensorWriter, encode_series

_RELU = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish)
_SAT = {nn.Sigmoid: "sigmoid_output", nn.Tanh: "tanh_output"}
#: the most values a tensor saved whole may have (4 M: 16 MB of float32 per tensor and save step); larger
#: ones are saved as reductions only
WHOLE_MAX_VALUES = 1 << 22
_LOSS = torch.nn.modules.loss._Loss  # every torch.nn loss module (CrossEntropyLoss, MSELoss, NLLLoss...)
_ACT_REDUCTIONS = ("mean", "std", "min", "max", "zero_fraction", "nonfinite")

_HOOK: "Hook | None" = None
_HOOK_LOCK = threading.Lock()


def _worker() -> str:
    for var in ("RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var):
            return os.environ[var]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return str(torch.distributed.get_rank())
    return "0"


class Hook:
    """Save tensors while a model trains.  ``Hook(out_dir=...)`` or ``Hook.create_from_json_file()``."""

    def __init__(
        self,
        out_dir: str | Path | None = None,
        export_tensorboard: bool = False,
        tensorboard_dir: str | None = None,
        dry_run: bool = False,
        reduction_config=None,
        save_config: SaveConfig | dict | None = None,
        include_regex=None,
        include_collections=None,
        save_all: bool = False,
        include_workers: str = "one",
        *,
        config: HookConfig | None = None,
        profile_steps: str | tuple | None = None,
        framework_metrics: bool = True,
        budget: float | None = None,
    ):
        if config is None:
            if out_dir is None:
                raise TypeError("Hook() needs out_dir=... (or use Hook.create_from_json_file())")
            if isinstance(save_config, dict):
                save_config = SaveConfig(**save_config)
            config = HookConfig(str(out_dir), save_config or SaveConfig())
            if include_collections is not None:
                config.include_collections = tuple(include_collections)
            if include_regex:
                config.include_regex = [include_regex] if isinstance(include_regex, str) else list(include_regex)
        if profile_steps is not None:
            config.profile_steps = (
                parse_step_range(profile_steps) if isinstance(profile_steps, str) else tuple(profile_steps)
            )
        self.config = config
        #: a share of training time: weights, gradients, activations and inputs are then saved on TRAIN
        #: steps spaced so that saving them costs about this share (measured), not on a fixed interval
        self.budget = budget
        self._gap, self._last_save, self._typical, self._save_step = 10, None, None, None
        self.out_dir = Path(config.out_dir)
        self.dry_run = dry_run = dry_run or config.dry_run
        self.worker = _worker()
        self.save_all = save_all
        self.mode = ModeKeys.GLOBAL
        self.step = -1
        self.mode_steps = {m: -1 for m in ModeKeys}
        self.collections: dict[str, Collection] = {}
        for name in BUILTIN_COLLECTIONS:
            self.collections[name] = Collection(
                name, [], None if name in EVERY else config.save_config, () if name in EVERY else red.DEFAULT
            )
        for name, coll in config.collections.items():
            base = self.collections.get(name)
            if base is not None and not coll.reductions:
                coll.reductions = base.reductions
            self.collections[name] = coll
        if reduction_config is not None:
            names = tuple(getattr(reduction_config, "reductions", ()) or ()) + tuple(
                f"abs_{n}" for n in getattr(reduction_config, "abs_reductions", ()) or ()
            )
            names += tuple(getattr(reduction_config, "norms", ()) or ())
            for c in ("weights", "biases", "gradients"):
                self.collections[c].reductions = red.check(dict.fromkeys(names)) or red.DEFAULT
        self.included = set(config.include_collections)
        if save_all:
            self.included |= set(BUILTIN_COLLECTIONS)
        self._writer = None if dry_run else TensorWriter(self.out_dir / "tensors", self.worker)
        self._frames = (
            None
            if dry_run or not framework_metrics
            else open(self.out_dir / f"framework-worker-{self.worker}.jsonl", "a", encoding="utf-8")
        )  # noqa: SIM115
        self.flush_seconds = 1.0
        self._last_flush = time.monotonic()
        self._model: nn.Module | None = None
        self._model_name = ""
        self._handles: list = []
        self._auto_losses = False
        self._explicit_losses: set[int] = set()
        self._saving: dict[str, bool] = {}
        self._step_hooks = True
        self._grad_names: dict[str, str] = {}
        self._act_hooks: list = []
        self._act_handles: list = []
        # what waits for the next flush (kept as tensors: no device sync per step)
        self._values: list[tuple] = []  # (name, collections, mode, step, mode_step, value)
        self._reduced: list[tuple] = []  # (name, collections, mode, step, mode_step, keys, stacked, histogram, whole)
        self._step_rows: list[tuple] = []  # (mode, step, wall, {seconds})
        self._rows: list[tuple] = []  # record_step's: (mode, step, mode_step, loss name, loss, labels, predictions)
        self._events: list[dict] = []
        self._seen_this_step: set[str] = set()
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._snapshot_step = -1
        self._t_step: float | None = None
        self._t_fwd: float | None = None
        self._last_fwd = 0.0
        self._explicit_times = False
        self._trace = None
        self._closed = False
        self._on: dict[str, bool] = {}
        self._uniform: SaveConfig | None = None
        self._plan_stale = True
        self.started = time.time()
        self._write_config()
        import atexit
        import weakref

        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())  # a script that never closes its hook
        global _HOOK
        with _HOOK_LOCK:
            _HOOK = self

    # -- pickling (torch.save(model) after register_hook pickles the hooks' owner too) -------------------
    #: what a copy leaves behind: files, locks, threads, the profiler, queued tensors, the hooks' handles
    _NOT_PICKLED = (
        "_writer",
        "_frames",
        "_trace",
        "_handles",
        "_act_handles",
        "_act_hooks",
        "_values",
        "_reduced",
        "_step_rows",
        "_rows",
        "_events",
        "_snapshot",
        "_model",
    )

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in self._NOT_PICKLED}
        state["_closed"] = True  # the copy is inert: the original keeps saving, the copy saves nothing
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._writer = self._frames = self._trace = self._snapshot = self._model = None
        self._handles, self._act_handles, self._act_hooks = [], [], []
        self._saving = {}
        self._values, self._reduced, self._step_rows, self._rows, self._events = [], [], [], [], []

    # -- creation -------------------------------------------------------------------------------------
    @classmethod
    def create_from_json_file(cls, json_file_path: str | None = None) -> "Hook":
        """The hook a script job configures (``SMDEBUG_CONFIG_FILE_PATH``); it also records each torch
        ``DataLoader`` the script iterates, for the ``Dataloader`` profiler rule."""
        hook = cls(config=HookConfig.from_json_file(json_file_path))
        watch_dataloaders()
        hook.record_losses()
        return hook

    def record_losses(self) -> None:
        """Save the output of every ``torch.nn`` loss module this process calls (``CrossEntropyLoss_output_0``,
        collection ``losses``), in the model's forward pass or in the script, without ``register_loss``: what
        SageMaker's framework containers recorded for a script's hook.  Modules given to :meth:`register_loss`
        are saved by it alone.  One global forward hook; removed by :meth:`close`."""
        if self._auto_losses:
            return
        self._auto_losses = True
        self._handles.append(torch.nn.modules.module.register_module_forward_hook(self._any_loss_output))

    def _any_loss_output(self, module, inp, out) -> None:
        if isinstance(module, _LOSS) and id(module) not in self._explicit_losses:
            self._loss_output(f"{type(module).__name__}_output_0", module, inp, out)

    def _write_config(self) -> None:
        if self.dry_run:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "worker": self.worker,
            "pid": os.getpid(),
            "started": self.started,
            "budget": self.budget,
            "include_collections": sorted(self.included),
            "include_regex": self.config.include_regex,
            "collections": {n: c.to_dict() for n, c in self.collections.items() if n in self.included},
            "profile_steps": list(self.config.profile_steps) if self.config.profile_steps else None,
        }
        (self.out_dir / f"hook-worker-{self.worker}.json").write_text(json.dumps(info, indent=1))

    def resume_after(self, folder: str | Path) -> None:
        """Continue the step counts of an interrupted run whose tensors are in ``folder``."""
        from visiontune.debug.trial import Trial

        trial = Trial(folder)
        trial.refresh()
        if trial.steps():
            self.step = max(trial.steps())
            for m in ModeKeys:
                steps = trial.steps(m) if m != ModeKeys.GLOBAL else []
                if steps:
                    self.mode_steps[m] = max(steps)

    def get_collection(self, name: str) -> Collection:
        if name not in self.collections:
            self.collections[name] = Collection(name, [], None, ())
        self.included.add(name)
        self._plan_stale = True  # its save config may be changed next
        return self.collections[name]

    # -- modes and steps ---------------------------------------------------------------------------
    def set_mode(self, mode) -> None:
        self.mode = as_mode(mode)

    _SAVED_ON_STEPS = ("weights", "biases", "gradients", "activations", "inputs", "weight_update_ratio")

    def _refresh_saving_plan(self) -> None:
        """When every step-saved collection shares one save config (the usual case), one check per step."""
        configs = {id(self.collections[n].save_config) for n in self._SAVED_ON_STEPS}
        self._uniform = self.collections["weights"].save_config if len(configs) == 1 else None
        self._on = {n: n in self.included for n in self._SAVED_ON_STEPS}
        self._plan_stale = False

    def _advance(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()
        if self._plan_stale:
            self._refresh_saving_plan()
        mode = self.mode
        self.step += 1
        s = self.mode_steps[mode] = self.mode_steps[mode] + 1
        if self._model is None:
            self._seen_this_step.clear()
        if self.budget is not None:
            self._saving = self._on if mode == ModeKeys.TRAIN and self._budget_due(s) else {}
        elif self._uniform is not None:
            self._saving = self._on if self._uniform.should_save(mode, s) else {}
        else:
            self._saving = {
                n: n in self.included and self.collections[n].should_save(mode, s) for n in self._SAVED_ON_STEPS
            }
        if self.config.profile_steps and mode == ModeKeys.TRAIN:
            self._profile(s)

    def _budget_due(self, s: int) -> bool:
        if self._last_save is None or s - self._last_save >= self._gap:
            self._last_save = self._save_step = s
            return True
        return False

    def _account(self, mstep: int, seconds: float) -> None:
        """Time budget: learn a normal step's time, and space the next save by what this one cost."""
        if mstep == self._save_step:
            if self._typical is not None:
                extra = max(seconds - self._typical, 0.0)
                self._gap = max(1, math.ceil(extra / (self.budget * self._typical)))
            return
        self._typical = seconds if self._typical is None else 0.9 * self._typical + 0.1 * seconds

    def _current(self) -> tuple[int, int]:
        if self.step < 0:
            self.step = 0
            self.mode_steps[self.mode] = max(self.mode_steps[self.mode], 0)
        if self.mode_steps[self.mode] < 0:
            self.mode_steps[self.mode] = 0
        return self.step, self.mode_steps[self.mode]

    # -- registration ----------------------------------------------------------------------------------
    def register_module(self, module: nn.Module, timing: bool = True, step_hooks: bool = True) -> None:
        """Count steps by the model's forward passes; save its weights, biases, gradients, activations
        and inputs on the save config's steps (as the included collections say).

        ``step_hooks=False`` is for a training loop that calls :meth:`begin_step`, :meth:`end_backward`
        and :meth:`record_step` itself (visiontune's engine): no hook runs on the steps that save nothing,
        and activation hooks are attached only for the steps that save them."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"register_module needs a torch.nn.Module, not {type(module).__name__}")
        self._model = module
        self._model_name = type(module).__name__
        self._step_hooks = step_hooks
        if step_hooks:
            self._handles.append(module.register_forward_pre_hook(self._before_forward))
            if timing:
                self._handles.append(module.register_forward_hook(self._after_forward))
        self._grad_names = {}
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            coll = "biases" if pname.endswith("bias") else "weights"
            name = f"{self._model_name}_{pname}"
            if not self._included(coll, name) and not self._included("gradients", "gradient/" + name):
                continue
            self._grad_names[pname] = "gradient/" + name
            if step_hooks and hasattr(p, "register_post_accumulate_grad_hook"):
                self._handles.append(p.register_post_accumulate_grad_hook(self._grad_hook("gradient/" + name)))
        self._act_hooks = []
        if "activations" in self.included or any(
            c in self.included for c in ("relu_output", "sigmoid_output", "tanh_output")
        ):
            for path, sub in module.named_modules():
                kind = "relu_output" if isinstance(sub, _RELU) else _SAT.get(type(sub))
                if kind is None:
                    continue
                fn = self._activation_hook(f"{self._model_name}_{path}_output_0", kind, type(sub))
                if step_hooks:
                    self._handles.append(sub.register_forward_hook(fn))
                else:
                    self._act_hooks.append((sub, fn))
        self._act_handles: list = []

    # -- explicit stepping (a training loop that drives the hook itself) ------------------------------
    def begin_step(self) -> None:
        """A step starts (before its forward pass)."""
        if self._act_handles:
            for h in self._act_handles:
                h.remove()
            self._act_handles = []
        self._before_forward(None, ())
        if self._saving.get("activations") and self._act_hooks:
            self._act_handles = [sub.register_forward_hook(fn) for sub, fn in self._act_hooks]

    def saving(self, collection: str) -> bool:
        """Whether this step saves ``collection`` (weights, gradients, activations, inputs...)."""
        return bool(self._saving.get(collection))

    def save_input(self, x: torch.Tensor) -> None:
        if self._saving.get("inputs") and x.is_floating_point():
            with torch.no_grad():
                self._save_input(x)

    def end_backward(self) -> None:
        """After ``loss.backward()``: the gradients of a step that saves them."""
        if not self._saving.get("gradients") or self._model is None:
            return
        with torch.no_grad():
            for pname, p in self._model.named_parameters():
                name = self._grad_names.get(pname)
                if name is not None and p.grad is not None and self._included("gradients", name):
                    self._queue(name, ("gradients",), p.grad, self.collections["gradients"].reductions)

    def record_step(
        self,
        loss: torch.Tensor | float | None = None,
        labels: torch.Tensor | None = None,
        predictions: torch.Tensor | None = None,
        loss_name: str = "CrossEntropyLoss_output_0",
        **seconds: float,
    ) -> None:
        """A step's loss, labels and predictions (kept as tensors until the next flush) and its time split."""
        mode = self.mode
        mstep = self.mode_steps[mode]
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
        self._rows.append((mode, self.step, mstep, loss_name, loss, labels, predictions))
        if seconds:
            self._explicit_times = True
            self._step_rows.append((mode.name, mstep, seconds))
            if self.budget is not None and mode == ModeKeys.TRAIN and "step_seconds" in seconds:
                self._account(mstep, seconds["step_seconds"])

    register_hook = register_module  # smdebug's older name

    def register_loss(self, loss_module: nn.Module) -> None:
        """Save the loss module's output every step, in the current mode (collection ``losses``)."""
        name = f"{type(loss_module).__name__}_output_0"
        self._explicit_losses.add(id(loss_module))
        self._handles.append(loss_module.register_forward_hook(functools.partial(self._loss_output, name)))

    def _loss_output(self, name: str, _m, _inp, out) -> None:
        if not self._closed and isinstance(out, torch.Tensor) and out.numel() == 1:
            step, mstep = self._current()
            losses = self.collections.get("losses")
            if losses is not None and losses.save_config is not None and not losses.should_save(self.mode, mstep):
                return  # a CollectionConfig("losses", {"save_interval": ...}) applies, as in smdebug
            self._values.append((name, ("losses",), self.mode, step, mstep, out.detach().reshape(())))

    def _included(self, coll: str, name: str) -> bool:
        if coll in self.included:
            c = self.collections[coll]
            return not c.include_regex or c.matches(name)
        return bool(self.config.include_regex) and any(re.search(r, name) for r in self.config.include_regex)

    # -- torch hooks ---------------------------------------------------------------------------------
    def _before_forward(self, module, args):
        if self._closed:  # a copy unpickled with its model (torch.load) records nothing
            return
        now = time.perf_counter()
        train = self.mode == ModeKeys.TRAIN
        if train and self._t_step is not None and not self._explicit_times:
            self._step_rows.append(
                (
                    "TRAIN",
                    self.mode_steps[ModeKeys.TRAIN],
                    {"step_seconds": now - self._t_step, "forward": self._last_fwd},
                )
            )
        if train:
            self._t_step = now
        self._advance()
        self._t_fwd = now
        saving = self._saving
        if (not saving and self._snapshot is None) or self._model is None:  # no model: losses and scalars only
            return
        with torch.no_grad():
            if train and (self._snapshot is not None or saving.get("weight_update_ratio")):
                self._update_ratio()
            if saving.get("weights") or saving.get("biases"):
                self._save_params()
            if saving.get("inputs") and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
                self._save_input(args[0])

    def _after_forward(self, module, args, out):
        if self._t_fwd is not None:
            self._last_fwd = time.perf_counter() - self._t_fwd

    # the torch hooks are bound methods and partials of them, never closures: a model the hook is registered
    # with can be pickled whole (``torch.save(model, path)``), as smdebug's can; see __getstate__
    def _grad_hook(self, name: str):
        return functools.partial(self._gradient, name)

    def _gradient(self, name: str, p) -> None:
        if self._saving.get("gradients") and p.grad is not None and self._included("gradients", name):
            self._queue(name, ("gradients",), p.grad, self.collections["gradients"].reductions)

    def _activation_hook(self, name: str, kind: str, mtype):
        """ReLU-like outputs: the share of dead units (active in under 1% of the batch, SageMaker's
        threshold_inactivity); sigmoid/tanh inputs: the share of saturated units (pre-activation outside
        SageMaker's default bounds in over 99% of the batch)."""
        return functools.partial(self._activation, name, kind, mtype)

    def _activation(self, name: str, kind: str, mtype, _m, inp, out) -> None:
        if not self._saving.get("activations") or not isinstance(out, torch.Tensor):
            return
        if not (self._included("activations", name) or self._included(kind, name)):
            return
        with torch.no_grad():
            x = out.detach().float()
            extra = {}
            if x.ndim >= 2 and x.shape[0] > 0:
                units = x.reshape(x.shape[0], -1)
                if kind == "relu_output":
                    active = (units > 0).float().mean(0) * 100
                    extra["dead_fraction"] = (active < 1.0).float().mean()
                elif inp and isinstance(inp[0], torch.Tensor):
                    z = inp[0].detach().float().reshape(x.shape[0], -1)
                    lo, hi = (-23.0, 16.99999) if mtype is nn.Sigmoid else (-9.4999, 9.4999)
                    active = ((z > lo) & (z < hi)).float().mean(0) * 100
                    extra["saturated_fraction"] = (active < 1.0).float().mean()
            self._queue(name, ("activations", kind), x, _ACT_REDUCTIONS, extra)

    def _save_params(self) -> None:
        for pname, p in self._model.named_parameters():
            if not p.requires_grad:
                continue
            coll = "biases" if pname.endswith("bias") else "weights"
            name = f"{self._model_name}_{pname}"
            if self._saving.get(coll) and self._included(coll, name):
                self._queue(name, (coll,), p, self.collections[coll].reductions)

    def _update_ratio(self) -> None:
        """|w(t+1) - w(t)| / |w(t)| of each trainable weight, for the step after a snapshot."""
        if self._snapshot is not None:
            for pname, p in self._model.named_parameters():
                before = self._snapshot.get(pname)
                if before is None:
                    continue
                ratio = torch.linalg.vector_norm((p.detach().float() - before)) / (
                    torch.linalg.vector_norm(before) + 1e-12
                )
                self._queue_value(
                    f"update_ratio/{self._model_name}_{pname}",
                    ("weight_update_ratio",),
                    ratio,
                    step=self._snapshot_step,
                )
            self._snapshot = None
        if self._saving.get("weight_update_ratio"):
            self._snapshot = {
                n: p.detach().float().clone()
                for n, p in self._model.named_parameters()
                if p.requires_grad and not n.endswith("bias")
            }
            self._snapshot_step = self.mode_steps[ModeKeys.TRAIN]

    def _save_input(self, x: torch.Tensor) -> None:
        name = f"{self._model_name}_input_0"
        if not self._included("inputs", name):
            return
        x = x.detach().float()
        extra = {}
        if x.ndim == 4:
            extra = {f"channel_mean_{c}": x[:, c].mean() for c in range(min(x.shape[1], 16))}
            extra.update({f"channel_std_{c}": x[:, c].std(unbiased=False) for c in range(min(x.shape[1], 16))})
        extra["batch"] = torch.tensor(float(x.shape[0]) if x.ndim else 1.0, device=x.device)
        self._queue(name, ("inputs",), x, self.collections["inputs"].reductions, extra)

    # -- saving --------------------------------------------------------------------------------------
    def _queue(
        self,
        name: str,
        collections: tuple[str, ...],
        t: torch.Tensor,
        names: tuple[str, ...],
        extra: dict | None = None,
    ) -> None:
        """Reductions computed now on the tensor's device; fetched at the next flush."""
        step, mstep = self._current()
        raw = red.raw_stats(t)
        extra_keys = list(extra or {})
        stacked = torch.cat([raw, torch.stack([v.to(raw.dtype) for v in extra.values()])]) if extra else raw
        hist = red.histogram(t) if "histogram" in names else None
        whole = self._whole(collections, t)
        self._reduced.append((name, collections, self.mode, step, mstep, (names, extra_keys), stacked, hist, whole))

    def _whole(self, collections: tuple[str, ...], t: torch.Tensor):
        """The tensor itself, besides its reductions, when the hook config names one of its collections
        (``CollectionConfig(name="weights")``: smdebug then saved it whole, so ``.value(step)`` reads it) and
        it has at most :data:`WHOLE_MAX_VALUES` values; copied to the CPU now (it changes at the next step)."""
        if t.numel() > WHOLE_MAX_VALUES or not any(c in self.config.collections for c in collections):
            return None
        return t.detach().to("cpu", copy=True)

    def _queue_value(self, name, collections, t, step: int) -> None:
        self._values.append((name, collections, ModeKeys.TRAIN, self.step, step, t.detach()))

    def _write_rows(self, rows: list[tuple], now: float) -> None:
        """record_step's values, per mode: a few C++ calls for a whole flush, not work per step."""
        by_mode: dict = {}
        for r in rows:
            by_mode.setdefault(r[0], []).append(r)
        for mode, group in by_mode.items():
            for col, coll in ((4, "losses"), (5, "labels"), (6, "predictions")):
                have = [r for r in group if r[col] is not None]
                if not have or (coll != "losses" and coll not in self.included):
                    continue
                steps, msteps = [r[1] for r in have], [r[2] for r in have]
                name = have[0][3] if coll == "losses" else coll
                if coll == "losses":  # floats (what the engine passes) or 0-d tensors
                    tensors = [r[4] for r in have if isinstance(r[4], torch.Tensor)]
                    fetched = iter(_fetch_scalars(tensors))
                    values = np.array(
                        [next(fetched) if isinstance(r[4], torch.Tensor) else r[4] for r in have], dtype=np.float64
                    )
                    self._writer.write_bytes(encode_series(name, int(mode), (coll,), now, steps, msteps, values))
                else:
                    parts = [r[col].reshape(-1) if r[col].ndim != 1 else r[col] for r in have]
                    flat = _compact(torch.cat(parts).cpu().numpy())
                    self._writer.write_bytes(
                        encode_series(name, int(mode), (coll,), now, steps, msteps, flat, [t.shape[0] for t in parts])
                    )

    def save_scalar(self, name: str, value, sm_metric: bool = False, timestamp: float | None = None) -> None:
        """A number, saved every time (collection ``scalars``), in the current mode and step."""
        self._save(name, value, ("scalars",))

    def save_tensor(self, tensor_name: str, tensor_value, collections_to_write="default") -> None:
        """A tensor (or number, or array), saved every time unless its collection has a save config."""
        colls = (collections_to_write,) if isinstance(collections_to_write, str) else tuple(collections_to_write)
        self._save(tensor_name, tensor_value, colls)

    def _save(self, name: str, value, colls: tuple[str, ...]) -> None:
        if self._model is None and name in self._seen_this_step:
            self._advance()  # no model registered: a name saved again starts the next step
        self._seen_this_step.add(name)
        step, mstep = self._current()
        collections = self.collections
        for c in colls:
            coll = collections.get(c)
            if coll is None:
                coll = self.get_collection(c)
            if coll.save_config is not None and not coll.should_save(self.mode, mstep):
                return
        if isinstance(value, torch.Tensor):
            t = value.detach()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._values.append((name, colls, self.mode, step, mstep, float(value)))
            return
        else:
            t = torch.as_tensor(np.asarray(value))
        reductions = next(
            (collections[c].reductions for c in colls if collections[c].reductions and c not in EVERY), ()
        )
        if reductions and t.numel() > 1:
            self._queue(name, colls, t, reductions)
        else:
            self._values.append((name, colls, self.mode, step, mstep, t))

    def _materialize(self) -> None:
        """Everything queued since the last flush, as records: one series record per tensor and mode for
        per-step values, one record per reduced tensor."""
        values, self._values = self._values, []
        reduced, self._reduced = self._reduced, []
        rows, self._rows = self._rows, []
        if self._writer is None:
            return
        now = time.time()
        self._write_rows(rows, now)
        scalars: dict[tuple, list] = {}
        arrays: dict[tuple, list] = {}
        singles = []
        tensors = [v[5] for v in values if isinstance(v[5], torch.Tensor) and v[5].numel() == 1]
        fetched = iter(_fetch_scalars(tensors))
        for name, colls, mode, step, mstep, v in values:
            if isinstance(v, float):
                scalars.setdefault((name, int(mode), colls), []).append((step, mstep, v))
            elif v.numel() == 1:
                scalars.setdefault((name, int(mode), colls), []).append((step, mstep, next(fetched)))
            elif v.ndim == 1:
                arrays.setdefault((name, int(mode), colls, v.dtype), []).append((step, mstep, v))
            else:
                singles.append((name, colls, mode, step, mstep, v))
        for (name, mode, colls), rows in scalars.items():
            self._writer.write_bytes(
                encode_series(
                    name,
                    mode,
                    colls,
                    now,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    np.array([r[2] for r in rows], dtype=np.float64),
                )
            )
        for (name, mode, colls, _dtype), rows in arrays.items():
            flat = torch.cat([r[2] for r in rows]).cpu().numpy()
            self._writer.write_bytes(
                encode_series(
                    name,
                    mode,
                    colls,
                    now,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    flat,
                    [r[2].shape[0] for r in rows],
                )
            )
        for name, colls, mode, step, mstep, v in singles:
            self._writer.write(Record(name, step, int(mode), mstep, colls, now, v.cpu().numpy(), {}, self.worker))
        sizes = [r[6].numel() for r in reduced]
        flat = torch.cat([r[6].to("cpu", torch.float64) for r in reduced]).tolist() if reduced else []
        pos = 0
        for (name, colls, mode, step, mstep, (names, extra_keys), _st, hist, whole), size in zip(reduced, sizes):
            values, pos = flat[pos : pos + size], pos + size
            reds = red.derive(values[: len(red._RAW)], [n for n in names if n != "histogram"])
            reds.update(zip(extra_keys, values[len(red._RAW) :]))
            if hist is not None:
                reds["histogram"] = hist
            value = whole.numpy() if whole is not None else None
            self._writer.write(Record(name, step, int(mode), mstep, colls, now, value, reds, self.worker))

    # -- framework metrics and traces --------------------------------------------------------------------
    def record_event(self, name: str, **values) -> None:
        self._events.append({"event": name, "t": round(time.time(), 4), **values})

    def _flush_frames(self) -> None:
        rows, self._step_rows = self._step_rows, []
        events, self._events = self._events, []
        if self._frames is None or not (rows or events):
            return
        lines = [json.dumps(e) for e in events]
        by_mode: dict[str, list] = {}
        for r in rows:
            by_mode.setdefault(r[0], []).append(r)
        now = round(time.time(), 3)
        for mode, group in by_mode.items():  # columns of float32, base64: cheap to write from a training loop
            keys = sorted({k for r in group for k in r[2]})
            cols = {
                k: base64.b64encode(np.array([r[2].get(k, np.nan) for r in group], dtype="<f4").tobytes()).decode()
                for k in keys
            }
            lines.append(json.dumps({"t": now, "mode": mode, "step": [r[1] for r in group], "f32": cols}))
        self._frames.write("\n".join(lines) + "\n")
        self._frames.flush()

    def _profile(self, step: int) -> None:
        first, last = self.config.profile_steps
        if step == first and self._trace is None:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self._trace = profile(activities=acts, record_shapes=False)
            self._trace.__enter__()
        elif step == last + 1 and self._trace is not None:
            self._end_trace()

    def _end_trace(self) -> None:
        trace, self._trace = self._trace, None
        trace.__exit__(None, None, None)
        first, last = self.config.profile_steps
        path = self.out_dir / f"trace-worker-{self.worker}-steps-{first}-{last}.json"
        trace.export_chrome_trace(str(path))
        self.record_event("trace", path=path.name, first=first, last=last)

    # -- the end -------------------------------------------------------------------------------------------
    def flush(self) -> None:
        self._last_flush = time.monotonic()
        self._materialize()
        if self._writer is not None:
            self._writer.flush()
        self._flush_frames()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._trace is not None:
            self._end_trace()
        elif self.config.profile_steps and not self.dry_run and not list(self.out_dir.glob("trace-*.json")):
            first, last = self.config.profile_steps
            self.record_event("trace-missing", first=first, last=last, steps=self.mode_steps[ModeKeys.TRAIN] + 1)
            import warnings

            warnings.warn(
                f"profile steps {first}:{last} were never reached (the run had "
                f"{self.mode_steps[ModeKeys.TRAIN] + 1} training steps): no trace was written",
                stacklevel=2,
            )
        self.flush()
        for h in self._handles + self._act_handles:
            h.remove()
        self._handles.clear()
        if self._writer is not None:
            self._writer.close()
        if self._frames is not None:
            self._frames.close()
        global _HOOK
        with _HOOK_LOCK:
            if _HOOK is self:
                _HOOK = None


def clear_worker(folder: str | Path, worker: str, shared: bool = False) -> None:
    """Remove one process's files from a debug folder (and, with ``shared``, the job-wide ones: rules,
    system samples, traces, reports), so ranks starting together never remove each other's."""
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return
    for f in (
        folder / "tensors" / f"worker-{worker}.vtd",
        folder / f"framework-worker-{worker}.jsonl",
        folder / f"hook-worker-{worker}.json",
    ):
        f.unlink(missing_ok=True)
    for f in folder.glob(f"trace-worker-{worker}-*.json"):
        f.unlink(missing_ok=True)
    if shared:
        for name in ("rules.json", "system.jsonl", "report.html"):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)


def _compact(arr: np.ndarray) -> np.ndarray:
    """Class indices as int16 when they fit (a quarter of int64's bytes on disk)."""
    if arr.dtype.kind in "iu" and arr.size and arr.dtype.itemsize > 2 and -32768 <= arr.min() and arr.max() < 32768:
        return arr.astype(np.int16)
    return arr


def _fetch_scalars(tensors: list[torch.Tensor]) -> list[float]:
    """0-d tensors -> floats, one transfer per device."""
    if not tensors:
        return []
    out: list[float | None] = [None] * len(tensors)
    by_device: dict = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    for idx in by_device.values():
        same = [tensors[i] for i in idx]
        if all(t.ndim == 0 for t in same) and len({t.dtype for t in same}) == 1:
            values = torch.stack(same).to(torch.float64).tolist()  # one C++ call for a whole flush
        else:
            values = torch.stack([t.reshape(()).to(torch.float64) for t in same]).tolist()
        for i, v in zip(idx, values):
            out[i] = v
    return out


def watch_dataloaders() -> None:
    """From now on each pass over a ``torch.utils.data.DataLoader`` in this process is recorded as a
    ``dataloader`` event (its ``num_workers``, the mode) by the process's hook, as smdebug's framework
    profiler records data-loader events; the ``Dataloader`` rule counts workers from them.  Wrapped once."""
    from torch.utils.data import DataLoader

    with _HOOK_LOCK:
        iterate = DataLoader.__iter__
        if getattr(iterate, "watched_by_visiontune", False):
            return

        def __iter__(self):
            hook = _HOOK
            if hook is not None and not hook._closed:
                hook.record_event("dataloader", num_workers=int(self.num_workers), mode=hook.mode.name)
            return iterate(self)

        __iter__.watched_by_visiontune = True
        DataLoader.__iter__ = __iter__


def get_hook(json_config_path: str | None = None, create_if_not_exists: bool = False) -> Hook | None:
    """The process's hook: the one created last, else one made from the hook config script mode passes
    (``SMDEBUG_CONFIG_FILE_PATH``) when ``create_if_not_exists`` or that file exists."""
    from visiontune.debug.config import CONFIG_ENV

    with _HOOK_LOCK:
        hook = _HOOK
    if hook is not None:
        return hook
    path = json_config_path or os.environ.get(CONFIG_ENV)
    if path and Path(path).is_file():
        return Hook.create_from_json_file(path)
    if create_if_not_exists:
        hook = Hook(out_dir=os.environ.get("VISIONTUNE_DEBUG_DIR") or "debug-output")
        watch_dataloaders()
        hook.record_losses()
        return hook
    return None
