"""Subprocess helpers for the reliability tests: the CLI, a served run, store counts.

Everything here starts real processes (``encore ...`` on this interpreter) so that a
``SIGKILL`` hits the same code a user runs; each helper cleans up what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from sqlalchemy.engine import make_url
from tiny_cnn import tiny_model_kwargs

ENCORE = [sys.executable, "-m", "encore.cli.main"]
TOKEN = "reliability-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HERE = Path(__file__).resolve().parent
TINY_MODEL_KWARGS = tiny_model_kwargs(width=8, tag_names=("calm", "loud"))


def with_app_name(url: str, name: str) -> str:
    """``url`` with a PostgreSQL ``application_name`` (so a test can find and end its backends)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment without inherited ``ENCORE_SERVE_*`` settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENCORE_SERVE_")}
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra})
    return env


def init_workspace(root: Path, store_url: str) -> Path:
    """``encore init root --store store_url`` (a real CLI run)."""
    result = subprocess.run(
        [*ENCORE, "init", str(root), "--store", store_url], capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert result.returncode == 0, result.stderr
    return root


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Waits until ``GET /healthz`` answers 200, failing with the server's output if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode} before serving:\n{output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on port {port} not healthy after {timeout} s")


def start_server(command: list[str], port: int, env: Mapping[str, str]) -> subprocess.Popen:
    """Starts a server in its own process group and waits until it is healthy."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env), start_new_session=True
    )
    try:
        wait_healthy(port, process)
    except BaseException:
        stop_process_group(process)
        raise
    return process


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Sends ``sig`` to the process group ``process`` leads (started with a new session) and reaps it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    if process.stdout:
        process.stdout.close()


@contextmanager
def encore_serve(run: Path, workspace: Path, *, max_events: int = 1000) -> Iterator[int]:
    """``encore serve`` on a free port with the test token; yields the port, SIGKILLs it afterwards."""
    port = free_port()
    command = [*ENCORE, "serve", str(run), "-w", str(workspace), "--port", str(port), "--workers", "1", "--token", TOKEN]
    process = start_server(command, port, child_env(ENCORE_SERVE_MAX_EVENTS=str(max_events)))
    try:
        yield port
    finally:
        stop_process_group(process)


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``), in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")
