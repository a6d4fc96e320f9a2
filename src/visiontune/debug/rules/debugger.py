"""SageMaker Debugger's built-in rules, on what the hook saves (reductions, losses, scalars).

Where the saved data differs from smdebug's (reductions rather than whole tensors, losses every step
rather than every 500), the rule's docstring says how it reads it.
"""

from __future__ import annotations

import json
import math

import numpy as np

from visiontune.debug.modes import ModeKeys
from visiontune.errors import ConfigError
from visiontune.debug.rules.base import Finding, Rule, RuleContext, split

_MODES = {"TRAIN": ModeKeys.TRAIN, "EVAL": ModeKeys.EVAL, "GLOBAL": ModeKeys.GLOBAL, "PREDICT": ModeKeys.PREDICT}


def select(ctx: RuleContext, rule: Rule, collections=None, regex=None, default=(), required: bool = True) -> list[str]:
    """Tensor names chosen by collections and/or regexes (their union), else by ``default`` collections;
    a selection that matches nothing is a warning in the report, and (``required``) leaves the rule NoData."""
    colls, pats = split(collections), split(regex)
    trial = ctx.trial
    if not colls and not pats:
        colls = list(default)
    names: set[str] = set()
    for c in colls:
        names.update(trial.tensor_names(collection=c))
    if pats:
        names.update(trial.tensor_names(regex=pats))
    if not names:
        what = " and ".join(
            filter(
                None, [f"collection(s) {', '.join(colls)}" if colls else "", f"regex {', '.join(pats)}" if pats else ""]
            )
        )
        (ctx.no_data if required else ctx.warn)(f"{rule.name}: no saved tensor matched {what or 'anything'}")
    return sorted(names)


def loss_names(ctx: RuleContext, rule: Rule, collections=None, regex=None, use_losses=True) -> list[str]:
    names = (
        set(select(ctx, rule, collections, regex, ("losses",) if use_losses else ()))
        if (collections or regex or use_losses)
        else set()
    )
    return sorted(names)


def passes(trial, name: str) -> list[tuple[int, list[tuple[int, float]]]]:
    """A loss's values grouped into runs of one mode in global-step order: [(mode, [(step, value)])]."""
    if not trial.has_tensor(name):
        return []
    out: list[tuple[int, list[tuple[int, float]]]] = []
    for rec in trial.tensor(name).records().values():
        if rec.value is None or np.size(rec.value) != 1:
            continue
        v = float(np.asarray(rec.value).reshape(-1)[0])
        if out and out[-1][0] == rec.mode:
            out[-1][1].append((rec.mode_step, v))
        else:
            out.append((rec.mode, [(rec.mode_step, v)]))
    return out


def _ev(name, mode, step, **values) -> dict:
    return {"tensor": name, "mode": ModeKeys(mode).name if isinstance(mode, int) else mode, "step": step, **values}


class VanishingGradient(Rule):
    name = "vanishing_gradient"
    defaults = {"threshold": 0.0000001}
    explanation = "Some gradients are so small that their weights barely learn (vanishing gradients)."
    recommendation = (
        "Use ReLU-family activations and batch normalisation, residual connections, a better weight "
        "initialisation, or a larger learning rate for the affected layers."
    )

    def check(self, ctx):
        # persistently small: over 3 saved steps in a row (or every saved step, when there are 2), so a
        # pretrained layer's one quiet step at the start is not called vanishing
        # the weights' gradients (a normalisation layer's bias of a pretrained net legitimately gets ~1e-8)
        for name in [n for n in select(ctx, self, default=("gradients",)) if not n.endswith("bias")]:
            steps, vals = ctx.trial.series(name, ModeKeys.TRAIN, "abs_mean")
            need = min(3, len(steps))
            if need < 2:
                continue
            run = 0
            for i, v in enumerate(vals):
                run = run + 1 if v < self.threshold else 0
                if run >= need:
                    s = steps[i]
                    return Finding(
                        f"{name}: mean |gradient| below the threshold {self.threshold:g} for {run} saved "
                        f"steps in a row, {vals[i]:.3g} at step {s}",
                        [_ev(name, "TRAIN", steps[j], abs_mean=vals[j]) for j in range(i - run + 1, i + 1)],
                    )
        return None


