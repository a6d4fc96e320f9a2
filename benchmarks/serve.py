"""Benchmark: `visiontune serve` latency and throughput, torch vs ONNX, batching on and off.

A mobilenet_v2 model at 224 px (head-trained on a little Fashion-MNIST) is
served on 127.0.0.1; load comes from a second process (asyncio, keep-alive connections, pre-built
requests), bounded in time.  Reported: p50/p99 latency at
concurrency 1, throughput at concurrency 1, 8 and 32, for each runtime (torch
at its default precision, torch in float32, ONNX) with batching off and on; the in-process limit (JPEG decode + preprocessing +
forward of one image); then a soak at concurrency 16 with the server's
memory sampled every second.

The c32 phase starts torch (default precision) with batching off and on, and batching in one model process
fed by two HTTP workers, side by side and measures them in turn at concurrency 32, --rounds times (interleaved, so drift hits both alike): the median throughput of each,
the spread, and batching's p99 over p50; ``ratios`` in the JSON holds ``batching_gain_c32`` and
``p99_over_p50_c32`` (batching on). The overload phase sends concurrency 64 at a server bounded to
``--max-queue 16``: how many are refused (503 + Retry-After) and the latency of those served.

Run:  python benchmarks/serve.py [--seconds 8] [--soak 60] [--warmup 20] [--rounds 3]
                                 [--phases model,limit,configs,c1,workers,soak,c32,overload]
Results go to benchmarks/results/serve.json (a run of some phases keeps the others' last results).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _client(port: int, body: bytes, concurrency: int, seconds: float, queue) -> None:
    """Runs in its own process: ``concurrency`` keep-alive connections on one asyncio loop send requests for
    ``seconds``.  Requests are pre-built bytes and only the status line and headers are parsed: the client
    shares the server's cores, so what it spends is taken from the server (32 ``http.client`` threads spent
    about twice as much CPU per request as this)."""
    import asyncio

    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    latencies: list[float] = []
    counts = {"errors": 0, "refused": 0}

    async def response(reader) -> tuple[int, dict[bytes, bytes]]:
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:] if b": " in line)
        if headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
        return status, headers

    async def worker(stop: float) -> None:
        conn = None
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                reader, writer = conn
                writer.write(request)
                status, headers = await asyncio.wait_for(response(reader), 30)
                if status == 503 and b"retry-after" in headers:
                    counts["refused"] += 1  # the queue is full: answered at once, not counted as served; the
                    # client waits as told (as boto3's retries would) instead of hammering the server
                    await asyncio.sleep(min(float(headers[b"retry-after"]), max(0.0, stop - time.perf_counter())))
                    continue
                if status != 200:
                    counts["errors"] += 1
                latencies.append(time.perf_counter() - t)
                if headers.get(b"connection") == b"close":
                    writer.close()
                    conn = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
                counts["errors"] += 1
                if conn is not None:
                    conn[1].close()
                conn = None

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + seconds) for _ in range(concurrency)))
        return time.perf_counter() - t0

    wall = asyncio.run(main())
    queue.put({"latencies": latencies, "errors": counts["errors"], "refused": counts["refused"], "wall": wall})


def load(port: int, body: bytes, concurrency: int, seconds: float) -> dict:
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_client, args=(port, body, concurrency, seconds, q))
    p.start()
    r = q.get(timeout=seconds + 120)
    p.join()
    lat = sorted(r["latencies"])
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": r["errors"],
        **({"refused_503": r["refused"]} if r["refused"] else {}),
        "throughput_rps": round(len(lat) / r["wall"], 1),
        "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, *args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "visiontune.cli.main", "serve", str(model), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_model(work: Path) -> Path:
    import visiontune as vt
    from visiontune.data.fashion_mnist import write_png_folders
    from visiontune.serve.export import export

    data = write_png_folders(work / "fm", n_train=300, n_val=100, n_test=100)
    r = vt.train(data=str(data), out=str(work / "model"), model="mobilenet_v2", image_size=224, epochs=2)
    export(r.out, "onnx")
    return r.out


def sample_jpeg() -> bytes:
    from PIL import Image

    try:
        import skimage.data

        img = Image.fromarray(skimage.data.chelsea())
    except ImportError:
        img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 450, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def in_process_limit(model: Path, body: bytes, runtime: str, precision: str, n: int = 200) -> dict:
    from visiontune.serve.handler import Handler

    h = Handler(model, runtime=runtime, precision=precision).load()
    times = []
    for i in range(n + 10):
        t = time.perf_counter()
        h.predict(h.parse(body, "image/jpeg"))
        if i >= 10:
            times.append(time.perf_counter() - t)
    out = {
        "p50_ms": round(1000 * statistics.median(times), 2),
        "p99_ms": round(1000 * sorted(times)[int(0.99 * len(times))], 2),
    }
    if runtime == "torch":
        out["how"] = h.model.runtime.model.how
    return out


def c1_rounds(model: Path, body: bytes, seconds: float, rounds: int = 3) -> list[dict]:
    configs = {
        f"torch_{p}_{'batching' if b else 'no_batching'}": ["--precision", p] + (BATCHING if b else [])
        for p in ("auto", "fp32")
        for b in (False, True)
    }
    servers = {name: start_server(model, *extra) for name, extra in configs.items()}
    out = []
    try:
        for _, port in servers.values():
            load(port, body, 4, 2.0)
        for _ in range(rounds):
            limit = {p: in_process_limit(model, body, "torch", p, n=60)["p50_ms"] for p in ("auto", "fp32")}
            row = {}
            for name, (_, port) in servers.items():
                served = load(port, body, 1, seconds)["p50_ms"]
                row[name] = {"served_p50_ms": served, "overhead_ms": round(served - limit[name.split("_")[1]], 2)}
            out.append({"limit_p50_ms": limit, "configs": row})
            print("c1 round", out[-1], flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
    return out


def model_side_batching(model: Path, body: bytes, batch: int = 16, rounds: int = 5) -> dict:
    """In-process: one forward of ``batch`` decoded images vs ``batch`` forwards of one (what batching can
    buy at most, before HTTP, decoding and the load generator take their share of the cores); and a sweep of
    batch sizes (images per second over 64 images in batches of each size)."""
    from visiontune.serve.handler import Handler

    out = {}
    for precision in ("auto", "fp32"):
        rt = Handler(model, precision=precision).load().model
        many64 = np.stack([rt.pixels(body)] * 64)
        sweep = {}
        for size in (1, 2, 4, 8, 16, 32, 64):
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                for i in range(0, 64, size):
                    rt.runtime.predict_proba(many64[i : i + size])
                times.append(time.perf_counter() - t)
            sweep[str(size)] = round(64 / statistics.median(times), 1)
        pixels = np.stack([rt.pixels(body)] * batch)
        rt.runtime.predict_proba(pixels)
        one, many = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            for i in range(batch):
                rt.runtime.predict_proba(pixels[i : i + 1])
            one.append(time.perf_counter() - t)
            t = time.perf_counter()
            rt.runtime.predict_proba(pixels)
            many.append(time.perf_counter() - t)
        out[f"torch_{precision}"] = {
            "images_per_s_one_at_a_time": round(batch / statistics.median(one), 1),
            f"images_per_s_batch_{batch}": round(batch / statistics.median(many), 1),
            "gain": round(statistics.median(one) / statistics.median(many), 2),
            "images_per_s_by_batch_size": sweep,
        }
    return out


def c32_rounds(model: Path, body: bytes, seconds: float, rounds: int) -> dict:
    """Batching off and on, and batching in one model process fed by two HTTP workers (``--workers 2
    --model-process``), all servers up, measured in turn at concurrency 32, ``rounds`` times."""
    servers = {
        "no_batching": start_server(model),
        "batching": start_server(model, *BATCHING),
        "batching_model_process": start_server(model, *BATCHING, "--workers", "2", "--model-process"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for _, port in servers.values():
            load(port, body, 8, 3.0)  # warm-up
        for i in range(rounds):
            names = list(servers)
            for name in names[i % len(names) :] + names[: i % len(names)]:  # each round another goes first
                runs[name].append(load(servers[name][1], body, 32, seconds))
                print("c32", i, name, runs[name][-1], flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    tail = [r["p99_ms"] / r["p50_ms"] for r in runs["batching"]]
    gains = [b["throughput_rps"] / n["throughput_rps"] for b, n in zip(runs["batching"], runs["no_batching"])]
    return {
        "runs": runs,
        "median_throughput_rps": {name: med(name, "throughput_rps") for name in runs},
        "median_p50_ms": {name: med(name, "p50_ms") for name in runs},
        "median_p99_ms": {name: med(name, "p99_ms") for name in runs},
        "batching_gain_c32": round(med("batching", "throughput_rps") / med("no_batching", "throughput_rps"), 2),
        "batching_gain_c32_per_round": [round(g, 2) for g in gains],
        "model_process_gain_c32": round(
            med("batching_model_process", "throughput_rps") / med("no_batching", "throughput_rps"), 2
        ),
        "model_process_over_batching_c32": round(
            med("batching_model_process", "throughput_rps") / med("batching", "throughput_rps"), 2
        ),
        "p99_over_p50_c32": round(statistics.median(tail), 2),
        "p99_over_p50_c32_per_round": [round(x, 2) for x in tail],
    }


def overload(model: Path, body: bytes, seconds: float) -> dict:
    """Concurrency 64 at a server that holds at most 16 requests: the rest are refused at once."""
    proc, port = start_server(model, *BATCHING, "--max-queue", "16")
    try:
        load(port, body, 8, 3.0)
        return {"max_queue": 16, **load(port, body, 64, seconds)}
    finally:
        proc.terminate()
        proc.wait(10)


PHASES = ("model", "limit", "configs", "c1", "workers", "soak", "c32", "overload")


#: (runtime, precision): the torch runtime as served by default (auto: bf16 on CPUs that compute it
#: natively), the same in float32, and ONNX Runtime (float32)
RUNTIMES = (("torch", "auto"), ("torch", "fp32"), ("onnx", "fp32"))
#: batch 8: the model-side sweep measured it the fastest per image here (mobilenet_v2, 224 px, bf16, 2 cores:
#: 486 img/s against 359 at 16 and 241 at 64); --batch changes it
BATCHING = ["--max-batch-size", "8", "--max-delay-ms", "10"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0, help="per load level")
    ap.add_argument("--soak", type=float, default=60.0, help="soak seconds (0: no soak)")
    ap.add_argument("--warmup", type=float, default=20.0, help="soak seconds before memory must stay level")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the c32 phase")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of: {', '.join(PHASES)}")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.json"))
    ap.add_argument("--batch", type=int, default=8, help="--max-batch-size of the servers with batching")
    args = ap.parse_args()
    BATCHING[1] = str(args.batch)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or set(phases) - set(PHASES):
        ap.error(f"--phases {args.phases!r}: choose among {', '.join(PHASES)}")
    if args.soak <= 0 and "soak" in phases:
        phases.remove("soak")
    work = Path(tempfile.mkdtemp(prefix="vt-serve-bench-"))
    os.environ["VISIONTUNE_HOME"] = str(work / "home")
    model = make_model(work)
    body = sample_jpeg()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results["setup"] = {
        "model": "mobilenet_v2",
        "image_size": 224,
        "cpus": os.cpu_count(),
        "body_bytes": len(body),
        "seconds_per_level": args.seconds,
        "batching": " ".join(BATCHING),
        "device": "cuda" if _cuda() else "cpu",
        "phases_of_this_run": phases,
    }
    if "model" in phases:
        results["model_side_batching"] = model_side_batching(model, body, batch=args.batch)
        print("model-side batching", results["model_side_batching"], flush=True)
    if "limit" in phases:
        results["limit"] = {}
        for runtime, precision in RUNTIMES:
            name = f"{runtime}_{precision}"
            results["limit"][name] = in_process_limit(model, body, runtime, precision)
            print("limit", name, results["limit"][name], flush=True)
    if "configs" in phases:
        results["configs"], results["paired_c1"] = {}, {}
        for runtime, precision in RUNTIMES:
            for batching in (False, True):
                extra = ["--runtime", runtime, "--precision", precision] + (BATCHING if batching else [])
                # the machine drifts: take the in-process limit right before each server, and compare the pair
                limit_now = in_process_limit(model, body, runtime, precision, n=100)
                proc, port = start_server(model, *extra)
                try:
                    load(port, body, 4, 2.0)  # warm-up
                    levels = [load(port, body, c, args.seconds) for c in (1, 8, 32)]
                finally:
                    proc.terminate()
                    proc.wait(10)
                name = f"{runtime}_{precision}_{'batching' if batching else 'no_batching'}"
                results["configs"][name] = levels
                results["paired_c1"][name] = {
                    "limit_p50_ms": limit_now["p50_ms"],
                    "served_p50_ms": levels[0]["p50_ms"],
                    "overhead_ms": round(levels[0]["p50_ms"] - limit_now["p50_ms"], 2),
                }
                print(name, levels, flush=True)
    if "c1" in phases:
        # c=1 again, every torch config up at once and measured in turn, three rounds: one pair above
        # can catch a noisy moment of the shared machine; this shows whether an overhead is real
        results["c1_rounds"] = c1_rounds(model, body, args.seconds / 2)
    if "workers" in phases:
        # what processes and threads buy: the same two cores as 1 worker x 2 threads or 2 workers x 1 thread
        results["workers_threads"] = {}
        for workers, threads in ((1, 2), (2, 1)):
            proc, port = start_server(model, "--workers", str(workers), "--threads", str(threads))
            try:
                load(port, body, 4, 2.0)
                results["workers_threads"][f"{workers}x{threads}"] = [load(port, body, c, args.seconds) for c in (1, 8)]
            finally:
                proc.terminate()
                proc.wait(10)
            print("workers x threads", workers, threads, results["workers_threads"][f"{workers}x{threads}"], flush=True)
    if "soak" in phases:
        results["soak"] = soak(model, body, args.soak, args.warmup)
    if "c32" in phases:
        results["c32_interleaved"] = c32_rounds(model, body, args.seconds, args.rounds)
    if "overload" in phases:
        results["overload"] = overload(model, body, args.seconds)
        print("overload", results["overload"], flush=True)
    results["summary"] = summary(results)
    c32 = results.get("c32_interleaved", {})
    results["ratios"] = {
        "batching_gain_c32": c32.get("batching_gain_c32"),
        "p99_over_p50_c32": c32.get("p99_over_p50_c32"),
        "served_over_model_side_batched": _served_over_model_side(results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps({"ratios": results["ratios"], "summary": results["summary"]}, indent=2))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _served_over_model_side(results: dict) -> float | None:
    """Batching-on throughput at c32 over the model's own batched throughput (what the server delivers of
    what the model can do)."""
    c32, model = results.get("c32_interleaved"), results.get("model_side_batching", {}).get("torch_auto")
    if not c32 or not model:
        return None
    side = next(v for k, v in model.items() if k.startswith("images_per_s_batch_"))
    return round(c32["median_throughput_rps"]["batching"] / side, 2)


def soak(model: Path, body: bytes, seconds: float, warmup: float) -> dict:
    """Concurrency 16 for ``seconds`` with batching, the server's memory sampled every second."""
    proc, port = start_server(model, *BATCHING)
    try:
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.perf_counter(), rss_mb(proc.pid)))
                time.sleep(1)

        th = threading.Thread(target=sample)
        t0 = time.perf_counter()
        th.start()
        row = load(port, body, 16, seconds)
        stop.set()
        th.join()
    finally:
        proc.terminate()
        proc.wait(10)
    warm = [m for t, m in samples if t - t0 >= warmup]
    row["warmup_s"] = warmup
    row["rss_mb_after_warmup_first"] = round(warm[0], 1) if warm else None
    row["rss_mb_end"] = round(samples[-1][1], 1)
    row["rss_mb_max_after_warmup"] = round(max(warm), 1) if warm else None
    row["growth_after_warmup_mb"] = round(warm[-1] - warm[0], 1) if warm else None
    row["rss_mb_every_5s"] = [round(m, 1) for m in [m for _, m in samples][::5]]
    print("soak", row, flush=True)
    return row


def summary(results: dict) -> dict:
    out = {}
    if "paired_c1" in results:
        out["c1_overhead_ms_paired"] = {k: v["overhead_ms"] for k, v in results["paired_c1"].items()}
    if "c1_rounds" in results:
        out["c1_overhead_ms_rounds_max"] = {
            k: max(r["configs"][k]["overhead_ms"] for r in results["c1_rounds"])
            for k in results["c1_rounds"][0]["configs"]
        }
    t = results.get("configs", {})
    for r, p in RUNTIMES:
        if f"{r}_{p}_batching" in t:
            out[f"{r}_{p}_batching_gain_c32_one_run"] = round(
                t[f"{r}_{p}_batching"][2]["throughput_rps"] / t[f"{r}_{p}_no_batching"][2]["throughput_rps"], 2
            )
    return out


if __name__ == "__main__":
    main()
