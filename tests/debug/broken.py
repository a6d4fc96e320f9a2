"""Tiny training loops written the way a user's script is (the hook API), healthy or with one fault."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from visiontune.debug import Hook, SaveConfig, modes

FAULTS = (
    "healthy",
    "lr10",
    "diverge",
    "zero_init",
    "frozen",
    "saturated_sigmoid",
    "dead_relu",
    "imbalance",
    "unnormalised",
    "sleepy_loader",
    "overfit",
)


def make_data(n: int, seed: int, imbalance: bool = False, scale: float = 1.0, offset: float = 0.0):
    """4 classes of 3x8x8 images: a class-specific pattern plus noise, normalised (mean 0, std ~1)."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(123))
    if imbalance:  # 1:50 between the rarest and the commonest class
        y = torch.cat([torch.zeros(n - n // 50, dtype=torch.long), torch.ones(n // 50, dtype=torch.long)])
    else:
        y = torch.arange(n) % 4
    x = patterns[y] * 0.6 + torch.randn(n, 3, 8, 8, generator=g)
    return x * scale + offset, y


class Net(nn.Module):
    def __init__(self, act: str = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.Sigmoid() if act == "sigmoid" else nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(64, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.pool(self.act(self.conv(x))).flatten(1))))


def run(
    out: Path, fault: str = "healthy", epochs: int = 3, save_interval: int = 2, session_rules=None, lr: float = 3e-3
) -> Path:
    """Train with the hook on, in ``out/debug``; returns that folder.  ``session_rules``: also run the
    rules live (a DebugSession) with these rules."""
    torch.manual_seed(0)
    folder = Path(out) / "debug"
    session = None
    if session_rules is not None:
        from visiontune.debug.session import DebugSession

        session = DebugSession(folder, rules=session_rules, kind="script", monitor_interval=0.2, rules_interval=0.2)
    n_train = 32 if fault == "overfit" else 640
    xt, yt = make_data(
        n_train,
        1,
        imbalance=fault == "imbalance",
        scale=255.0 if fault == "unnormalised" else 1.0,
        offset=128.0 if fault == "unnormalised" else 0.0,
    )
    if fault == "overfit":
        yt = torch.randint(0, 4, (n_train,), generator=torch.Generator().manual_seed(5))  # labels to memorise
    xv, yv = make_data(256, 2)
    net = Net("sigmoid" if fault == "saturated_sigmoid" else "relu")
    if fault == "zero_init":
        for p in net.parameters():
            nn.init.zeros_(p)
    if fault == "saturated_sigmoid":
        with torch.no_grad():
            net.conv.weight.mul_(5.0)
            net.conv.bias.fill_(60.0)  # every pre-activation far in the sigmoid's flat tail
    if fault == "dead_relu":
        with torch.no_grad():
            net.fc1.bias.fill_(-100.0)
    crit = nn.CrossEntropyLoss()
    opt_lr = {"lr10": 10.0, "diverge": 1e6, "frozen": 0.0}.get(fault, lr)
    opt = (
        torch.optim.SGD(net.parameters(), lr=opt_lr, momentum=0.9)
        if fault in ("lr10", "diverge")
        else torch.optim.Adam(net.parameters(), lr=opt_lr)
    )
    hook = Hook(out_dir=folder, save_config=SaveConfig(save_interval=save_interval))
    hook.flush_seconds = 0.2  # fresh records for the rules that watch the run live
    hook.register_module(net)
    hook.register_loss(crit)
    batch = 8 if fault == "overfit" else 32
    n_epochs = 60 if fault == "overfit" else epochs
    for epoch in range(n_epochs):
        hook.set_mode(modes.TRAIN)
        net.train()
        perm = torch.randperm(len(xt), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            if fault == "sleepy_loader" and epoch == 1 and i == 0:
                time.sleep(5.0)
            logits = net(xt[idx])
            loss = crit(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            hook.save_tensor("labels", yt[idx], "labels")
            hook.save_tensor("predictions", logits.argmax(1), "predictions")
        hook.set_mode(modes.EVAL)
        net.eval()
        with torch.no_grad():
            for i in range(0, len(xv), 64):
                crit(net(xv[i : i + 64]), yv[i : i + 64])
    hook.close()
    if session is not None:
        session.finish()
    return folder
