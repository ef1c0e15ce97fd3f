"""Attribution of one CNN output to the cells of a song's log-mel.

The song goes through the same chunking as :class:`~encore.inference.Predictor`
(``chunk_waveform`` with the card's chunk length and hop); each chunk's log-mel is
computed by the model's own front end, so the explanation sees exactly what the model
sees. Each chunk owns the frames from its start to the next chunk's start; the owned
frames laid end to end give one ``(n_mels, n_frames)`` picture of the whole song. Every
other chunk frame (the overlap with a neighbour, the frame a centred STFT adds at a
chunk's end) is a copy of the picture frame at its time, so occluding a picture cell
occludes it in every chunk that hears it, and gradients of all copies add up. Padding
after the song's end belongs to no picture frame.

Two methods:

- **occlusion** (M. D. Zeiler and R. Fergus, "Visualizing and understanding
  convolutional networks", ECCV 2014): the song's log-mel is cut into a grid of time
  segments and mel bands; each cell in turn is set to the song's mean level and the drop
  of the target output is that cell's attribution, spread evenly over its pixels.
- **integrated gradients** (M. Sundararajan, A. Taly and Q. Yan, "Axiomatic attribution
  for deep networks", ICML 2017): the gradient of the target along the straight path
  from a flat log-mel at the song's floor level to the song, times the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from encore.audio import chunk_waveform
from encore.exceptions import ParameterError
from encore.features.logmel import mel_frequencies
from encore.models.card import ModelCard
from encore.inference.predictor import MIN_FRACTION
from encore.models.classifier import EncoreModel

__all__ = [
    "SongLogMel",
    "band_ranges_hz",
    "grid_slices",
    "head_outputs",
    "integrated_gradients",
    "occlusion",
    "prepare_song",
    "target_function",
]

_MAX_BATCH_CHUNKS = 64


@dataclass
class SongLogMel:
    """A song's chunks as the model sees them, and the map back to one picture.

    Attributes:
        chunks: Log-mel of each chunk in dB, shape ``(n_chunks, n_mels, chunk_frames)``.
        valid: Which chunk frames are the song picture's own, ``(n_chunks, chunk_frames)``.
        index: The picture frame each chunk frame shows, ``(n_chunks, chunk_frames)``;
            -1 for padding after the song's end.
        frame_seconds: Start time of each picture frame, shape ``(n_frames,)``.
        band_edges_hz: Lower and upper edge of the range each mel band stands for, shape
            ``(n_mels, 2)``; neighbours share an edge (see :func:`band_ranges_hz`).
        duration: Song length in seconds.
    """

    chunks: Tensor
    valid: Tensor
    index: Tensor
    frame_seconds: np.ndarray
    band_edges_hz: np.ndarray
    duration: float

    def picture(self, values: Tensor) -> np.ndarray:
        """``(n_chunks, n_mels, chunk_frames)`` values -> ``(n_mels, n_frames)`` song picture."""
        return values.permute(1, 0, 2)[:, self.valid].detach().cpu().numpy().astype(np.float64)

    def scatter(self, picture: Tensor) -> Tensor:
        """``(..., n_mels, n_frames)`` -> ``(..., n_chunks, n_mels, chunk_frames)``: each chunk frame
        takes its picture frame's value; padding after the song's end is 0."""
        index = self.index.clamp(min=0)
        out = picture[..., index]  # (..., n_mels, n_chunks, chunk_frames)
        out = torch.where(self.index >= 0, out, torch.zeros((), dtype=out.dtype))
        return out.movedim(-3, -2)

    def fold(self, values: Tensor) -> np.ndarray:
        """``(n_chunks, n_mels, chunk_frames)`` -> ``(n_mels, n_frames)``: the sum over each picture
        frame's copies (the adjoint of :meth:`scatter`, for gradients)."""
        n_frames = int(self.valid.sum())
        keep = self.index >= 0
        per_frame = values.detach().permute(1, 0, 2)[:, keep].double()  # (n_mels, n_kept)
        out = torch.zeros(values.shape[1], n_frames, dtype=torch.float64)
        out.index_add_(1, self.index[keep], per_frame)
        return out.cpu().numpy()


