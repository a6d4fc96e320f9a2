"""A distributed seed-style script: joins the process group SageMaker's way (env://) and records its view."""

import json
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
x = torch.ones(1) * (dist.get_rank() + 1)
dist.all_reduce(x)
hosts = json.loads(os.environ["SM_HOSTS"])
out = os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], f"env-{os.environ['SM_CURRENT_HOST']}.json")
with open(out, "w") as fh:
    json.dump(
        {
            "hosts": hosts,
            "current": os.environ["SM_CURRENT_HOST"],
            "rank": dist.get_rank(),
            "world": dist.get_world_size(),
            "sum": x.item(),
        },
        fh,
    )
print(f"rank {dist.get_rank()} sum={x.item()}")
if dist.get_rank() == 0:
    torch.save({"w": torch.zeros(1)}, os.path.join(os.environ["SM_MODEL_DIR"], "model.pth"))
dist.destroy_process_group()
