"""``visiontune predict MODEL INPUT...`` and ``visiontune evaluate MODEL DATA``."""

from __future__ import annotations

import csv
import json
import sys

import click
from rich.table import Table

from visiontune.progress import table_console

from visiontune.choices import INFERENCE_PRECISION, PRECISIONS

FORMATS = ("table", "json", "csv")


def model_options(func):
    """The options every command that loads a model shares."""
    func = click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default=INFERENCE_PRECISION,
        show_default=True,
        help="auto = bf16 where the hardware computes it natively (as `serve` "
        "answers; on GPUs per batch size, whichever measured faster); fp32 = the float32 "
        "network's exact answers",
    )(func)
    func = click.option(
        "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or mps"
    )(func)
    func = click.option(
        "--batch-size", default=64, show_default=True, type=click.IntRange(1), help="images per forward pass"
    )(func)
    return func


@click.command("predict")
@click.argument("model", type=click.Path())
@click.argument("inputs", nargs=-1, required=True)
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1), help="how many best classes to list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table (terminal), json (JSON Lines, one object per image) or csv; full paths in all",
)
@click.option("--json", "as_json", is_flag=True, hidden=True, help="the same as --format json")
@click.option(
    "--masks",
    type=click.Path(file_okay=False),
    default="masks",
    show_default=True,
    help="segmentation models: the folder for each image's class-index mask (<image name>.png, the image's size)",
)
@model_options
def predict_cmd(model, inputs, top_k, fmt, as_json, masks, batch_size, device, precision):
    """Predict classes for images: files, folders, manifests or quoted globs ('data/**/*.jpg'), several at once.

    A segmentation model writes a mask PNG per image into --masks and lists the classes each shows.
    Exits 1 if an image could not be read (its row says why)."""
    from visiontune.predictions import iter_predict

    rows, writer = [], _MaskWriter(masks)
    try:
        for row in iter_predict(
            model, list(inputs), top_k=top_k, batch_size=batch_size, device=device, precision=precision
        ):
            rows.append(writer.write(row))  # a segmentation model's mask goes to its file now, not into memory
    except OSError as exc:  # a full disk, a read-only --masks folder: one line
        error = _write_failure(exc, masks)
        if error is exc:
            raise
        raise error from exc
    fmt = "json" if as_json else fmt
    if writer.written:
        if fmt == "table":
            _segmentation_table(rows)
            fmt = "done"
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row))
    multi = any("predicted_labels" in r for r in rows)  # a multi-label model: the classes above their thresholds
    if any("prediction" in r for r in rows) and fmt not in ("json", "done"):  # a detector: one row per box
        _print_boxes(rows, fmt)
    elif fmt == "csv" and any("mask" in r for r in rows):
        writer = csv.writer(sys.stdout)
        writer.writerow(["source", "mask", "classes_present", "error"])
        for r in rows:
            writer.writerow(
                [r["source"], r.get("mask", ""), " ".join(r.get("classes_present", [])), r.get("error", "")]
            )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["source", "label", "probability", "top_k", *(["predicted_labels"] if multi else []), "error"])
        for r in rows:
            writer.writerow(
                [
                    r["source"],
                    r.get("label", ""),
                    f"{r['probability']:.6f}" if "probability" in r else "",
                    " ".join(f"{t['label']}:{t['probability']:.6f}" for t in r.get("top_k", [])),
                    *([" ".join(r.get("predicted_labels", []))] if multi else []),
                    r.get("error", ""),
                ]
            )
    elif fmt not in ("json", "done"):
        table = Table("image", *(["labels above threshold"] if multi else []), "label", "probability", f"top {top_k}")
        table.columns[0].overflow = "fold"  # full paths, folded, never cut
        for r in rows:
            extra = [", ".join(r.get("predicted_labels", [])) or "(none)"] if multi else []
            if "error" in r:
                table.add_row(r["source"], *([""] if multi else []), "[red]error[/]", "", r["error"])
            else:
                table.add_row(
                    r["source"],
                    *extra,
                    r["label"],
                    f"{r['probability']:.4f}",
                    ", ".join(f"{t['label']} {t['probability']:.3f}" for t in r["top_k"]),
                )
        table_console().print(table)
    if any("error" in r for r in rows):
        raise SystemExit(1)


#: boxes below this score are left out of predict's table and CSV (--format json has every row)
SHOWN_SCORE = 0.3


def _print_boxes(rows: list[dict], fmt: str) -> None:
    """A detector's answers: per box its image, class id, score and normalised box (score >= SHOWN_SCORE)."""
    header = ["source", "class_id", "score", "xmin", "ymin", "xmax", "ymax", "error"]
    lines = [
        [r["source"], int(b[0]), f"{b[1]:.4f}", *(f"{v:.4f}" for v in b[2:]), ""]
        for r in rows
        for b in r.get("prediction", [])
        if b[1] >= SHOWN_SCORE
    ] + [[r["source"], "", "", "", "", "", "", r["error"]] for r in rows if "error" in r]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(lines)
        return
    table = Table(*header[:-1], "error", title=f"boxes scoring {SHOWN_SCORE} or more (--format json: all of them)")
    table.columns[0].overflow = "fold"
    for line in lines:
        table.add_row(*map(str, line))
    table_console().print(table)