class ExplodingTensor(Rule):
    name = "exploding_tensor"
    defaults = {"collection_names": None, "tensor_regex": None, "only_nan": False}
    explanation = "A tensor holds NaN or infinite values: the training has diverged."
    recommendation = "Lower the learning rate, clip gradients, check the loss for log(0) or division by zero."

    def check(self, ctx):
        for name in select(
            ctx,
            self,
            self.collection_names,
            self.tensor_regex,
            ("losses", "gradients", "weights", "biases", "scalars", "default"),
        ):
            tensor = ctx.trial.tensor(name)
            for mode in tensor.modes():
                for s, rec in tensor.records(mode, only_mode=True).items():
                    if rec.value is not None:
                        arr = (
                            np.asarray(rec.value, dtype=np.float64)
                            if np.asarray(rec.value).dtype.kind in "fiub"
                            else None
                        )
                        bad = arr is not None and (np.isnan(arr).any() if self.only_nan else (~np.isfinite(arr)).any())
                    else:
                        r = rec.reductions
                        bad = (r.get("nonfinite", 0) > 0 and not self.only_nan) or (
                            isinstance(r.get("mean"), float) and math.isnan(r["mean"])
                        )
                    if bad:
                        return Finding(
                            f"{name} holds {'NaN' if self.only_nan else 'NaN or infinite'} values at "
                            f"{ModeKeys(mode).name} step {s}",
                            [_ev(name, mode, s)],
                        )
        return None


class LossNotDecreasing(Rule):
    """Training losses: the mean of each window of ``num_steps`` steps against the window before.  Validation
    (EVAL) losses: each pass's mean against the pass before, since every pass walks the same images (smdebug
    compares steps ``num_steps`` apart, which for EVAL mixes the batches of two passes).  With no ``mode``, the
    validation passes are read when there are two or more."""

    name = "loss_not_decreasing"
    defaults = {
        "collection_names": None,
        "tensor_regex": None,
        "use_losses_collection": True,
        "num_steps": 10,
        "diff_percent": 0.1,
        "increase_threshold_percent": 5.0,
        "mode": None,
    }
    explanation = "The loss stopped going down: the model is not learning (any more)."

    def validate(self):
        if self.mode is not None and str(self.mode).upper() not in _MODES:
            raise ConfigError(f"rule {self.name}: parameter mode={self.mode!r}: choose one of {', '.join(_MODES)}")

    recommendation = (
        "Check the learning rate (too small: nothing moves; too large: it bounces), that the labels "
        "match the images, and that the layers you meant to train are trainable."
    )

    def check(self, ctx):
        names = loss_names(ctx, self, self.collection_names, self.tensor_regex, self.use_losses_collection)
        n = max(1, self.num_steps)
        for name in names:
            mode = _MODES.get(str(self.mode).upper()) if self.mode else None
            means = _pass_means(ctx, name)
            if mode is None:  # validation passes first: each one walks the same data, so their means compare
                mode = (
                    ModeKeys.EVAL
                    if sum(md == ModeKeys.EVAL for md, _, _ in means) >= 2
                    else next(
                        (m for m in (ModeKeys.TRAIN, ModeKeys.GLOBAL) if len(ctx.trial.series(name, m)[0]) >= 2 * n),
                        None,
                    )
                )
            runs = [(s, m) for md, s, m in means if md == mode]
            steps, vals = ctx.trial.series(name, mode) if mode in (ModeKeys.TRAIN, ModeKeys.GLOBAL) else ([], [])
            if mode in (ModeKeys.EVAL, ModeKeys.PREDICT) and len(runs) >= 2:
                finding = self._by_pass(name, mode, runs)
            elif len(vals) >= 2 * n:
                finding = self._by_window(name, mode, steps, vals, n)
            else:
                ctx.warn(
                    f"{self.name}: {name} has fewer than {2 * n} values in any mode (num_steps={n}) and fewer "
                    "than 2 validation passes; nothing to compare yet"
                )
                continue
            if finding is not None:
                return finding
        return None

    def _by_window(self, name, mode, steps, vals, n: int) -> Finding | None:
        """Training steps: windows of ``num_steps`` values compared with the window before (batch-to-batch
        noise averages out)."""
        for end in range(2 * n, len(vals) + 1, n):
            before, now = float(np.mean(vals[end - 2 * n : end - n])), float(np.mean(vals[end - n : end]))
            if now > before * (1 - self.diff_percent / 100):
                return Finding(
                    f"{name} ({mode.name}): the mean over steps {steps[end - n]}..{steps[end - 1]} "
                    f"({now:.4g}) {self._how(before, now)} from the {n} steps before ({before:.4g}); "
                    f"it must fall by {self.diff_percent:g}%",
                    [_ev(name, mode, steps[end - 1], mean_before=before, mean_now=now)],
                )
        return None

    def _by_pass(self, name, mode, runs: list[tuple[int, float]]) -> Finding | None:
        """Evaluation passes: each pass's mean against the pass before.  Windows of steps would mix the
        batches of two passes, and within one pass nothing learns: only whole passes compare."""
        for i in range(1, len(runs)):
            (_, before), (step, now) = runs[i - 1], runs[i]
            if now > before * (1 - self.diff_percent / 100):
                return Finding(
                    f"{name} ({mode.name}): pass {i + 1}'s mean ({now:.4g}, up to step {step}) "
                    f"{self._how(before, now)} from pass {i}'s ({before:.4g}); "
                    f"it must fall by {self.diff_percent:g}%",
                    [_ev(name, mode, step, mean_before=before, mean_now=now, pass_number=i + 1)],
                )
        return None

    @staticmethod
    def _how(before: float, now: float) -> str:
        rise = (now - before) / abs(before) * 100 if before else 0.0
        return f"rose {rise:.2g}%" if rise > 0 else f"fell only {-rise:.2g}%"


