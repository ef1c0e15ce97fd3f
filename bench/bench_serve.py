"""The HTTP service under a burst: answers by status, latency percentiles, memory, against a direct call.

Usage: python bench/bench_serve.py [--data ../shared/data/emotify] [--requests 200] [--levels 16 64] [--quick]

Starts ``encore serve`` (uvicorn) as a subprocess on 127.0.0.1 with its default settings
(one inference worker per core, the queue's default memory budget and wait) and the
default model (small_cnn, random weights, Emotify's heads; or a trained ``--run``) in a
fresh workspace, then posts 30-s MP3 excerpts of Emotify songs to ``/v1/predict`` from
``c`` client threads (httpx) for each concurrency level, ``--requests`` per level. For
each level it prints the count of every status (a burst within the queue's budget must
get no 503), requests/s, p50/p95/p99 latency, and the server's resident memory (RSS,
psutil, sampled every 0.25 s).

The reference is the direct call in this process: ``Predictor.predict_source`` on the
same uploads, one after another on one thread (as one server worker runs them).
Throughput ratios are against its songs/s (a server with W workers can reach about W
on a quiet machine), latency ratios against its seconds per song.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import REPO, default_run, make_excerpts  # noqa: E402

from encore.inference import load_predictor  # noqa: E402

LEVELS = (16, 64)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run: Path, workspace: Path, port: int, backend: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "encore.cli.main",
        "serve",
        str(run),
        "-w",
        str(workspace),
        "--port",
        str(port),
        "--backend",
        backend,
        "--dev",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


class RssSampler(threading.Thread):
    """Samples a process's resident memory (MB) until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.process.memory_info().rss / 1e6))
            self.stop.wait(0.25)


def time_direct(run: Path, payloads: list[bytes], backend: str, n_calls: int) -> float:
    """The reference: seconds per song of ``Predictor.predict_source`` called directly on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server runs each worker
    try:
        predictor = load_predictor(run, backend=backend)
        predictor.predict_source(payloads[0])  # warm-up
        started = time.perf_counter()
        for i in range(n_calls):
            predictor.predict_source(payloads[i % len(payloads)])
        return (time.perf_counter() - started) / n_calls
    finally:
        torch.set_num_threads(threads)


def load_level(url: str, payloads: list[bytes], concurrency: int, n_requests: int) -> tuple[float, np.ndarray, Counter]:
    """Post ``n_requests`` uploads from ``concurrency`` threads; (seconds, latencies, count per status)."""
    local = threading.local()

    def one(i: int) -> tuple[float, str]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=300)
        started = time.perf_counter()
        try:
            response = client.post(f"{url}/v1/predict", files={"file": (f"s{i}.mp3", payloads[i % len(payloads)], "audio/mpeg")})
            status = str(response.status_code)
        except httpx.HTTPError as error:
            status = type(error).__name__
        return time.perf_counter() - started, status

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n_requests)))
    elapsed = time.perf_counter() - started
    latencies = np.array([r[0] for r in results])
    return elapsed, latencies, Counter(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify", help="Emotify folder")
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="client concurrency levels")
    parser.add_argument("--quick", action="store_true", help="40 requests per level")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--run", type=Path, default=None, help="a trained run instead of the random default model")
    args = parser.parse_args()
    n_requests = 40 if args.quick else args.requests
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        payloads = [p.read_bytes() for p in make_excerpts(args.data, 8, 30.0, tmp)]
        run = args.run or default_run(tmp / "run")
        direct = time_direct(run, payloads, args.backend, 24)
        workspace = tmp / "ws"
        subprocess.run([sys.executable, "-m", "encore.cli.main", "init", str(workspace)], check=True, capture_output=True)
        port = free_port()
        server = start_server(run, workspace, port, args.backend)
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            url = f"http://127.0.0.1:{port}"
            limits = httpx.get(f"{url}/v1/models").json()["limits"]
            load_level(url, payloads, 2, 8)  # warm-up
            print(
                f"{n_requests} requests per level, 30-s MP3 uploads to /v1/predict, backend {args.backend}, "
                f"server defaults: {limits['workers']} workers, queue {limits['queue_bytes'] / 1e6:.0f} MB, "
                f"wait {limits['queue_timeout']:g} s; {os.cpu_count()} cores shared with the load client"
            )
            print(
                f"reference, direct Predictor.predict_source on one thread: {1000 * direct:.0f} ms a song "
                f"({1 / direct:.1f} songs/s)"
            )
            for concurrency in args.levels:
                level_start = time.monotonic()
                seconds, latencies, statuses = load_level(url, payloads, concurrency, n_requests)
                throughput = n_requests / seconds
                rss = [mb for t, mb in sampler.samples if t >= level_start] or [sampler.samples[-1][1]]
                p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
                answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
                print(
                    f"concurrency {concurrency:2d}: {answers}; {throughput:5.1f} req/s ({throughput * direct:4.2f}x direct)  "
                    f"p50 {1000 * p50:5.0f} ms ({p50 / direct:4.1f}x)  p95 {1000 * p95:5.0f} ms  "
                    f"p99 {1000 * p99:5.0f} ms ({p99 / direct:4.1f}x)  RSS {min(rss):.0f}-{max(rss):.0f} MB"
                )
        finally:
            sampler.stop.set()
            server.terminate()
            server.wait(10)
    all_rss = [mb for _, mb in sampler.samples]
    print(
        f"server RSS over {len(args.levels) * n_requests + 8} requests: first {all_rss[0]:.0f} MB, "
        f"last {all_rss[-1]:.0f} MB, max {max(all_rss):.0f} MB"
    )


if __name__ == "__main__":
    main()
