"""``Predictor``: the only inference path, rebuilt entirely from a checkpoint's card.

A song is cut into the model's chunks, chunks go through the model in bounded batches
(chunks of several songs may share a batch), and chunk outputs are aggregated to the
song (mean of probabilities or of logits, as the card says) in running sums, so memory
does not grow with the number of chunks. A file is decoded in windows of whole chunks
(:meth:`Predictor.predict_source`), so a 10-minute song needs a few megabytes of
waveform at a time. A song gives the same result alone or in a batch: chunks never mix
across songs in the aggregation, and the model runs in eval mode (BatchNorm uses
running statistics).

If the card's calibration has a temperature ``T`` (1 = none), class logits are divided by
``T`` before the softmax.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encore.audio import audio_duration, chunk_waveform, load_audio
from encore.audio.io import AudioSource
from encore.exceptions import AudioDecodeError, ParameterError
from encore.inference.aggregate import SongAccumulator, describe_arrays, stack_songs
from encore.models.card import BlendCard, ClassicalCard, ModelCard, NoveltyCalibration

logger = logging.getLogger(__name__)

__all__ = [
    "CUDA_BATCH_SIZE",
    "DEFAULT_BACKEND",
    "DEFAULT_BATCH_SIZE",
    "MIN_FRACTION",
    "Predictor",
    "SongPredictions",
    "chunks_per_batch",
]

DEFAULT_BACKEND = "torch"
"""Fused, channels-last PyTorch; faster than ONNX Runtime here (see bench/bench_predict.py)."""
DEFAULT_BATCH_SIZE = 8
"""Chunks per forward pass on a CPU. Small batches keep activations in cache and bound memory; 8 was
as fast as 4 on an AMX Xeon and 10 % faster on an AVX2 EPYC (bench/bench_embed.py, bench/RESULTS.md)."""
CUDA_BATCH_SIZE = 128
"""Chunks per forward pass on a GPU, which needs wide batches to be busy."""


def chunks_per_batch(backbone: str, device: object = "cpu") -> int:
    """Chunks per forward pass of ``backbone`` on ``device``: :data:`CUDA_BATCH_SIZE` on a GPU,
    else the backbone's own CPU batch (its registry entry) or :data:`DEFAULT_BATCH_SIZE`."""
    from encore.models.registry import model_entry

    if str(device).startswith("cuda"):
        return CUDA_BATCH_SIZE
    return model_entry(backbone).cpu_batch_size or DEFAULT_BATCH_SIZE


MIN_FRACTION = 0.5
"""A trailing partial chunk is scored if it holds at least this much of a chunk."""
WINDOW_CHUNKS = 32
"""Chunks decoded at a time from a file (96 s of audio for 3-s chunks)."""


class SongPredictions(ABC):
    """What every predictor shares: a JSON view of song arrays and prediction from a file.

    Subclasses give the rest of :class:`~encore.inference.interface.SongPredictor` (the
    abstract members here), which callers take instead of either class.
    """

    card: ModelCard | ClassicalCard | BlendCard
    backend: str
    device: str

    @property
    def sample_rate(self) -> int:
        """The rate, in Hz, the model reads audio at (the card's)."""
        return self.card.sample_rate

    @property
    def label_names(self) -> list[str]:
        """The classes of ``class_probs``, in order (the card's)."""
        return list(self.card.label_names)

    @property
    @abstractmethod
    def tag_names(self) -> list[str]: ...

    @property
    @abstractmethod
    def regression_names(self) -> list[str]: ...

    @abstractmethod
    def predict_source(self, source: AudioSource, *, max_seconds: float | None = None) -> tuple[dict[str, np.ndarray], float]: ...

    def predict_waveform(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """Song-level arrays for one mono waveform at :attr:`sample_rate`: the one song of :meth:`predict_arrays`."""
        return {k: v[0] for k, v in self.predict_arrays([waveform]).items()}

    @abstractmethod
    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]: ...

    def describe(self, arrays: dict[str, np.ndarray], *, top_tags: int = 5) -> dict[str, Any]:
        """JSON-ready view of one song's arrays (label, probs, tags, scores, intervals)."""
        return describe_arrays(
            arrays,
            label_names=self.label_names,
            tag_names=self.tag_names,
            regression_names=self.regression_names,
            top_tags=top_tags,
            novelty=self.novelty_calibration,
        )

    @property
    def novelty_calibration(self) -> NoveltyCalibration | None:
        """The card's novelty scale, where the model has one."""
        return None

    @staticmethod
    def source_duration(source: AudioSource, max_seconds: float | None = None) -> float:
        """The duration (seconds) the audio's header gives, refused over ``max_seconds`` before any decoding.

        Raises:
            ParameterError: The audio is longer than ``max_seconds``.
        """
        duration = audio_duration(source)
        if max_seconds is not None and duration > max_seconds:
            raise ParameterError(f"audio is {duration:.0f} s long, over the limit of {max_seconds:g} s; send an excerpt")
        return duration

    def predict_file(self, path: str | os.PathLike) -> dict[str, Any]:
        """Predict ``path`` (:meth:`predict_source`) and describe it (path, duration, label, ...)."""
        arrays, duration = self.predict_source(os.fspath(path))
        return {"path": str(Path(path)), "duration": round(duration, 3), **self.describe(arrays)}


