"""PNG pictures: learning curves, the confusion matrix, precision-recall curves (matplotlib, loaded when
one is drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    """matplotlib is imported when a picture is drawn, not when visiontune is imported."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: list[dict], path: Path) -> None:
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        ax1.plot(epochs, [h[key] for h in history], style, label=key.replace("_", " "))
    for key, style in (("train_acc", "-o"), ("val_acc", "-s")):
        if all(key in h for h in history):  # detection reports no training accuracy
            ax2.plot(epochs, [h[key] for h in history], style, label=key.replace("_", " "))
    ax1.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(cm: list[list[int]], classes: list[str], path: Path, title: str = "Confusion matrix") -> None:
    plt = _pyplot()
    m = np.asarray(cm)
    c = len(classes)
    size = min(4 + 0.45 * c, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m, dtype=float), where=rows > 0)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set(xticks=range(c), yticks=range(c), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=8 if c > 20 else 9)
    ax.set_yticklabels(classes, fontsize=8 if c > 20 else 9)
    if c <= 30:
        for i in range(c):
            for j in range(c):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        str(m[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pr_curves(curves: dict[str, dict], path: Path, title: str = "Precision-recall") -> None:
    """One precision-recall curve per class (``{name: {"precision": [...], "recall": [...], "ap": x}}``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for name, c in sorted(curves.items(), key=lambda kv: -kv[1]["ap"]):
        ax.plot(c["recall"], c["precision"], label=f"{name} (AP {c['ap']:.2f})", linewidth=1.2)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2 if len(curves) > 10 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def class_colours(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 colours, one per class, distinct; class 0 (the background in most layouts) black."""
    import colorsys

    out = np.zeros((max(n, 1), 3), dtype=np.uint8)
    for c in range(1, n):
        r, g, b = colorsys.hsv_to_rgb((c - 1) / max(1, n - 1), 0.85, 1.0)
        out[c] = (int(r * 255), int(g * 255), int(b * 255))
    return out


def overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """An ``HxWx3`` uint8 image with its class-index mask painted over it (class 0, the background of most
    layouts, and 255 = ignore: left as they are)."""
    painted = colours[np.minimum(mask, len(colours) - 1)].astype(np.float32)
    mix = image.astype(np.float32) * (1 - alpha) + painted * alpha
    plain = (mask == 255) | (mask == 0)
    mix[plain] = image[plain]
    return mix.clip(0, 255).astype(np.uint8)


def segmentation_overlays(
    images: np.ndarray,
    truth: np.ndarray,
    predicted: list[np.ndarray],
    classes: list[str],
    path: Path,
    title: str = "image / truth / prediction",
) -> None:
    """A grid: per row an image, its true mask and the predicted one painted over it, and a legend."""
    plt = _pyplot()
    colours = class_colours(len(classes))
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n + 0.8), squeeze=False)
    for i in range(n):
        for j, (picture, name) in enumerate(
            (
                (images[i], "image"),
                (overlay(images[i], truth[i], colours), "truth"),
                (overlay(images[i], predicted[i], colours), "prediction"),
            )
        ):
            axes[i][j].imshow(picture, interpolation="nearest")
            axes[i][j].set_axis_off()
            if i == 0:
                axes[i][j].set_title(name)
    from matplotlib.patches import Patch

    fig.legend(
        handles=[Patch(color=colours[c] / 255, label=name) for c, name in enumerate(classes)],
        loc="lower center",
        ncol=min(6, len(classes)),
        fontsize=7,
        frameon=False,
    )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def detection_examples(
    images: np.ndarray,
    truth: list[np.ndarray],
    found: list[np.ndarray],
    classes: list[str],
    path: Path,
    threshold: float = 0.3,
) -> None:
    """A grid: per row an image with its true boxes, and with the boxes found (score >= ``threshold``, the
    score beside the class); boxes ``(class, [score,] xmin, ymin, xmax, ymax)`` normalised."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    colours = class_colours(len(classes)) / 255
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(5.5, 2.7 * n + 0.4), squeeze=False)
    for i in range(n):
        h, w = images[i].shape[:2]
        for j, (rows, name) in enumerate(((truth[i], "truth"), (found[i], f"found (score >= {threshold:g})"))):
            ax = axes[i][j]
            ax.imshow(images[i], interpolation="nearest")
            ax.set_axis_off()
            if i == 0:
                ax.set_title(name, fontsize=9)
            for r in rows:
                c, score, box = int(r[0]), (r[1] if len(r) == 6 else None), r[-4:]
                if score is not None and score < threshold:
                    continue
                x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colours[c], linewidth=1.5))
                label = classes[c] + ("" if score is None else f" {score:.2f}")
                ax.text(x0, y0, label, fontsize=6, color="white", backgroundcolor=colours[c], va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