def _pass_means(ctx, name) -> list[tuple[int, int, float]]:
    """(mode, last step, mean) per run of one mode.  While the job runs its last run may still be growing (a
    validation pass half written), so it is left out until the job has finished: a finding stays found."""
    runs = passes(ctx.trial, name)
    if not ctx.finished:
        runs = runs[:-1]
    return [(m, vals[-1][0], float(np.mean([v for _, v in vals]))) for m, vals in runs]


class Overfit(Rule):
    name = "overfit"
    defaults = {"tensor_regex": None, "start_step": 0, "patience": 1, "ratio_threshold": 0.1}
    explanation = "The validation loss is well above the training loss: the model memorises the training set."
    recommendation = (
        "Use more data or stronger augmentation, more regularisation (weight decay, dropout, label "
        "smoothing), fewer trainable layers, or early stopping."
    )

    def check(self, ctx):
        names = loss_names(ctx, self, None, self.tensor_regex, True)
        for name in names:
            runs = _pass_means(ctx, name)
            if not any(m == ModeKeys.EVAL for m, _, _ in runs):
                ctx.warn(f"{self.name}: {name} has no EVAL-mode values (set the hook's mode to EVAL while validating)")
                continue
            streak, last_train = 0, None
            for mode, step, mean in runs:
                if mode == ModeKeys.TRAIN:
                    last_train = (step, mean)
                elif mode == ModeKeys.EVAL and last_train is not None and last_train[0] >= self.start_step:
                    ratio = (mean - last_train[1]) / abs(last_train[1]) if last_train[1] else 0.0
                    streak = streak + 1 if ratio > self.ratio_threshold else 0
                    if streak >= self.patience:
                        return Finding(
                            f"{name}: validation loss {mean:.4g} is {ratio:.0%} above the training loss "
                            f"{last_train[1]:.4g} (threshold {self.ratio_threshold:.0%}) after TRAIN step "
                            f"{last_train[0]}",
                            [_ev(name, "EVAL", step, val_loss=mean, train_loss=last_train[1], ratio=ratio)],
                        )
        return None


