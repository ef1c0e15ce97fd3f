"""The HTTP service under a bounded load: throughput, latency percentiles, errors, memory.

Usage: python bench/bench_serve.py [--data ../shared/data/emotify] [--requests 400] [--quick] [--backend torch]

Starts ``encore serve`` (uvicorn) as a subprocess on 127.0.0.1 with the default model
(small_cnn, random weights, Emotify's heads; or a trained ``--run``) and a fresh
workspace, then posts 30-s MP3 excerpts of Emotify songs to ``/v1/predict`` from
``c`` client threads (httpx) for c = 1, 4 and 16, ``--requests`` per level. For each
level it prints requests/s, p50/p95/p99 latency and errors (any non-200, 503 included:
the server's admission capacity, workers + queue, is set above 16 so a correct server
has none). The server's resident memory (RSS, psutil) is sampled every 0.25 s over the
whole run and printed per level, so growth over the ~1,000 requests shows.

The reference run is concurrency 1: throughput ratios are against it.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import REPO, default_run, make_excerpts  # noqa: E402

LEVELS = (1, 4, 16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run: Path, workspace: Path, port: int, backend: str, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "encore.cli.main", "serve", str(run), "-w", str(workspace), "--port", str(port),
               "--backend", backend, "--dev", "--workers", str(workers), "--queue-size", "32"]
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


def load_level(url: str, payloads: list[bytes], concurrency: int, n_requests: int) -> tuple[float, np.ndarray, int]:
    """Post ``n_requests`` uploads from ``concurrency`` threads; (seconds, latencies, errors)."""
    local = threading.local()

    def one(i: int) -> tuple[float, bool]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
        started = time.perf_counter()
        try:
            response = client.post(f"{url}/v1/predict", files={"file": (f"s{i}.mp3", payloads[i % len(payloads)], "audio/mpeg")})
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        return time.perf_counter() - started, ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n_requests)))
    elapsed = time.perf_counter() - started
    latencies = np.array([r[0] for r in results])
    return elapsed, latencies, sum(not r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify", help="Emotify folder")
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level (3 levels)")
    parser.add_argument("--quick", action="store_true", help="40 requests per level")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server inference threads")
    parser.add_argument("--run", type=Path, default=None, help="a trained run instead of the random default model")
    args = parser.parse_args()
    n_requests = 40 if args.quick else args.requests
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        payloads = [p.read_bytes() for p in make_excerpts(args.data, 8, 30.0, tmp)]
        run = args.run or default_run(tmp / "run")
        workspace = tmp / "ws"
        subprocess.run([sys.executable, "-m", "encore.cli.main", "init", str(workspace)], check=True, capture_output=True)
        port = free_port()
        server = start_server(run, workspace, port, args.backend, args.workers)
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            url = f"http://127.0.0.1:{port}"
            load_level(url, payloads, 2, 8)  # warm-up
            print(f"{n_requests} requests per level, 30-s MP3 uploads to /v1/predict, backend {args.backend}, "
                  f"{args.workers} server workers, {os.cpu_count()} cores (shared machine)")
            reference = None
            for concurrency in LEVELS:
                level_start = time.monotonic()
                seconds, latencies, errors = load_level(url, payloads, concurrency, n_requests)
                throughput = n_requests / seconds
                reference = reference or throughput
                rss = [mb for t, mb in sampler.samples if t >= level_start]
                p50, p95, p99 = np.percentile(latencies * 1000, [50, 95, 99])
                print(f"concurrency {concurrency:2d}: {throughput:6.1f} req/s ({throughput / reference:4.2f}x c=1)  "
                      f"p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  p99 {p99:6.0f} ms  errors {errors}  "
                      f"RSS {min(rss):.0f}-{max(rss):.0f} MB")
        finally:
            sampler.stop.set()
            server.terminate()
            server.wait(10)
    all_rss = [mb for _, mb in sampler.samples]
    print(f"server RSS over {3 * n_requests + 8} requests: first {all_rss[0]:.0f} MB, last {all_rss[-1]:.0f} MB, "
          f"max {max(all_rss):.0f} MB")


if __name__ == "__main__":
    main()
