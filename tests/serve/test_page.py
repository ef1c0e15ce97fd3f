"""The web page end to end in headless Chromium (Debian's ``chromium``), driven by Playwright.

Upload a generated song, see the class bars and the explanation image, click like, and
find the event in the store. Skipped when no Chromium is installed, unless
``ENCORE_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from encore.demo.synth import generate_song_file
from encore.serve import ServeSettings, create_app

pytestmark = pytest.mark.slow


def chromium_path() -> str:
    path = os.environ.get("ENCORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("ENCORE_REQUIRE_BROWSER") == "1":
            pytest.fail("ENCORE_REQUIRE_BROWSER=1 but no chromium found; install Debian's chromium or set ENCORE_CHROMIUM")
        pytest.skip("no chromium on PATH (set ENCORE_CHROMIUM); the browser test needs it")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer(str):
    """The server's URL, with its app (to reach the service's state)."""

    def __new__(cls, url: str, app):
        server = super().__new__(cls, url)
        server.app = app
        return server


@pytest.fixture()
def live_server(serve_run, workspace):
    port = free_port()
    app = create_app(ServeSettings(run=serve_run, workspace=workspace.root, dev=True, workers=1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(10)
    app.state.encore.store.close()


def test_upload_see_predictions_and_like(live_server, workspace, tmp_path):
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    song = generate_song_file(tmp_path / "new-song.wav", "jazz", seed=5, duration=3.0, sample_rate=8000)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page()
            page.goto(live_server)
            sync_api.expect(page.locator("#model")).to_contain_text("tiny")
            page.set_input_files("#file", str(song))
            sync_api.expect(page.locator("#bars .bar")).to_have_count(3, timeout=30_000)
            assert {page.locator("#bars .bar").nth(i).get_attribute("data-label") for i in range(3)} == {
                "ambient",
                "jazz",
                "rock",
            }
            sync_api.expect(page.locator("#appeal")).to_contain_text("appeal")
            sync_api.expect(page.locator("#spectrogram")).to_have_attribute("src", re.compile("^data:image/png"), timeout=60_000)
            page.click("#like")
            sync_api.expect(page.locator("#feedback-status")).to_contain_text("like stored", timeout=10_000)
        finally:
            browser.close()
    with workspace.open_store() as store:
        events = store.events()
    assert list(events["kind"]) == ["like"] and events["track_id"].iloc[0].startswith("upload-")
    assert events["listener_id"].iloc[0].startswith("web-")


def test_a_queued_upload_shows_its_place_then_its_result(live_server, tmp_path):
    """One worker busy with another client's song: the page says the upload is next in line, then shows it."""
    import httpx2 as httpx

    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    state = live_server.app.state.encore
    release, started = threading.Event(), threading.Event()
    real = state.predictor.predict_source

    def slow_predict(source, **kwargs):
        if not started.is_set():
            started.set()
            release.wait(30)
        return real(source, **kwargs)

    state.predictor.predict_source = slow_predict
    song = generate_song_file(tmp_path / "queued.wav", "rock", seed=6, duration=2.0, sample_rate=8000)
    blocker = threading.Thread(
        target=lambda: httpx.post(
            f"{live_server}/v1/predict", timeout=60, files={"file": ("other.wav", song.read_bytes(), "audio/wav")}
        )
    )
    blocker.start()
    try:
        assert started.wait(20)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
            try:
                page = browser.new_page()
                page.goto(str(live_server))
                sync_api.expect(page.locator("#model")).to_contain_text("tiny")
                page.set_input_files("#file", str(song))
                sync_api.expect(page.locator("#status")).to_contain_text("next in line", timeout=10_000)
                release.set()
                sync_api.expect(page.locator("#bars .bar")).to_have_count(3, timeout=30_000)
            finally:
                browser.close()
    finally:
        release.set()
        blocker.join(60)