class Overtraining(Rule):
    name = "overtraining"
    defaults = {"patience_train": 5, "patience_validation": 10, "delta": 0.01}
    explanation = "The loss has stopped improving for many evaluations: more training will not help."
    recommendation = "Stop earlier (early stopping), or change the learning-rate schedule to continue improving."

    def check(self, ctx):
        for name in loss_names(ctx, self, None, None, True):
            runs = _pass_means(ctx, name)
            for mode, patience in ((ModeKeys.TRAIN, self.patience_train), (ModeKeys.EVAL, self.patience_validation)):
                series = [(s, v) for m, s, v in runs if m == mode]
                best, since = math.inf, 0
                for step, v in series:
                    if v < best - self.delta:
                        best, since = v, 0
                    else:
                        since += 1
                        if since >= patience:
                            return Finding(
                                f"{name} ({mode.name}): no improvement of more than {self.delta:g} over "
                                f"the best ({best:.4g}) for {since} evaluations (patience {patience})",
                                [_ev(name, mode, step, loss=v, best=best)],
                            )
        return None


class PoorWeightInitialization(Rule):
    name = "poor_weight_initialization"
    defaults = {
        "activation_inputs_regex": ".*relu_input",
        "threshold": 10.0,
        "distribution_range": 0.001,
        "patience": 5,
        "steps": 10,
    }
    explanation = (
        "The first steps show badly scaled layers: activation variances differ by orders of magnitude "
        "across layers, or most gradients are (almost) all the same value."
    )
    recommendation = "Initialise with Kaiming/Xavier (torch's defaults), not zeros or constants; add normalisation."

    def check(self, ctx):
        trial = ctx.trial
        acts = trial.tensor_names(regex=split(self.activation_inputs_regex)) or trial.tensor_names(
            collection="activations"
        )
        for step in sorted({s for n in acts for s in trial.series(n, ModeKeys.TRAIN, "std")[0]}):
            if step > self.steps:
                break
            stds = {}
            for n in acts:
                st, vals = trial.series(n, ModeKeys.TRAIN, "std")
                if step in st:
                    stds[n] = vals[st.index(step)]
            if len(stds) >= 2:
                hi, lo = max(stds.values()), min(stds.values())
                # the spread of the layers' activation scales (std, not variance: pooling alone divides the
                # variance of a healthy network's activations by the pool size)
                if hi == 0 or lo == 0 or hi / lo > self.threshold:
                    ratio = math.inf if lo == 0 else hi / lo
                    return Finding(
                        f"at step {step} the activation standard deviations across {len(stds)} layers "
                        f"range from {lo:.3g} to {hi:.3g} (ratio {ratio:.3g} > {self.threshold:g})",
                        [_ev(n, "TRAIN", step, std=v) for n, v in stds.items()][:10],
                    )
        grads = trial.tensor_names(collection="gradients")
        if grads:
            narrow, seen = [], 0
            for n in grads:
                st, vals = trial.series(n, ModeKeys.TRAIN, "std")
                early = [v for s, v in zip(st, vals) if s <= self.steps]
                if early:
                    seen += 1
                    spread = 3.29 * float(np.mean(early))  # the 5th-95th percentile spread of a normal
                    if spread < self.distribution_range:
                        narrow.append((n, spread))
            if seen and len(narrow) > seen / 2:
                return Finding(
                    f"{len(narrow)} of {seen} gradient tensors have a 5-95% spread below "
                    f"{self.distribution_range:g} in the first {self.steps} steps",
                    [_ev(n, "TRAIN", 0, spread=s) for n, s in narrow[:10]],
                )
        if not acts and not grads:
            ctx.no_data(f"{self.name}: no activations or gradients were saved")
        return None


def _fraction_rule(ctx, rule, names, key: str, what: str):
    for name in names:
        steps, vals = ctx.trial.series(name, ModeKeys.TRAIN, key)
        for s, v in zip(steps, vals):
            if v * 100 > rule.threshold_layer:
                return Finding(
                    f"{name}: {v:.0%} of its units are {what} at step {s} (threshold {rule.threshold_layer:g}%)",
                    [_ev(name, "TRAIN", s, **{key: v})],
                )
    return None


