"""Scale-out on Ray (issue 8.5): a local Ray head on loopback, a small tuning job across it, and a
2-worker data-parallel training that reaches the accuracy of the 1-worker run.

Ray registers the machine's own address even when told 127.0.0.1, so the cluster and every command that
talks to it run inside a network namespace that has only loopback (``unshare -n``; needs root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST, make_folder_dataset
from visiontune.jobs import JobStore

SCRIPTS = Path(__file__).parent / "scripts"
BIN = Path(sys.executable).parent


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a loopback-only network namespace (unshare -n)"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs unshare and ip (util-linux, iproute2)"
    try:
        import ray  # noqa: F401
        import ray.train  # noqa: F401
    except ImportError:
        return "ray[train] is not installed (pip install 'visiontune[ray]')"
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        return "unshare -n is not permitted here"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tuning_and_ddp_on_a_local_ray_cluster(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=16, split_layout=True)
    port = _port()
    address = f"127.0.0.1:{port}"
    opts = " ".join(f"--{k.replace('_', '-')}={v}" for k, v in {**FAST, "epochs": 4, "learning_rate": 0.01}.items())
    tune = {
        "name": "on-ray",
        "train": {"data": str(data), **FAST, "epochs": 2},
        "objective": {"metric": "val_acc"},
        "ranges": {"learning_rate": [0.01, 0.003]},
        "strategy": "Grid",
        "max_jobs": 2,
        "max_parallel_jobs": 2,
        "backend": "ray",
        "ray_address": address,
        "output": str(tmp_path / "on-ray"),
    }
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(tune))
    vt = f"{BIN}/python -m visiontune.cli.main"
    script = f"""
set -e
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0
{BIN}/ray start --head --node-ip-address=127.0.0.1 --port={port} --num-cpus=2 --disable-usage-stats \\
    --include-dashboard=false > {tmp_path}/ray-start.log 2>&1
trap '{BIN}/ray stop --force > /dev/null 2>&1' EXIT
{vt} tune --config {tmp_path}/tune.yaml
{vt} train --data {data} {opts} --out {tmp_path}/one --job-name one-worker
{vt} train --data {data} {opts} --out {tmp_path}/two --job-name two-workers --instance-count 2 --ray-address {address}
{vt} train --entry-point ddp_env.py --source-dir {SCRIPTS} --out {tmp_path}/script --job-name ddp-script \\
    --instance-count 2 --ray-address {address}
"""
    (tmp_path / "cluster.sh").write_text(script)
    r = subprocess.run(
        ["unshare", "-n", "bash", str(tmp_path / "cluster.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    store = JobStore()
    tj = store.get_tuning_job("on-ray")
    trials = store.list_jobs(tuning_job="on-ray")
    assert tj.status == "Completed" and sorted(j.status for j in trials) == ["Completed", "Completed"]
    one, two = store.get_job("one-worker"), store.get_job("two-workers")
    assert one.status == two.status == "Completed"
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["data_parallel_workers"] == 2 and m1["data_parallel_workers"] == 1
    assert m2["test_accuracy"] >= m1["test_accuracy"] - 1e-9  # reaches the 1-worker accuracy
    for a, b in zip(m1["history"], m2["history"]):  # the same steps: the same curve, to float reduction order
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3, abs=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3, abs=1e-4)
    assert [v for _, v, _ in store.metrics("two-workers")["val_acc"]] == [h["val_acc"] for h in m2["history"]]
    views = [json.loads(p.read_text()) for p in sorted((tmp_path / "script" / "output" / "data").glob("env-*.json"))]
    assert [v["current"] for v in views] == ["algo-1", "algo-2"]
    assert all(v["hosts"] == ["algo-1", "algo-2"] and v["world"] == 2 and v["sum"] == 3.0 for v in views)
    assert store.get_job("ddp-script").status == "Completed"
    assert (tmp_path / "script" / "model.tar.gz").exists()
