"""A seed-004-style training script that uses SageMaker Debugger's smdebug API, run unchanged by the tests:
the hook from the JSON config SageMaker passes, set_mode TRAIN/EVAL, per-batch and per-epoch save_tensor."""

import argparse
import os

import smdebug.pytorch as smd
import torch
import torch.nn as nn
import torch.optim as optim
from smdebug import modes
from smdebug.profiler.utils import str2bool
from torchvision import datasets, transforms


def net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, 3)
    )


def train(model, train_loader, criterion, optimizer, hook):
    model.train()
    hook.set_mode(smd.modes.TRAIN)
    running_loss, correct, total = 0.0, 0, 0
    for data, target in train_loader:
        optimizer.zero_grad()
        pred = model(data)
        loss = criterion(pred, target)
        hook.save_tensor("batch_loss", loss)
        accuracy = (pred.argmax(dim=1) == target).float().mean().item()
        hook.save_tensor("batch_accuracy", torch.tensor(accuracy))
        running_loss += loss.item()
        loss.backward()
        optimizer.step()
        correct += (pred.argmax(dim=1) == target).sum().item()
        total += target.size(0)
    hook.save_tensor("epochs_accuracy", torch.tensor(correct / total))
    hook.save_tensor("epochs_loss", torch.tensor(running_loss / len(train_loader)))


def test(model, test_loader, criterion, hook):
    model.eval()
    hook.set_mode(modes.EVAL)
    running_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for data, target in test_loader:
            pred = model(data)
            running_loss += criterion(pred, target).item()
            correct += (pred.argmax(dim=1) == target).sum().item()
            total += target.size(0)
    hook.save_tensor("epochs_accuracy", torch.tensor(correct / total))
    hook.save_tensor("epochs_loss", torch.tensor(running_loss / len(test_loader)))
    print(f"Test set: Average loss: {running_loss / len(test_loader):.4f}, Testing Accuracy: {correct / total:.4f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--use-cuda", type=str2bool, default=False)
    parser.add_argument("--data", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--test", type=str, default=os.environ["SM_CHANNEL_TEST"])
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    args = parser.parse_args()
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    train_loader = torch.utils.data.DataLoader(datasets.ImageFolder(args.data, tf), batch_size=8, shuffle=True)
    test_loader = torch.utils.data.DataLoader(datasets.ImageFolder(args.test, tf), batch_size=16)
    model = net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    hook = smd.Hook.create_from_json_file()
    hook.register_hook(model)
    hook.register_loss(criterion)
    for epoch in range(args.epochs):
        train(model, train_loader, criterion, optimizer, hook)
        test(model, test_loader, criterion, hook)
    torch.save(model.state_dict(), os.path.join(args.model_dir, "model.pth"))


if __name__ == "__main__":
    main()
