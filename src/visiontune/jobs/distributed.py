"""One job, several workers: data-parallel training with PyTorch DDP, launched by Ray Train.

``instance_count=N`` runs N workers (gloo on CPUs, NCCL on GPUs), each with SageMaker's distributed
environment (``SM_HOSTS`` = algo-1..algo-N, ``SM_CURRENT_HOST``, plus ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).  The built-in engine trains one model data-parallel
(every rank its share of each global batch: the same steps as one process); a script gets the environment
and a free rendezvous port for its own ``torch.distributed.init_process_group()``.  Rank 0 records the
job's metrics and writes the model; every rank's output goes into the job's log.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from visiontune.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from visiontune.jobs.context import RunContext


def _ray(address: str | None):
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError as exc:
        raise MissingDependencyError("ray[train]", "instance_count > 1 (data-parallel training)", extra="ray") from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Ray cluster at {address or 'a new local one'}: {exc}; start it with "
                "`ray start --head` and give its address (HOST:PORT)"
            ) from exc
    return ray, TorchTrainer, TorchConfig, ScalingConfig, RunConfig


def sagemaker_hosts_env(rank: int, world: int) -> dict[str, str]:
    hosts = [f"algo-{i + 1}" for i in range(world)]
    resource = {"current_host": hosts[rank], "hosts": hosts}
    return {
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": hosts[rank],
        "SM_RESOURCE_CONFIG": json.dumps(resource),
        "SM_IS_MASTER": str(rank == 0).lower(),
        "WORLD_SIZE": str(world),
        "RANK": str(rank),
        "SM_NUM_HOSTS": str(world),
    }


def run_distributed(ctx: "RunContext", worker_fn, config: dict) -> None:
    """Run ``worker_fn(config)`` on ``instance_count`` Ray Train workers; raise if any failed."""
    spec = ctx.job.spec
    n = int(spec.get("instance_count") or 1)
    ray, TorchTrainer, TorchConfig, ScalingConfig, RunConfig = _ray(spec.get("ray_address"))
    import torch

    use_gpu = torch.cuda.is_available()
    cpus = max(1, int(spec.get("cpus_per_worker") or 1))
    trainer = TorchTrainer(
        worker_fn,
        train_loop_config={
            **config,
            "store_url": ctx.store.url,
            "job": ctx.job.name,
            "home": os.environ.get("VISIONTUNE_HOME", ""),
            "threads": cpus,
        },
        scaling_config=ScalingConfig(num_workers=n, use_gpu=use_gpu, resources_per_worker={"CPU": cpus}),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(storage_path=str(ctx.output_dir / "ray"), name=ctx.job.name),
    )
    ctx.log(f"[visiontune] data-parallel over {n} Ray Train workers ({'nccl' if use_gpu else 'gloo'})")
    from visiontune.train.loop import StopTraining

    try:
        result = trainer.fit()
        error = result.error
    except Exception as exc:  # noqa: BLE001 - Ray wraps what the workers raised
        error = exc
    if error is not None:
        if "StopTraining" in repr(error) or "stopped on request" in str(error):  # a stop, not a failure
            raise StopTraining("stopped on request") from error
        raise error if isinstance(error, Exception) else RuntimeError(str(error))


def _worker_setup(config: dict):
    """In a Ray Train worker: the job's environment, store and log."""
    if config.get("home"):
        os.environ["VISIONTUNE_HOME"] = config["home"]
    os.environ["VISIONTUNE_DB"] = config["store_url"]
    import ray.train
    import torch

    torch.set_num_threads(int(config.get("threads") or 1))
    from visiontune.jobs.context import LogSink
    from visiontune.jobs.store import JobStore

    c = ray.train.get_context()
    rank, world = c.get_world_rank(), c.get_world_size()
    os.environ.update(sagemaker_hosts_env(rank, world))
    os.environ["LOCAL_RANK"] = str(c.get_local_rank())
    store = JobStore(config["store_url"])
    job = store.get_job(config["job"])
    sink = LogSink(store, job.name, Path(job.output_dir) / (f"log-rank{rank}.txt" if rank else "log.txt"))
    return store, job, sink, rank, world


