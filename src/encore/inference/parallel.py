"""Catalogue prediction with decoding in worker processes, so the model waits on no file.

Decoding and resampling an MP3 costs more than a small CNN's forward pass, and on a GPU
node far more. :func:`predict_sources_parallel` runs the decoding in ``workers`` processes
(a :class:`torch.utils.data.DataLoader` over an iterable of files). Each worker decodes
its files window by window (:meth:`Predictor.window_chunks`: a few megabytes at a time,
also for an hours-long file) and hands over chunks; the calling process feeds chunks of
many songs through the model in shared batches (wide on a GPU) and aggregates each song
on its own. A file that cannot be decoded comes back as its own error while the rest go
on. Results come back in the order of the input. ``bench/bench_catalogue.py`` measures
it against decoding alone, the bound.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from encore.audio import AudioSource, audio_duration
from encore.exceptions import AudioDecodeError

__all__ = ["DecodedPieces", "default_decode_workers", "predict_sources_parallel"]

PREFETCH = 2
"""Pieces each worker may have decoded ahead of the model (bounds memory)."""


def default_decode_workers(device: str) -> int:
    """Decoding processes when the user names none: on a GPU decoding is the bottleneck, so
    up to 8 (one core left to feed the GPU); on a CPU the model and the decoders share the
    cores, so none (``bench/bench_catalogue.py``, bench/RESULTS.md)."""
    return min(8, max(1, (os.cpu_count() or 2) - 1)) if device.startswith("cuda") else 0


class DecodedPieces(IterableDataset):
    """Yields ``(index, chunks, new_samples, error)`` for each file of this worker's share.

    A file ends with a piece whose ``chunks`` is None: ``error`` is then None (done) or the
    reason it could not be decoded. With ``decode_only`` no chunks are cut or sent (the
    bound that ``bench/bench_catalogue.py`` measures).
    """

    def __init__(self, sources: Sequence[AudioSource], predictor: Any, *, decode_only: bool = False) -> None:
        self.sources = list(sources)
        self.predictor = predictor
        self.decode_only = decode_only

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None, int, str | None]]:
        info = get_worker_info()
        start, step = (info.id, info.num_workers) if info is not None else (0, 1)
        torch.set_num_threads(1)  # decoding is one core's work; the model runs in the main process
        for index in range(start, len(self.sources), step):
            item = self.sources[index]
            source = os.fspath(item) if isinstance(item, (str, os.PathLike)) else item  # a path, or an upload's bytes
            try:
                duration = audio_duration(source)
                for chunks, new_samples in self.predictor.window_chunks(source, duration):
                    yield index, (chunks[:0] if self.decode_only else chunks), new_samples, None
            except AudioDecodeError as err:
                yield index, None, 0, str(err)
            else:
                yield index, None, 0, None


def decoded_pieces(sources: Sequence[AudioSource], predictor: Any, *, workers: int, decode_only: bool = False) -> DataLoader:
    """The loader of :class:`DecodedPieces` over ``workers`` processes."""
    return DataLoader(
        DecodedPieces(sources, predictor, decode_only=decode_only),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=PREFETCH,
        persistent_workers=False,
    )


def predict_sources_parallel(
    predictor: Any,
    sources: Sequence[AudioSource],
    *,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray] | None, float, str | None]]:
    """``(index, arrays, seconds decoded, error)`` per file, in input order.

    Args:
        predictor: A CNN :class:`~encore.inference.Predictor`.
        sources: Audio files, or audio in memory (an upload's bytes).
        workers: Decoding processes (at least 1).
        progress: Called with 1 after each file.
    """
    accumulators: dict[int, Any] = {}
    samples: dict[int, int] = {}
    pending: list[tuple[int, np.ndarray]] = []  # chunks of several songs, run once a batch is full
    decoded: list[int] = []  # songs whose last piece arrived (their chunks may still be pending)
    ready: dict[int, tuple[dict[str, np.ndarray] | None, float, str | None]] = {}

    def run_pending() -> None:
        predictor.run_chunks(pending, accumulators)
        pending.clear()
        for index in decoded:
            ready[index] = (accumulators.pop(index).result(), samples.pop(index) / predictor.sample_rate, None)
        decoded.clear()

    next_out = 0
    for index, chunks, new_samples, error in decoded_pieces(sources, predictor, workers=workers):
        if error is not None:
            pending[:] = [piece for piece in pending if piece[0] != index]
            accumulators.pop(index, None), samples.pop(index, None)
            ready[index] = (None, 0.0, error)
        else:
            accumulators.setdefault(index, predictor.new_accumulator())
            samples[index] = samples.get(index, 0) + new_samples
            if chunks is None:
                decoded.append(index)
            elif len(chunks):
                pending.append((index, chunks))
        if sum(len(c) for _, c in pending) >= predictor.batch_size or (decoded and not pending):
            run_pending()
        while next_out in ready:
            arrays, seconds, err = ready.pop(next_out)
            yield next_out, arrays, seconds, err
            next_out += 1
            if progress is not None:
                progress(1)
    run_pending()
    for index in sorted(ready):
        arrays, seconds, err = ready.pop(index)
        yield index, arrays, seconds, err
        if progress is not None:
            progress(1)
