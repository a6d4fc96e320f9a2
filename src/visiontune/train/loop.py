"""The fine-tuning loop: ``visiontune.train(data=..., model=..., mode=...)``.

Steps: open the data, hold out validation if needed, hash images (leak check
and cache keys), build the model, fill the caches, train with per-epoch
``key=value`` logs and atomic checkpoints, evaluate, write the artifact.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from visiontune.artifact.store import FILES as ARTIFACT_FILES
from visiontune.artifact.store import is_artifact, pack, save_artifact
from visiontune.data.loading import open_dataset
from visiontune.data.split import hold_out, split_digest
from visiontune.data.transforms import build_augmentation, normalize, normalize_boxes, normalize_pairs
from visiontune.debug.modes import ModeKeys
from visiontune.errors import CheckpointError, ConfigError, DataError, option
from visiontune.paths import run_folder, timestamped
from visiontune.progress import bar, log_metrics, note
from visiontune.runtime import (
    INFERENCE_PRECISION,
    autocast,
    dtype_name,
    keep_freed_memory,
    pick_device,
    resolve_precision,
    training_precision,
)
from visiontune.train import plots
from visiontune.train.checkpoint import CHECKPOINT, has_checkpoint, load_checkpoint, remove_checkpoint, save_checkpoint
from visiontune.train.config import TrainConfig
from visiontune.train.inputs import SplitInputs, feature_model_key, hash_images, prepare
from visiontune.tasks import Task, get_task
from visiontune.zoo.registry import (
    create_detection_model,
    create_model,
    create_segmentation_model,
    default_preprocessing,
    get_model_spec,
)
from visiontune.zoo.segmentation import STRIDE as SEGMENTATION_STRIDE

EpochCallback = Callable[[int, dict], None]


@dataclass
class TrainResult:
    out: Path
    metrics: dict
    history: list[dict]
    seconds: float
    #: the job that recorded the run (``visiontune jobs describe JOB``), when it ran as one
    job: str | None = None

    @classmethod
    def from_dir(cls, out: str | Path, job: str | None = None) -> "TrainResult":
        """The result of a finished run, read back from its output folder."""
        metrics = json.loads((Path(out) / "metrics.json").read_text())
        return cls(Path(out), metrics, metrics.get("history", []), float(metrics.get("seconds", 0.0)), job)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def _optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    lr, wd = cfg.lr, cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd, nesterov=cfg.momentum > 0)
    if cfg.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        try:  # the fused kernel measured ~30% faster per step for a small head on CPU
            return cls(params, lr=lr, weight_decay=wd, fused=True)
        except (RuntimeError, TypeError):
            return cls(params, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)


def _scheduler(cfg: TrainConfig, opt, steps_per_epoch: int):
    """Returns (scheduler, steps per batch?)."""
    if cfg.lr_scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, cfg.lr_scheduler_step, cfg.lr_scheduler_factor), False
    if cfg.lr_scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch), True
    if cfg.lr_scheduler == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch), True
    return None, False


def data_parallel() -> tuple[int, int]:
    """(rank, world size) when this process is one of several training one model (torch.distributed is
    initialised: Ray Train, torchrun), else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


#: steps between checks that the loss is still finite (each check waits for the device)
FINITE_CHECK_STEPS = 16


