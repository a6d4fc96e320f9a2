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
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.Resize((args.image_size, args.image_size)), transforms.Grayscale(3),
                             transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    sets = {k: torchvision.datasets.ImageFolder(f"{args.data}/{k}", transform=tf) for k in ("train", "val", "test")}
    loaders = {k: torch.utils.data.DataLoader(d, batch_size=args.batch_size if k == "train" else 256,
                                              shuffle=k == "train", num_workers=1) for k, d in sets.items()}
    from visiontune.zoo import create_model  # only for the same offline ImageNet weights the engine starts from

    model, _, _ = create_model("mobilenet_v2", num_classes=10)
    backbone = model.backbone
    for p in backbone.parameters():
        p.requires_grad = False
    if args.hidden_units:
        head = nn.Sequential(nn.Linear(1280, args.hidden_units), nn.ReLU(), nn.Dropout(args.dropout),
                             nn.Linear(args.hidden_units, 10))
    else:
        head = nn.Sequential(nn.Dropout(args.dropout), nn.Linear(1280, 10))
    net = nn.Sequential(backbone, head)
    opt = torch.optim.AdamW(head.parameters(), lr=args.learning_rate)
    crit = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    def evaluate(loader):
        net.eval()
        correct = n = 0
        with torch.no_grad():
            for x, y in loader:
                correct += int((net(x).argmax(1) == y).sum())
                n += len(y)
        return correct / n

    epochs = []
    for epoch in range(args.epochs):
        e0 = time.perf_counter()
        net.train()
        for x, y in loaders["train"]:
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            opt.step()
        val = evaluate(loaders["val"])
        epochs.append(round(time.perf_counter() - e0, 2))
        print(f"epoch {epoch + 1} val_acc {val:.4f} ({epochs[-1]} s)", flush=True)
    test = evaluate(loaders["test"])
    print(json.dumps({"test_accuracy": test, "val_accuracy": val, "epoch_seconds": epochs,
                      "wall_s": round(time.perf_counter() - t0, 2)}), flush=True)


if __name__ == "__main__":
    main()