class Predictor(SongPredictions):
    """Song-level predictions from an :class:`EncoreModel` (or its ONNX export) and its card.

    Args:
        model: The model (put into eval mode); ``None`` for an ONNX-only predictor.
        model_card: Its card (chunk length, aggregation, calibration, score scaling, names).
        batch_size: Chunks per forward pass (bounds memory); None = :func:`chunks_per_batch`
            on a CPU, :data:`CUDA_BATCH_SIZE` on a GPU.
        backend: ``"torch"`` (default), ``"onnx"`` or ``"eager"``; see
            :mod:`encore.inference.backends`.
        runner: A ready runner, overriding ``backend`` (used by :meth:`from_onnx`).
        device: ``"cpu"`` (default here, so a model stays where the caller put it),
            ``"auto"``, ``"cuda"`` or ``"cuda:N"``; see :func:`encore.devices.resolve_device`.

    Example:
        >>> predictor = Predictor.from_checkpoint("runs/cnn")          # doctest: +SKIP
        >>> predictor.predict_file("song.mp3")["label"]                # doctest: +SKIP
        'jazz'
    """

    def __init__(
        self,
        model: Any,
        model_card: ModelCard,
        *,
        batch_size: int | None = None,
        backend: str = DEFAULT_BACKEND,
        runner: Any = None,
        device: str | None = None,
    ) -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0):
            raise ParameterError(f"batch_size={batch_size!r} must be a positive integer (chunks per forward pass)")
        self.model = model.eval() if model is not None else None
        self.card: ModelCard = model_card
        if runner is None:
            from encore.inference.backends import create_runner, runner_device, wants_bf16

            target = runner_device(self.model, device, backend)
            runner = create_runner(model, backend, bf16=wants_bf16(model_card, target), device=target)
        self.runner = runner
        self.backend = runner.name
        self.device = str(getattr(runner, "device", "cpu"))
        self.batch_size = batch_size or chunks_per_batch(model_card.network.backbone, self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        batch_size: int | None = None,
        backend: str = DEFAULT_BACKEND,
        device: str = "auto",
    ) -> Predictor:
        """Load a run folder or ``checkpoint.pt``; nothing else is asked for.

        With ``backend="onnx"`` the run's ``model.onnx`` is used when present (see
        ``encore export``), else the model is exported in memory. ``device`` is
        ``auto`` (a CUDA GPU when present), ``cpu``, ``cuda`` or ``cuda:N``; on a GPU
        chunks of many songs share wide batches, under bfloat16 where the GPU has it.
        """
        from encore.inference.backends import create_runner, runner_device, wants_bf16
        from encore.models.checkpoint import load_model

        model, card = load_model(path)
        target = runner_device(model, device, backend)
        onnx_path = Path(path) / "model.onnx" if Path(path).is_dir() else Path(path).with_name("model.onnx")
        runner = create_runner(
            model,
            backend,
            onnx_path=onnx_path if backend == "onnx" and onnx_path.is_file() else None,
            bf16=wants_bf16(card, target),
            device=target,
        )
        return cls(model, card, batch_size=batch_size, runner=runner)

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, *, batch_size: int | None = None) -> Predictor:
        """An ONNX Runtime predictor from an exported file alone (its card is inside)."""
        from encore.inference.backends import OnnxRunner
        from encore.inference.export import read_onnx_card

        data, card = read_onnx_card(path)
        return cls(None, card, batch_size=batch_size, runner=OnnxRunner(data))

    # -- what the card says ----------------------------------------------------------

    @property
    def chunk_samples(self) -> int:
        return self.card.chunk_samples

    @property
    def hop_samples(self) -> int:
        """Distance between chunk starts (the card's chunk spec)."""
        return self.card.hop_samples

    @property
    def tag_names(self) -> list[str]:
        return self.card.tag_names

    @property
    def regression_names(self) -> list[str]:
        return self.card.regression_names

    @property
    def temperature(self) -> float:
        """Class-logit temperature (the card's calibration; 1 = none)."""
        return self.card.temperature

    @property
    def novelty_calibration(self) -> NoveltyCalibration | None:
        return self.card.novelty

    def new_accumulator(self) -> SongAccumulator:
        """An empty running aggregate for one song (see :meth:`run_chunks`)."""
        classes, tags = self.card.mean_logits
        return SongAccumulator(
            mean_logits=classes, tag_mean_logits=tags, temperature=self.temperature, regression_stats=self.card.regression_stats
        )

    # -- running chunks ----------------------------------------------------------------

    def _chunks(self, waveform: np.ndarray, *, first: bool = True) -> np.ndarray:
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ParameterError(f"waveform has shape {waveform.shape}; pass a mono (n_samples,) waveform")
        if not first and len(waveform) < MIN_FRACTION * self.chunk_samples:
            return np.zeros((0, self.chunk_samples), np.float32)  # a later window's short tail, as whole-song chunking drops it
        return chunk_waveform(waveform, chunk_samples=self.chunk_samples, hop_samples=self.hop_samples, min_fraction=MIN_FRACTION)

    def run_chunks(
        self, tagged: Iterable[tuple[int, np.ndarray]], accumulators: Mapping[int, SongAccumulator] | Sequence[SongAccumulator]
    ) -> None:
        """Feed ``(song index, chunks)`` pieces through the runner in batches of ``batch_size``;
        each song's chunk outputs go to ``accumulators[song index]``."""
        owners: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        n_pending = 0

        def flush() -> None:
            nonlocal n_pending
            batch, owner = np.concatenate(pending), np.concatenate(owners)
            for start in range(0, len(batch), self.batch_size):
                logits = self.runner(batch[start : start + self.batch_size])
                part = owner[start : start + self.batch_size]
                for song in np.unique(part):
                    rows = part == song
                    accumulators[song].add({k: v[rows] for k, v in logits.items()})
            pending.clear()
            owners.clear()
            n_pending = 0

        for song, chunks in tagged:
            for start in range(0, len(chunks), self.batch_size):
                piece = chunks[start : start + self.batch_size]
                pending.append(piece)
                owners.append(np.full(len(piece), song))
                n_pending += len(piece)
                if n_pending >= self.batch_size:
                    flush()
        if n_pending:
            flush()

    def predict_waveform(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """Song-level arrays for one mono waveform at :attr:`sample_rate`.

        Returns:
            ``class_probs`` (n_classes,), ``tag_probs`` (n_tags,), ``scores``
            (n_scores,) and ``score_intervals`` (n_scores, 2), each present when the
            model has that head.
        """
        accumulator = self.new_accumulator()
        self.run_chunks([(0, self._chunks(waveform))], [accumulator])
        return accumulator.result()

    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Stacked song-level arrays for many songs: ``class_probs`` (n_songs, n_classes)...

        Chunks of consecutive songs share batches; each song's result equals
        :meth:`predict_waveform` on it alone (up to float rounding).
        """
        accumulators = [self.new_accumulator() for _ in waveforms]
        self.run_chunks(((i, self._chunks(w)) for i, w in enumerate(waveforms)), accumulators)
        return stack_songs([a.result() for a in accumulators])

    def window_chunks(self, source: AudioSource, duration: float) -> Iterator[tuple[np.ndarray, int]]:
        """Decode ``source`` in windows of about :data:`WINDOW_CHUNKS` chunks; yield each one's chunks.

        Windows start every ``step`` samples (a whole number of hops) and reach one chunk
        minus one hop further, so every chunk of the whole-song cover lies inside exactly
        one window: a window keeps the chunks starting before the next window's start,
        the last one keeps all of its own. Yields ``(chunks, decoded samples new to this window)``.
        """
        chunk, hop = self.chunk_samples, self.hop_samples
        step = hop * max(1, (WINDOW_CHUNKS * chunk) // hop)
        if duration * self.sample_rate <= step * 1.5:
            waveform = load_audio(source, sample_rate=self.sample_rate)
            yield self._chunks(waveform), len(waveform)
            return
        span, offset, first = step + chunk - hop, 0, True
        while True:
            try:
                waveform = load_audio(
                    source, sample_rate=self.sample_rate, offset=offset / self.sample_rate, duration=span / self.sample_rate
                )
            except AudioDecodeError:
                if first:
                    raise
                return  # the header's duration overstated the audio: the last window ended it
            last = len(waveform) < span - 1
            chunks = self._chunks(waveform, first=first)
            if not last:
                chunks = chunks[: step // hop]  # the rest start in the next window
            yield chunks, len(waveform) if last else step
            if last:
                return
            offset, first = offset + step, False

    def predict_source(self, source: AudioSource, *, max_seconds: float | None = None) -> tuple[dict[str, np.ndarray], float]:
        """Song-level arrays and duration (seconds) for a file, bytes or file object.

        Args:
            source: What :func:`~encore.audio.load_audio` accepts.
            max_seconds: Refuse audio whose header says it is longer, before decoding.

        Raises:
            AudioDecodeError: The audio cannot be decoded.
            ParameterError: The audio is longer than ``max_seconds``.
        """
        duration = self.source_duration(source, max_seconds)
        accumulator = self.new_accumulator()
        decoded = 0
        for chunks, new_samples in self.window_chunks(source, duration):
            decoded += new_samples
            self.run_chunks([(0, chunks)], [accumulator])
        return accumulator.result(), decoded / self.sample_rate
