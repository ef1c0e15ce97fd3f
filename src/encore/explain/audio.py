"""Explain any model through the audio it reads: silence one time-frequency cell of the song at a time.

A CNN's own explanation (:func:`~encore.explain.song.explain_waveform`) occludes cells of
the log-mel inside the network. A classical model reads handcrafted features and a blend
reads several models, so neither has one picture inside it to occlude; every model reads
audio. Here a cell is silenced in the audio itself: the song's STFT has the cell's bins set
to zero and is inverted, which is a band-stop filter over the cell's time span, and the
model predicts the changed song through its own :meth:`predict_arrays`. A cell's
attribution is how much the target output drops without it (occlusion, Zeiler & Fergus
2014, on the audio instead of an image).

What it costs: one prediction of the whole song per cell (``n_segments * n_bands`` of them,
plus the song itself), so a grid of 16 x 8 cells costs 129 predictions. But a copy differs
from the song only around its cell (the STFT and its inverse leave the rest bit for bit),
so a classical model on segments computes only the segments a cell touches and a CNN only
the chunks it touches; the rest are remembered for the explanation's length. The CNN's own
occlusion of its log-mel stays its cheaper path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from encore.explain.attribution import band_ranges_hz, checked_waveform, grid_slices
from encore.explain.song import KINDS, SongExplanation, resolve_target, top_segments
from encore.features.cache import MemoryFeatureCache
from encore.features.logmel import LogMelSpectrogram, mel_frequencies

__all__ = [
    "AUDIO_METHOD",
    "AudioGrid",
    "Cell",
    "RememberingRunner",
    "audio_grid",
    "remembering",
    "explain_audio",
    "explain_audio_targets",
    "silence_cells",
]

AUDIO_METHOD = "audio_occlusion"
"""The method name an explanation by :func:`explain_audio` carries."""
WINDOW_SECONDS = 0.05
"""About how long the STFT window is; the size is the nearest power of two in samples."""
PICTURE_MELS = 64
"""Mel bands of the picture the cells are drawn on."""
HEADS = {"class": "class_probs", "tags": "tag_probs", "regression": "scores"}
"""The arrays key each head's outputs sit under."""


def stft_size(sample_rate: int) -> tuple[int, int]:
    """``(n_fft, hop)``: a window of about :data:`WINDOW_SECONDS` (a power of two), hop a quarter of it."""
    n_fft = int(2 ** max(6, round(np.log2(WINDOW_SECONDS * sample_rate))))
    return n_fft, n_fft // 4


Cell = tuple[slice, tuple[float, float]]
"""A cell to silence: the STFT frames (of :func:`stft_size`'s STFT, centred) and the range ``(f_low_hz, f_high_hz)``."""


