"""A course-project training script as issue 27 found them, run unchanged: logging never configured (the
objective is parsed from ``logger.info`` lines), the debugger hook registered without ``register_loss``, the
hooked model pickled whole with ``torch.save(model, '/opt/ml/model/model.pt')``, hard-coded ``/opt/ml`` paths, and
a checkpoint written to a relative path."""

import argparse
import logging
import os

import smdebug.pytorch as smd
import torch
import torch.nn as nn
import torch.optim as optim
from torchvision import datasets, transforms

logger = logging.getLogger(__name__)  # no handler, no level, no basicConfig: SageMaker's toolkit shows INFO


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    args = parser.parse_args()
    tf = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    train_loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(os.environ["SM_CHANNEL_TRAIN"], tf), batch_size=8, shuffle=True
    )
    test_loader = torch.utils.data.DataLoader(datasets.ImageFolder(os.environ["SM_CHANNEL_TEST"], tf), batch_size=32)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, 3)
    )
    hook = smd.Hook.create_from_json_file()
    hook.register_hook(model)
    criterion = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        model.train()
        hook.set_mode(smd.modes.TRAIN)
        for data, target in train_loader:
            opt.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            opt.step()
        model.eval()
        hook.set_mode(smd.modes.EVAL)
        correct, total_loss = 0, 0.0
        with torch.no_grad():
            for data, target in test_loader:
                out = model(data)
                total_loss += criterion(out, target).item()
                correct += (out.argmax(1) == target).sum().item()
        logger.info(
            f"Epoch {epoch}: Test Loss: {total_loss / len(test_loader):.4f}, "
            f"Test Accuracy: {correct / len(test_loader.dataset):.4f}"
        )
    torch.save(model, "./checkpoint.pt")  # relative: the job's working folder
    torch.save(model, "/opt/ml/model/model.pt")  # a hooked model, pickled whole, to a hard-coded path
    with open("where.txt", "w") as fh:
        fh.write(os.getcwd())
    with open("/opt/ml/output/data/classes.txt", "w") as fh:
        fh.write(",".join(sorted(os.listdir("/opt/ml/input/data/train"))))


if __name__ == "__main__":
    main()
