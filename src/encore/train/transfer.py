"""Transfer: start a new task from an earlier run's or a published model's backbone with new heads.

The source is one of our own runs (say, a tagging model trained on a large listener-tag
vocabulary, reused for a small genre task) or a published model converted once with
``encore pretrained convert`` (``pretrained:musicnn-msd``). The front end, input
normalisation and backbone are copied; the heads are new because the new task's labels
differ. A published model brings its own front end, backbone and chunk length
(:func:`adopt_source`): the run takes them from its card, whatever the config's
features say, so the pretrained layers see the input they were trained on.

Fine-tuning trains everything, the copied layers at ``train.init_lr_scale`` times the
learning rate (:func:`scale_body_lr`). ``freeze_backbone`` is the song-level probe
(:func:`fit_probe`): the copied part is kept as it is, each training song's mean
embedding is computed once (and, for a published model, kept on disk by content, so the
folds of a cross-validation embed each song once), and the heads are fitted on them (a softmax model for the
classes, the song-level refit's logistic and ridge models for the tags and scores),
with no epoch loop. ``tune_top`` then fine-tunes the top of each copied backbone (musicnn's
dense back end) with the class head, on each training chunk's output of the frozen layers
below it, computed once and kept on disk like the embeddings (:func:`tune_top`): the
fine-tuning a CPU affords, since the frozen front end is nine tenths of the network's cost.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encore.exceptions import CheckpointError, ParameterError
from encore.models.card import ModelCard, NetworkSpec
from encore.models.checkpoint import load_checkpoint
from encore.models.classifier import EncoreModel
from encore.train.objectives import SplitData

logger = logging.getLogger(__name__)

__all__ = [
    "BODY_PREFIXES",
    "EMBEDDING_CACHE_ENV",
    "adopt_source",
    "cached_song_embeddings",
    "cached_probe_arrays",
    "cached_probe_logits",
    "probe_arrays",
    "probe_song_embeddings",
    "cached_song_bottoms",
    "default_embedding_cache",
    "fit_probe",
    "fit_softmax",
    "freeze_body",
    "init_sources",
    "load_body",
    "scale_body_lr",
    "set_body_eval",
    "top_embeddings",
    "tune_top",
]

BODY_PREFIXES = ("frontend.", "input_norm.", "backbone.")
"""State-dict prefixes that transfer; everything else (the heads) starts fresh."""


_SETTING = {
    "backbone": "model.name",
    "backbone_kwargs": "model.kwargs",
    "frontend": "features",
    "n_members": "model.members",
}
"""The config key a model card entry comes from, for messages."""


def _checkpoint_path(source: str | os.PathLike) -> Path:
    from encore.pretrained.store import PRETRAINED_PREFIX, pretrained_path

    if str(source).startswith(PRETRAINED_PREFIX):
        return pretrained_path(str(source)[len(PRETRAINED_PREFIX) :]) / "checkpoint.pt"
    path = Path(source)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(
            f"--init-from (train.init_from) {str(source)!r}: no checkpoint there; "
            "pass a CNN run folder, its checkpoint.pt or pretrained:NAME"
        )
    return path


def init_sources(init_from: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str]:
    """``train.init_from`` as a list of sources: none, one, or several published models side by side."""
    if not init_from:
        return []
    if isinstance(init_from, str | os.PathLike):
        return [str(init_from)]
    return [str(s) for s in init_from]


def _source_card(source: str) -> ModelCard:
    card: ModelCard = load_checkpoint(_checkpoint_path(source))["model_card"]
    return card


def adopt_source(
    network: NetworkSpec, source: str | os.PathLike | Sequence[str | os.PathLike], *, sample_rate: int
) -> tuple[NetworkSpec, float | None]:
    """A published source's front end, backbone and chunk length, in place of the config's.

    Several published sources become the members of one model (``n_members`` = their
    number): each member's backbone starts from one source, the front end they share is
    the first's, and the probe or the heads read their embeddings side by side. They must
    read the same input (front end, chunk length, sample rate) through the same backbone
    architecture, as musicnn's MSD and MTT taggers do.

    Args:
        network: The new model's network from the config.
        source: ``train.init_from``: one source or a list of published ones.
        sample_rate: The rate the songs were decoded at (``features.sample_rate``).

    Returns:
        The network to build, and the chunk length in seconds to train and score with
        (None: the config's). An own run is returned unchanged (its settings must match,
        see :func:`load_body`).

    Raises:
        ParameterError: The songs are decoded at another rate than the source reads, or
            several sources are not published models that read the same input.
    """
    sources = init_sources(source)
    cards = [_source_card(s) for s in sources]
    if len(sources) > 1:
        _check_side_by_side(sources, cards)
    card = cards[0]
    if not card.published:  # one of our own runs: the config must match it
        return network, None
    if card.sample_rate != int(sample_rate):
        raise ParameterError(
            f"init_from={sources[0]!r} reads {card.sample_rate} Hz audio but features.sample_rate={sample_rate}; "
            f"set features.sample_rate={card.sample_rate}"
        )
    old = card.network
    adopted = network.model_copy(
        update={
            "frontend": old.frontend,
            "backbone": old.backbone,
            "backbone_kwargs": dict(old.backbone_kwargs),
            "n_members": old.n_members * len(sources),
        }
    )
    logger.info("init_from %s: front end, backbone and %.3f-s chunks come from its card", ", ".join(sources), card.chunk.seconds)
    return adopted, card.chunk.seconds


def _check_side_by_side(sources: list[str], cards: list[ModelCard]) -> None:
    """Several sources stack as members only if they are published single networks reading the same input."""
    first = cards[0]
    for source, card in zip(sources, cards, strict=True):
        if not card.published:
            raise ParameterError(
                f"--init-from (train.init_from) {source!r} is one of our own runs; several sources side by side must "
                "all be published models (pretrained:NAME); start from one run at a time"
            )
        if card.network.n_members != 1:
            raise ParameterError(
                f"--init-from (train.init_from) {source!r} is an ensemble; side by side, each source must be one network"
            )
        theirs, ours = _input_and_architecture(card), _input_and_architecture(first)
        if theirs != ours:
            raise ParameterError(
                f"--init-from (train.init_from) {source!r} and {sources[0]!r} do not read the same input through the same "
                "architecture (backbone, front end, chunk length and sample rate must agree); use one of them"
            )
    if len(set(sources)) != len(sources):
        raise ParameterError(f"--init-from (train.init_from) names a source twice: {', '.join(sources)}")


def _input_and_architecture(card: ModelCard) -> tuple[Any, ...]:
    network = card.network
    return network.backbone, network.backbone_kwargs, network.frontend, card.chunk.seconds, card.sample_rate


def load_body(
    model: EncoreModel, network: NetworkSpec, source: str | os.PathLike | Sequence[str | os.PathLike]
) -> dict[str, Any]:
    """Copy the front end, input norm and backbone of ``source`` into ``model``.

    Args:
        model: The new model (its heads stay as initialised).
        network: The new model's network, checked against the source's.
        source: A CNN run folder or checkpoint, or several published sources (see
            :func:`adopt_source`): member k's backbone from the k-th.

    Returns:
        Provenance for the model card (source path, or paths, its backbone, tensors copied,
        whether it is a published model).

    Raises:
        ParameterError: The source has another backbone, backbone arguments or front end.
    """
    sources = init_sources(source)
    if len(sources) > 1:
        return _load_members(model, network, sources)
    source = sources[0]
    path = _checkpoint_path(source)
    state = load_checkpoint(path)
    old: NetworkSpec = state["model_card"].network
    for key in ("backbone", "backbone_kwargs", "frontend", "n_members"):
        theirs, ours = getattr(old, key), getattr(network, key)
        if theirs != ours:
            shown = (theirs.model_dump(), ours.model_dump()) if key == "frontend" else (theirs, ours)
            raise ParameterError(
                f"--init-from (train.init_from) {str(source)!r} was trained with {_SETTING[key]} {shown[0]!r} "
                f"but this run asks for {shown[1]!r}; "
                f"use the same model and features settings as the source run"
            )
    body = {k: v for k, v in state["model_state"].items() if k.startswith(BODY_PREFIXES)}
    _load_into(model, body, str(source))
    logger.info("transferred %d tensors from %s", len(body), path)
    published = state["model_card"].published
    return {"source": str(path), "backbone": old.backbone, "tensors": len(body), "published": published}


def _load_into(model: EncoreModel, body: dict[str, torch.Tensor], named: str) -> None:
    missing, unexpected = model.load_state_dict(body, strict=False)
    not_loaded = [k for k in missing if k.startswith(BODY_PREFIXES)]
    if not_loaded or unexpected:
        raise CheckpointError(
            f"--init-from (train.init_from) {named!r}: its network does not fit this run's "
            f"({len(not_loaded)} tensors missing, {len(unexpected)} unexpected); use the source run's model settings"
        )


def _load_members(model: EncoreModel, network: NetworkSpec, sources: list[str]) -> dict[str, Any]:
    """Member k's backbone from ``sources[k]``; the shared front end and input norm from the first."""
    if network.n_members != len(sources):
        raise ParameterError(
            f"--init-from (train.init_from) names {len(sources)} sources for a model of {network.n_members} members; "
            "leave model.members at 1"
        )
    paths = [_checkpoint_path(s) for s in sources]
    checkpoints = [load_checkpoint(p) for p in paths]
    states = [c["model_state"] for c in checkpoints]
    shared = {k: v for k, v in states[0].items() if k.startswith(BODY_PREFIXES) and not k.startswith("backbone.")}
    for source, state in zip(sources[1:], states[1:], strict=True):
        for key, value in shared.items():
            if key not in state or not torch.equal(state[key], value):
                raise ParameterError(
                    f"--init-from (train.init_from) {source!r} and {sources[0]!r} differ in {key}; "
                    "side by side, sources must share their front end"
                )
    body = dict(shared)
    for k, state in enumerate(states):
        body.update({f"backbone.{k}.{key[len('backbone.') :]}": v for key, v in state.items() if key.startswith("backbone.")})
    _load_into(model, body, ", ".join(sources))
    logger.info("transferred %d tensors from %s", len(body), ", ".join(map(str, paths)))
    first = checkpoints[0]["model_card"]
    return {"source": [str(p) for p in paths], "backbone": first.network.backbone, "tensors": len(body), "published": True}