def _write_failure(exc: OSError, folder) -> Exception:
    """A write that failed for want of space or permission, as one line (its temp files removed); any other
    ``OSError`` as it is."""
    from visiontune.writes import is_write_failure, output_error, remove_temp_files

    if not is_write_failure(exc):
        return exc
    if folder:
        remove_temp_files(folder)
    return output_error(exc, folder)


class _MaskWriter:
    """Each segmentation row's mask as ``<folder>/<image name>.png`` (``-2``, ``-3``... where names repeat)."""

    def __init__(self, folder: str):
        self.folder, self.taken, self.written = folder, set(), 0

    def write(self, row: dict) -> dict:
        from pathlib import Path

        from visiontune.data.segmentation import mask_png
        from visiontune.predictions import MASK

        mask = row.pop(MASK, None)
        if mask is None:
            return row
        out = Path(self.folder)
        out.mkdir(parents=True, exist_ok=True)
        stem, n = Path(row["source"]).stem, 1
        name = f"{stem}.png"
        while name in self.taken:
            n += 1
            name = f"{stem}-{n}.png"
        self.taken.add(name)
        (out / name).write_bytes(mask_png(mask))
        row["mask"] = str(out / name)
        self.written += 1
        return row


def _segmentation_table(rows: list[dict]) -> None:
    table = Table("image", "mask", "classes (share of pixels)")
    table.columns[0].overflow = "fold"
    for r in rows:
        if "error" in r:
            table.add_row(r["source"], "[red]error[/]", r["error"])
        else:
            table.add_row(
                r["source"],
                r["mask"],
                ", ".join(f"{k} {v:.1%}" for k, v in sorted(r["pixel_fractions"].items(), key=lambda kv: -kv[1])),
            )
    table_console().print(table)


@click.command("evaluate")
@click.argument("model", type=click.Path())
@click.argument("data", type=click.Path())
@click.option(
    "--split",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "all", "train", "validation", "test"]),
    help="auto = the data's test split if it has one, else every image",
)
@click.option(
    "--out", type=click.Path(), default=None, help="folder for metrics.json, confusion_matrix.png and misclassified.csv"
)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="report top-k accuracy for this k")
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option(
    "--on-bad-image",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="unreadable images: stop with an error, or skip and list them",
)
@click.option("--allow-empty-labels", is_flag=True, help="multi-label data: images with no label are allowed")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
@model_options
def evaluate_cmd(
    model,
    data,
    split,
    out,
    top_k,
    label_attribute,
    on_bad_image,
    allow_empty_labels,
    as_json,
    batch_size,
    device,
    precision,
):
    """Accuracy, per-class precision/recall/F1, confusion matrix and the misclassified files on labelled DATA."""
    from visiontune.evaluate import evaluate

    try:
        r = evaluate(
            model,
            data,
            split=split,
            out=out,
            top_k=top_k,
            batch_size=batch_size,
            device=device,
            precision=precision,
            label_attribute=label_attribute,
            on_bad_image=on_bad_image,
            allow_empty_labels=allow_empty_labels,
        )
    except OSError as exc:  # a full disk, a read-only --out: one line, and no temp file left there
        error = _write_failure(exc, out)
        if error is exc:
            raise
        raise error from exc
    m = r.metrics
    if as_json:
        click.echo(json.dumps({**m, "misclassified": r.misclassified}, indent=2))
        return
    con = table_console()
    if "mIoU" in m:  # a segmentation model
        _segmentation_report(con, r)
        return
    if "mAP50" in m:  # a detector
        _detection_report(con, r)
        return
    multi = "mAP" in m  # a multi-label model: mAP and per-class AP; no top-k
    if multi:
        con.print(
            f"[bold]{m['split']}[/]: {m['samples']} images, mAP [bold]{m['mAP']:.4f}[/], macro F1 "
            f"{m['macro_f1']:.4f}, micro F1 {m['micro_f1']:.4f}, exact match {m['exact_match']:.4f}"
        )
    else:
        k = next(key for key in m if key.startswith("top_"))
        con.print(
            f"[bold]{m['split']}[/]: {m['samples']} images, accuracy [bold]{m['accuracy']:.4f}[/], "
            f"{k.replace('_', ' ')} {m[k]:.4f}, macro F1 {m['macro_f1']:.4f}"
        )
    if m.get("held_out"):
        con.print(f"[dim]{m['held_out']}[/]")
    con.print(f"[dim]computed with: {m['computed_with']} (--precision fp32: the float32 network's answers)[/]")
    table = Table("class", *(["AP", "threshold"] if multi else []), "precision", "recall", "F1", "images")
    for name, pc in m["per_class"].items():
        extra = ["–" if pc["ap"] is None else f"{pc['ap']:.3f}", f"{pc['threshold']:.2f}"] if multi else []
        table.add_row(
            name, *extra, f"{pc['precision']:.3f}", f"{pc['recall']:.3f}", f"{pc['f1']:.3f}", str(pc["support"])
        )
    con.print(table)
    con.print(f"{len(r.misclassified)} misclassified" + (":" if r.misclassified else ""))
    for w in r.misclassified[:20]:
        con.print(
            f"  {w['source']}: {w['true']} taken for {w['predicted']} ({w['probability']:.3f})",
            highlight=False,
            markup=False,
        )
    if len(r.misclassified) > 20:
        con.print(
            f"  ... and {len(r.misclassified) - 20} more"
            + (
                f" (all in {r.out / 'misclassified.csv'})"
                if r.out
                else " (--out DIR writes them all to misclassified.csv)"
            )
        )
    if r.out:
        picture = r.out / ("pr_curves.png" if multi else "confusion_matrix.png")
        con.print(f"written: {r.out / 'metrics.json'}, {picture}, {r.out / 'misclassified.csv'}", highlight=False)


