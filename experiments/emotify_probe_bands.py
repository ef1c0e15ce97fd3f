"""Should the pair probe's emotion and appeal heads also read the log-mel's band statistics? Training folds only (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_finetune_upper.py pooled --models pretrained:musicnn-msd,pretrained:musicnn-mtt
    PYTHONPATH=src python experiments/emotify_probe_bands.py [--seeds 0,1,2] [--out experiments/emotify_probe_bands.json]

``model.band_statistics: true`` gives the tag and score heads each mel band's mean,
spread and flux beside the embedding (the from-scratch CNN's Emotify recipe uses it; the
probe supports it and its cache keeps them). Whether the pair probe should turn it on is
decided here, as the other probe studies were: for each of the 15 outer training folds
(3 seeds), 5 inner folds of the fold's training songs score the pair's song-mean
penultimate embeddings (from ``emotify_finetune_upper.py pooled``'s cache, through each
model's frozen back end) with and without the statistics of musicnn's own log-mel (its
96 bands' ``mel_band_statistics`` per 3-s patch, averaged over the song's patches, as the
probe's song accumulator averages them), by ``emotify_probe_layers.inner_scores``
(logistic regression for the genre, ridge for the emotions and appeal; the genre head does
not read the statistics in the product, so its column only checks nothing else moved). No
held-out fold is looked at.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_finetune_upper import Upper, _load_pooled, _song_embeddings, cache_file  # noqa: E402
from emotify_history import fold_splits, read_targets  # noqa: E402
from emotify_probe_layers import genre_and_targets, inner_scores, study_arguments  # noqa: E402

logger = logging.getLogger("emotify_probe_bands")
MODELS = ["pretrained:musicnn-msd", "pretrained:musicnn-mtt"]


def band_statistics(songs, offsets: np.ndarray) -> np.ndarray:
    """(songs, 288): each song's mean over its 3-s patches of musicnn's log-mel band statistics."""
    import torch

    from encore.data.waveforms import load_waveforms
    from encore.models.checkpoint import load_model
    from encore.models.classifier import mel_band_statistics
    from encore.pretrained import resolve_run

    path = cache_file(MODELS[0], "_band_statistics.npy")
    if path.exists():
        return np.load(path)
    model, card = load_model(resolve_run(MODELS[0]))
    model.eval()
    waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    chunk, rows = card.chunk_samples, []
    with torch.inference_mode():
        for i, waveform in enumerate(waveforms):
            count = int(offsets[i + 1] - offsets[i])
            w = np.zeros(count * chunk, np.float32)
            w[: min(len(waveform), count * chunk)] = waveform[: count * chunk]
            rows.append(mel_band_statistics(model.log_mel(torch.from_numpy(w.reshape(count, chunk)))).mean(0).numpy())
    out = np.stack(rows)
    np.save(path, out)
    return out


def main() -> None:
    args = study_arguments(__doc__.splitlines()[0], "emotify_probe_bands.json")
    import torch

    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    songs, _ = read_targets(args.data)
    members = _load_pooled(songs, MODELS)
    offsets = members[0][1]
    uppers = []
    for name in MODELS:
        model, _card = load_model(resolve_run(name))
        upper = Upper(model.backbone, np.zeros((4, 200)), np.zeros(4))
        upper.body.eval()
        uppers.append(upper)
    pair = _song_embeddings(uppers, [torch.from_numpy(m[2]) for m in members], offsets, np.arange(len(songs)))
    stats = band_statistics(songs, offsets)
    candidates = {"pair (shipped)": pair, "pair + band statistics": np.concatenate([pair, stats], axis=1)}
    y, targets = genre_and_targets(songs)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train = np.flatnonzero(splits == "train")
            for name, x in candidates.items():
                scores = inner_scores(x[train], y[train], targets[train], seed)
                rows.append({"seed": seed, "fold": fold, "candidate": name, **scores})
                logger.info("seed %d fold %d %-24s %s", seed, fold, name, {k: round(v, 4) for k, v in scores.items()})
    summary = {}
    base = [r for r in rows if r["candidate"] == "pair (shipped)"]
    for name in candidates:
        mine = [r for r in rows if r["candidate"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in mine])) for k in ("accuracy", "emotions_mean", "appeal")}
        for key in ("emotions_mean", "appeal"):
            summary[name][f"{key}_folds_ahead"] = int(sum(m[key] > b[key] for m, b in zip(mine, base, strict=True)))
        print(name, {k: round(v, 4) for k, v in summary[name].items()})
    report = {"command": "python " + " ".join(sys.argv), "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
