"""Short audio files carrying an artist tag, written with PyAV (FFmpeg), for import tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 8000


def write_song(
    path: Path, artist: str | None, *, fmt: str = "flac", codec: str = "flac", seed: int = 0, title: str | None = None
) -> None:
    """One second of noise at ``path``, with an artist (and a title) tag when given (ID3 for
    MP3, Vorbis comments for FLAC)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (np.random.default_rng(seed).standard_normal((1, SAMPLE_RATE)) * 3000).astype(np.int16)
    with av.open(str(path), "w", format=fmt) as container:
        if artist is not None:
            container.metadata["artist"] = artist
        if title is not None:
            container.metadata["title"] = title
        stream = container.add_stream(codec, rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
