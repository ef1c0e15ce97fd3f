"""Malicious requests against a real ``encore serve``: refused with JSON 4xx, memory stays bounded.

What ``tests/serve`` already covers (forged and missing tokens, wrong content type, a
WAV header claiming hours, path names as file names and track ids, bodies over the
upload limit) is not repeated. Added here: a gzip bomb and a zip bomb sent as audio, a
FLAC decompression bomb (a tiny file that decodes to an hour), a gzip-encoded JSON body,
a multipart form with thousands of fields or files, a JSON body far over its limit,
declared and streamed (chunked) without a length. The server's peak resident memory
(``VmHWM``) must stay within 150 MB of what it used before, and it must still answer.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import httpx2 as httpx
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from encore.store import Store

from .procs import AUTH, ENCORE, TOKEN, child_env, free_port, init_workspace, peak_rss_bytes, start_server, stop_process_group

BOMB_BYTES = 1 << 30  # what the gzip and zip bombs expand to


def gzip_bomb() -> bytes:
    """About 1 MB of gzip that expands to 1 GiB of zeros."""
    buffer = io.BytesIO()
    block = bytes(1 << 20)
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as handle:
        for _ in range(BOMB_BYTES // len(block)):
            handle.write(block)
    return buffer.getvalue()


def zip_bomb(gz: bytes) -> bytes:
    """A zip holding one deflated 1 GiB member (reusing nothing: zipfile streams it)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("song.wav", "w", force_zip64=True) as member,
    ):
        block = bytes(1 << 20)
        for _ in range(BOMB_BYTES // len(block)):
            member.write(block)
    return buffer.getvalue()


def flac_bomb(seconds: int = 3600, sample_rate: int = 8000) -> bytes:
    """A FLAC of an hour of silence: a few hundred KB that decode to ~115 MB of float32."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=1, format="FLAC", subtype="PCM_16") as handle:
        block = np.zeros(sample_rate * 60, dtype=np.int16)
        for _ in range(seconds // 60):
            handle.write(block)
    return buffer.getvalue()


def streamed(total: int, chunk: int = 1 << 20):
    """A request body of ``total`` bytes sent in chunks without a Content-Length."""
    sent = 0
    yield b'{"events": ['
    while sent < total:
        yield b'{"track_id": "t1", "kind": "like"},' * (chunk // 36)
        sent += chunk


@pytest.mark.slow
def test_bombs_and_floods_are_refused_and_memory_stays_bounded(tiny_run, tmp_path):
    store_url = f"sqlite:///{tmp_path / 'ws' / 'encore.sqlite'}"
    ws = init_workspace(tmp_path / "ws", store_url)
    with Store.open(store_url) as store:
        store.add_tracks(pd.DataFrame({"track_id": ["t1"]}))
    port = free_port()
    command = [*ENCORE, "serve", str(tiny_run), "-w", str(ws), "--port", str(port), "--workers", "1", "--token", TOKEN]
    server = start_server(command, port, child_env())
    base = f"http://127.0.0.1:{port}"
    gz = gzip_bomb()
    outcomes: dict[str, int | str] = {}
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            ok = client.post("/v1/feedback", json={"events": [{"track_id": "t1", "kind": "like"}]}, headers=AUTH)
            assert ok.status_code == 200, ok.text
            baseline = peak_rss_bytes(server.pid)

            def predict(name: str, data: bytes, content_type: str) -> httpx.Response:
                return client.post("/v1/predict", files={"file": (name, data, content_type)})

            requests = {
                "gzip bomb as audio/mpeg": lambda: predict("song.mp3", gz, "audio/mpeg"),
                "gzip bomb as application/gzip": lambda: predict("song.mp3.gz", gz, "application/gzip"),
                "zip bomb as audio/wav": lambda: predict("song.zip", zip_bomb(gz), "audio/wav"),
                "FLAC decompression bomb (1 h of silence)": lambda: predict("hour.flac", flac_bomb(), "audio/flac"),
                "gzip-encoded JSON feedback": lambda: client.post(
                    "/v1/feedback", content=gz, headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
                ),
                "multipart with 5000 fields": lambda: client.post(
                    "/v1/predict", data={f"field{i}": "x" for i in range(5000)}, files={"file": ("a.wav", b"RIFF", "audio/wav")}
                ),
                "multipart with 2000 files": lambda: client.post(
                    "/v1/predict/batch", files=[("files", (f"{i}.wav", b"RIFF", "audio/wav")) for i in range(2000)]
                ),
                "200 MB JSON (declared length)": lambda: client.post(
                    "/v1/feedback", content=b" " * 200_000_000, headers={**AUTH, "Content-Type": "application/json"}
                ),
                "100 MB JSON (chunked, no length)": lambda: client.post(
                    "/v1/feedback", content=streamed(100_000_000), headers={**AUTH, "Content-Type": "application/json"}
                ),
                "feedback without a token": lambda: client.post(
                    "/v1/feedback", json={"events": [{"track_id": "t1", "kind": "like"}]}
                ),
            }
            for name, send in requests.items():
                try:
                    response = send()
                except httpx.HTTPError as error:  # the server may close a streamed body early
                    assert "chunked" in name, f"{name}: {error!r}"
                    outcomes[name] = f"connection closed ({type(error).__name__})"
                    continue
                outcomes[name] = response.status_code
                assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
                assert response.json()["error"]["message"], name
            growth = peak_rss_bytes(server.pid) - baseline
            assert client.get("/healthz").json()["status"] == "ok"
    finally:
        stop_process_group(server)
    with Store.open(store_url) as store:
        assert store.counts()["feedback_events"] == 1  # only the one good request wrote
    assert growth < 150 * 2**20, f"peak memory grew by {growth / 2**20:.0f} MB: {outcomes}"
    print(f"peak memory growth {growth / 2**20:.1f} MB; status per request: {outcomes}")
