"""The HTTP API through TestClient: predictions, feedback, auth, limits, errors as JSON."""

from __future__ import annotations

import uuid

import pytest
import torch
from serve_helpers import MODEL_KWARGS, TOKEN, wav_bytes

from encore.models.checkpoint import load_checkpoint, save_checkpoint
from encore.models.classifier import EncoreModel

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def upload(data: bytes, name: str = "song.wav", content_type: str = "audio/wav"):
    return {"file": (name, data, content_type)}


def test_predict_an_upload(make_client):
    client = make_client(dev=True)
    response = client.post("/v1/predict", files=upload(wav_bytes(2.5)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probs"]) == {"ambient", "jazz", "rock"} and body["label"] in body["probs"]
    assert body["duration"] == pytest.approx(2.5) and body["track_id"].startswith("upload-")
    low, high = body["intervals"]["appeal"]
    assert low <= body["scores"]["appeal"] <= high and body["stored"] is False


def test_predict_with_explanation_and_store_then_read_the_track(make_client):
    client = make_client(token=TOKEN)
    response = client.post(
        "/v1/predict", files=upload(wav_bytes(2.0, seed=4)), data={"explain": "true", "store": "true"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] is True and body["explanation"]["image"].startswith("data:image/png;base64,")
    track = client.get(f"/v1/tracks/{body['track_id']}").json()
    assert track["predictions"]["tiny"]["class"].keys() == body["probs"].keys()
    assert track["feedback"]["in_catalogue"] is True


def test_batch_reports_bad_files_and_predicts_the_rest(make_client):
    client = make_client()
    files = [
        ("files", ("a.wav", wav_bytes(1.5), "audio/wav")),
        ("files", ("bad.mp3", b"\x00garbage" * 50, "audio/mpeg")),
        ("files", ("../../etc/passwd", wav_bytes(1.0, seed=2), "audio/wav")),
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["name"] for r in results] == ["a.wav", "bad.mp3", "passwd"]
    assert "probs" in results[0] and "probs" in results[2]
    assert results[1]["status"] == 415 and results[1]["error"]["code"] == "unsupported_audio"


def test_a_batch_decoded_in_worker_processes_answers_as_one_file_at_a_time(make_client):
    """decode_workers > 0: the files are decoded in processes and their chunks batched across
    songs; the rows (probabilities, scores, errors and their order) are the same."""
    files = [
        ("files", ("a.wav", wav_bytes(2.5), "audio/wav")),
        ("files", ("bad.mp3", b"\x00garbage" * 50, "audio/mpeg")),
        ("files", ("b.wav", wav_bytes(1.0, seed=2), "audio/wav")),
        ("files", ("long.wav", wav_bytes(3.0, seed=3), "audio/wav")),
        ("files", ("c.wav", wav_bytes(4.0, seed=5), "audio/wav")),
    ]
    serial = make_client(decode_workers=0, max_seconds=3.5).post("/v1/predict/batch", files=files).json()["results"]
    parallel = make_client(decode_workers=2, max_seconds=3.5).post("/v1/predict/batch", files=files).json()["results"]
    assert [r["name"] for r in parallel] == [r["name"] for r in serial] == ["a.wav", "bad.mp3", "b.wav", "long.wav", "c.wav"]
    assert [r.get("status") for r in parallel] == [r.get("status") for r in serial] == [None, 415, None, None, 422]
    assert "bad.mp3" in parallel[1]["error"]["message"] and "no file name" not in parallel[1]["error"]["message"]
    for one, other in zip(serial, parallel):
        if "probs" in one:
            assert one["track_id"] == other["track_id"] and one["duration"] == pytest.approx(other["duration"])
            for label, prob in one["probs"].items():
                assert other["probs"][label] == pytest.approx(prob, abs=1e-5)
            for name, score in one["scores"].items():
                assert other["scores"][name] == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize(
    ("data", "content_type", "options", "status", "code"),
    [
        (b"definitely not audio" * 20, "audio/mpeg", {}, 415, "unsupported_audio"),
        (wav_bytes(1.0), "text/plain", {}, 415, "unsupported_media_type"),
        (wav_bytes(3.0), "audio/wav", {"max_seconds": 2.0}, 422, "audio_too_long"),
        (wav_bytes(3.0), "audio/wav", {"max_upload_bytes": 10_000, "max_batch_files": 8}, 413, "upload_too_large"),
        (wav_bytes(3.0), "audio/wav", {"max_upload_bytes": 10_000, "max_batch_files": 1}, 413, "upload_too_large"),
    ],
    ids=["corrupt", "content-type", "too-long", "file-limit", "body-limit"],
)
def test_bad_uploads_get_json_errors(make_client, data, content_type, options, status, code):
    client = make_client(**options)
    response = client.post("/v1/predict", files=upload(data, content_type=content_type))
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == code and "song.wav" in message and "<bytes>" not in message
    assert not any(name in message for name in ("max_upload_bytes", "max_seconds", "max_json_bytes", "mapping="))


def test_a_header_claiming_hours_is_refused_without_decoding(make_client):
    import struct

    # a WAV header whose data chunk claims 2**31 bytes (~37 h at 8 kHz/16 bit) but holds 1 KB
    header = b"RIFF" + struct.pack("<I", 2**31 + 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    bomb = header + b"data" + struct.pack("<I", 2**31) + b"\x00" * 1024
    response = make_client().post("/v1/predict", files=upload(bomb))
    assert response.status_code in (415, 422), response.text
    assert response.json()["error"]["code"] in ("audio_too_long", "unsupported_audio")


def event(kind="like", track_id="t1", **extra):
    return {"track_id": track_id, "kind": kind, "listener_id": "l1", **extra}


def test_writes_need_the_token(make_client, workspace):
    client = make_client(token=TOKEN)
    body = {"events": [event()]}
    assert client.post("/v1/feedback", json=body).status_code == 401
    assert client.post("/v1/feedback", json=body, headers={"Authorization": "Bearer forged"}).status_code == 403
    assert client.post("/v1/feedback", json=body, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.post("/v1/predict", files=upload(wav_bytes(1.0)), data={"store": "true"}).status_code == 401
    with workspace.open_store() as store:
        assert len(store.events()) == 0 and store.predictions().empty
    assert client.post("/v1/feedback", json=body, headers=AUTH).status_code == 200


def test_without_a_token_writes_are_refused_unless_dev(make_client):
    response = make_client().post("/v1/feedback", json={"events": [event()]})
    assert response.status_code == 403 and "--dev" in response.json()["error"]["message"]
    assert make_client(dev=True).post("/v1/feedback", json={"events": [event()]}).status_code == 200


def test_retried_feedback_is_stored_once_and_bad_events_are_quarantined(make_client, workspace):
    client = make_client(token=TOKEN)
    key = str(uuid.uuid4())
    body = {"events": [event(), event("rating", value=4), event("rating", value=9), event("tag", track_id="t2", value="Calm")]}
    first = client.post("/v1/feedback", json=body, headers={**AUTH, "Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 3 and first.json()["rejected"][0]["index"] == 2
    assert "rating '9" in first.json()["rejected"][0]["reason"]
    retry = client.post("/v1/feedback", json=body, headers={**AUTH, "Idempotency-Key": key})
    assert retry.json() == {**first.json(), "replayed": True} and retry.headers["idempotent-replayed"] == "true"
    with workspace.open_store() as store:
        assert len(store.events()) == 3 and len(store.quarantined()) == 1
    summary = client.get("/v1/tracks/t1").json()["feedback"]
    assert summary["counts"]["like"] == 1 and summary["mean_rating"] == 4.0


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {"events": [event(mood="happy")]},
        {"events": [event(track_id="../etc/passwd")]},
        {"events": [event(track_id="nope")]},
        {"events": [event(kind="love")]},
    ],
    ids=["empty", "unknown-field", "path-in-track-id", "unknown-track", "unknown-kind"],
)
def test_bad_feedback_fields_are_422(make_client, body):
    response = make_client(dev=True).post("/v1/feedback", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_request", "invalid_feedback")


def test_models_health_metrics_docs_and_404(make_client):
    client = make_client(token=TOKEN)
    models = client.get("/v1/models").json()
    assert models["models"][0]["label_names"] == ["ambient", "jazz", "rock"] and models["writes"] == "token"
    assert models["models"][0]["chunk_seconds"] == models["models"][0]["chunk_hop_seconds"] == 1.0  # card has no hop
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/v1/predict", files=upload(wav_bytes(1.0)))
    metrics = client.get("/metrics").text
    assert 'encore_http_requests_total{method="POST",route="/v1/predict",status="200"} 1.0' in metrics
    assert "encore_songs_predicted_total 1.0" in metrics
    assert client.get("/docs").status_code == 200 and "/v1/feedback" in client.get("/openapi.json").text
    missing = client.get("/v1/tracks/never-heard")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_track"
    assert "<title>encore</title>" in client.get("/").text


def test_models_reports_the_cards_chunk_hop_and_ensemble_members(make_client, serve_run, tmp_path):
    assert make_client().get("/v1/models").json()["models"][0]["members"] == 1
    old = load_checkpoint(serve_run)["model_card"]
    network = old.network.model_copy(update={"n_members": 2})
    card = old.model_copy(update={"chunk": old.chunk.model_copy(update={"hop_seconds": 0.25}), "network": network})
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "hop" / "checkpoint.pt", EncoreModel(**{**MODEL_KWARGS, "n_members": 2}).eval(), card)
    info = make_client(run=tmp_path / "hop").get("/v1/models").json()["models"][0]
    assert (info["chunk_seconds"], info["chunk_hop_seconds"], info["members"]) == (1.0, 0.25, 2)
    assert make_client(run=tmp_path / "hop").post("/v1/predict", files=upload(wav_bytes(1.5))).status_code == 200


def test_onnx_backend_serves_the_same_probabilities(make_client):
    data = wav_bytes(2.0, seed=9)
    torch_body = make_client().post("/v1/predict", files=upload(data)).json()
    client = make_client(backend="onnx")
    assert client.get("/v1/models").json()["models"][0]["backend"] == "onnx"
    onnx_body = client.post("/v1/predict", files=upload(data)).json()
    for name, p in torch_body["probs"].items():
        assert onnx_body["probs"][name] == pytest.approx(p, abs=2e-4)


def test_serve_and_export_commands_explain_themselves():
    from typer.testing import CliRunner

    from encore.cli.main import app

    for command in ("serve", "export", "predict"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
    assert "--dev" in CliRunner().invoke(app, ["serve", "--help"]).output


def test_the_same_event_is_stored_once_with_or_without_a_key(make_client, workspace, monkeypatch):
    import pandas as pd

    from encore.serve import routes_feedback

    minute = pd.Timestamp("2026-01-01T10:20:00Z")  # an untimed event is stamped on arrival; same minute, same event
    arrivals = iter([minute + pd.Timedelta(seconds=s) for s in (1, 59, 70, 71)])
    monkeypatch.setattr(routes_feedback, "received_time", lambda: next(arrivals))
    client = make_client(dev=True)
    timed = event("rating", value=4, timestamp="2024-05-01T12:00:00Z")
    untimed = event("like", track_id="t2")
    first = client.post("/v1/feedback", json={"events": [timed, untimed]}).json()
    again = client.post("/v1/feedback", json={"events": [timed, untimed]}).json()  # no key: the content decides
    other_key = client.post("/v1/feedback", json={"events": [timed]}, headers={"Idempotency-Key": str(uuid.uuid4())}).json()
    assert (first["stored"], again["stored"], again["duplicate"]) == (2, 0, 2)
    assert (other_key["stored"], other_key["duplicate"]) == (0, 1)  # a key does not make the same event new
    next_minute = client.post("/v1/feedback", json={"events": [untimed]}).json()
    assert next_minute["stored"] == 1  # a like a minute later is another like
    with workspace.open_store() as store:
        assert len(store.events()) == 3


def test_a_reused_key_with_another_body_is_409_and_short_keys_are_explained(make_client):
    client = make_client(dev=True)
    key = {"Idempotency-Key": "key-" + uuid.uuid4().hex}
    assert client.post("/v1/feedback", json={"events": [event()]}, headers=key).status_code == 200
    reused = client.post("/v1/feedback", json={"events": [event("dislike")]}, headers=key)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert "new key" in reused.json()["error"]["message"]
    short = client.post("/v1/feedback", json={"events": [event()]}, headers={"Idempotency-Key": "abc"})
    assert short.status_code == 422 and "header Idempotency-Key" in short.json()["error"]["message"]


def test_implausible_plays_and_future_times_are_rejected(make_client, workspace):
    client = make_client(dev=True)
    events = [
        event("play", value=10**15),
        event("play", value=45_000),
        event("play", value=25_000),
        event("like", timestamp="3000-01-01T00:00:00Z"),
        event("skip", track_id="t2", value=3_000),
    ]
    body = client.post("/v1/feedback", json={"events": events}).json()
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert body["stored"] == 2 and sorted(reasons) == [0, 1, 3]  # t1 lasts 30 s: 45 s is longer, 25 s is fine
    assert "longer than the track (30.0 s" in reasons[0] and "longer than the track" in reasons[1]
    assert "in the future" in reasons[3] and "years" in reasons[3]
    with workspace.open_store() as store:
        assert sorted(store.events()["value_num"]) == [3000.0, 25000.0] and len(store.quarantined()) == 3


def test_a_retry_to_a_restarted_server_stores_untimed_events_once(make_client, workspace, monkeypatch):
    import pandas as pd

    from encore.serve import routes_feedback

    arrivals = iter([pd.Timestamp("2026-01-01T10:20:00Z"), pd.Timestamp("2026-01-01T11:45:00Z")])
    monkeypatch.setattr(routes_feedback, "received_time", lambda: next(arrivals))
    body, key = {"events": [event(), event("rating", value=3), event("tag", value="calm")]}, {"Idempotency-Key": "retry-me-1"}
    first = make_client(dev=True).post("/v1/feedback", json=body, headers=key).json()
    retry = make_client(dev=True).post("/v1/feedback", json=body, headers=key).json()  # a new server: no record
    assert (first["stored"], retry["stored"], retry["duplicate"], retry.get("replayed")) == (3, 0, 3, False)
    with workspace.open_store() as store:
        assert len(store.events()) == 3


def test_a_stored_upload_keeps_its_audio_so_feedback_on_it_trains_the_next_model(make_client, workspace):
    """The service's loop: a listener drops a song on the page (stored), likes it, and `encore labels`
    puts it, with its audio, into the next manifest; a stored song uploaded again stays that song."""
    import pandas as pd

    from encore.config import LabelsConfig
    from encore.data.waveforms import decode_songs
    from encore.targets.build import build_manifest

    catalogue_song = wav_bytes(2.0, seed=11)
    for n, song in enumerate((catalogue_song, wav_bytes(2.0, seed=12)), start=1):
        (workspace.root / f"library{n}.wav").write_bytes(song)
    client = make_client(token=TOKEN)
    store = client.app.state.encore.store
    store.add_tracks(
        pd.DataFrame(
            {"track_id": ["cat-1", "cat-2"], "path": [str(workspace.root / "library1.wav"), str(workspace.root / "library2.wav")]}
        )
    )

    new_song = wav_bytes(3.0, seed=7)
    answers = [
        client.post("/v1/predict", files=upload(song, name), data={"store": "true"}, headers=AUTH).json()
        for song, name in ((new_song, "New Song.WAV"), (new_song, "again.wav"), (catalogue_song, "mine.wav"))
    ]
    new_id = answers[0]["track_id"]
    assert answers[1]["track_id"] == new_id and answers[2]["track_id"] == "cat-1"
    assert [p.name for p in workspace.uploads_dir.iterdir()] == [f"{new_id}.wav"]  # one file, the catalogue's not copied
    assert (workspace.uploads_dir / f"{new_id}.wav").read_bytes() == new_song
    assert client.get("/v1/tracks/cat-1").json()["predictions"]["tiny"]["class"]  # its predictions, under its own id

    events = [{"track_id": t, "kind": k, "listener_id": "u1"} for t, k in ((new_id, "like"), ("cat-1", "dislike"))]
    assert client.post("/v1/feedback", json={"events": events}, headers=AUTH).json()["stored"] == 2
    manifest = build_manifest(store, LabelsConfig())
    assert sorted(manifest.frame["track_id"]) == sorted(["cat-1", "cat-2", new_id])  # t1 and t2 have no audio
    assert manifest.info["items_without_audio"] == 2 and "2 stored item(s) without an audio file" in manifest.info["label_note"]
    waveforms, failures = decode_songs(manifest.frame, sample_rate=16000)
    assert failures == [] and waveforms[new_id].size == 3 * 16000


def test_a_manifest_row_without_a_file_is_a_reported_failure_not_a_crash(tmp_path):
    import pandas as pd

    from encore.data.waveforms import decode_songs

    (tmp_path / "a.wav").write_bytes(wav_bytes(1.0))
    rows = pd.DataFrame({"track_id": ["a", "gone"], "path": [str(tmp_path / "a.wav"), float("nan")]})
    waveforms, failures = decode_songs(rows, sample_rate=16000)
    assert waveforms["gone"] is None and waveforms["a"].size == 16000
    assert [f.path for f in failures] == ["gone"] and "encore labels" in failures[0].reason