class SaturatedActivation(Rule):
    name = "saturated_activation"
    defaults = {
        "collection_names": None,
        "tensor_regex": ".*tanh_input|.*sigmoid_input",
        "threshold_tanh_min": -9.4999,
        "threshold_tanh_max": 9.4999,
        "threshold_sigmoid_min": -23.0,
        "threshold_sigmoid_max": 16.99999,
        "threshold_inactivity": 1.0,
        "threshold_layer": 50.0,
    }
    explanation = "Sigmoid/tanh units are saturated: their gradient is ~0, so the layers before them stop learning."
    recommendation = "Normalise the inputs to those layers (batch norm), lower the learning rate, or use ReLU."

    def check(self, ctx):
        names = set(ctx.trial.tensor_names(collection=["sigmoid_output", "tanh_output"]))
        if self.collection_names:
            names |= set(select(ctx, self, self.collection_names, None, required=False))
        if not names:
            ctx.warn(f"{self.name}: no sigmoid or tanh layer was recorded")  # the model has none: no issue
        return _fraction_rule(ctx, self, sorted(names), "saturated_fraction", "saturated")


class DeadRelu(Rule):
    name = "dead_relu"
    defaults = {"tensor_regex": ".*relu_output", "threshold_inactivity": 1.0, "threshold_layer": 50.0}
    explanation = "Most units of a ReLU layer output 0 for every input (dead ReLUs): they no longer learn."
    recommendation = "Lower the learning rate, use LeakyReLU/GELU, check the initialisation and the input scale."

    def check(self, ctx):
        names = set(ctx.trial.tensor_names(collection="relu_output"))
        names |= set(n for n in ctx.trial.tensor_names(regex=split(self.tensor_regex)))
        if not names:
            ctx.warn(f"{self.name}: no ReLU output was recorded")
        return _fraction_rule(ctx, self, sorted(names), "dead_fraction", "dead")


class WeightUpdateRatio(Rule):
    name = "weight_update_ratio"
    defaults = {"num_steps": None, "large_threshold": 10.0, "small_threshold": 0.00000001, "epsilon": 0.000000001}
    explanation = "Weights change by far too much (or not at all) from one step to the next."
    recommendation = (
        "A large ratio: lower the learning rate or clip gradients.  A tiny one: the optimizer is not "
        "moving these weights (learning rate 0, frozen, or not given to the optimizer)."
    )

    def check(self, ctx):
        for name in select(ctx, self, default=("weight_update_ratio",)):
            steps, vals = ctx.trial.series(name, ModeKeys.TRAIN)
            for s, v in zip(steps, vals):
                if v > self.large_threshold or v < self.small_threshold:
                    side = "above" if v > self.large_threshold else "below"
                    bound = self.large_threshold if v > self.large_threshold else self.small_threshold
                    return Finding(
                        f"{name.removeprefix('update_ratio/')}: |dW|/|W| = {v:.3g} at step {s}, {side} {bound:g}",
                        [_ev(name, "TRAIN", s, ratio=v)],
                    )
        return None


class AllZero(Rule):
    name = "all_zero"
    defaults = {"collection_names": None, "tensor_regex": None, "threshold": 100.0}
    explanation = "A tensor is (almost) entirely zeros."
    recommendation = "Check the initialisation, the data feeding that layer, and whether its inputs are all dead."

    def check(self, ctx):
        for name in select(
            ctx, self, self.collection_names, self.tensor_regex, ("weights", "gradients", "activations")
        ):
            tensor = ctx.trial.tensor(name)
            for mode in tensor.modes():
                for s, rec in tensor.records(mode, only_mode=True).items():
                    frac = rec.reductions.get("zero_fraction")
                    if frac is None and rec.value is not None:
                        arr = np.asarray(rec.value)
                        frac = float((arr == 0).mean()) if arr.size else None
                    if frac is not None and frac * 100 >= self.threshold:
                        return Finding(
                            f"{name}: {frac:.0%} zeros at {ModeKeys(mode).name} step {s} "
                            f"(threshold {self.threshold:g}%)",
                            [_ev(name, mode, s, zero_fraction=frac)],
                        )
        return None


