"""Benchmark: fine-tuning MobileNetV2 on Fashion-MNIST, the seeds' way vs visiontune.

One process, one machine, same data (PNG class folders: 10k train, 2k val,
2k test at 96 px), 10 epochs, sequential phases:

  limit     one forward pass of the backbone over all images (pre-decoded), at
            the best dtype: plain module (fp32 / bf16 autocast, channels_last)
            and visiontune's inference copy (conv+bn folded, bf16 weights), each
            batch on all cores or one batch per core; the fastest is the limit.
            Also, not the limit: decoding every PNG and running the copy, as
            head mode's feature pass does
  head      visiontune head mode, cold caches (then again, warm).  With --rounds N, N interleaved pairs:
            the decode+forward pass (as in limit) then a cold head run, each pair's ratio recorded; the
            headline ratio is their median (a shared machine's noise moves both of a pair alike)
  seeds     torchvision ImageFolder + DataLoader over the PNGs, frozen backbone
            run again every epoch in fp32, as the seeds' hpo.py does
  full      visiontune full mode (crop augmentation), beside the forward + backward + optimizer step of
            the same model at the same batch size on tensors in memory (its limit), measured before
            and after it in the same run

Run:  python benchmarks/finetune.py [--phases limit,head,seeds,full] [--rounds N] [--out FILE]
Results go to benchmarks/results/finetune.json (updated after each phase).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

import visiontune as vt
from common import machine
from visiontune.data.cache import feature_cache, one_core_each
from visiontune.data.dataset import Sample
from visiontune.data.fashion_mnist import write_png_folders
from visiontune.zoo import create_model
from visiontune.zoo.optimize import inference_copy
from visiontune.zoo.registry import default_preprocessing

HEAD = dict(hidden_units=512, dropout=0.5, label_smoothing=0.1, learning_rate=3e-3, batch_size=128)
FULL = dict(learning_rate=5e-4, batch_size=64, dropout=0.2, label_smoothing=0.1, augmentation="crop")


def images_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.png"))


SKIPPED_BF16 = (
    "this CPU has no native bf16 (AMX or AVX512-BF16): oneDNN would emulate it, much slower than "
    "float32, and visiontune's runtime never chooses it here"
)


def inference_dtype():
    """What visiontune's runtime computes inference in on this machine's CPU (bf16 only where it is native)."""
    from visiontune.runtime import resolve_precision

    return resolve_precision("auto", torch.device("cpu"))


def phase_limit(data: Path, size: int) -> dict:
    from PIL import Image

    files = images_in(data)
    pix = np.stack([np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)) for f in files])
    model, spec, wspec = create_model("mobilenet_v2", num_classes=10)
    backbone = model.backbone.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x_all = torch.from_numpy(pix).permute(0, 3, 1, 2)
    out = {"images": len(files)}

    def batch(s):
        return ((x_all[s : s + 128].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)

    def run(fn, name, per_core=False):
        """per_core: one batch per core on threads with one core each (as visiontune's feature pass runs)."""
        starts = range(0, len(x_all), 128)

        def one(s):
            with torch.inference_mode():
                fn(batch(s))

        one(0)
        t = time.perf_counter()
        if per_core:
            with ThreadPoolExecutor(torch.get_num_threads(), initializer=one_core_each) as pool:
                list(pool.map(one, starts))
        else:
            for s in starts:
                one(s)
        dt = time.perf_counter() - t
        out[name] = {"seconds": round(dt, 2), "images_per_s": round(len(x_all) / dt, 1)}
        print(name, out[name], flush=True)

    cl = backbone.to(memory_format=torch.channels_last)
    run(lambda x: cl(x), "plain_fp32")

    def bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl(x)

    dtype = inference_dtype()
    if dtype == torch.bfloat16:
        run(bf16, "plain_bf16_autocast")
        run(bf16, "plain_bf16_autocast_per_core", per_core=True)
    else:  # emulated bf16 ran 14x slower than fp32 on such a CPU (872 s for this phase): never chosen, not run
        out["skipped"] = {"plain_bf16_autocast": SKIPPED_BF16, "plain_bf16_autocast_per_core": SKIPPED_BF16}
    fast, how = inference_copy(backbone, torch.device("cpu"), dtype)
    run(lambda x: fast(x), "visiontune_inference_copy")
    run(lambda x: fast(x), "visiontune_inference_copy_per_core", per_core=True)
    for name in ("visiontune_inference_copy", "visiontune_inference_copy_per_core"):
        out[name]["how"] = how
    out["best_seconds"] = min(v["seconds"] for v in out.values() if isinstance(v, dict))
    out["decode_and_forward_per_core"] = decode_and_forward(data, size)
    print("decode_and_forward_per_core", out["decode_and_forward_per_core"], flush=True)
    return out


def decode_and_forward(data: Path, size: int) -> dict:
    """Not the limit, but what head mode's feature pass must at least do: decode every PNG and run the
    backbone's inference copy over it (visiontune's feature pass into a throw-away cache)."""
    files = images_in(data)
    model, spec, wspec = create_model("mobilenet_v2", num_classes=10)
    backbone = model.backbone.eval()
    dtype = inference_dtype()
    fast, how = inference_copy(backbone, torch.device("cpu"), dtype)
    root = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    feature_cache(
        backbone,
        "bench",
        [Sample(str(f), 0) for f in files],
        {str(f): str(i) for i, f in enumerate(files)},
        default_preprocessing(spec, wspec, size),
        device=torch.device("cpu"),
        dtype=dtype,
        batch_size=128,
        root=root,
        extractor=(fast, how),
    )
    dt = time.perf_counter() - t
    shutil.rmtree(root, ignore_errors=True)
    return {
        "seconds": round(dt, 2),
        "images_per_s": round(len(files) / dt, 1),
        "note": "not the limit: decoding the PNGs included",
    }


def phase_head(data: Path, size: int, epochs: int, work: Path, rounds: int = 1) -> dict:
    def run(label: str) -> dict:
        t = time.perf_counter()
        r = vt.train(
            data=str(data),
            out=str(work / "head"),
            model="mobilenet_v2",
            mode="head",
            overwrite=True,
            epochs=epochs,
            image_size=size,
            **HEAD,
        )
        dt = time.perf_counter() - t
        row = {
            "wall_s": round(dt, 2),
            "train_images_per_s": round(epochs * r.metrics["counts"]["train"] / dt, 1),
            "test_accuracy": r.metrics["test_accuracy"],
            "validation_accuracy": r.metrics["validation_accuracy"],
            "head_epochs_s": round(sum(h["epoch_seconds"] for h in r.history), 2),
        }
        print("head", label, row, flush=True)
        return row

    res = {}
    if rounds > 1:  # interleaved pairs: the decode+forward pass, then a cold run on caches of its own
        pairs, home = [], os.environ["VISIONTUNE_HOME"]
        for i in range(rounds):
            limit = decode_and_forward(data, size)
            os.environ["VISIONTUNE_HOME"] = str(work / f"home-{i}")
            cold = run(f"cold (round {i + 1})")
            pairs.append(
                {
                    "decode_and_forward_s": limit["seconds"],
                    "cold": cold,
                    "ratio": round(cold["wall_s"] / limit["seconds"], 3),
                }
            )
            print("round", i + 1, "ratio", pairs[-1]["ratio"], flush=True)
        res["rounds"] = pairs
        # the pair whose ratio is the median: its cold run is the one shown
        res["cold"] = sorted(pairs, key=lambda p: p["ratio"])[len(pairs) // 2]["cold"]
        res["warm"] = run("warm")  # on the last round's caches
        os.environ["VISIONTUNE_HOME"] = home  # later phases run where main() put them
        return res
    res["cold"] = run("cold")
    res["warm"] = run("warm")
    return res


def phase_seeds(data: Path, size: int, epochs: int) -> dict:
    """The seeds' hpo.py (benchmarks/seed_hpo.py): ImageFolder + DataLoader, frozen backbone run every epoch, fp32."""
    from seed_hpo import run

    r = run(
        str(data),
        learning_rate=HEAD["learning_rate"],
        batch_size=64,
        hidden_units=HEAD["hidden_units"],
        dropout=HEAD["dropout"],
        epochs=epochs,
        label_smoothing=HEAD["label_smoothing"],
        image_size=size,
        log=lambda *a, **k: print("seeds", *a, **k),
    )
    return {
        "wall_s": r["wall_s"],
        "train_images_per_s": round(epochs * r["train_images"] / r["wall_s"], 1),
        "test_accuracy": r["test_accuracy"],
        "val_accuracy_per_epoch": r["val_accuracy_per_epoch"],
    }


def forward_backward_limit(size: int, batch: int, dtype, steps: int = 12) -> dict:
    """What full mode's arithmetic costs alone: forward + backward + AdamW step of mobilenet_v2 (all layers
    learning, channels-last, as the engine trains) on batches already in memory, normalised, no augmentation,
    no data movement; ``dtype`` the autocast dtype (None = float32)."""
    from visiontune.runtime import autocast, pick_device

    device = pick_device("auto")
    model, _, _ = create_model("mobilenet_v2", num_classes=10, dropout=FULL["dropout"])
    model = model.train().to(device, memory_format=torch.channels_last)
    try:  # the optimizer the engine builds (fused AdamW where torch has it, weight decay 1e-4)
        opt = torch.optim.AdamW(model.parameters(), lr=FULL["learning_rate"], weight_decay=1e-4, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), lr=FULL["learning_rate"], weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=FULL["label_smoothing"])
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(steps + 2):
        sync()
        t = time.perf_counter()
        with autocast(device, dtype):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t)
    per_step = float(np.median(times))
    return {
        "batch": batch,
        "dtype": str(dtype).replace("torch.", "") if dtype else "float32",
        "median_step_s": round(per_step, 4),
        "images_per_s": round(batch / per_step, 1),
    }


