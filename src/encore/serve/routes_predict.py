"""``POST /v1/predict``, ``POST /v1/predict/batch`` and ``GET /v1/models``."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from encore.audio import audio_duration, load_audio
from encore.audio.files import AUDIO_EXTENSIONS
from encore.audio.sources import UNNAMED as UNNAMED_AUDIO
from encore.features.cache import file_digest
from encore.exceptions import AudioDecodeError, EncoreError, ParameterError
from encore.inference.batch import predictions_frame
from encore.inference.interface import SongPredictor
from encore.inference.predictor import Predictor
from encore.models.card import BlendCard, ModelCard
from encore.serve.errors import ApiError, error_body
from encore.serve.limits import format_bytes
from encore.serve.schemas import PredictResponse
from encore.serve.state import ServiceState, get_state, require_store, require_writer
from encore.workspace import UPLOADS_DIR

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["predict"])

ACCEPTED_TYPES = ("audio/", "application/octet-stream", "video/mp4", "video/ogg", "video/webm")
"""Upload content types taken as audio (browsers label some audio files video/*)."""
_UNSAFE = re.compile(r"[\x00-\x1f]")


def display_name(filename: str | None) -> str:
    """The upload's file name without any folder part or control characters (never used as a path)."""
    name = PureWindowsPath(PurePosixPath(filename or "upload").name).name
    return _UNSAFE.sub("", name)[:200] or "upload"


async def read_upload(upload: UploadFile, *, max_bytes: int) -> bytes:
    """The upload's bytes, refusing a wrong content type (415) or more than ``max_bytes`` (413)."""
    content_type = (upload.content_type or "").lower()
    if content_type and not content_type.startswith(ACCEPTED_TYPES):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{display_name(upload.filename)}: content type {content_type!r} is not audio; upload an audio file",
        )
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"{display_name(upload.filename)} is larger than {max_bytes} bytes ({format_bytes(max_bytes)}); send a shorter "
            "or compressed file, or start the server with a larger encore serve --max-upload-mb",
        )
    if not data:
        raise ApiError(415, "unsupported_audio", f"{display_name(upload.filename)} is empty; upload an audio file")
    return data


TICKET_HEADER = "x-request-id"
"""A client's id for its request, by which it can ask for the request's place in the queue."""
_TICKET = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


def request_ticket(request: Request) -> str | None:
    """The request's ``X-Request-ID`` when it is a usable ticket (8-100 letters, digits, ``._:-``)."""
    ticket = request.headers.get(TICKET_HEADER)
    return ticket if ticket and _TICKET.match(ticket) else None


def upload_track_id(data: bytes) -> str:
    """A stable id for uploaded audio: the same bytes always get the same id."""
    return "upload-" + hashlib.sha256(data).hexdigest()[:16]


def predict_upload(state: ServiceState, data: bytes, name: str, *, explain: bool) -> tuple[dict[str, Any], dict]:
    """Check the length from the header, then predict (and explain); runs on a pool thread.

    Raises:
        AudioDecodeError: The upload is not audio; the message names the upload's file name.
    """
    try:
        return _predict_upload(state, data, name, explain=explain)
    except AudioDecodeError as err:  # a windowed decode deep in the predictor knows the upload only as bytes
        raise AudioDecodeError(str(err).replace(UNNAMED_AUDIO, name)) from None


def _check_length(state: ServiceState, data: bytes, name: str) -> None:
    """Refuse (422) audio whose header says it is longer than the service takes."""
    duration, limit = audio_duration(data, name=name), state.settings.max_seconds
    if duration > limit:
        raise ApiError(
            422,
            "audio_too_long",
            f"{name} is {duration:.0f} s long; the limit is {limit:g} s (ENCORE_SERVE_MAX_SECONDS); send an excerpt",
        )


def _song_row(
    state: ServiceState, data: bytes, name: str, arrays: dict, duration: float, *, explanation: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "track_id": upload_track_id(data),
        "name": name,
        "duration": round(duration, 3),
        "run": state.run_id,
        **state.predictor.describe(arrays),
        "explanation": explanation,
    }


def _predict_upload(state: ServiceState, data: bytes, name: str, *, explain: bool) -> tuple[dict[str, Any], dict]:
    predictor, settings = state.predictor, state.settings
    _check_length(state, data, name)
    explanation = None
    if explain and settings.explain and isinstance(predictor, Predictor) and predictor.model is not None:
        waveform = load_audio(data, sample_rate=predictor.sample_rate, name=name)
        arrays, duration = predictor.predict_waveform(waveform), len(waveform) / predictor.sample_rate
        explanation = explain_song(predictor, waveform)
    else:
        arrays, duration = predictor.predict_source(data)  # a blend's members each decode at their own rate
        if explain and settings.explain:
            explanation = explain_song(predictor, load_audio(data, sample_rate=predictor.sample_rate, name=name))
    return _song_row(state, data, name, arrays, duration, explanation=explanation), arrays


AUDIO_GRID = (8, 4)
"""Time segments and bands of the service's audio occlusion (a classical model, a blend, an ONNX export):
33 predictions of the song."""


def explain_song(predictor: Any, waveform: Any) -> dict[str, Any] | None:
    """The explanation summary with its picture as a data URL, or None when it cannot be made.

    A CNN with its network at hand is explained by occlusion of its own log-mel; any other
    model (classical, a blend, an ONNX export) by silencing cells of the audio, on a coarser
    grid (:data:`AUDIO_GRID`), since each cell costs a prediction of the whole song.
    """
    try:
        from encore.explain import explain_audio, explain_waveform

        if isinstance(predictor, Predictor) and predictor.model is not None:
            result = explain_waveform(predictor, waveform, method="occlusion")
        else:
            result = explain_audio(predictor, waveform, n_segments=AUDIO_GRID[0], n_bands=AUDIO_GRID[1])
        png = base64.b64encode(result.to_png()).decode("ascii")
        return {**result.to_dict(), "image": f"data:image/png;base64,{png}"}
    except (EncoreError, ImportError) as err:
        logger.warning("no explanation: %s", err)
        return None


def stored_song_with(store: Any, data: bytes) -> str | None:
    """The track id of a stored song whose file holds exactly these bytes, if any.

    Only files of the same size are read, so a catalogue costs one ``stat`` a song.
    """
    digest = hashlib.sha256(data).hexdigest()
    tracks = store.tracks()
    for track_id, path in zip(tracks["track_id"], tracks["path"], strict=True):
        try:
            if isinstance(path, str) and os.path.getsize(path) == len(data) and file_digest(path) == digest:
                return str(track_id)
        except OSError:  # a song moved or deleted since its import is simply not a match
            continue
    return None


def keep_upload(folder: Path, track_id: str, name: str, data: bytes) -> str:
    """The upload's bytes written once as ``folder/<track_id><suffix>``; returns the path."""
    suffix = PurePosixPath(name).suffix.lower()
    path = folder / f"{track_id}{suffix if suffix in AUDIO_EXTENSIONS else ''}"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as part:
            part.write(data)
        os.replace(part.name, path)  # whole or not at all, even with two workers storing the same song
    return str(path)


def store_prediction(state: ServiceState, row: dict[str, Any], arrays: dict, data: bytes) -> None:
    """Keep the uploaded song as a track with its audio, and write the run's predictions for it.

    A song the store already holds (the same bytes) keeps its own track id, so feedback sent
    for the upload lands on it; any other song is written under the workspace's ``uploads/``
    and stored with that path, so ``encore labels`` and the next ``encore train`` learn from
    the feedback listeners give it.
    """
    store = require_store(state)
    known = stored_song_with(store, data)
    if known is not None:
        row["track_id"] = known
    else:
        workspace = state.settings.workspace
        path = keep_upload(Path(workspace) / UPLOADS_DIR, row["track_id"], row["name"], data) if workspace else None
        store.add_tracks(
            pd.DataFrame({"track_id": [row["track_id"]], "path": [path], "title": [row["name"]], "duration": [row["duration"]]})
        )
    store.add_predictions(predictions_frame(row["track_id"], arrays, state.predictor), run_id=state.run_id)


@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True)
async def predict(
    request: Request,
    file: Annotated[UploadFile, File(description="an audio file (MP3, WAV, FLAC, OGG, M4A...)")],
    explain: Annotated[bool, Form(description="add the log-mel with the explanation overlaid")] = False,
    store: Annotated[bool, Form(description="store the song and its predictions (needs the write token)")] = False,
) -> dict[str, Any]:
    """Predict one uploaded song: class probabilities, tags, appeal with its interval."""
    state = get_state(request)
    if store:
        require_writer(request)
        require_store(state)
    data = await read_upload(file, max_bytes=state.settings.max_upload_bytes)
    name = display_name(file.filename)
    row, arrays = await state.pool.run(
        predict_upload, state, data, name, explain=explain, nbytes=len(data), ticket=request_ticket(request)
    )
    state.metrics.songs.inc()
    if store:
        await run_in_threadpool(store_prediction, state, row, arrays, data)
        row["stored"] = True
    return row


def _error_entry(name: str, err: ApiError | EncoreError) -> dict[str, Any]:
    """A batch result for a file that could not be predicted (the others go on)."""
    if isinstance(err, ApiError):
        return {"name": name, **error_body(err.code, err.message), "status": err.status}
    status, code = (415, "unsupported_audio") if not isinstance(err, ParameterError) else (422, "invalid_value")
    return {"name": name, **error_body(code, str(err)), "status": status}


def _predict_many(state: ServiceState, uploads: list[tuple[str, bytes | ApiError]]) -> list[dict[str, Any]]:
    predictor, settings = state.predictor, state.settings
    if isinstance(predictor, Predictor) and predictor.model is not None:
        from encore.inference.parallel import default_decode_workers

        workers = default_decode_workers(predictor.device) if settings.decode_workers is None else settings.decode_workers
        if workers > 0 and sum(isinstance(data, bytes) for _, data in uploads) > 1:
            return _predict_many_parallel(state, uploads, workers=workers)
    results = []
    for name, data in uploads:
        try:
            if isinstance(data, ApiError):
                raise data
            results.append(predict_upload(state, data, name, explain=False)[0])
        except (ApiError, EncoreError) as err:
            results.append(_error_entry(name, err))
    return results


def _predict_many_parallel(
    state: ServiceState, uploads: list[tuple[str, bytes | ApiError]], *, workers: int
) -> list[dict[str, Any]]:
    """The batch with its files decoded in ``workers`` processes while the model runs here on chunks of
    several files at once (:mod:`encore.inference.parallel`); the same rows as one file at a time."""
    from encore.inference.parallel import predict_sources_parallel

    results: list[dict[str, Any] | None] = [None] * len(uploads)
    accepted: list[tuple[int, bytes]] = []  # the uploads whose header passed the length check
    for index, (name, data) in enumerate(uploads):
        try:
            if isinstance(data, ApiError):
                raise data
            _check_length(state, data, name)
            accepted.append((index, data))
        except (ApiError, EncoreError) as err:
            results[index] = _error_entry(name, err)
    predictor = state.predictor
    sources = [data for _, data in accepted]
    for position, arrays, duration, error in predict_sources_parallel(predictor, sources, workers=min(workers, len(sources))):
        index, data = accepted[position]
        name = uploads[index][0]
        if error is not None or arrays is None:
            results[index] = _error_entry(name, AudioDecodeError(str(error).replace(UNNAMED_AUDIO, name)))
        else:
            results[index] = _song_row(state, data, name, arrays, duration, explanation=None)
    return [row for row in results if row is not None]


@router.post("/predict/batch")
async def predict_batch(
    request: Request,
    files: Annotated[list[UploadFile], File(description="audio files")],
) -> dict[str, Any]:
    """Predict several songs in one request; a bad file gets an error entry and the others go on."""
    state = get_state(request)
    limit = state.settings.max_batch_files
    if len(files) > limit:
        raise ApiError(
            422,
            "too_many_files",
            f"{len(files)} files sent; at most {limit} per request (ENCORE_SERVE_MAX_BATCH_FILES); "
            "send the rest in another request",
        )
    uploads: list[tuple[str, bytes | ApiError]] = []
    for upload in files:
        try:
            uploads.append((display_name(upload.filename), await read_upload(upload, max_bytes=state.settings.max_upload_bytes)))
        except ApiError as err:
            uploads.append((display_name(upload.filename), err))
    nbytes = sum(len(data) for _, data in uploads if isinstance(data, bytes))
    results = await state.pool.run(_predict_many, state, uploads, nbytes=nbytes, ticket=request_ticket(request))
    state.metrics.songs.inc(sum("error" not in r for r in results))
    return {"results": results}


def _hop_seconds(predictor: SongPredictor) -> float | None:
    """Seconds between the starts of a CNN's chunks (equal to ``chunk_seconds`` without overlap); None for a whole-song model."""
    return predictor.hop_samples / predictor.sample_rate if isinstance(predictor, Predictor) else None


@router.get("/queue/{ticket}")
async def queue_position(request: Request, ticket: str) -> dict[str, Any]:
    """Where the prediction sent with ``X-Request-ID: <ticket>`` is: waiting (with its place), running, or not here.

    ``state`` is ``"waiting"`` (``position`` 1 is next; ``estimated_seconds`` from recent
    predictions), ``"running"``, or ``"unknown"`` (not arrived yet, or already answered).
    """
    pool = get_state(request).pool
    where = pool.position(ticket) or {"state": "unknown"}
    return {**where, "waiting": pool.waiting, "in_flight": pool.in_flight}


@router.get("/models")
def models(request: Request) -> dict[str, Any]:
    """The served model: names, audio settings, metrics, calibration, limits and the write mode."""
    state = get_state(request)
    predictor, settings = state.predictor, state.settings
    card = predictor.card
    return {
        "models": [
            {
                "run": state.run_id,
                "backend": predictor.backend,
                "label_names": predictor.label_names,
                "tag_names": predictor.tag_names,
                "regression_names": predictor.regression_names,
                "sample_rate": predictor.sample_rate,
                "chunk_seconds": card.chunk.seconds if isinstance(card, ModelCard) else None,
                "chunk_hop_seconds": _hop_seconds(predictor),
                "members": card.network.n_members if isinstance(card, ModelCard) else None,
                "blend": [m.model_dump() for m in card.members] if isinstance(card, BlendCard) else None,
                "metrics": card.metrics,
                "calibration": card.calibration.record() if isinstance(card, ModelCard) else None,
                "created_at": card.created_at,
            }
        ],
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_seconds": settings.max_seconds,
            "max_batch_files": settings.max_batch_files,
            "max_events": settings.max_events,
            "max_json_bytes": settings.max_json_bytes,
            "queue_bytes": settings.queue_bytes,
            "queue_timeout": settings.queue_timeout,
            "workers": settings.workers,
        },
        "writes": settings.writes,
        "store": state.store is not None,
    }