class UnchangedTensor(Rule):
    name = "unchanged_tensor"
    defaults = {
        "collection_names": None,
        "tensor_regex": None,
        "num_steps": 3,
        "rtol": 1e-05,
        "atol": 1e-08,
        "equal_nan": False,
    }
    explanation = "A tensor has not changed over several saved steps."
    recommendation = "Check that these parameters are trainable, given to the optimizer, and that the lr is not 0."

    def check(self, ctx):
        n = max(2, self.num_steps)
        for name in select(ctx, self, self.collection_names, self.tensor_regex, ("weights",)):
            tensor = ctx.trial.tensor(name)
            recs = tensor.records(ModeKeys.TRAIN) or tensor.records()
            steps = sorted(recs)
            for i in range(n - 1, len(steps)):
                window = [recs[s] for s in steps[i - n + 1 : i + 1]]
                vecs = [
                    np.asarray(r.value, dtype=np.float64).reshape(-1)
                    if r.value is not None
                    else np.array([v for k, v in sorted(r.reductions.items()) if isinstance(v, float)])
                    for r in window
                ]
                if all(
                    v.shape == vecs[0].shape and np.allclose(v, vecs[0], self.rtol, self.atol, self.equal_nan)
                    for v in vecs[1:]
                ):
                    return Finding(
                        f"{name} did not change over the {n} saved steps {steps[i - n + 1]}..{steps[i]}",
                        [_ev(name, "TRAIN", steps[i])],
                    )
        return None


#: the class names beside a job's tensors (the engine writes them when its debugger starts)
CLASSES_FILE = "classes.json"


def _class_namer(folder):
    """``class 3 (Dress)`` where the debug folder names the classes, ``class 3`` where it does not (scripts)."""
    try:
        names = json.loads((folder / CLASSES_FILE).read_text())
    except (OSError, ValueError):
        names = []
    return lambda c: f"class {c} ({names[c]})" if isinstance(names, list) and 0 <= c < len(names) else f"class {c}"


class ClassImbalance(Rule):
    name = "class_imbalance"
    defaults = {
        "threshold_imbalance": 10.0,
        "threshold_misprediction": 0.7,
        "samples": 500,
        "argmax": False,
        "labels_regex": ".*labels",
        "predictions_regex": ".*predictions",
    }
    explanation = "Some classes are far rarer than others, or a class is mostly mispredicted."
    recommendation = (
        "Balance the data (more images of rare classes), use class weights (--class-weights) or "
        "resampling, and look at the per-class metrics rather than accuracy alone."
    )

    def check(self, ctx):
        trial = ctx.trial
        lab = trial.tensor_names(regex=split(self.labels_regex))
        pred = trial.tensor_names(regex=split(self.predictions_regex))
        if not lab:
            ctx.no_data(f"{self.name}: no tensor matched labels_regex {self.labels_regex}")
            return None
        recs = trial.tensor(lab[0]).records(ModeKeys.TRAIN)
        labels = [np.asarray(recs[s].value).reshape(-1) for s in sorted(recs) if recs[s].value is not None]
        y = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
        if len(y) < self.samples:
            ctx.warn(f"{self.name}: {len(y)} labels so far, it needs {self.samples} (samples)")
            return None
        counts = np.bincount(y)
        present = counts[counts > 0]
        name = _class_namer(trial.path)
        if len(present) >= 2 and present.max() / present.min() > self.threshold_imbalance:
            big, small = int(np.argmax(counts)), int(np.where(counts == present.min())[0][0])
            return Finding(
                f"{name(big)} has {present.max()} samples, {name(small)} {present.min()} "
                f"(ratio {present.max() / present.min():.1f} > {self.threshold_imbalance:g})",
                [{"tensor": lab[0], "counts": {int(i): int(c) for i, c in enumerate(counts) if c}}],
            )
        if pred and ctx.finished:  # judged on the last samples, once the model has trained
            precs = trial.tensor(pred[0]).records(ModeKeys.TRAIN)
            both = [
                (np.asarray(recs[s].value).reshape(-1), np.asarray(precs[s].value))
                for s in sorted(recs)
                if s in precs and recs[s].value is not None and precs[s].value is not None
            ]
            if both:
                yy = np.concatenate([a for a, _ in both])[-self.samples :]
                pp = [p.argmax(-1) if self.argmax else p.reshape(-1) for _, p in both]
                pp = np.concatenate(pp)[-self.samples :]
                for c in np.unique(yy):
                    wrong = float((pp[yy == c] != c).mean())
                    if wrong > self.threshold_misprediction:
                        return Finding(
                            f"{name(int(c))}: {wrong:.0%} of its last samples were mispredicted "
                            f"(threshold {self.threshold_misprediction:.0%})",
                            [{"tensor": pred[0], "class": int(c), "misprediction": wrong}],
                        )
        return None


