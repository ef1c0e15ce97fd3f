"""Overload (503, never an unbounded queue) and settings validation."""

from __future__ import annotations

import asyncio
import threading

import pytest
from serve_helpers import wav_bytes

from encore.exceptions import ConfigError
from encore.serve.errors import ApiError
from encore.serve.limits import InferencePool
from encore.serve.settings import ServeSettings


def test_pool_refuses_beyond_workers_plus_queue():
    pool = InferencePool(workers=1, queue_size=1)
    release = threading.Event()

    async def scenario():
        running = [asyncio.create_task(pool.run(release.wait, 5)) for _ in range(2)]  # one runs, one waits
        await asyncio.sleep(0.05)
        assert pool.in_flight == 2
        with pytest.raises(ApiError) as refused:
            await pool.run(lambda: None)
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        return refused.value

    refused = asyncio.run(scenario())
    pool.shutdown()
    assert refused.status == 503 and refused.headers == {"Retry-After": "1"} and pool.in_flight == 0


def test_overloaded_server_answers_503_json(make_client):
    client = make_client(dev=True, queue_size=0)
    state = client.app.state.encore
    release, started = threading.Event(), threading.Event()
    real = state.predictor.predict_source

    def slow_predict(source, **kwargs):
        started.set()
        release.wait(10)
        return real(source, **kwargs)

    state.predictor.predict_source = slow_predict
    results = {}
    first = threading.Thread(target=lambda: results.update(first=client.post("/v1/predict", files={"file": ("a.wav", wav_bytes(1.0))})))
    first.start()
    assert started.wait(10)
    second = client.post("/v1/predict", files={"file": ("b.wav", wav_bytes(1.0))})
    release.set()
    first.join(10)
    assert second.status_code == 503 and second.json()["error"]["code"] == "overloaded"
    assert second.headers["retry-after"] == "1" and results["first"].status_code == 200


def test_settings_are_strict_and_read_the_environment(tmp_path):
    settings = ServeSettings.from_env({"ENCORE_API_TOKEN": "abc", "ENCORE_SERVE_WORKERS": "3"}, run=tmp_path, dev=None)
    assert settings.writes == "token" and settings.workers == 3 and "abc" not in repr(settings)
    with pytest.raises(ConfigError, match="max_upload_byts"):
        ServeSettings.from_env({"ENCORE_SERVE_MAX_UPLOAD_BYTS": "1"}, run=tmp_path)
    with pytest.raises(ConfigError, match="workers"):
        ServeSettings.from_env({}, run=tmp_path, workers=0)
    with pytest.raises(Exception, match="frozen"):
        settings.dev = True
    assert ServeSettings(run=tmp_path).writes == "disabled" and ServeSettings(run=tmp_path, dev=True).writes == "dev"
