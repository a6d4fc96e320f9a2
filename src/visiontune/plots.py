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
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
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
