"""The queue (wait within a memory budget and a timeout, then 503), metrics of every answer, settings."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_helpers import wav_bytes

from encore.exceptions import ConfigError
from encore.serve.errors import ApiError
from encore.serve.limits import InferencePool
from encore.serve.settings import ServeSettings


def counts(metrics_text: str) -> dict[tuple[str, str], float]:
    """``(route, status) -> count`` from /metrics."""
    found = {}
    for route, status, value in re.findall(
        r'encore_http_requests_total\{method="\w+",route="([^"]+)",status="(\d+)"\} ([\d.]+)', metrics_text
    ):
        found[route, status] = float(value)
    return found


def test_a_burst_waits_its_turn_in_arrival_order():
    pool = InferencePool(workers=1, queue_bytes=10_000, queue_timeout=10)
    release, order = threading.Event(), []

    def work(i):
        release.wait(5)
        order.append(i)
        return i

    async def scenario():
        tasks = [asyncio.create_task(pool.run(work, i, nbytes=100, ticket=f"ticket-{i}")) for i in range(5)]
        await asyncio.sleep(0.05)
        seen = (
            pool.in_flight,
            pool.waiting,
            pool.queued_bytes,
            pool.position("ticket-0")["state"],
            pool.position("ticket-3")["position"],
            pool.position("nobody"),
        )
        release.set()
        return seen, await asyncio.gather(*tasks)

    seen, results = asyncio.run(scenario())
    pool.shutdown()
    assert seen == (5, 4, 500, "running", 3, None)
    assert results == order == [0, 1, 2, 3, 4] and pool.in_flight == pool.queued_bytes == 0


def test_the_queue_refuses_past_its_memory_budget_and_its_timeout():
    pool = InferencePool(workers=1, queue_bytes=1_000, queue_timeout=0.2)
    release = threading.Event()

    async def scenario():
        running = asyncio.create_task(pool.run(release.wait, 5, nbytes=600))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as full:
            await pool.run(lambda: None, nbytes=600)
        with pytest.raises(ApiError) as late:
            await pool.run(lambda: None, nbytes=100)  # within the budget, but no worker frees in 0.2 s
        release.set()
        assert await running is True
        assert await pool.run(lambda: "alone", nbytes=5_000) == "alone"  # one request is always admitted
        return full.value, late.value

    full, late = asyncio.run(scenario())
    pool.shutdown()
    assert full.status == late.status == 503 and (full.code, late.code) == ("queue_full", "queue_timeout")
    assert "--queue-mb" in full.message and "--queue-timeout" in late.message
    assert int(full.headers["Retry-After"]) >= 1 and pool.in_flight == 0 and pool.waiting == 0


def test_a_burst_larger_than_the_workers_gets_200_and_metrics_count_each_answer(make_client):
    client = make_client(dev=True, queue_timeout=60)
    data = wav_bytes(1.0)
    with ThreadPoolExecutor(6) as threads:
        answers = list(
            threads.map(lambda i: client.post("/v1/predict", files={"file": (f"{i}.wav", data, "audio/wav")}), range(12))
        )
    assert [a.status_code for a in answers] == [200] * 12
    assert counts(client.get("/metrics").text)["/v1/predict", "200"] == 12


def test_a_request_past_the_budget_gets_503_json_and_is_counted(make_client):
    client = make_client(dev=True, queue_bytes=20_000, queue_timeout=30)
    state = client.app.state.encore
    release, started = threading.Event(), threading.Event()
    real = state.predictor.predict_source

    def slow_predict(source, **kwargs):
        started.set()
        release.wait(10)
        return real(source, **kwargs)

    state.predictor.predict_source = slow_predict
    results = {}
    first = threading.Thread(
        target=lambda: results.update(
            first=client.post("/v1/predict", files={"file": ("a.wav", wav_bytes(1.0))}, headers={"X-Request-ID": "first-one"})
        )
    )
    first.start()
    assert started.wait(10)
    assert client.get("/v1/queue/first-one").json()["state"] == "running"
    second = client.post("/v1/predict", files={"file": ("b.wav", wav_bytes(1.0, seed=1))})
    release.set()
    first.join(10)
    assert second.status_code == 503 and second.json()["error"]["code"] == "queue_full"
    assert "retry" in second.json()["error"]["message"] and int(second.headers["retry-after"]) >= 1
    assert results["first"].status_code == 200
    assert client.get("/v1/queue/first-one").json()["state"] == "unknown"
    found = counts(client.get("/metrics").text)
    assert found["/v1/predict", "200"] == 1 and found["/v1/predict", "503"] == 1


def test_a_waiting_upload_can_see_its_place(make_client):
    client = make_client(dev=True)
    state = client.app.state.encore
    release, started = threading.Event(), threading.Event()
    real = state.predictor.predict_source

    def slow_predict(source, **kwargs):
        started.set()
        release.wait(10)
        return real(source, **kwargs)

    state.predictor.predict_source = slow_predict
    post = lambda ticket: client.post(
        "/v1/predict",
        files={"file": ("a.wav", wav_bytes(1.0))},  # noqa: E731
        headers={"X-Request-ID": ticket},
    )
    with ThreadPoolExecutor(2) as threads:
        first = threads.submit(post, "ticket-first")
        assert started.wait(10)
        second = threads.submit(post, "ticket-second")
        for _ in range(200):
            place = client.get("/v1/queue/ticket-second").json()
            if place["state"] == "waiting":
                break
            threading.Event().wait(0.02)
        release.set()
        assert first.result().status_code == second.result().status_code == 200
    assert place["state"] == "waiting" and place["position"] == 1 and place["waiting"] == 1


def test_every_refusal_is_counted_once_by_what_the_client_got(make_client):
    client = make_client(dev=True, max_upload_bytes=10_000, max_batch_files=1, max_json_bytes=2_000)
    big = wav_bytes(3.0)
    assert client.post("/v1/predict", files={"file": ("a.wav", big)}).status_code == 413  # declared length
    streamed = client.post(
        "/v1/feedback", content=iter([b'{"events": [', b" " * 3_000, b"]}"]), headers={"content-type": "application/json"}
    )  # no length: refused while reading
    assert streamed.status_code == 413 and "ENCORE_SERVE_MAX_JSON_BYTES" in streamed.json()["error"]["message"]
    assert client.post("/v1/predict", files={"file": ("a.txt", b"hello", "text/plain")}).status_code == 415
    assert client.post("/v1/feedback", json={"events": []}).status_code == 422
    not_json = client.post("/v1/feedback", content=b"{not json", headers={"content-type": "application/json"})
    message = not_json.json()["error"]["message"]
    assert not_json.status_code == 422 and "the body (character 1)" in message and "body.1" not in message
    assert client.get("/nowhere").status_code == 404
    found = counts(client.get("/metrics").text)
    assert found == {
        ("/v1/predict", "413"): 1,
        ("/v1/feedback", "413"): 1,
        ("/v1/predict", "415"): 1,
        ("/v1/feedback", "422"): 2,
        ("<unmatched>", "404"): 1,
    }


def test_settings_are_strict_and_read_the_environment(tmp_path):
    settings = ServeSettings.from_env(
        {"ENCORE_API_TOKEN": "abc", "ENCORE_SERVE_WORKERS": "3", "ENCORE_SERVE_QUEUE_TIMEOUT": "5"}, run=tmp_path, dev=None
    )
    assert settings.writes == "token" and settings.workers == 3 and "abc" not in repr(settings)
    assert settings.queue_timeout == 5 and settings.queue_bytes >= 100_000_000
    with pytest.raises(ConfigError, match="max_upload_byts"):
        ServeSettings.from_env({"ENCORE_SERVE_MAX_UPLOAD_BYTS": "1"}, run=tmp_path)
    with pytest.raises(ConfigError, match="workers"):
        ServeSettings.from_env({}, run=tmp_path, workers=0)
    with pytest.raises(ConfigError, match="queue_bytes"):
        ServeSettings.from_env({"ENCORE_SERVE_QUEUE_BYTES": "-1"}, run=tmp_path)
    with pytest.raises(Exception, match="frozen"):
        settings.dev = True
    assert ServeSettings(run=tmp_path).writes == "disabled" and ServeSettings(run=tmp_path, dev=True).writes == "dev"


def test_a_real_server_answers_a_burst_and_counts_what_it_sent(serve_run, workspace):
    """uvicorn on 127.0.0.1: 12 uploads at once on one worker all get 200; a too-large body 413; /metrics agrees."""
    import socket
    import time

    import httpx2 as httpx
    import uvicorn

    from encore.serve import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(
        ServeSettings(run=serve_run, workspace=workspace.root, dev=True, workers=1, max_upload_bytes=30_000, max_batch_files=1)
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        data = wav_bytes(1.0)

        def post(i):
            with httpx.Client(timeout=60) as client:
                return client.post(f"{url}/v1/predict", files={"file": (f"{i}.wav", data, "audio/wav")}).status_code

        with ThreadPoolExecutor(12) as threads:
            statuses = list(threads.map(post, range(12)))
        too_large = httpx.post(f"{url}/v1/predict", files={"file": ("big.wav", b"\0" * 1_100_000, "audio/wav")}, timeout=30)
        found = counts(httpx.get(f"{url}/metrics", timeout=10).text)
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.encore.store.close()
    assert statuses == [200] * 12 and too_large.status_code == 413
    assert found == {("/v1/predict", "200"): 12, ("/v1/predict", "413"): 1}
