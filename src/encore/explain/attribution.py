"""Attribution of one CNN output to the cells of a song's log-mel.

The song goes through the same chunking as :class:`~encore.inference.Predictor`
(``chunk_waveform`` with the card's chunk length); each chunk's log-mel is computed by
the model's own front end, so the explanation sees exactly what the model sees. The
chunks' frames are then laid end to end (the frame a centred STFT adds at a chunk's end,
and the padding after the song's end, are dropped) to give one ``(n_mels, n_frames)``
picture of the whole song.

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

__all__ = [
    "SongLogMel",
    "card_temperature",
    "grid_slices",
    "head_outputs",
    "integrated_gradients",
    "occlusion",
    "prepare_song",
    "target_function",
]

_MAX_BATCH_CHUNKS = 64


def card_temperature(card: dict) -> float:
    """The class temperature a model card carries (``calibration.temperature``, else 1)."""
    calibration = card.get("calibration") or {}
    return float(calibration.get("temperature", card.get("temperature", 1.0)) or 1.0)


@dataclass
class SongLogMel:
    """A song's chunks as the model sees them, and the map back to one picture.

    Attributes:
        chunks: Log-mel of each chunk in dB, shape ``(n_chunks, n_mels, chunk_frames)``.
        valid: Which chunk frames belong to the song picture, ``(n_chunks, chunk_frames)``.
        frame_seconds: Start time of each picture frame, shape ``(n_frames,)``.
        band_edges_hz: Lower and upper edge of each mel band's filter, shape ``(n_mels, 2)``.
        duration: Song length in seconds.
    """

    chunks: Tensor
    valid: Tensor
    frame_seconds: np.ndarray
    band_edges_hz: np.ndarray
    duration: float

    def picture(self, values: Tensor) -> np.ndarray:
        """``(n_chunks, n_mels, chunk_frames)`` values -> ``(n_mels, n_frames)`` song picture."""
        return values.permute(1, 0, 2)[:, self.valid].detach().cpu().numpy().astype(np.float64)

    def scatter(self, picture: Tensor) -> Tensor:
        """The inverse of :meth:`picture` for a ``(..., n_mels, n_frames)`` tensor; other frames are 0."""
        lead = picture.shape[:-2]
        out = torch.zeros(*lead, self.chunks.shape[1], *self.valid.shape, dtype=picture.dtype)
        out[..., self.valid] = picture
        return out.movedim(-3, -2)


def prepare_song(model: torch.nn.Module, waveform: np.ndarray, *, chunk_samples: int) -> SongLogMel:
    """Chunk ``waveform`` as the Predictor does and compute each chunk's log-mel.

    Args:
        model: An :class:`~encore.models.classifier.EncoreModel`.
        waveform: Mono audio at the model's sample rate, shape ``(n_samples,)``.
        chunk_samples: The card's chunk length in samples.

    Raises:
        ParameterError: the waveform is not 1-D, is empty, or holds NaN.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ParameterError(f"waveform has shape {waveform.shape}; pass mono audio of shape (n_samples,) at the model's rate")
    if not np.all(np.isfinite(waveform)):
        raise ParameterError("waveform holds NaN or infinite samples; decode the file again")
    frontend = model.frontend
    sample_rate, hop = frontend.sample_rate, frontend.hop_length
    chunks = chunk_waveform(waveform, chunk_samples=chunk_samples)
    with torch.no_grad():
        log_mel = frontend(torch.from_numpy(chunks)).float()
    n_chunks, _, chunk_frames = log_mel.shape
    j = np.arange(chunk_frames)
    times = np.arange(n_chunks)[:, None] * (chunk_samples / sample_rate) + j[None, :] * hop / sample_rate
    duration = waveform.size / sample_rate
    valid = (j[None, :] * hop < chunk_samples) & (times < duration)
    valid[0, 0] = True
    upper = frontend.f_max if frontend.f_max is not None else sample_rate / 2.0
    points = mel_frequencies(frontend.n_mels + 2, f_min=frontend.f_min, f_max=upper, mel_scale=frontend.mel_scale)
    edges = np.stack([points[:-2], points[2:]], axis=1)
    return SongLogMel(log_mel, torch.from_numpy(valid), times[valid], edges, duration)


def head_outputs(model: torch.nn.Module, card: dict, head: str, chunks: Tensor) -> Tensor:
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
    mean_logits = card.get("aggregate", "mean_probs") == "mean_logits"
    if head == "class":
        logits = logits / card_temperature(card)
        return torch.softmax(logits.mean(1), -1) if mean_logits else torch.softmax(logits, -1).mean(1)
    if head == "tags":
        return torch.sigmoid(logits.mean(1)) if mean_logits else torch.sigmoid(logits).mean(1)
    stats = card.get("regression_stats", {})
    mean = torch.as_tensor(np.asarray(stats.get("mean", 0.0), dtype=np.float32))
    std = torch.as_tensor(np.asarray(stats.get("std", 1.0), dtype=np.float32))
    return logits.mean(1) * std + mean


def target_function(model: torch.nn.Module, card: dict, head: str, index: int) -> Callable[[Tensor], Tensor]:
    """``f(chunks (batch, n_chunks, n_mels, chunk_frames)) -> (batch,)``: the evidence for one output.

    For a class or a tag the evidence is its log-odds averaged over chunks (for a class,
    ``z_k - logsumexp(z_other)`` after the card's temperature): unlike a probability it
    does not saturate at 1, so removing one of several cells that each suffice still
    shows. For a score it is the song's score itself.
    """
    temperature = card_temperature(card)

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
        raise ParameterError(f"n_segments={n_segments} and n_bands={n_bands} must be positive integers, e.g. 16 and 8")
    t_edges = np.unique(np.linspace(0, n_frames, min(n_segments, n_frames) + 1).round().astype(int))
    f_edges = np.unique(np.linspace(0, n_mels, min(n_bands, n_mels) + 1).round().astype(int))
    return ([slice(a, b) for a, b in zip(t_edges[:-1], t_edges[1:])], [slice(a, b) for a, b in zip(f_edges[:-1], f_edges[1:])])


@torch.no_grad()
def occlusion(f: Callable[[Tensor], Tensor], song: SongLogMel, *, n_segments: int = 16, n_bands: int = 8) -> np.ndarray:
    """Occlusion attribution: per grid cell, the drop of ``f`` when the cell is set to the mean level.

    Returns:
        ``(n_mels, n_frames)``; every pixel of a cell holds the cell's drop divided by its
        pixel count, so a cell's sum is its drop.
    """
    chunks = song.chunks
    picture = song.picture(chunks)
    n_mels, n_frames = picture.shape
    fill = float(picture.mean())
    times, bands = grid_slices(n_frames, n_mels, n_segments=n_segments, n_bands=n_bands)
    masks = torch.zeros(len(times) * len(bands), n_mels, n_frames, dtype=torch.bool)
    for k, (t, b) in enumerate((t, b) for t in times for b in bands):
        masks[k, b, t] = True
    chunk_masks = song.scatter(masks)
    perturbed = torch.where(chunk_masks, torch.full_like(chunks, fill), chunks.unsqueeze(0))
    base = float(f(chunks.unsqueeze(0))[0])
    drops = base - _batched(f, perturbed).double().numpy()
    attribution = np.zeros((n_mels, n_frames))
    for k, (t, b) in enumerate((t, b) for t in times for b in bands):
        attribution[b, t] = drops[k] / ((b.stop - b.start) * (t.stop - t.start))
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
        total += path.grad.sum(0)
    return song.picture((chunks - baseline) * total / steps)