def builtin_worker(config: dict) -> None:
    """One rank of the built-in engine (torch.distributed is initialised by Ray Train)."""
    import torch
    import torch.distributed as dist

    store, job, sink, rank, world = _worker_setup(config)
    from visiontune.jobs.context import RunContext, teed
    from visiontune.train import StopTraining, TrainConfig, train

    ctx = RunContext(store, job, sink)

    def record(epoch: int, row: dict) -> None:
        flag = torch.zeros(1)
        if rank == 0:
            ctx.metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            flag[0] = float(stop_asked(ctx))
        dist.broadcast(flag, 0)  # every rank stops at the same epoch
        if flag.item():
            ctx.stop.set()  # a stopped job (not a pruned trial): rank 0 keeps the epoch's model in partial/
            raise StopTraining(f"stopped on request after epoch {epoch}")

    try:
        with teed(sink, enabled=rank == 0):
            train(TrainConfig.from_dict(job.spec["config"]), callbacks=(record,), stop=ctx.stop)
    finally:
        _last_writes(ctx, rank)


def stop_asked(ctx: "RunContext") -> bool:
    """Rank 0 between epochs: the log's new lines to the store, and whether the job was asked to stop.  While
    the store is unreachable the log waits (the file has it), the answer is no, and the outage is noted (past
    ``STORE_OUTAGE_S`` it stops the job, which then fails saying so)."""
    from visiontune.jobs.store import store_trouble

    try:
        ctx.sink.flush()
        return ctx.store.stop_requested(ctx.job.name) or ctx.store_error is not None
    except Exception as exc:
        if not store_trouble(exc):
            raise
        ctx.store_down(exc)
        return ctx.store_error is not None


def _last_writes(ctx: "RunContext", rank: int) -> None:
    """The buffered metric points and the log's last chunk, retried while the store is away (rank 0)."""
    try:
        if rank == 0:
            ctx.flush_metrics(until=ctx.final_writes_until())
    finally:
        ctx.sink.close(until=ctx.final_writes_until())


def script_worker(config: dict) -> None:
    """One rank of a training script: SageMaker's environment for host algo-<rank+1>, a shared rendezvous."""
    import socket

    import torch.distributed as dist

    from visiontune.jobs.context import RunContext
    from visiontune.jobs.contract import MetricParser, run_script_process, script_env

    store, job, sink, rank, world = _worker_setup(config)
    port = [None]
    if rank == 0:
        with socket.socket() as s:
            s.bind(("", 0))
            port[0] = s.getsockname()[1]
    dist.broadcast_object_list(port, src=0)
    env = script_env(
        job, Path(job.output_dir), hosts=[f"algo-{i + 1}" for i in range(world)], current_host=f"algo-{rank + 1}"
    )
    env.update(sagemaker_hosts_env(rank, world))
    env.update(
        {
            "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
            "MASTER_PORT": str(port[0]),
            "LOCAL_RANK": os.environ["LOCAL_RANK"],
        }
    )
    parser = MetricParser(job.spec["metric_definitions"] if rank == 0 else [])
    ctx = RunContext(store, job, sink)

    def metrics(values: dict, step: int) -> None:
        ctx.metrics(values, step)  # buffered through an outage of the store

    stop, done = threading.Event(), threading.Event()

    def watch() -> None:  # `jobs stop` reaches every rank's script
        while not done.wait(1.0):
            try:
                if store.stop_requested(job.name):
                    stop.set()
                    return
            except Exception:  # noqa: BLE001 - the next look retries
                pass

    threading.Thread(target=watch, daemon=True).start()
    try:
        rc = run_script_process(
            job, env, sink.write, parser, metrics, stop=stop, prefix="" if rank == 0 else f"[algo-{rank + 1}] "
        )
    finally:
        done.set()
        _last_writes(ctx, rank)
    if stop.is_set():
        from visiontune.train import StopTraining

        raise StopTraining("stopped on request")
    if rc != 0:
        from visiontune.jobs.contract import exit_status

        raise RuntimeError(f"{job.spec['entry_point']} on algo-{rank + 1} {exit_status(rc)}")
