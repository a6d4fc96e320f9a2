"""Linear probes on a frozen backbone's cached features: what the auto-labeler and the data doctor share.

``image_features`` runs a zoo model's pretrained backbone over images once (the engine's content-keyed
feature cache: a second call, or a later training run in head mode, reads them back); ``LinearHead`` is
softmax regression on those features (L-BFGS, full batch, deterministic); ``cross_fit`` gives every image's
class probabilities from a head that never saw it (stratified k folds), which is what confident learning
and a calibrated auto-label threshold both need."""

from __future__ import annotations

import numpy as np
import torch

from visiontune.errors import WeightsUnavailableError


def image_features(
    samples: list, model: str, image_size: int | None, device: str = "auto", hashes: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 pretrained-backbone features of ``samples`` and the mask of those that decoded (the
    others are skipped, not errors), from the feature cache.  :class:`WeightsUnavailableError` when ``model``
    has no pretrained weights here (random features would say nothing).  ``hashes``: the images' content
    hashes (source -> hash) when the caller has them already; else they are computed here."""
    from visiontune.data.cache import feature_cache, fingerprint
    from visiontune.progress import bar
    from visiontune.runtime import pick_device, resolve_precision
    from visiontune.train.inputs import feature_model_key
    from visiontune.zoo.registry import create_model, default_preprocessing

    if hashes is None:
        with bar(len(samples), "hashing images") as advance:
            hashes = fingerprint(samples, advance)
    net, spec, wspec = create_model(model, pretrained=True, num_classes=2)
    if wspec is None:
        raise WeightsUnavailableError(f"{model}: no pretrained weights on this machine")
    prep = default_preprocessing(spec, wspec, image_size)
    dev = pick_device(device)
    with bar(len(samples), "features") as advance:
        x, ok, _bad, _hit = feature_cache(
            net.backbone,
            feature_model_key(spec, wspec),
            samples,
            hashes,
            prep,
            device=dev,
            dtype=resolve_precision("auto", dev),
            on_bad_image="skip",
            progress=advance,
        )
    return x.float().numpy(), np.asarray(ok, dtype=bool)


class LinearHead:
    """Softmax regression on standardised features, fitted full-batch with L-BFGS (deterministic, a second or
    two for thousands of images)."""

    def __init__(self, num_classes: int, weight_decay: float = 1e-3, max_iter: int = 200):
        self.num_classes, self.weight_decay, self.max_iter = num_classes, weight_decay, max_iter

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearHead":
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.mean = xt.mean(0)
        self.std = xt.std(0).clamp_min(1e-6)
        xt = (xt - self.mean) / self.std
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        lin = torch.nn.Linear(xt.shape[1], self.num_classes)
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
        opt = torch.optim.LBFGS(
            lin.parameters(), lr=1.0, max_iter=self.max_iter, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(lin(xt), yt) + self.weight_decay * lin.weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.linear = lin
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            xt = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - self.mean) / self.std
            return torch.softmax(self.linear(xt), dim=1).numpy()


def cross_fit(
    x: np.ndarray, y: np.ndarray, num_classes: int, folds: int, weight_decay: float, seed: int, max_iter: int = 200
) -> tuple[np.ndarray, list[LinearHead]]:
    """Each row's class probabilities from a head trained without its fold (stratified folds), and the heads:
    their average labels the other images, so the threshold is measured on the models that apply it."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    heads = []
    for f in range(folds):
        test = fold == f
        if test.any() and (~test).any():
            heads.append(LinearHead(num_classes, weight_decay, max_iter).fit(x[~test], y[~test]))
            out[test] = heads[-1].predict_proba(x[test])
    return out, heads


def ensemble_proba(heads: list[LinearHead], x: np.ndarray) -> np.ndarray:
    return np.mean([h.predict_proba(x) for h in heads], axis=0)
