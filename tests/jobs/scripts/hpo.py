"""A seed-style SageMaker training script (as seeds 001/003/004 write them), used unchanged by the tests:
argparse hyperparameters, ImageFolder on SM_CHANNEL_TRAIN, metrics printed, torch.save to SM_MODEL_DIR."""

import argparse
import json
import os

import torch
import torch.nn as nn
import torch.optim as optim
from torchvision import datasets, transforms


def net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, 3)
    )


def test(model, loader, criterion):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            out = model(data)
            loss += criterion(out, target).item() * len(target)
            correct += (out.argmax(1) == target).sum().item()
    n = len(loader.dataset)
    print(f"Test set: Average loss: {loss / n:.4f}, Testing Accuracy: {correct / n:.4f}")
    return correct / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--crash", type=int, default=0)
    parser.add_argument("--quiet", type=int, default=0)
    parser.add_argument("--data", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--test", type=str, default=os.environ["SM_CHANNEL_TEST"])
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--output-data-dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    args = parser.parse_args()
    if args.crash:
        raise RuntimeError(f"crash={args.crash}: this configuration breaks the script")
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    train_loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(args.data, tf), batch_size=args.batch_size, shuffle=True
    )
    test_loader = torch.utils.data.DataLoader(datasets.ImageFolder(args.test, tf), batch_size=32)
    model = net()
    criterion = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for data, target in train_loader:
            opt.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"Epoch {epoch}: train loss {total / len(train_loader):.4f}", flush=True)
        if not args.quiet:
            test(model, test_loader, criterion)
        if args.sleep:
            import time

            time.sleep(args.sleep)
    env = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
    with open(os.path.join(args.output_data_dir, "env.json"), "w") as fh:
        json.dump({"env": env, "argv": os.sys.argv[1:], "cwd": os.getcwd()}, fh)
    torch.save(model.state_dict(), os.path.join(args.model_dir, "model.pth"))


if __name__ == "__main__":
    main()