def scale_body_lr(model: EncoreModel, groups: list[dict[str, Any]], lr_scale: float) -> list[dict[str, Any]]:
    """Split optimiser ``groups`` into the copied layers (``"lr_scale": lr_scale``) and the rest (1.0).

    The loop multiplies its scheduled learning rate by each group's ``lr_scale``.
    """
    body = {id(p) for module in _body_modules(model) for p in module.parameters()}
    split = []
    for group in groups:
        params = list(group["params"])
        for scale, chosen in ((lr_scale, [p for p in params if id(p) in body]), (1.0, [p for p in params if id(p) not in body])):
            if chosen:
                split.append({**group, "params": chosen, "lr_scale": scale})
    return split


def fit_softmax(features: np.ndarray, classes: np.ndarray, strength: float, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """L2-penalised multinomial logistic regression: ``mean_songs CE(x W + b, c) + strength * |W|^2``.

    L-BFGS in float64 (the problem is convex). Returns ``W`` (n_features, n_classes) and ``b``.
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(classes, dtype=torch.long)
    weight = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    prior = torch.bincount(y, minlength=n_classes).double().add(1.0)
    bias = prior.div(prior.sum()).log().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + strength * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def _softmax_strength(x: np.ndarray, y: np.ndarray, n_classes: int, *, n_folds: int, seed: int) -> tuple[float, float]:
    """The L2 strength with the lowest held-out cross-entropy over folds of the training songs."""
    from encore.train.refit import STRENGTHS

    order = np.random.default_rng(seed).permutation(len(x))
    losses = np.zeros(len(STRENGTHS))
    for held in np.array_split(order, min(n_folds, len(x))):
        keep = np.setdiff1d(order, held)
        for i, strength in enumerate(STRENGTHS):
            weight, bias = fit_softmax(x[keep], y[keep], strength, n_classes)
            logits = x[held] @ weight + bias
            log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
            losses[i] -= log_probs[np.arange(len(held)), y[held]].sum()
    best = int(np.argmin(losses))
    return STRENGTHS[best], float(losses[best] / len(x))


EMBEDDING_CACHE_ENV = "ENCORE_EMBEDDING_CACHE"


def default_embedding_cache() -> Path:
    """``$ENCORE_EMBEDDING_CACHE``, else ``$XDG_CACHE_HOME/encore/embeddings`` (``~/.cache/encore/embeddings``)."""
    if os.environ.get(EMBEDDING_CACHE_ENV):
        return Path(os.environ[EMBEDDING_CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encore" / "embeddings"


def cached_song_embeddings(
    model: EncoreModel,
    waveforms: list[np.ndarray],
    *,
    chunk_samples: int,
    hop_samples: int,
    bf16: bool,
    cache_dir: str | os.PathLike,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """:func:`~encore.train.refit.song_embeddings`, each song's kept on disk under the digests of
    its waveform and of the model's front end and backbone, so the folds of a
    cross-validation (or a rerun) embed every song once.

    A model of several members (published models side by side) keeps each member's part
    under that member's own digest, the one the published model has alone: a song embedded
    once by musicnn-msd is not embedded again for musicnn-msd beside musicnn-mtt.
    ``callback(1)`` is called after each song (every member's part of it), for a progress bar.
    """
    import hashlib
    from functools import partial

    from encore.features.cache import FeatureCache
    from encore.train.refit import song_embeddings

    state = model.state_dict()
    members = range(model.n_members) if model.n_members > 1 and not model.band_statistics else [None]
    cache = FeatureCache(cache_dir)
    songs = [(samples, hashlib.sha256(samples.tobytes()).hexdigest()) for samples in map(_float32, waveforms)]
    settings = [
        {
            "kind": "song_embedding",
            "body": _body_digest(_member_body(state, k)),
            "chunk_samples": chunk_samples,
            "hop_samples": hop_samples,
            "bf16": bool(bf16),
            "band_statistics": model.band_statistics,
        }
        for k in members
    ]
    features = [None if k is None else _member_features(model, k) for k in members]

    def embed_one(samples: np.ndarray, features: Any) -> np.ndarray:
        return song_embeddings(
            model, [samples], chunk_samples=chunk_samples, hop_samples=hop_samples, bf16=bf16, features=features
        )[0]

    rows: list[np.ndarray] = []
    for samples, digest in songs:  # song by song, so progress counts songs
        parts = [cache.get_or_compute(digest, s, partial(embed_one, samples, f)) for s, f in zip(settings, features)]
        rows.append(np.concatenate(parts))
        if callback is not None:
            callback(1)
    return np.stack(rows) if rows else np.zeros((0, model.embedding_dim))


NOT_FROM_EMBEDDINGS = ("score_intervals", "novelty_distance")
"""Song arrays a probe's heads at its cached mean embeddings do not give (see :func:`cached_probe_arrays`)."""


def probe_song_embeddings(
    model: EncoreModel,
    card: ModelCard,
    waveforms: Sequence[np.ndarray],
    *,
    cache_dir: str | os.PathLike,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """A probe's songs' mean embeddings ``(n_songs, embedding_dim)`` through the cache: the
    frozen body's (:func:`cached_song_embeddings`), or with a tuned top (``tuned_top``) the
    top run on the frozen layers' cached chunks (:func:`cached_song_bottoms`); ``callback(1)``
    after each song."""
    from encore.inference.backends import card_wants_bf16

    spec: dict[str, Any] = {"chunk_samples": card.chunk_samples, "hop_samples": card.hop_samples, "bf16": card_wants_bf16(card)}
    if (card.transfer or {}).get("tuned_top"):  # the frozen layers' chunks are cached; the tuned top runs here
        bottoms = cached_song_bottoms(model, list(waveforms), cache_dir=cache_dir, callback=callback, **spec)
        return top_embeddings(model, bottoms, bf16=spec["bf16"])
    return cached_song_embeddings(model, list(waveforms), cache_dir=cache_dir, callback=callback, **spec)


def cached_probe_logits(
    predictor: Any,
    waveforms: Sequence[np.ndarray],
    *,
    cache_dir: str | os.PathLike,
    callback: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray] | None:
    """A song-level probe's song logits per head (``(n_songs, k)``: the heads at each song's
    cached mean embedding, which is the mean of its chunks' logits); None for any other model.
    ``callback(1)`` after each song's embedding."""
    embeddings = _cached_probe_embeddings(predictor, waveforms, cache_dir=cache_dir, callback=callback)
    return None if embeddings is None else _heads_at(predictor.model, embeddings)


def is_song_probe(predictor: Any) -> bool:
    """Whether ``predictor`` is a song-level probe, whose songs' arrays come from their cached mean embeddings."""
    card: ModelCard | None = getattr(predictor, "card", None)
    if card is None or getattr(predictor, "model", None) is None or card.probe is None:
        return False
    return bool((card.transfer or {}).get("frozen")) and card.mean_logits == (True, True)


def _cached_probe_embeddings(
    predictor: Any,
    waveforms: Sequence[np.ndarray],
    *,
    cache_dir: str | os.PathLike,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray | None:
    """A song-level probe's songs' mean embeddings through the cache; None for any other model."""
    if not is_song_probe(predictor):
        return None
    return probe_song_embeddings(predictor.model, predictor.card, waveforms, cache_dir=cache_dir, callback=callback)


def _heads_at(model: EncoreModel, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """Every head's logits at the songs' mean embeddings."""
    device = next(model.parameters()).device
    with torch.no_grad():  # no "novelty" among the outputs: that is forward's
        logits = model.forward_head(torch.from_numpy(embeddings).float().to(device))
    return {k: v.float().cpu().numpy() for k, v in logits.items()}


def cached_probe_arrays(
    predictor: Any,
    waveforms: Sequence[np.ndarray],
    *,
    cache_dir: str | os.PathLike,
    callback: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray] | None:
    """A song-level probe's predictions from its songs' cached mean embeddings; None for any other model.

    A probe (``freeze_backbone``) keeps the body it was fitted on and averages logits, so
    each head's song output is a linear map of the song's mean embedding: these arrays
    equal :meth:`~encore.inference.Predictor.predict_arrays` (up to float rounding) but for
    ``score_intervals`` (they need the chunks' spread), which are left out. The
    ``novelty_distance`` (where the model has a calibrated one) is the whitened distance of
    the cached embedding beside the log-mel's band statistics, which only the front end
    computes, as the probe's novelty was fitted. A cross-validation predicts its held-out
    songs this way: a song tested in one fold was embedded for training in the others, so
    no song goes through the network twice. ``callback(1)`` after each song's embedding.
    """
    embeddings = _cached_probe_embeddings(predictor, waveforms, cache_dir=cache_dir, callback=callback)
    if embeddings is None:
        return None
    arrays = probe_arrays(predictor, _heads_at(predictor.model, embeddings))
    calibration = predictor.novelty_calibration
    if predictor.model.novelty is not None and calibration is not None and calibration.usable:
        arrays["novelty_distance"] = _novelty_distance(predictor, waveforms, embeddings)
    return arrays


def _novelty_distance(predictor: Any, waveforms: Sequence[np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """A probe's songs' novelty distances at their known mean embeddings (:func:`cached_probe_arrays`)."""
    from encore.inference.backends import card_wants_bf16
    from encore.models.novelty import whitened_distance
    from encore.train.refit import song_novelty_features

    model, card = predictor.model, predictor.card
    spec = {"chunk_samples": card.chunk_samples, "hop_samples": card.hop_samples, "bf16": card_wants_bf16(card)}
    features = song_novelty_features(model, list(waveforms), embeddings=lambda _: embeddings, **spec)
    projection = model.novelty
    center = projection.center.detach().cpu().double().numpy()
    whitening = projection.whitening.detach().cpu().double().numpy()
    return whitened_distance(features, center, whitening).astype(np.float32)


def probe_arrays(predictor: Any, logits: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A probe's song arrays from its song logits (:func:`cached_probe_logits`), as its predictor aggregates them."""
    from encore.inference.aggregate import stack_songs

    n_songs = len(next(iter(logits.values()))) if logits else 0
    accumulators = [predictor.new_accumulator() for _ in range(n_songs)]
    for i, accumulator in enumerate(accumulators):
        accumulator.add({k: v[i : i + 1] for k, v in logits.items()})
    return stack_songs([{k: v for k, v in a.result().items() if k not in NOT_FROM_EMBEDDINGS} for a in accumulators])


def _tops(model: EncoreModel) -> list[Any]:
    """Each member's backbone, checked to have a top to fine-tune (``bottom``, ``top``, ``top_modules``)."""
    members = [model.backbone] if model.n_members == 1 else list(model.backbone.children())
    for backbone in members:
        if not all(hasattr(backbone, name) for name in ("bottom", "top", "top_modules")):
            raise ParameterError(
                f"train.tune_top needs a backbone with a top to fine-tune (musicnn); {type(backbone).__name__} has none; "
                "set train.tune_top=false"
            )
    return members


def _body_digest(state: dict[str, torch.Tensor]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for key, value in sorted(state.items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cached_song_bottoms(
    model: EncoreModel,
    waveforms: Sequence[np.ndarray],
    *,
    chunk_samples: int,
    hop_samples: int,
    bf16: bool = False,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    callback: Callable[[int], None] | None = None,
) -> list[list[np.ndarray]]:
    """Per member, per song: the output of the layers below the top for each chunk, ``(n_chunks, d)``.

    Chunks are cut as the Predictor cuts them. With ``cache_dir`` each song's array is kept
    under the digest of the song and of the member's weights below its top (not the top's),
    so a tuned model's held-out songs, and every fold's training songs, go through the
    frozen layers once. ``callback(1)`` is called after each song (every member's part of it).
    """
    import hashlib
    from functools import partial

    from encore.audio import chunk_waveform
    from encore.features.cache import FeatureCache
    from encore.inference.predictor import MIN_FRACTION, chunks_per_batch

    members = _tops(model)
    model = model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or chunks_per_batch(model.backbone_name, device)
    state = model.state_dict()
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    songs = [(samples, hashlib.sha256(samples.tobytes()).hexdigest()) for samples in map(_float32, waveforms)]

    def bottom_of(backbone: Any, samples: np.ndarray) -> np.ndarray:
        chunks = chunk_waveform(samples, chunk_samples=chunk_samples, hop_samples=hop_samples, min_fraction=MIN_FRACTION)
        rows = []
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(chunks), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(chunks[start : start + batch_size])).to(device)
                rows.append(backbone.bottom(model.log_mel(batch)).float().cpu().numpy())
        return np.concatenate(rows).astype(np.float32)

    settings = []
    for k, backbone in enumerate(members):
        body = _member_body(state, None if model.n_members == 1 else k)
        top_keys = tuple(f"backbone.{name}." for name in backbone.top_modules)
        settings.append(
            {
                "kind": "song_bottom",
                "body": _body_digest({key: v for key, v in body.items() if not key.startswith(top_keys)}),
                "chunk_samples": chunk_samples,
                "hop_samples": hop_samples,
                "bf16": bool(bf16),
            }
        )
    out: list[list[np.ndarray]] = [[] for _ in members]
    for samples, digest in songs:  # song by song, so progress counts songs
        for k, backbone in enumerate(members):
            compute = partial(bottom_of, backbone, samples)
            out[k].append(compute() if cache is None else cache.get_or_compute(digest, settings[k], compute))
        if callback is not None:
            callback(1)
    return out


def top_embeddings(model: EncoreModel, bottoms: list[list[np.ndarray]], *, bf16: bool = False) -> np.ndarray:
    """``(n_songs, embedding_dim)``: each song's mean over its chunks of the members' tops, side by side.

    With ``bf16`` the tops run under the bfloat16 autocast the served model runs under
    (:func:`encore.inference.backends.card_wants_bf16`), so the heads are fitted on what
    serving computes.
    """
    members = _tops(model)
    device = next(model.parameters()).device
    n_songs = len(bottoms[0]) if bottoms else 0
    out = np.zeros((n_songs, model.embedding_dim), dtype=np.float64)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        column = 0
        for backbone, songs in zip(members, bottoms, strict=True):
            backbone.eval()
            for i, chunks in enumerate(songs):
                embedded = backbone.top(torch.from_numpy(chunks).float().to(device)).double().mean(0).cpu().numpy()
                out[i, column : column + embedded.size] = embedded
            column += int(backbone.embedding_dim)
    return out


def tune_top(
    model: EncoreModel,
    train: SplitData,
    bottoms: list[list[np.ndarray]],
    *,
    epochs: int,
    lr: float,
    lr_scale: float,
    batch_size: int,
    weight_decay: float,
    seed: int = 0,
    class_weights: torch.Tensor | None = None,
    bf16: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fine-tune each member's top and the class head (in place) on the training songs' chunks.

    Starts from the probe (the class head :func:`fit_probe` fitted: linear probing, then
    fine-tuning, as Kumar et al. 2022 advise for a small labelled set). Each epoch visits
    every chunk of every labelled training song once, in batches, with the cross-entropy of
    the song's class; the top learns at ``lr * lr_scale``, the head at ``lr`` (AdamW,
    constant rate). The layers below the top stay frozen, their output read from
    ``bottoms`` (:func:`cached_song_bottoms`), so an epoch costs the top alone. With
    ``bf16`` the forward passes run under a bfloat16 autocast, as the epoch loop's do and
    as the model will be served. ``callback`` is called after each epoch with its row
    (``epoch``, ``train_loss``), as the epoch loop calls it.

    Returns:
        The training songs' new mean embeddings (for refitting the tag and score heads)
        and the card's report.
    """
    if "class" not in model.heads:
        raise ParameterError(
            "train.tune_top fine-tunes on the class labels, and this label set has none; set train.tune_top=false"
        )
    members = _tops(model)
    device = next(model.parameters()).device
    known = train.classes >= 0
    counts = np.array([len(chunks) for chunks in bottoms[0]])
    song_of = np.repeat(np.arange(len(counts)), counts)
    chunks = np.flatnonzero(known[song_of])
    if len(chunks) < 2:
        raise ParameterError("train.tune_top needs labelled training songs; none has a class")
    stacked = [torch.from_numpy(np.concatenate(songs)).float() for songs in bottoms]
    labels = torch.from_numpy(train.classes[song_of]).long()
    top_params = [p for backbone in members for name in backbone.top_modules for p in getattr(backbone, name).parameters()]
    head_params = list(model.heads["class"].parameters())
    for param in top_params + head_params:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [{"params": top_params, "lr": lr * lr_scale}, {"params": head_params, "lr": lr}], weight_decay=weight_decay
    )
    weights = class_weights.to(device) if class_weights is not None else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model.eval()  # the heads' dropout and the bottoms' layers stay as served; the tops train
    losses = []
    for epoch in range(epochs):
        for backbone in members:
            backbone.train()
        order, total, seen = chunks[rng.permutation(len(chunks))], 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[start : start + batch_size])
            if len(idx) < 2:  # BatchNorm needs two
                continue
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                embedding = torch.cat(
                    [backbone.top(x[idx].to(device)) for backbone, x in zip(members, stacked, strict=True)], dim=1
                )
                logits = model.forward_head(embedding)["class"]
            loss = F.cross_entropy(logits.float(), labels[idx].to(device), weight=weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
        losses.append(total / max(seen, 1))
        if callback is not None:
            callback({"epoch": epoch + 1, "train_loss": losses[-1]})
    model.eval()
    for param in top_params:
        param.requires_grad_(False)  # as the probe left them: the body frozen
    report = {
        "epochs": epochs,
        "chunks": int(len(chunks)),
        "songs": int(known.sum()),
        "lr": lr,
        "lr_scale": lr_scale,
        "train_loss": [round(x, 5) for x in losses],
    }
    logger.info("fine-tuned the top of %d member(s) on %d chunks: loss %s", len(members), len(chunks), report["train_loss"])
    return top_embeddings(model, bottoms, bf16=bf16), report


def _float32(waveform: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(waveform, dtype=np.float32)


def _member_body(state: dict[str, torch.Tensor], member: int | None) -> dict[str, torch.Tensor]:
    """The front end, input norm and backbone tensors, member ``member``'s named as a lone model's."""
    if member is None:
        return {k: v for k, v in state.items() if k.startswith(BODY_PREFIXES)}
    own = f"backbone.{member}."
    body = {k: v for k, v in state.items() if k.startswith(BODY_PREFIXES) and not k.startswith("backbone.")}
    body.update({"backbone." + k[len(own) :]: v for k, v in state.items() if k.startswith(own)})
    return body


def _member_features(model: EncoreModel, member: int) -> Any:
    backbone = list(model.backbone.children())[member]
    return lambda waveform: backbone(model.log_mel(waveform))


def fit_probe(
    model: EncoreModel,
    train: SplitData,
    *,
    chunk_samples: int,
    hop_samples: int,
    scores: np.ndarray,
    bf16: bool = False,
    n_folds: int = 5,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    embeddings: np.ndarray | None = None,
    heads: Sequence[str] | None = None,
    callback: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The song-level probe: fit the heads of ``model`` (in place) on the training songs' mean embeddings.

    The embeddings are computed once, with chunks cut as the Predictor cuts them; the
    class head is a softmax model, the tag and score heads are the song-level refit's
    (:func:`encore.train.refit.refit_heads`), each with its L2 strength chosen by
    cross-validation over the training songs. Song outputs are exactly the probe's
    when the card averages logits (``aggregate: mean_logits``).

    Args:
        cache_dir: Keep each song's embedding there (:func:`cached_song_embeddings`);
            None = compute them all.
        embeddings: The training songs' mean embeddings when the caller has them
            (:func:`top_embeddings`); None = compute them here.
        heads: The heads to fit (``class``, ``tags``, ``regression``); None = every head the
            model has. ``tune_top`` fits the class head here and the others after tuning.
        callback: Called with 1 after each training song is embedded (for a progress bar).

    Returns:
        For the model card: per head, the strength, its held-out loss and the songs used.
    """
    from encore.train.refit import _install, refit_heads, song_embeddings

    if embeddings is not None:
        pass
    elif cache_dir is not None:
        embeddings = cached_song_embeddings(
            model,
            train.waveforms,
            chunk_samples=chunk_samples,
            hop_samples=hop_samples,
            bf16=bf16,
            cache_dir=cache_dir,
            callback=callback,
        )
    else:
        embeddings = song_embeddings(
            model, train.waveforms, chunk_samples=chunk_samples, hop_samples=hop_samples, bf16=bf16, callback=callback
        )
    report: dict[str, Any] = {}
    wanted = set(model.heads) if heads is None else set(heads) & set(model.heads)
    if "class" in wanted:
        known = train.classes >= 0
        n_classes = len(model.label_names)
        if known.sum() < 2 * n_folds:
            raise ParameterError(f"the probe needs at least {2 * n_folds} labelled training songs, found {int(known.sum())}")
        center, scale = embeddings[known].mean(0), embeddings[known].std(0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        x, y = (embeddings[known] - center) / scale, train.classes[known]
        strength, loss = _softmax_strength(x, y, n_classes, n_folds=n_folds, seed=seed)
        weight, bias = fit_softmax(x, y, strength, n_classes)
        _install(model, "class", weight / scale[:, None], bias - (center / scale) @ weight, range(n_classes))
        report["class"] = {"strength": strength, "cv_cross_entropy": loss, "songs": int(known.sum()), "loss": "softmax"}
    others = [h for h in ("tags", "regression") if h in wanted]
    report.update(
        refit_heads(
            model,
            train,
            others,
            chunk_samples=chunk_samples,
            hop_samples=hop_samples,
            scores=scores,
            bf16=bf16,
            n_folds=n_folds,
            seed=seed,
            embeddings=embeddings,
        )
    )
    logger.info("song-level probe on %d training songs: %s", len(train.track_ids), report)
    return report


def _body_modules(model: EncoreModel) -> list[nn.Module]:
    return [model.frontend, model.input_norm, model.backbone]


def freeze_body(model: EncoreModel) -> None:
    """Stop gradients through the front end, input norm and backbone."""
    for module in _body_modules(model):
        for param in module.parameters():
            param.requires_grad_(False)


def set_body_eval(model: EncoreModel) -> None:
    """Keep a frozen body's BatchNorm statistics fixed while the heads train."""
    for module in _body_modules(model):
        module.eval()