def silence_cells(waveform: np.ndarray, *, sample_rate: int, copies: Sequence[Sequence[Cell]]) -> list[np.ndarray]:
    """Copies of ``waveform``, each with its cells' STFT bins set to zero, then inverted.

    Args:
        waveform: Mono audio, ``(n_samples,)``.
        sample_rate: Its rate in Hz.
        copies: The cells each copy silences together; a copy with none is the song back
            through the same STFT and inverse (what every other copy is compared with).

    Returns:
        One float32 waveform of the input's length per copy.
    """
    n_fft, hop = stft_size(sample_rate)
    window = torch.hann_window(n_fft)
    signal = torch.from_numpy(np.array(waveform, dtype=np.float32))
    spectrum = torch.stft(signal, n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    bins = torch.from_numpy(np.fft.rfftfreq(n_fft, d=1.0 / sample_rate))
    out = []
    for cells in copies:  # silence in place, invert, put the bins back: no copy of a long song's spectrum
        kept = []
        for frames, (low, high) in cells:
            rows = ((bins >= low) & (bins < high)).nonzero().flatten()
            kept.append((rows, frames, spectrum[rows, frames].clone()))
            spectrum[rows, frames] = 0
        song = torch.istft(spectrum, n_fft, hop_length=hop, window=window, center=True, length=signal.numel())
        for rows, frames, values in reversed(kept):
            spectrum[rows, frames] = values
        out.append(song.numpy())
    return out


@dataclass(frozen=True)
class AudioGrid:
    """A song's picture and the grid of cells audio occlusion silences.

    Attributes:
        log_mel: The song's log-mel in dB on the STFT's frames, ``(n_mels, n_frames)``
            (:data:`PICTURE_MELS` bands from 0 Hz to Nyquist).
        frame_seconds: Each frame's time, ``(n_frames,)``.
        band_edges_hz: Each picture band's ``(low, high)``, ``(n_mels, 2)``.
        slices: ``(frames, bands)`` of each cell in the picture, time-major.
        cells: Each cell as :func:`silence_cells` takes it, in the same order; the top
            band's range runs to infinity, so the bin at Nyquist goes too.
    """

    log_mel: np.ndarray
    frame_seconds: np.ndarray
    band_edges_hz: np.ndarray
    slices: list[tuple[slice, slice]]
    cells: list[Cell]


def audio_grid(waveform: np.ndarray, sample_rate: int, *, n_segments: int, n_bands: int) -> AudioGrid:
    """The picture of ``waveform`` and its ``n_segments`` x ``n_bands`` cells (equal spans of time and of the mel scale).

    Raises:
        ParameterError: a grid with no segment or no band.
    """
    n_fft, hop = stft_size(sample_rate)
    n_mels = min(PICTURE_MELS, n_fft // 4)
    frontend = LogMelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, top_db=80.0)
    with torch.no_grad():
        log_mel = frontend(torch.from_numpy(np.asarray(waveform, dtype=np.float32))[None])[0].double().numpy()
    frame_seconds = np.arange(log_mel.shape[1]) * hop / sample_rate
    points = mel_frequencies(n_mels + 2, f_min=0.0, f_max=sample_rate / 2.0, mel_scale=frontend.mel_scale)
    edges = band_ranges_hz(points)
    times, bands = grid_slices(log_mel.shape[1], n_mels, n_segments=n_segments, n_bands=n_bands)
    slices = [(t, b) for t in times for b in bands]
    cells = [(t, (float(edges[b.start, 0]), float(edges[b.stop - 1, 1]) if b.stop < n_mels else np.inf)) for t, b in slices]
    return AudioGrid(log_mel, frame_seconds, edges, slices, cells)


class RememberingRunner:
    """A CNN predictor's runner that runs each distinct chunk once and remembers its outputs.

    A silenced copy's chunks away from the cell are the song's own bytes (after the STFT and
    its inverse, and after a member's resampling, which is local too), so across an
    explanation's copies most chunks repeat. In eval mode a chunk's outputs do not depend on
    the other chunks of its batch (up to float rounding), so remembered rows are what running
    them again would give.
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.memory: dict[bytes, dict[str, np.ndarray]] = {}

    def __getattr__(self, name: str) -> Any:  # name, device, ... of the runner it wraps
        return getattr(self.runner, name)

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        keys = [hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=20).digest() for row in batch]
        new = list(dict.fromkeys(k for k in keys if k not in self.memory))
        if new:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            outputs = self.runner(batch[[first[k] for k in new]])
            for j, key in enumerate(new):
                self.memory[key] = {name: np.asarray(values[j]) for name, values in outputs.items()}
        return {name: np.stack([self.memory[k][name] for k in keys]) for name in self.memory[keys[0]]}


@contextmanager
def remembering(predictor: Any) -> Iterator[None]:
    """While it lasts, the models in ``predictor`` (itself, or a blend's members) compute each distinct piece
    of audio once: a classical model's segments through a :class:`MemoryFeatureCache`, a CNN's chunks through
    a :class:`RememberingRunner`. A silenced copy differs from the song only around its cell (the STFT and its
    inverse leave the rest bit for bit), so only the segments and chunks a cell touches are computed."""
    holders = [predictor, *(member for _, member, _ in getattr(predictor, "members", []))]
    classical = [h for h in holders if hasattr(h, "feature_cache") and h.feature_cache is None]
    networks = [h for h in holders if callable(getattr(h, "runner", None)) and hasattr(h, "run_chunks")]
    memory = MemoryFeatureCache()
    for holder in classical:
        holder.feature_cache = memory
    for holder in networks:
        holder.runner = RememberingRunner(holder.runner)
    try:
        yield
    finally:
        for holder in classical:
            holder.feature_cache = None
        for holder in networks:
            holder.runner = holder.runner.runner


def _target_value(arrays: dict[str, np.ndarray], head: str, index: int) -> np.ndarray:
    return np.asarray(arrays[HEADS[head]], dtype=np.float64)[:, index]


def explain_audio(
    predictor: Any,
    waveform: np.ndarray,
    *,
    target: str | None = None,
    n_segments: int = 16,
    n_bands: int = 8,
    top_k: int = 5,
    batch_songs: int = 8,
    callback: Callable[[int], None] | None = None,
) -> SongExplanation:
    """Explain one output of any predictor on one song by silencing cells of its audio.

    Args:
        predictor: Anything with ``predict_arrays``, ``sample_rate`` and the class, tag and
            score names: a classical run's, a blend's, a CNN's.
        waveform: Mono audio at ``predictor.sample_rate``, ``(n_samples,)``.
        target: A class, tag or score name; None explains the top predicted class (or the
            first score when the model has no class head).
        n_segments: Time segments of the grid (equal spans of the song).
        n_bands: Frequency bands of the grid (equal spans of the mel scale, 0 Hz to
            Nyquist).
        top_k: Cells listed in ``segments``.
        batch_songs: Silenced copies predicted per call.
        callback: Called with the number of copies predicted after each call (progress).

    Returns:
        The explanation: the song's log-mel (:data:`PICTURE_MELS` bands, 0 Hz to Nyquist),
        each cell's drop of the target output spread over its pixels (a cell's sum is its
        drop), the ranked cells. The evidence is the output itself (a probability, a tag
        share or a score), as the model gives it: not every model has log-odds.

    Raises:
        ParameterError: unknown target, a bad grid, or audio that is not mono, is empty or
            holds NaN.
    """
    return explain_audio_targets(
        predictor,
        waveform,
        [target],
        n_segments=n_segments,
        n_bands=n_bands,
        top_k=top_k,
        batch_songs=batch_songs,
        callback=callback,
    )[0]


def explain_audio_targets(
    predictor: Any,
    waveform: np.ndarray,
    targets: Sequence[str | None],
    *,
    n_segments: int = 16,
    n_bands: int = 8,
    top_k: int = 5,
    batch_songs: int = 8,
    callback: Callable[[int], None] | None = None,
) -> list[SongExplanation]:
    """:func:`explain_audio` for several outputs at the price of one: each silenced copy is predicted once
    and every target is read from the same predictions. Arguments as there; one explanation a target.

    Raises:
        ParameterError: as :func:`explain_audio` (an unknown target is found before any copy is predicted).
    """
    waveform = checked_waveform(waveform)
    sample_rate = int(predictor.sample_rate)
    grid = audio_grid(waveform, sample_rate, n_segments=n_segments, n_bands=n_bands)
    copies = [[cell] for cell in grid.cells]
    with remembering(predictor):
        reference = predictor.predict_arrays(silence_cells(waveform, sample_rate=sample_rate, copies=[[]]))
        probs = reference["class_probs"][0] if predictor.label_names and "class_probs" in reference else None
        resolved = [resolve_target(predictor, target, probs) for target in targets]
        values = [float(_target_value(reference, head, index)[0]) for _, head, index in resolved]
        if callback is not None:
            callback(1)
        outputs: list[list[np.ndarray]] = [[] for _ in resolved]
        for i in range(0, len(copies), max(1, batch_songs)):
            part = copies[i : i + max(1, batch_songs)]
            arrays = predictor.predict_arrays(silence_cells(waveform, sample_rate=sample_rate, copies=part))
            for out, (_, head, index) in zip(outputs, resolved, strict=True):
                out.append(_target_value(arrays, head, index))
            if callback is not None:
                callback(len(part))
    duration = waveform.size / sample_rate
    explanations = []
    for (name, head, _), value, out in zip(resolved, values, outputs, strict=True):
        drop = value - np.concatenate(out)
        attribution = np.zeros_like(grid.log_mel)
        for j, (t, b) in enumerate(grid.slices):
            attribution[b, t] = drop[j] / ((b.stop - b.start) * (t.stop - t.start))
        explanations.append(
            SongExplanation(
                log_mel=grid.log_mel,
                attribution=attribution,
                target=name,
                kind=KINDS[head],
                method=AUDIO_METHOD,
                value=value,
                segments=top_segments(
                    attribution,
                    grid.frame_seconds,
                    grid.band_edges_hz,
                    duration,
                    n_segments=n_segments,
                    n_bands=n_bands,
                    top_k=top_k,
                ),
                frame_seconds=grid.frame_seconds,
                band_edges_hz=grid.band_edges_hz,
                duration=duration,
                n_segments=n_segments,
                n_bands=n_bands,
                evidence="score" if head == "regression" else ("probability" if head == "class" else "share"),
            )
        )
    return explanations