def phase_full(data: Path, size: int, epochs: int, work: Path) -> dict:
    """Full fine-tuning with crop augmentation, beside the forward+backward limit of the same model at the
    same batch size measured in this run (before and after, in the precision the engine trains in here:
    float32 on a CPU, autocast on a GPU; and once in the other precision, for comparison).  Epoch throughput counts the training pass of each epoch
    (``train_seconds``), the limit's own work plus reading, augmenting and moving batches."""
    from visiontune.runtime import pick_device, training_precision

    engine = training_precision("auto", pick_device("auto"), head_on_features=False, image_size=size)  # the run's
    other = torch.bfloat16 if engine is None else None
    limits = {
        "before": forward_backward_limit(size, FULL["batch_size"], engine),
        "other_precision": forward_backward_limit(size, FULL["batch_size"], other),
    }
    print("forward_backward limit", limits, flush=True)
    t = time.perf_counter()
    r = vt.train(
        data=str(data),
        out=str(work / "full"),
        model="mobilenet_v2",
        mode="full",
        epochs=epochs,
        overwrite=True,
        image_size=size,
        **FULL,
    )
    dt = time.perf_counter() - t
    limits["after"] = forward_backward_limit(size, FULL["batch_size"], engine)
    print("forward_backward limit after", limits["after"], flush=True)
    train_s = sum(h["train_seconds"] for h in r.history)
    n = r.metrics["counts"]["train"]
    return {
        "wall_s": round(dt, 2),
        "train_images_per_s": round(epochs * n / dt, 1),
        "epoch_train_images_per_s": round(epochs * n / train_s, 1),
        "training_precision": r.metrics["runtime"]["training_precision"],
        "forward_backward_limit": limits,
        "test_accuracy": r.metrics["test_accuracy"],
        "validation_accuracy": r.metrics["validation_accuracy"],
        "history": r.history,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phases", default="limit,head,seeds,full")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-test", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=1, help="head phase: interleaved (decode+forward, cold run) pairs")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "finetune.json"))
    args = ap.parse_args()
    from visiontune.runtime import keep_freed_memory

    keep_freed_memory()  # what vt.train sets for its process: the limits run under the same allocator settings
    work = Path(tempfile.mkdtemp(prefix="vt-bench-"))
    os.environ["VISIONTUNE_HOME"] = str(work / "home")  # cold caches for this run
    data = write_png_folders(work / "fashion-mnist", n_train=args.n_train, n_val=args.n_test, n_test=args.n_test)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.update(
        {
            "machine": {**machine(), "visiontune": vt.__version__},
            "setup": {
                "model": "mobilenet_v2",
                "image_size": args.image_size,
                "epochs": args.epochs,
                "train": args.n_train,
                "val": args.n_test,
                "test": args.n_test,
                "head": HEAD,
                "full": FULL,
            },
        }
    )
    phases = {
        "limit": lambda: phase_limit(data, args.image_size),
        "head": lambda: phase_head(data, args.image_size, args.epochs, work, args.rounds),
        "seeds": lambda: phase_seeds(data, args.image_size, args.epochs),
        "full": lambda: phase_full(data, args.image_size, args.epochs, work),
    }
    for name in args.phases.split(","):
        results[name] = phases[name]()
        _ratios(results)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: results.get(k) for k in ("ratios",)}, indent=2))


