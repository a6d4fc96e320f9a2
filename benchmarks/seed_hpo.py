"""The seeds' hpo.py, as a benchmark baseline: one SageMaker training job per configuration.

torchvision ImageFolder + DataLoader over the PNGs, a frozen ImageNet MobileNetV2 run again on every batch
of every epoch (fp32, as seeds 001/004 do), a head of one or two FC layers, validation every epoch, test
accuracy at the end.  Hyperparameters come as --name value, as SageMaker passes them.
"""

import argparse
import json
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms


def run(
    data: str,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    hidden_units: int = 0,
    dropout: float = 0.0,
    epochs: int = 10,
    label_smoothing: float = 0.1,
    image_size: int = 96,
    log=print,
) -> dict:
    """One seed-style training run; returns test accuracy, per-epoch validation accuracy and seconds."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    tf = transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.Grayscale(3),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    sets = {k: torchvision.datasets.ImageFolder(f"{data}/{k}", transform=tf) for k in ("train", "val", "test")}
    loaders = {
        k: torch.utils.data.DataLoader(
            d, batch_size=batch_size if k == "train" else 256, shuffle=k == "train", num_workers=1
        )
        for k, d in sets.items()
    }
    from visiontune.zoo import create_model  # only for the same offline ImageNet weights the engine starts from

    model, _, _ = create_model("mobilenet_v2", num_classes=10)
    backbone = model.backbone
    for p in backbone.parameters():
        p.requires_grad = False
    if hidden_units:
        head = nn.Sequential(nn.Linear(1280, hidden_units), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_units, 10))
    else:
        head = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, 10))
    net = nn.Sequential(backbone, head)
    opt = torch.optim.AdamW(head.parameters(), lr=learning_rate)
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def evaluate(loader):
        net.eval()
        correct = n = 0
        with torch.no_grad():
            for x, y in loader:
                correct += int((net(x).argmax(1) == y).sum())
                n += len(y)
        return correct / n

    seconds, val_accuracy = [], []
    for epoch in range(epochs):
        e0 = time.perf_counter()
        net.train()
        for x, y in loaders["train"]:
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            opt.step()
        val_accuracy.append(evaluate(loaders["val"]))
        seconds.append(round(time.perf_counter() - e0, 2))
        log(f"epoch {epoch + 1} val_acc {val_accuracy[-1]:.4f} ({seconds[-1]} s)", flush=True)
    return {
        "test_accuracy": evaluate(loaders["test"]),
        "val_accuracy": val_accuracy[-1],
        "val_accuracy_per_epoch": val_accuracy,
        "epoch_seconds": seconds,
        "train_images": len(sets["train"]),
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--learning_rate", type=float, default=1e-3)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--hidden_units", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--label_smoothing", type=float, default=0.1)
    ap.add_argument("--image_size", type=int, default=96)
    result = run(**vars(ap.parse_args()))
    print(json.dumps({k: result[k] for k in ("test_accuracy", "val_accuracy", "epoch_seconds", "wall_s")}), flush=True)


if __name__ == "__main__":
    main()