class CheckInputImages(Rule):
    name = "check_input_images"
    defaults = {"threshold_mean": 0.2, "threshold_samples": 500, "regex": ".*input_0", "channel": 1}
    explanation = "The input images are not normalised (their mean is far from 0): training is slower and less stable."
    recommendation = "Normalise inputs: subtract the per-channel mean and divide by the std (transforms.Normalize)."

    def check(self, ctx):
        names = ctx.trial.tensor_names(collection="inputs") or ctx.trial.tensor_names(regex=split(self.regex))
        if not names:
            ctx.no_data(f"{self.name}: no model input was recorded (regex {self.regex})")
            return None
        for name in names:
            recs = ctx.trial.tensor(name).records(ModeKeys.TRAIN)
            seen, sums = 0, {}
            for s in sorted(recs):
                r = recs[s].reductions
                b = int(r.get("batch", 1))
                for k, v in r.items():
                    if k.startswith("channel_mean_"):
                        sums[k] = sums.get(k, 0.0) + v * b
                seen += b
                if seen >= self.threshold_samples and sums:
                    means = {k.removeprefix("channel_mean_"): v / seen for k, v in sums.items()}
                    bad = {c: m for c, m in means.items() if abs(m) > self.threshold_mean}
                    if bad:
                        return Finding(
                            f"{name}: per-channel input means {', '.join(f'{m:.3g}' for m in means.values())}"
                            f" over {seen} images; |mean| > {self.threshold_mean:g}",
                            [_ev(name, "TRAIN", s, channel_means=means)],
                        )
                    return None
            if seen < self.threshold_samples:
                ctx.warn(f"{self.name}: {seen} input images recorded, it needs {self.threshold_samples}")
        return None


class StalledTrainingRule(Rule):
    name = "stalled_training_rule"
    defaults = {"threshold": 1800, "stop_training_on_fire": False, "training_job_name_prefix": None}
    explanation = "Training saved nothing for a long time: it is stuck (a hung data loader, a deadlock)."
    recommendation = "Look at the job's log and the system usage; check data-loader workers and distributed setup."

    def check(self, ctx):
        last = ctx.trial.last_wall_time()
        ref = last if last is not None else ctx.started
        if not ref or ctx.finished:
            return None
        idle = ctx.now - ref
        if idle > self.threshold:
            return Finding(
                f"no tensor saved for {idle:.0f} s (threshold {self.threshold} s)"
                + ("" if last is not None else " since the job started"),
                [{"last_saved": ref, "idle_seconds": round(idle, 1)}],
            )
        return None


#: registered in this order by visiontune.debug.rules.registry
BUILTIN = (
    VanishingGradient,
    ExplodingTensor,
    LossNotDecreasing,
    Overfit,
    Overtraining,
    PoorWeightInitialization,
    SaturatedActivation,
    DeadRelu,
    WeightUpdateRatio,
    AllZero,
    UnchangedTensor,
    ClassImbalance,
    CheckInputImages,
    StalledTrainingRule,
)