def checked_waveform(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` as float32 mono, refused when it is not 1-D, is empty or holds NaN.

    Raises:
        ParameterError: naming the problem and the fix.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ParameterError(f"waveform has shape {waveform.shape}; pass mono audio of shape (n_samples,) at the model's rate")
    if not np.all(np.isfinite(waveform)):
        raise ParameterError("waveform holds NaN or infinite samples; decode the file again")
    return waveform


def prepare_song(model: EncoreModel, waveform: np.ndarray, *, chunk_samples: int, hop_samples: int | None = None) -> SongLogMel:
    """Chunk ``waveform`` as the Predictor does and compute each chunk's log-mel.

    Args:
        model: An :class:`~encore.models.classifier.EncoreModel`.
        waveform: Mono audio at the model's sample rate, shape ``(n_samples,)``.
        chunk_samples: The card's chunk length in samples.
        hop_samples: Distance between chunk starts (``Predictor.hop_samples``); None: no overlap.

    Raises:
        ParameterError: the waveform is not 1-D, is empty, or holds NaN.
    """
    waveform = checked_waveform(waveform)
    frontend = model.frontend
    sample_rate, hop = frontend.sample_rate, frontend.hop_length
    step = chunk_samples if hop_samples is None else min(int(hop_samples), chunk_samples)
    chunks = chunk_waveform(waveform, chunk_samples=chunk_samples, hop_samples=step, min_fraction=MIN_FRACTION)
    with torch.no_grad():
        log_mel = frontend(torch.from_numpy(chunks)).float()
    n_chunks, _, chunk_frames = log_mel.shape
    j = np.arange(chunk_frames)
    starts = np.arange(n_chunks) * step
    position = starts[:, None] + j[None, :] * hop  # sample each chunk frame is centred on
    owned_end = np.append(starts[1:], starts[-1] + chunk_samples)  # a chunk owns up to the next one's start
    valid = (j[None, :] * hop < chunk_samples) & (position < owned_end[:, None]) & (position < waveform.size)
    valid[0, 0] = True
    owned = position[valid]  # strictly increasing: chunk by chunk, frame by frame
    index = np.searchsorted(owned, position, side="right") - 1
    index[position >= min(waveform.size, starts[-1] + chunk_samples)] = -1  # padding, or a tail no chunk took
    times = position / sample_rate
    duration = waveform.size / sample_rate
    upper = frontend.f_max if frontend.f_max is not None else sample_rate / 2.0
    points = mel_frequencies(frontend.n_mels + 2, f_min=frontend.f_min, f_max=upper, mel_scale=frontend.mel_scale)
    return SongLogMel(log_mel, torch.from_numpy(valid), torch.from_numpy(index), times[valid], band_ranges_hz(points), duration)


def band_ranges_hz(points: np.ndarray) -> np.ndarray:
    """The frequency range each mel band stands for, without overlap between neighbours.

    A mel filter's triangle spans from its lower neighbour's centre to its upper
    neighbour's, so the filters' own edges overlap (two bands would read "0-418 Hz" and
    "371-789 Hz"). Adjacent triangles cross halfway between their centres; that crossing is
    the edge between two bands here, the lowest band starting at ``f_min`` and the highest
    ending at ``f_max``.

    Args:
        points: The filterbank's ``n_mels + 2`` frequencies in Hz (``f_min``, the
            ``n_mels`` centres, ``f_max``), increasing.

    Returns:
        ``(n_mels, 2)`` lower and upper edge in Hz; each band's upper edge is the next
        band's lower edge.
    """
    points = np.asarray(points, dtype=np.float64)
    centres = points[1:-1]
    crossings = (centres[:-1] + centres[1:]) / 2.0
    low = np.concatenate([points[:1], crossings])
    high = np.concatenate([crossings, points[-1:]])
    return np.stack([low, high], axis=1)


def head_outputs(model: EncoreModel, card: ModelCard, head: str, chunks: Tensor) -> Tensor:
    """Song-level outputs of one head, ``(batch, n_outputs)``, for ``(batch, n_chunks, n_mels, chunk_frames)``.

    Chunk outputs are aggregated as the Predictor aggregates them: class probabilities
    (after the card's temperature) or tag probabilities averaged over chunks, or the
    probability of the averaged logits when the card says ``mean_logits``; scores are
    averaged and put back on their scale.

    Args:
        model: The model, in eval mode.
        card: Its model card.
        head: ``class``, ``tags`` or ``regression``.
        chunks: Log-mel chunks in dB.
    """
    batch, n_chunks = chunks.shape[:2]
    flat = chunks.reshape(batch * n_chunks, *chunks.shape[2:])
    outputs = model.forward_head(model.forward_features_from_log_mel(model.input_norm(flat)))
    logits = outputs[head].reshape(batch, n_chunks, -1).float()
    mean_logits, tag_mean_logits = card.mean_logits
    if head == "class":
        logits = logits / card.temperature
        return torch.softmax(logits.mean(1), -1) if mean_logits else torch.softmax(logits, -1).mean(1)
    if head == "tags":
        return torch.sigmoid(logits.mean(1)) if tag_mean_logits else torch.sigmoid(logits).mean(1)
    mean = torch.as_tensor(card.regression_stats.shift, dtype=torch.float32)
    std = torch.as_tensor(card.regression_stats.scale, dtype=torch.float32)
    return logits.mean(1) * std + mean


def target_function(model: EncoreModel, card: ModelCard, head: str, index: int) -> Callable[[Tensor], Tensor]:
    """``f(chunks (batch, n_chunks, n_mels, chunk_frames)) -> (batch,)``: the evidence for one output.

    For a class or a tag the evidence is its log-odds averaged over chunks (for a class,
    ``z_k - logsumexp(z_other)`` after the card's temperature): unlike a probability it
    does not saturate at 1, so removing one of several cells that each suffice still
    shows. For a score it is the song's score itself.
    """
    temperature = card.temperature

    def f(chunks: Tensor) -> Tensor:
        if head == "regression":
            return head_outputs(model, card, head, chunks)[:, index]
        batch, n_chunks = chunks.shape[:2]
        flat = chunks.reshape(batch * n_chunks, *chunks.shape[2:])
        outputs = model.forward_head(model.forward_features_from_log_mel(model.input_norm(flat)))
        logits = outputs[head].reshape(batch, n_chunks, -1).float()
        if head == "tags":
            return logits[..., index].mean(1)
        logits = logits / temperature
        others = torch.cat([logits[..., :index], logits[..., index + 1 :]], dim=-1)
        return (logits[..., index] - torch.logsumexp(others, dim=-1)).mean(1)

    return f


def _batched(f: Callable[[Tensor], Tensor], inputs: Tensor) -> Tensor:
    """``f`` over a batch of songs, a few songs per call so no call holds too many chunks."""
    per_call = max(1, _MAX_BATCH_CHUNKS // inputs.shape[1])
    return torch.cat([f(inputs[i : i + per_call]) for i in range(0, inputs.shape[0], per_call)])


def grid_slices(n_frames: int, n_mels: int, *, n_segments: int, n_bands: int) -> tuple[list[slice], list[slice]]:
    """Time segments and mel bands of the occlusion grid, as near-equal slices."""
    if n_segments < 1 or n_bands < 1:
        raise ParameterError(
            f"the grid needs at least one time segment and one mel band (--segments, --bands), got {n_segments} and {n_bands}"
        )
    t_edges = np.unique(np.linspace(0, n_frames, min(n_segments, n_frames) + 1).round().astype(int))
    f_edges = np.unique(np.linspace(0, n_mels, min(n_bands, n_mels) + 1).round().astype(int))
    return ([slice(a, b) for a, b in zip(t_edges[:-1], t_edges[1:])], [slice(a, b) for a, b in zip(f_edges[:-1], f_edges[1:])])


@torch.no_grad()
def occlusion(f: Callable[[Tensor], Tensor], song: SongLogMel, *, n_segments: int = 16, n_bands: int = 8) -> np.ndarray:
    """Occlusion attribution: per grid cell, the drop of ``f`` when the cell is set to the mean level.

    ``f`` must be a mean over chunks of a value each chunk gives alone, as every
    :func:`target_function` is (the model runs in eval mode, so chunks do not interact).
    Only the chunks that hear a cell are run again with it occluded; the others keep
    their value, so a long song costs about ``n_segments * n_bands`` chunk passes
    (times the overlap), not that many passes over the whole song.

    Returns:
        ``(n_mels, n_frames)``; every pixel of a cell holds the cell's drop divided by its
        pixel count, so a cell's sum is its drop.
    """
    chunks = song.chunks
    picture = song.picture(chunks)
    n_mels, n_frames = picture.shape
    fill = float(picture.mean())
    times, bands = grid_slices(n_frames, n_mels, n_segments=n_segments, n_bands=n_bands)
    cells = [(t, b) for t in times for b in bands]
    t_lo, t_hi = torch.tensor([t.start for t, _ in cells]), torch.tensor([t.stop for t, _ in cells])
    b_lo, b_hi = torch.tensor([b.start for _, b in cells]), torch.tensor([b.stop for _, b in cells])
    # (cell, chunk) pairs where the chunk hears the cell's time segment
    hears = (song.index[None] >= t_lo[:, None, None]) & (
        song.index[None] < t_hi[:, None, None]
    )  # (cells, n_chunks, chunk_frames)
    cell, chunk = hears.any(-1).nonzero(as_tuple=True)
    mels = torch.arange(n_mels)
    alone = _batched(f, chunks.unsqueeze(1)).double()  # each chunk as a one-chunk song
    occluded = []
    for i in range(0, len(cell), _MAX_BATCH_CHUNKS):  # build the occluded chunks a batch at a time
        k, c = cell[i : i + _MAX_BATCH_CHUNKS], chunk[i : i + _MAX_BATCH_CHUNKS]
        in_band = (mels[None] >= b_lo[k, None]) & (mels[None] < b_hi[k, None])
        mask = in_band[:, :, None] & hears[k, c][:, None, :]
        occluded.append(f(torch.where(mask, torch.full((), fill), chunks[c]).unsqueeze(1)).double())
    drop_sums = torch.zeros(len(cells), dtype=torch.float64).index_add_(0, cell, alone[chunk] - torch.cat(occluded))
    drops = (drop_sums / chunks.shape[0]).numpy()
    attribution = np.zeros((n_mels, n_frames))
    for j, (t, b) in enumerate(cells):
        attribution[b, t] = drops[j] / ((b.stop - b.start) * (t.stop - t.start))
    return attribution


def integrated_gradients(f: Callable[[Tensor], Tensor], song: SongLogMel, *, steps: int = 32) -> np.ndarray:
    """Integrated gradients from a flat log-mel at the song's floor level (silence).

    Returns:
        ``(n_mels, n_frames)``; the sum approximates ``f(song) - f(baseline)``.
    """
    if steps < 1:
        raise ParameterError(f"steps={steps} must be a positive integer, e.g. 32")
    chunks = song.chunks
    baseline = torch.full_like(chunks, float(song.picture(chunks).min()))
    alphas = (torch.arange(steps, dtype=chunks.dtype) + 0.5) / steps
    total = torch.zeros_like(chunks)
    per_call = max(1, _MAX_BATCH_CHUNKS // chunks.shape[0])
    for start in range(0, steps, per_call):
        a = alphas[start : start + per_call].view(-1, 1, 1, 1)
        path = (baseline + a * (chunks - baseline)).requires_grad_(True)
        with torch.enable_grad():
            f(path).sum().backward()
        assert path.grad is not None  # backward() filled it: path requires grad
        total += path.grad.sum(0)
    return song.fold((chunks - baseline) * total / steps)
