"""A fast, torch-free training script for tuning tests: each epoch prints `score: <quality>` after a pause."""

import argparse
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--quality", type=float, required=True)
ap.add_argument("--epochs", type=int, default=8)
ap.add_argument("--pause", type=float, default=0.15)
args = ap.parse_args()
for epoch in range(1, args.epochs + 1):
    time.sleep(args.pause)
    print(f"epoch {epoch} score: {args.quality}", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "quality.txt"), "w") as fh:
    fh.write(str(args.quality))