def _ratios(r: dict) -> None:
    ratios = {}
    if "head" in r and "seeds" in r:
        ratios["seeds_over_head_wall"] = round(r["seeds"]["wall_s"] / r["head"]["cold"]["wall_s"], 2)
    if "head" in r and "limit" in r:
        ratios["head_over_fastest_forward"] = round(r["head"]["cold"]["wall_s"] / r["limit"]["best_seconds"], 2)
        if r["head"].get("rounds"):  # the median of interleaved pairs, and their spread
            each = sorted(p["ratio"] for p in r["head"]["rounds"])
            ratios["head_over_decode_and_forward"] = round(float(np.median(each)), 2)
            ratios["head_over_decode_and_forward_rounds"] = each
        elif "decode_and_forward_per_core" in r["limit"]:
            ratios["head_over_decode_and_forward"] = round(
                r["head"]["cold"]["wall_s"] / r["limit"]["decode_and_forward_per_core"]["seconds"], 2
            )
    if "full" in r and "forward_backward_limit" in r["full"]:
        lim = r["full"]["forward_backward_limit"]
        limit = (lim["before"]["images_per_s"] + lim["after"]["images_per_s"]) / 2
        ratios["full_over_forward_backward"] = round(r["full"]["epoch_train_images_per_s"] / limit, 2)
        hist = r["full"]["history"]  # whole epochs, the validation pass included
        per_epoch = (
            r["full"]["epoch_train_images_per_s"]
            * sum(h["train_seconds"] for h in hist)
            / sum(h["epoch_seconds"] for h in hist)
        )
        ratios["full_epoch_with_validation_over_forward_backward"] = round(per_epoch / limit, 2)
    r["ratios"] = ratios


if __name__ == "__main__":
    main()