def _detection_report(con, r) -> None:
    m = r.metrics
    con.print(
        f"[bold]{m['split']}[/]: {m['samples']} images, mAP [bold]{m['mAP']:.4f}[/] (IoU 0.50:0.95), mAP50 "
        f"{m['mAP50']:.4f}, mAP75 {m['mAP75']:.4f}, recall@100 {m['mAR100']:.4f}"
    )
    table = Table("class", "AP", "boxes")
    for name, pc in m["per_class"].items():
        table.add_row(name, "–" if pc.get("AP") is None else f"{pc['AP']:.3f}", str(pc.get("boxes", 0)))
    con.print(table)
    if r.out:
        con.print(f"written: {r.out / 'metrics.json'}", highlight=False)


def _segmentation_report(con, r) -> None:
    m = r.metrics
    con.print(
        f"[bold]{m['split']}[/]: {m['samples']} images, mIoU [bold]{m['mIoU']:.4f}[/], pixel accuracy "
        f"{m['pixel_accuracy']:.4f}, mean class accuracy {m['mean_class_accuracy']:.4f}"
    )
    table = Table("class", "IoU", "precision", "recall", "pixels")
    for name, pc in m["per_class"].items():
        table.add_row(
            name,
            "–" if pc["iou"] is None else f"{pc['iou']:.3f}",
            f"{pc['precision']:.3f}",
            f"{pc['recall']:.3f}",
            str(pc["pixels"]),
        )
    con.print(table)
    worst = r.misclassified[:10]
    if worst:
        con.print("worst images (their own mIoU):")
        for w in worst:
            con.print(f"  {w['source']}: {w['mIoU']:.3f}", highlight=False, markup=False)
    if r.out:
        con.print(
            f"written: {r.out / 'metrics.json'}, {r.out / 'confusion_matrix.png'}, "
            f"{r.out / 'segmentation_examples.png'}, {r.out / 'per_image.csv'}",
            highlight=False,
        )


@click.command("embed")
@click.argument("model")
@click.argument("data")
@click.option("--out", type=click.Path(), required=True, help="a .npy (with OUT.sources.json) or .parquet file")
@click.option("--image-size", type=int, default=None, help="a zoo model's input size (default: its weights' own)")
def embed_cmd(model, data, out, image_size):
    """Image embeddings: MODEL's backbone features of every image DATA names (MODEL: a trained model folder or
    model.tar.gz, or a zoo model name, whose pretrained features are cached)."""
    from visiontune.embeddings import embed

    r = embed(model, data, out, image_size=image_size)
    click.echo(f"{len(r.sources)} embeddings of {r.vectors.shape[1]} values written to {r.path}")
    for src, why in r.skipped[:10]:
        click.echo(f"  skipped {src}: {why}", err=True)


@click.command("similar")
@click.argument("model")
@click.argument("image")
@click.option("--in", "data", required=True, help="the images to search (a folder, a manifest, a URL)")
@click.option("-k", "k", default=10, show_default=True, type=int, help="how many to list")
@click.option("--image-size", type=int, default=None, help="a zoo model's input size (default: its weights' own)")
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
def similar_cmd(model, image, data, k, image_size, as_json):
    """The images of --in nearest to IMAGE by MODEL's embeddings (cosine similarity), most similar first."""
    from visiontune.embeddings import similar

    rows = similar(model, image, data, k=k, image_size=image_size)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['similarity']:.4f}  {r['source']}")


def register(cli: click.Group) -> None:
    cli.add_command(predict_cmd)
    cli.add_command(evaluate_cmd)
    cli.add_command(embed_cmd)
    cli.add_command(similar_cmd)