class _Trainer:
    """One model's optimisation.  Data-parallel over ``world`` processes: every rank walks the same seeded
    permutation, takes its share of each global batch, and DDP averages the gradients weighted by the share,
    so ``world`` workers take the same steps as one process with the same ``batch_size``."""

    def __init__(
        self,
        cfg: TrainConfig,
        net: nn.Module,
        inputs: dict[str, SplitInputs],
        prep,
        device,
        dtype,
        num_classes: int,
        task: Task,
    ):
        self.cfg, self.net, self.inputs, self.prep, self.task = cfg, net, inputs, prep, task
        self.rank, self.world = data_parallel()
        self.train_net = net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.train_net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        self.num_classes = num_classes
        self.device, self.dtype = device, dtype
        # evaluation answers as the saved model will (its inference copy runs a head on features in float32)
        self.eval_dtype = None if inputs["train"].kind == "features" else dtype
        self.answer_net: nn.Module | None = None  # answer_with_inference_copy()
        self.batch_norm = task.spatial or any(  # BatchNorm layers that learn (frozen ones stay in eval mode)
            isinstance(m, nn.modules.batchnorm._BatchNorm) and any(p.requires_grad for p in m.parameters())
            for m in net.modules()
        )
        if device.type == "cuda":  # the caches held on the GPU whole when they fit: no host copy per batch
            budget = torch.cuda.mem_get_info(device)[0] // 4  # a quarter of what is free now
            for split in inputs.values():
                budget -= split.hold_on(device, budget)
        self.policy = build_augmentation(cfg.augmentation, prep.image_size, masks=task.spatial)
        self.criterion = task.criterion(
            inputs["train"].y,
            num_classes,
            class_weights=cfg.class_weights,
            label_smoothing=cfg.label_smoothing,
            device=device,
            loss=cfg.multi_label_loss,
        )
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.opt = _optimizer(cfg, self.params)
        n = len(inputs["train"])
        self.steps_per_epoch = math.ceil(n / cfg.batch_size)
        self.sched, self.per_batch = _scheduler(cfg, self.opt, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        self.stop = None  # a threading.Event: set -> StopTraining at the next batch
        self.hook = None  # the debugger's hook (visiontune.debug), when it is on
        self.rule_stop: list[str] = []  # a rule asked to stop: the run ends after this epoch
        self.rules = None  # the rules' runner (rank 0, debugger on)

    def forward(self, x: torch.Tensor, train: bool, answer: bool = False) -> torch.Tensor:
        """Logits: the network being trained (``train``: augmented, its precision), as it evaluates between
        epochs, or (``answer``) as the saved model will answer by default (``load_model``, ``serve``)."""
        if x.dtype == torch.uint8:
            x = normalize(x, self.prep, self.device, policy=self.policy if train else None)
        else:  # features, or pixels already normalised (and augmented) with their masks
            x = x.to(self.device, non_blocking=True)
        if self.hook is not None and self.hook.saving("inputs"):
            self.hook.save_input(x)
        if answer and self.answer_net is not None:
            return self.answer_net(x).float()
        with autocast(self.device, self.dtype if train else self.eval_dtype):
            return (self.train_net if train else self.net)(x).float()

    def answer_with_inference_copy(self) -> None:
        """From now on ``answer`` logits come from the trained network's inference copy at the default
        inference precision (BatchNorm folded, bf16 where native): what ``load_model`` and ``serve`` compute,
        so the metrics a run reports are the ones ``visiontune evaluate`` finds.  A head on cached features
        already answers so (float32, as the copy runs it)."""
        if self.inputs["train"].kind != "features":
            from visiontune.zoo.optimize import inference_copy

            self.answer_net = inference_copy(
                self.net, self.device, resolve_precision(INFERENCE_PRECISION, self.device)
            )[0]

    def _plan(self, perm: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        """The epoch's batches for this rank: (sample indices, the rank's share of the global batch)."""
        plan = []
        for start in range(0, len(perm), self.cfg.batch_size):
            idx, share = perm[start : start + self.cfg.batch_size], 1.0
            if self.batch_norm and start > 0 and len(idx) < 2 * self.world:
                continue  # BatchNorm cannot normalise one image whose feature map has shrunk to 1x1 (a 32 px
                # classifier's last stage, DeepLabV3+'s pooled ASPP branch): a last batch that would give some
                # rank a single image waits for the next epoch's shuffle (every rank decides alike)
            if self.world > 1:
                if len(idx) < self.world:  # a last batch too small to split: every rank skips it alike
                    continue
                mine = idx.tensor_split(self.world)[self.rank]
                idx, share = mine, len(mine) * self.world / len(idx)
            plan.append((idx, share))
        return plan

    def train_epoch(self, epoch: int, advance) -> tuple[float, float]:
        torch.manual_seed(_epoch_seed(self.cfg.seed, epoch))
        data = self.inputs["train"]
        gen = torch.Generator().manual_seed(_epoch_seed(self.cfg.seed, epoch))
        perm = torch.randperm(len(data), generator=gen)
        self.net.train()
        hook = self.hook
        if hook is not None:
            hook.set_mode(ModeKeys.TRAIN)
        # the epoch's loss and hits are summed on the device and read once, at its end (and the loss checked
        # for NaN every FINITE_CHECK_STEPS steps): no device sync per step
        acc = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64
        total_loss = torch.zeros((), dtype=acc, device=self.device)
        correct = torch.zeros((), dtype=acc, device=self.device)
        seen = 0
        plan = self._plan(perm)
        # the next batches are gathered while this one trains; a stopped or failed epoch drops them
        with closing(data.batches([idx for idx, _ in plan], pin=self.device.type == "cuda")) as batches:
            t0 = time.perf_counter()
            for step, ((idx, share), (xb, yb)) in enumerate(zip(plan, batches)):
                if self.stop is not None and self.stop.is_set():
                    raise StopTraining(f"stopped on request during epoch {epoch}")
                if self.task.spatial:  # images and masks move together, on the device; colour changes the image only
                    xb, yb = normalize_pairs(xb, yb, self.prep, self.device, self.policy)
                    yb = yb.long()
                elif self.task.boxes and self.policy is not None:  # images and boxes, likewise
                    xb, yb = normalize_boxes(xb, yb, self.prep, self.device, self.policy)
                yb = yb.to(self.device)
                if hook is not None:
                    hook.begin_step()
                t1 = time.perf_counter()
                logits = self.forward(xb, train=True)
                loss = self.criterion(logits, yb)
                t2 = time.perf_counter()
                if share != 1.0:
                    loss_for_grad = loss * share  # DDP averages over ranks; this weights each rank by its share
                else:
                    loss_for_grad = loss
                self.opt.zero_grad(set_to_none=True)
                # backward, the gradients unscaled (fp16), the hook records them, then the step: in both branches
                if self.scaler is not None:
                    self.scaler.scale(loss_for_grad).backward()
                    self.scaler.unscale_(self.opt)  # the true gradients (step() does not unscale them twice)
                else:
                    loss_for_grad.backward()
                t3 = time.perf_counter()
                if hook is not None and (self.scaler is None or self._grads_finite(hook)):
                    hook.end_backward()  # (a step the scaler skips, its gradients inf/NaN, records none)
                if self.scaler is not None:
                    self.scaler.step(self.opt)  # skipped when a gradient is inf/NaN; the scale then shrinks
                    self.scaler.update()
                else:
                    self.opt.step()
                if self.sched is not None and self.per_batch:
                    self.sched.step()
                loss_value = loss.detach()
                total_loss += loss_value * len(yb)
                correct += self.task.hits(logits.detach(), yb)
                seen += len(yb)
                if step % FINITE_CHECK_STEPS == FINITE_CHECK_STEPS - 1:
                    self._check_finite(total_loss, epoch)
                advance(len(yb))
                if hook is not None:
                    t4 = time.perf_counter()
                    labels, pred = self.task.debug_values(logits, yb)
                    name = self.task.loss_name
                    hook.record_step(
                        loss_value,
                        labels,
                        pred,
                        loss_name=name,
                        data=t1 - t0,
                        forward=t2 - t1,
                        backward=t3 - t2,
                        optimizer=t4 - t3,
                        step_seconds=t4 - t0,
                    )
                t0 = time.perf_counter()  # the next step's time starts with the wait for its batch
        self._check_finite(total_loss, epoch)
        if self.sched is not None and not self.per_batch:
            self.sched.step()
        total_loss, correct = total_loss.item(), correct.item()
        if self.world > 1:  # the epoch's loss and accuracy over every rank's share
            import torch.distributed as dist

            totals = torch.tensor([total_loss, correct, float(seen)], dtype=torch.float64)
            dist.all_reduce(totals)
            total_loss, correct, seen = totals[0].item(), totals[1].item(), int(totals[2].item())
        return total_loss / seen, correct / seen

    def _grads_finite(self, hook) -> bool:
        """On a step whose gradients the hook saves: whether the scaler will take it (every gradient finite).
        A float16 loss scale too large for the first steps makes inf gradients the scaler skips, as it
        should: they are not the run's gradients.  One device sync, on saving steps only."""
        if not hook.saving("gradients"):
            return True
        grads = [p.grad for p in self.params if p.grad is not None]
        return not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def _check_finite(self, total_loss: torch.Tensor, epoch: int) -> None:
        """The epoch's summed loss is NaN or infinite once any step's was."""
        if not torch.isfinite(total_loss):
            raise ConfigError(
                f"the loss became {total_loss.item()} at epoch {epoch}; lower "
                f"{option('learning_rate')} (now {self.cfg.lr:g}) or use "
                f"{option('precision', 'fp32')}"
            )

    @torch.inference_mode()
    def logits(self, split: str, mode=None, answer: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image's logits in ``split``; the debugger records them in ``mode`` (EVAL: with their loss).
        ``answer``: as the saved model answers (:meth:`forward`)."""
        data = self.inputs[split]
        self.net.eval()
        if self.hook is not None:
            self.hook.set_mode(mode or ModeKeys.EVAL)
        out = []
        for start in range(0, len(data), self.cfg.eval_batch_size):
            idx = torch.arange(start, min(start + self.cfg.eval_batch_size, len(data)))
            xb, yb = data.batch(idx)
            if self.hook is not None:
                self.hook.begin_step()
            logits = self.forward(xb, train=False, answer=answer)
            yb = yb.long() if self.task.spatial else yb
            if self.hook is not None and (mode or ModeKeys.EVAL) == ModeKeys.EVAL:
                self.hook.record_step(
                    self.criterion(logits, yb.to(self.device)),  # each batch's loss
                    loss_name=self.task.loss_name,
                )
            out.append(self.task.reduce(logits, yb))
        return self.task.collect(out, self.num_classes), data.y

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}


class StopTraining(Exception):
    """Raised by an epoch callback to end a run early (a pruned tuning trial, a stopped job).

    The run's last checkpoint stays in ``out``, so ``resume=True`` can continue it."""


@dataclass
class _Run:
    """What :func:`train` resolved before the first epoch."""

    cfg: TrainConfig
    out: Path
    dataset: object
    model: object
    spec: object
    wspec: object
    prep: object
    device: torch.device
    dtype: torch.dtype | None
    feature_dtype: torch.dtype | None
    state: dict | None
    task: Task
    #: the splits carved out of train (hold_out) and what makes them reproducible: evaluate finds them again
    held_out: dict | None = None


def train(
    config: TrainConfig | None = None, *, callbacks: tuple[EpochCallback, ...] = (), stop=None, **options
) -> TrainResult:
    """Fine-tune a model; every option of :class:`TrainConfig` can be passed by name.

    ``callbacks`` are called as ``cb(epoch, row)`` after each epoch; one may raise
    :class:`StopTraining` to end the run early.  ``stop`` (a ``threading.Event``) ends it at the next
    batch when set (a stopped job); the last epoch's checkpoint stays for ``resume=True``."""
    cfg = config if config is not None else TrainConfig.from_dict(options)
    if config is not None and options:
        cfg = TrainConfig.from_dict({**config.to_dict(), **options})
    started, wall = time.perf_counter(), time.time()
    keep_freed_memory()  # each step's tensors reuse the last step's memory instead of faulting in new pages
    run = _resolve(cfg)
    trainer, inputs, skipped = _prepare_inputs(run)
    trainer.stop = stop
    session = _start_debugger(run, trainer, wall) if run.cfg.debugger else None
    try:
        try:
            history, best = _fit(run, trainer, callbacks)
        except StopTraining as exc:
            if stop is not None and stop.is_set() and trainer.rank == 0:  # a stopped job, not a pruned trial
                exc.partial = _save_partial(run, trainer)
            raise
        return _finish(run, trainer, history, best, skipped, started, session)
    finally:
        if trainer.hook is not None:
            trainer.hook.close()
        if session is not None:
            session.finish()


#: the share of training time the engine's debugger may spend summarising weights, gradients and activations
BUDGET = 0.01


def _start_debugger(run: _Run, trainer: "_Trainer", started: float):
    """The hook on the model being trained (every rank writes its own file), and on rank 0 the system
    monitor and the rules, in ``<out>/debug``."""
    from visiontune.debug.config import HookConfig, SaveConfig, parse_step_range
    from visiontune.debug.hook import Hook
    from visiontune.debug.session import FOLDER, DebugSession

    cfg, folder = run.cfg, run.out / FOLDER
    if run.state is None:  # a new run: the folder's old files would mix with this one's; each rank clears its own
        from visiontune.debug.hook import clear_worker

        clear_worker(folder, str(trainer.rank), shared=trainer.rank == 0)
    if trainer.rank == 0 and not run.task.spatial:  # rules name classes, not just their indices
        from visiontune.debug.rules.debugger import CLASSES_FILE
        from visiontune.paths import atomic_write_text

        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / CLASSES_FILE, json.dumps(run.dataset.classes))
    # weights, gradients, activations and inputs of every layer cost several ms to summarise (a mobilenet_v2
    # step: ~80 ms at 64 px on 2 cores), so by default they are saved on steps spaced to spend ~1% of the
    # training time (benchmarks/debug_overhead.py); --debug-save-interval N fixes the spacing instead
    interval = cfg.debug_save_interval
    hook = Hook(
        config=HookConfig(
            str(folder),
            SaveConfig(save_interval=interval or 1),
            profile_steps=parse_step_range(cfg.profile_steps) if cfg.profile_steps else None,
        ),
        budget=None if interval else BUDGET,
    )
    if run.state is not None:
        hook.resume_after(folder)
    hook.register_module(trainer.net, step_hooks=False)  # the loop drives it: nothing runs on steps that save nothing
    trainer.hook = hook
    if trainer.rank != 0:
        return None

    def stop(reason: str) -> None:
        trainer.rule_stop.append(reason)

    session = DebugSession(
        folder,
        rules=cfg.debug_rules,
        kind="builtin",
        monitor_interval=cfg.profile_interval,
        log=note,
        stop=stop,
        started=started,
        pretrained=bool(run.wspec or cfg.weights),
    )
    trainer.rules = session.runner
    return session


def _resolve(cfg: TrainConfig) -> _Run:
    """Check the output folder, open the data, build the model, fill in every default."""
    get_model_spec(cfg.model)  # an unknown model fails before any data is read
    if not cfg.out:
        cfg = dataclasses.replace(cfg, out=str(run_folder(timestamped(cfg.model))))
    out = Path(cfg.out)
    _check_out(out, cfg)
    dataset = open_dataset(
        cfg.data,
        on_bad_image=cfg.on_bad_image,
        label_attribute=cfg.label_attribute,
        allow_empty_labels=cfg.allow_empty_labels,
        task=cfg.task,
    )
    dataset.check()
    task = _task(cfg, dataset)
    had_test = bool(dataset.splits.get("test"))
    dataset = hold_out(dataset, cfg.valid_fraction, cfg.test_fraction, cfg.seed)
    if not dataset.splits.get("validation"):
        raise DataError(
            f"{cfg.data}: the validation split is empty (too few images per class to hold some out); "
            f"add images, give a validation split, or raise {option('valid_fraction')}"
        )
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    if task.name == "detection":
        model, spec, wspec = create_detection_model(
            cfg.model, pretrained=cfg.pretrained, num_classes=dataset.num_classes, weights=cfg.weights
        )
    elif task.spatial:
        model, spec, wspec = create_segmentation_model(
            cfg.model,
            pretrained=cfg.pretrained,
            num_classes=dataset.num_classes,
            weights=cfg.weights,
            decoder=cfg.segmentation_decoder,
        )
    else:
        model, spec, wspec = create_model(
            cfg.model,
            pretrained=cfg.pretrained,
            num_classes=dataset.num_classes,
            weights=cfg.weights,
            hidden_units=cfg.hidden_units,
            dropout=cfg.dropout,
        )
    prep = default_preprocessing(spec, wspec, cfg.image_size, resize="squash" if task.resize == "squash" else None)
    if task.resize == "squash":  # segmentation and detection: whole images, multiples of the encoder's stride
        prep = _spatial_inputs(cfg, prep, task.name)
    if task.name == "detection":
        model.head.set_image_size(prep.image_size)
    task = task.bind(model)
    cfg = dataclasses.replace(cfg.resolved(image_size=prep.image_size, num_classes=dataset.num_classes), task=task.name)
    state = None
    if cfg.resume and has_checkpoint(out):
        state = load_checkpoint(out, cfg.training_identity(), _identity_defaults(cfg))
    elif cfg.resume:
        note(
            f"--resume: {out} has no checkpoint yet (the run stopped before its first epoch ended); "
            "starting from the beginning"
        )
    model.freeze(cfg.mode, cfg.trainable_stages)
    held = None
    if not had_test and dataset.splits.get("test") and "://" not in str(cfg.data):
        root = Path(cfg.data).resolve()
        held = {
            "data": str(root),
            "valid_fraction": cfg.valid_fraction,
            "test_fraction": cfg.test_fraction,
            "seed": cfg.seed,
            "test": split_digest(dataset.splits["test"], root),
        }
    if not cfg.evaluate_test and dataset.splits.get("test"):  # carved (and recorded) above, never read here
        dataset = dataclasses.replace(dataset, splits={k: v for k, v in dataset.splits.items() if k != "test"})
    return _Run(
        cfg,
        out,
        dataset,
        model,
        spec,
        wspec,
        prep,
        device,
        training_precision(
            cfg.precision,
            device,
            cfg.uses_feature_cache and cfg.hidden_units > 0,
            image_size=None if cfg.uses_feature_cache else prep.image_size,
        ),
        resolve_precision(cfg.precision, device),
        state,
        task,
        held,
    )


def _spatial_inputs(cfg: TrainConfig, prep, task: str):
    """Segmentation's and detection's input size (a multiple of the encoder's stride: the weights' own size
    rounded to one unless ``--image-size`` is given) and batches of at least two images per worker."""
    stride = SEGMENTATION_STRIDE
    if cfg.batch_size < 2 * data_parallel()[1]:
        raise ConfigError(
            f"{option('batch_size', cfg.batch_size)}: {task} trains on at least 2 images per "
            "batch (per worker): its encoder and decoder batch-normalise"
        )
    nearest = max(stride, round(prep.image_size / stride) * stride)
    if prep.image_size % stride and cfg.image_size is None:  # the weights' size
        note(
            f"{task} inputs are multiples of {stride} px: {nearest} px instead of the weights' "
            f"{prep.image_size} (--image-size to choose)"
        )
        return dataclasses.replace(prep, image_size=nearest)
    if prep.image_size % stride:
        raise ConfigError(
            f"{option('image_size', prep.image_size)}: {task} inputs must be a multiple of "
            f"{stride} pixels (e.g. {nearest})"
        )
    return prep


def _identity_defaults(cfg: TrainConfig) -> dict:
    """What a checkpoint written before an option existed ran with: the option's default (``task``: what the
    data resolved to, the only task there was)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return {**defaults, "task": cfg.task}


#: (task, what its data holds, what it needs): the data only that task trains on
_SPATIAL_DATA = (
    (
        "detection",
        "boxes per image",
        "boxes: a Ground Truth bounding-box manifest, an Object Detection .lst, COCO JSON, a YOLO folder, "
        "or <split>.boxes.manifest files",
    ),
    (
        "segmentation",
        "a mask per image",
        "masks: train/ + train_annotation/ (SageMaker's layout), images/ + masks/, or a Ground Truth "
        "semantic-segmentation manifest",
    ),
)


def _task(cfg: TrainConfig, dataset) -> Task:
    """``--task`` or, with ``auto``, what the data holds; one-label data may train as multi-label, not back."""
    name = dataset.task if cfg.task == "auto" else cfg.task
    for kind, holds, needs in _SPATIAL_DATA:  # data a task needs, and no other task takes
        if (dataset.task == kind) != (name == kind):
            raise DataError(
                f"{cfg.data}: {kind} data ({holds}); train it with {option('task', kind)} (or {option('task', 'auto')})"
                if dataset.task == kind
                else f"{cfg.data}: {option('task', kind)} needs {needs}"
            )
    if dataset.task == "multi-label" and name != "multi-label":
        raise DataError(
            f"{cfg.data}: multi-label data (label lists, several labels per image possible); train it "
            f"with {option('task', 'multi-label')} (or {option('task', 'auto')})"
        )
    if name != "multi-label" and cfg.multi_label_loss != "bce":
        raise ConfigError(
            f"{option('multi_label_loss', cfg.multi_label_loss)} is for multi-label data; this data is "
            + (
                "segmentation data (masks)"
                if name == "segmentation"
                else f"one label per image ({option('task', 'multi-label')} trains it as multi-label)"
            )
        )
    return get_task(name)


def _check_out(out: Path, cfg: TrainConfig) -> None:
    """A finished run is never overwritten by accident, an interrupted one never restarted by accident."""
    if cfg.overwrite and data_parallel()[0] != 0:
        return  # rank 0 clears the folder
    if cfg.overwrite:
        for name in (*ARTIFACT_FILES, "metrics.json", "model.tar.gz", "hyperparameters.json", CHECKPOINT):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        return
    check_out_folder(out, cfg)


def check_out_folder(out: Path, cfg: TrainConfig) -> None:
    """Refuse an output folder that holds a finished run (without ``overwrite``) or an interrupted one
    (without ``resume`` or ``overwrite``); changes nothing.  Jobs call it before they are recorded."""
    if cfg.overwrite:
        return
    if has_checkpoint(out) and not cfg.resume:
        raise CheckpointError(
            f"{out} holds an interrupted run (checkpoint.pt): pass {option('resume', True)} to "
            f"continue it, {option('overwrite', True)} to start it again, or choose another "
            f"{option('out')}"
        )
    if is_artifact(out) and not has_checkpoint(out):
        raise ConfigError(
            f"{out} holds a finished run (model.safetensors, metrics.json); pass "
            f"{option('overwrite', True)} to replace it, or choose another {option('out')}"
        )


def _prepare_inputs(run: _Run):
    cfg, dataset, model = run.cfg, run.dataset, run.model
    hashes = hash_images(dataset)
    run.out.mkdir(parents=True, exist_ok=True)
    if cfg.uses_feature_cache:
        spec, wspec = run.spec, run.wspec
        model_key = feature_model_key(spec, wspec, cfg.seed)
        inputs, skipped = prepare(
            dataset,
            hashes,
            kind="features",
            prep=run.prep,
            on_bad_image=cfg.on_bad_image,
            task=run.task,
            backbone=model.backbone,
            model_key=model_key,
            device=run.device,
            dtype=run.feature_dtype,
            batch_size=cfg.eval_batch_size,
            workers=cfg.num_workers,
        )
        net = model.head
    else:
        inputs, skipped = prepare(
            dataset,
            hashes,
            kind="pixels",
            prep=run.prep,
            on_bad_image=cfg.on_bad_image,
            task=run.task,
            workers=cfg.num_workers,
        )
        net = model
        model.to(memory_format=torch.channels_last)  # measured faster on CPU and GPU
    net.to(run.device)
    spec, wspec = run.spec, run.wspec
    note(
        f"{spec.name} ({spec.library}:{spec.arch}), weights: {wspec.tag if wspec else 'random init'}, "
        f"mode={cfg.mode}, {run.prep.image_size}px, device={run.device.type}, "
        f"precision={dtype_name(run.feature_dtype) + ' features, ' if cfg.uses_feature_cache else ''}"
        f"{dtype_name(run.dtype)} training, "
        f"{dataset.num_classes} classes: "
        + ", ".join(f"{k}={len(v)}" for k, v in inputs.items())
        + (f" ({len(skipped)} unreadable image(s) left out)" if skipped else "")
    )
    return (_Trainer(cfg, net, inputs, run.prep, run.device, run.dtype, dataset.num_classes, run.task), inputs, skipped)


def _fit(run: _Run, trainer: "_Trainer", callbacks) -> tuple[list[dict], dict]:
    """The epochs: train, validate, log, checkpoint; early stopping keeps the best epoch."""
    cfg, out, net, state = run.cfg, run.out, trainer.net, run.state
    history: list[dict] = []
    best = {"loss": float("inf"), "epoch": 0, "bad_epochs": 0}
    best_state = None
    first_epoch = 1
    if state is not None:
        net.load_state_dict(state["model"])
        trainer.opt.load_state_dict(state["optimizer"])
        if trainer.sched is not None:
            trainer.sched.load_state_dict(state["scheduler"])
        if trainer.scaler is not None and state.get("scaler"):
            trainer.scaler.load_state_dict(state["scaler"])
        history = json.loads(state["history"])
        best = json.loads(state["best"])
        best_state = state.get("best_state")
        first_epoch = int(state["epoch"]) + 1
        note(f"resuming {out} after epoch {state['epoch']}")
    writer = trainer.rank == 0  # one process writes files when several train one model
    if writer:
        cfg.save(out / "hyperparameters.json")

    stopped_early = False
    for epoch in range(first_epoch, cfg.epochs + 1):
        if best["bad_epochs"] >= cfg.early_stopping_patience and cfg.early_stopping:
            stopped_early = True
            break
        t0 = time.perf_counter()
        with bar(len(trainer.inputs["train"]), f"epoch {epoch}/{cfg.epochs}") as advance:
            train_loss, train_acc = trainer.train_epoch(epoch, advance)
        train_seconds = time.perf_counter() - t0
        val_logits, val_y = trainer.logits("validation")
        val = run.task.evaluate(val_logits, val_y, run.dataset.classes, cfg.top_k)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val["loss"],
            "val_acc": val["accuracy"],
            "lr": trainer.opt.param_groups[0]["lr"],
            "epoch_seconds": round(time.perf_counter() - t0, 3),
            "train_seconds": round(train_seconds, 4),
        }
        if run.task.headline != "accuracy":  # multi-label: val_acc is the exact-match ratio; val_mAP beside it
            row[f"val_{run.task.headline}"] = val[run.task.headline]
        if not run.task.train_accuracy:  # detection: no accuracy while training (val_acc: mAP at IoU 0.5)
            del row["train_acc"]
        history.append(row)
        log_metrics(**row)
        if trainer.hook is not None:  # every logged value, in the mode it belongs to
            trainer.hook.set_mode(ModeKeys.TRAIN)
            for key in ("train_loss", "train_acc", "lr", "epoch_seconds"):
                if key in row:
                    trainer.hook.save_scalar(key, row[key])
            trainer.hook.set_mode(ModeKeys.EVAL)
            for key in ("val_loss", "val_acc"):
                trainer.hook.save_scalar(key, row[key])
        if cfg.early_stopping:
            if val["loss"] < best["loss"] - cfg.early_stopping_min_delta:
                best = {"loss": val["loss"], "epoch": epoch, "bad_epochs": 0}
                best_state = trainer.trainable_state()
            else:
                best["bad_epochs"] += 1
        if writer and cfg.checkpoints:
            save_checkpoint(
                out,
                {
                    "epoch": epoch,
                    "model": net.state_dict(),
                    "optimizer": trainer.opt.state_dict(),
                    "scheduler": trainer.sched.state_dict() if trainer.sched is not None else {},
                    "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else {},
                    "history": json.dumps(history),
                    "best": json.dumps(best),
                    "best_state": best_state,
                    "identity": json.dumps(cfg.training_identity()),
                },
            )
        for cb in callbacks:
            cb(epoch, row)
        if trainer.rules is not None and trainer.rules.stops:  # a rule that may stop the run sees every epoch
            trainer.hook.flush()
            trainer.rules.poke(wait=True)
        if trainer.rule_stop:
            note(f"stopping after epoch {epoch}: {trainer.rule_stop[0]} (its action is stop)")
            break
    if cfg.early_stopping and best_state is not None:
        net.load_state_dict(best_state)
        note(
            f"early stopping: keeping epoch {best['epoch']} (val_loss={best['loss']:.4f})"
            + (" — stopped before the last epoch" if stopped_early else "")
        )
    return history, (best if cfg.early_stopping else None)


def _finish(run: _Run, trainer: "_Trainer", history, best, skipped, started: float, session=None) -> TrainResult:
    """Evaluate, write the artifact and the reports, pack ``model.tar.gz``."""
    cfg, out = run.cfg, run.out
    evaluated, metrics = _final_metrics(trainer, run.dataset, cfg, history, skipped, best, run.task)
    if trainer.rule_stop:
        metrics["stopped_by_rule"] = trainer.rule_stop[0]
    if trainer.hook is not None:
        trainer.hook.close()
    if session is not None:
        from visiontune.debug.session import summary

        results = session.finish()
        metrics["debugger"] = {r["name"]: r["status"] for r in results["rules"]}
        note(summary(results, out))
    metrics["runtime"] = {
        "device": run.device.type,
        "training_precision": dtype_name(run.dtype),
        "feature_precision": dtype_name(run.feature_dtype) if cfg.uses_feature_cache else None,
    }
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    metrics["data_parallel_workers"] = trainer.world
    if trainer.rank != 0:  # rank 0 writes the artifact
        return TrainResult(out, metrics, history, time.perf_counter() - started)
    _write_artifact(run, out, metrics, {"name": run.task.name, **metrics.get("task_extras", {})})
    run.task.reports(out, metrics, run.dataset.classes)
    if cfg.plots:
        plots.run_plots(out)
        run.task.save_examples(out, trainer.inputs[metrics["evaluated_on"]], evaluated, run.dataset.classes)
    pack(out)
    remove_checkpoint(out)
    shutil.rmtree(out / PARTIAL, ignore_errors=True)  # a stopped run's partial model: this one supersedes it
    return TrainResult(out, metrics, history, time.perf_counter() - started)


def _write_artifact(run: _Run, folder: Path, metrics: dict, task: dict) -> None:
    """The model as it is now, with what describes it, as an artifact in ``folder``."""
    spec, wspec = run.spec, run.wspec
    run.model.to("cpu")
    save_artifact(
        folder,
        run.model.float().to(memory_format=torch.contiguous_format),
        name=spec.name,
        library=spec.library,
        arch=spec.arch,
        weights_tag=wspec.tag if wspec else None,
        weights_license=wspec.license if wspec else None,
        prep=run.prep,
        classes=run.dataset.classes,
        hyperparameters=run.cfg.to_dict(),
        metrics=metrics,
        held_out=run.held_out,
        task=task,
    )


#: where a stopped run keeps the model of its last finished epoch (the run's own folder stays resumable)
PARTIAL = "partial"


def _save_partial(run: _Run, trainer: _Trainer) -> Path | None:
    """A stopped run's model as of its last finished epoch (its checkpoint), a whole artifact with its
    ``model.tar.gz`` in ``<out>/partial/``: what predict, evaluate, serve and deploy take.  Not evaluated on
    the test split (the run did not finish); its metrics are the epochs' history.  None before the first
    epoch ended.  A failure here is said, and the stop goes on."""
    if not has_checkpoint(run.out):
        return None
    folder = run.out / PARTIAL
    try:
        state = torch.load(run.out / CHECKPOINT, map_location="cpu", weights_only=True)
        history = json.loads(state["history"])
        trainer.net.load_state_dict(
            state["best_state"] if run.cfg.early_stopping and state.get("best_state") else state["model"]
        )
        best = json.loads(state.get("best") or "{}")
        row = history[best["epoch"] - 1] if run.cfg.early_stopping and best.get("epoch") else (history or [{}])[-1]
        last = {k: v for k, v in row.items() if isinstance(v, (int, float))}  # the epoch whose weights these are
        metrics = {"partial": True, "epochs_completed": int(state["epoch"]), **last, "history": history}
        _write_artifact(run, folder, metrics, {"name": run.task.name})
        pack(folder)
    except Exception as exc:  # noqa: BLE001 - keeping it is a courtesy: the stop goes on, saying why not
        note(f"stopped: the model of the last finished epoch could not be kept in {folder} ({exc})")
        return None
    note(f"stopped: the model as of epoch {state['epoch']} is in {folder} ({option('resume', True)} continues the run)")
    return folder


def _final_metrics(trainer: _Trainer, dataset, cfg: TrainConfig, history, skipped, best, task: Task):
    """(what the task collected of the evaluated split, metrics.json)"""
    split = "test" if "test" in trainer.inputs and len(trainer.inputs["test"]) else "validation"
    trainer.answer_with_inference_copy()  # the metrics of the model as it will answer, not as it trained
    val_logits, val_y = trainer.logits("validation", ModeKeys.PREDICT, answer=True)
    extras = task.fit_extras(val_logits, val_y)  # learnt on validation (thresholds), applied to the test split
    logits, y = trainer.logits(split, ModeKeys.PREDICT, answer=True)
    result = task.evaluate(logits, y, dataset.classes, cfg.top_k, extras)
    val = task.evaluate(val_logits, val_y, dataset.classes, cfg.top_k, extras)
    summary = {**task.summary(result, split), f"validation_{task.headline}": val[task.headline]}
    log_metrics(**summary)
    return logits, {
        "task": task.name,
        "task_extras": extras,
        "evaluated_on": split,
        **summary,
        "evaluation": result,
        "classes": dataset.classes,
        "counts": {name: len(inp) for name, inp in trainer.inputs.items()},
        "skipped_images": [{"source": s, "reason": r} for s, r in skipped + list(dataset.skipped)],
        "best_epoch": best["epoch"] if best else None,
        "history": history,
    }
