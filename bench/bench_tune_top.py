"""Fine-tuning a published tagger on a CPU: an epoch of the whole network against an epoch of ``train.tune_top``.

Usage: python bench/bench_tune_top.py [--data ../shared/data/emotify/audio] [--songs 16]
       [--model pretrained:musicnn-msd] [--threads 2]

Decodes the first ``--songs`` clips of a folder-per-label library (spread over the labels)
at the model's rate and cuts them into its chunks as the Predictor does. The reference is
one epoch of fine-tuning the whole network on those chunks (float32, batches of 32,
AdamW, every layer learning), which is what ``--init-from`` without ``--freeze-backbone``
pays per pass over the songs. Against it: the one pass ``train.tune_top`` makes through the
frozen layers (``cached_song_bottoms``, kept on disk for every later fold and epoch), and
one of its epochs (``tune_top``: the top and the class head on the cached output). Prints
seconds and ratios. ``encore pretrained convert`` the model first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "emotify" / "audio")
    parser.add_argument("--songs", type=int, default=16)
    parser.add_argument("--model", default="pretrained:musicnn-msd")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from bench_probe_cv import clips
    from encore.audio import chunk_waveform
    from encore.data.waveforms import load_waveforms
    from encore.inference.predictor import MIN_FRACTION
    from encore.models import EncoreModel
    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run
    from encore.train.objectives import SplitData
    from encore.train.transfer import cached_song_bottoms, tune_top

    torch.set_num_threads(args.threads)
    chosen = clips(args.data, args.songs)
    labels = sorted({label for label, _ in chosen})
    published, card = load_model(resolve_run(args.model))
    waveforms, failures = load_waveforms([p for _, p in chosen], sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} clips failed to decode: {failures[:3]}")
    spec = {"chunk_samples": card.chunk_samples, "hop_samples": card.hop_samples}
    chunks = np.concatenate([chunk_waveform(w, min_fraction=MIN_FRACTION, **spec) for w in waveforms])
    classes = np.array([labels.index(label) for label, _ in chosen])
    song_of = np.repeat(np.arange(len(waveforms)), [len(chunk_waveform(w, min_fraction=MIN_FRACTION, **spec)) for w in waveforms])
    print(
        f"{len(waveforms)} songs, {len(chunks)} chunks of {card.chunk_samples / card.sample_rate:.3f} s, {args.threads} threads"
    )

    def fresh() -> EncoreModel:
        network = card.network.model_copy(update={"label_names": labels, "tag_names": [], "regression_names": []})
        model = EncoreModel(**network.model_kwargs())
        body = {k: v for k, v in published.state_dict().items() if k.startswith(("frontend.", "input_norm.", "backbone."))}
        model.load_state_dict(body, strict=False)
        return model

    # the reference: an epoch of fine-tuning every layer
    model = fresh().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(chunks))
    start = time.perf_counter()
    for i in range(0, len(order), 32):
        idx = order[i : i + 32]
        if len(idx) < 2:
            continue
        logits = model(torch.from_numpy(chunks[idx]))["class"]
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(classes[song_of[idx]]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    full_epoch = time.perf_counter() - start

    model = fresh().eval()
    train = SplitData(
        track_ids=[str(p) for _, p in chosen],
        waveforms=waveforms,
        classes=classes,
        tags=np.zeros((len(waveforms), 0)),
        scores=np.zeros((len(waveforms), 0)),
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        bottoms = cached_song_bottoms(model, waveforms, cache_dir=tmp, **spec)
        first_pass = time.perf_counter() - start
        start = time.perf_counter()
        cached_song_bottoms(model, waveforms, cache_dir=tmp, **spec)
        warm_pass = time.perf_counter() - start
    start = time.perf_counter()
    tune_top(model, train, bottoms, epochs=3, lr=1e-3, lr_scale=0.1, batch_size=32, weight_decay=0.01)
    top_epoch = (time.perf_counter() - start) / 3

    print(f"{'':46s} {'seconds':>9s} {'x reference':>12s}")
    print(f"{'reference: an epoch of the whole network':46s} {full_epoch:9.2f} {1.0:12.1f}")
    print(f"{'tune_top: the frozen layers, once (cold cache)':46s} {first_pass:9.2f} {full_epoch / first_pass:12.1f}")
    print(f"{'tune_top: the frozen layers, from the cache':46s} {warm_pass:9.3f} {full_epoch / warm_pass:12.0f}")
    print(f"{'tune_top: an epoch of the top and class head':46s} {top_epoch:9.3f} {full_epoch / top_epoch:12.0f}")


if __name__ == "__main__":
    main()
