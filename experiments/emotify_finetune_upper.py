"""Would fine-tuning musicnn's upper layers beat the frozen probe on genre? Training folds first (issue 21).

Usage:
    PYTHONPATH=src python experiments/emotify_finetune_upper.py extract [--models pretrained:musicnn-msd]
    PYTHONPATH=src python experiments/emotify_finetune_upper.py pooled [--models pretrained:musicnn-msd,pretrained:musicnn-mtt]
    PYTHONPATH=src python experiments/emotify_finetune_upper.py inner [--model pretrained:musicnn-msd] [--seeds 0] [--epochs 8]
    PYTHONPATH=src python experiments/emotify_finetune_upper.py backend --models M[,M] [--seeds 0,1,2] [--epochs 12] --out F
    PYTHONPATH=src python experiments/emotify_finetune_upper.py heldout --models M[,M] --seeds 0,1,2 --epochs N --out F

Fine-tuning the whole network costs about 10 s of 2 CPU cores per batch of 32 patches,
90 % of it in the front end (the timbral and temporal filters over the mel axis), so a
fold of 320 songs fits issue 21's 15 minutes only with a few passes over the songs. With
the front end frozen, its output for each fixed 3-s patch (the probe's non-overlapping
patches) can be computed once and the mid and back end trained on it, at about a tenth of
the cost. ``extract`` writes those outputs (561 x 187 per patch, float16) for every
Emotify song to ``~/.cache/encore/experiments/frontend_<model>.npy`` with the patch
ranges of each song.

``pooled`` keeps each patch's pooled features (the back end's input, 1506-d) for every
song, from the front-end cache or the network. ``backend`` scores the back-end
fine-tuning below on all 5 inner folds of every outer training fold, with the emotions
and appeal refitted by ridge on the tuned embeddings. ``heldout`` is the pre-registered
run on the held-out folds (see ``heldout``'s docstring and experiments/README.md).

``inner`` never looks at a held-out fold. For each seed and each of the 5 outer folds of
the studies (``emotify_history.fold_splits``), it holds out one genre-stratified fifth of
the fold's *training* songs (the first of 5 inner folds) and trains on the other four
fifths:

- ``probe``: the shipped probe's genre head: a multinomial logistic regression on the
  songs' mean penultimate embeddings (standardised, C by 3 further folds);
- ``backend``: the probe's head first, then the dense layer and its BatchNorm fine-tuned
  with it on single patches (the pooled features computed once from the frozen front and
  mid end), mean logits per song;
- ``midend``: the same, the mid end (three 7-frame convolutions) trained too, on the
  cached front-end output.

Both fine-tunings start from the probe's head (linear probing, then fine-tuning: Kumar et
al. 2022), use AdamW (1e-4 for the copied layers, 1e-3 for the head, weight decay 1e-2),
batches of 32 patches, dropout as the original, and report the inner held-out accuracy
after every epoch of a fixed schedule (no early stopping on it). The settings were fixed
before the first run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emotify_history import EMOTIONS, GENRE_OFFSETS, REPO, fold_splits, read_targets  # noqa: E402

logger = logging.getLogger("emotify_finetune_upper")
N_FRAMES = 187


def cache_file(model_name: str, suffix: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "encore" / "experiments"
    cache.mkdir(parents=True, exist_ok=True)  # `pooled` may run before (or without) `extract`
    return cache / f"frontend_{model_name.split(':')[-1]}{suffix}"


def extract(songs, model_name: str) -> None:
    import torch

    from encore.data.waveforms import load_waveforms
    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    model, card = load_model(resolve_run(model_name))
    model.eval()
    waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
    if failures:
        raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
    chunk = card.chunk_samples
    counts = [max(1, len(w) // chunk) for w in waveforms]
    total = int(sum(counts))
    path = cache_file(model_name, ".npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(total, 561, N_FRAMES))
    start = 0
    with torch.inference_mode():
        for i, (waveform, count) in enumerate(zip(waveforms, counts, strict=True)):
            w = np.zeros(count * chunk, np.float32)
            w[: min(len(waveform), count * chunk)] = waveform[: count * chunk]
            patches = torch.from_numpy(w.reshape(count, chunk))
            log_mel = model.log_mel(patches)
            front = model.backbone.frontend_features(log_mel)
            out[start : start + count] = front[..., :N_FRAMES].numpy().astype(np.float16)
            start += count
            if i % 50 == 0:
                logger.info("%s: %d/%d songs, %s", model_name, i, len(waveforms), tuple(front.shape))
    out.flush()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    np.savez(cache_file(model_name, "_index.npz"), track_id=songs["track_id"].to_numpy(str), offsets=offsets)
    logger.info("wrote %s (%d patches)", path, total)


def extract_pooled(songs, model_name: str) -> None:
    """Each patch's pooled features (the dense layer's input, 1506-d), from the front-end cache or the network."""
    import torch

    from encore.data.waveforms import load_waveforms
    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    model, card = load_model(resolve_run(model_name))
    model.eval()
    upper = Upper(model.backbone, np.zeros((4, 200)), np.zeros(4))
    rows, counts = [], []
    with torch.inference_mode():
        if cache_file(model_name, ".npy").exists():
            fronts = np.load(cache_file(model_name, ".npy"), mmap_mode="r")
            offsets = np.load(cache_file(model_name, "_index.npz"))["offsets"]
            for i in range(0, len(fronts), 256):
                rows.append(upper.pooled(torch.from_numpy(np.asarray(fronts[i : i + 256], np.float32))).numpy())
        else:
            waveforms, failures = load_waveforms(list(songs["path"]), sample_rate=card.sample_rate)
            if failures:
                raise SystemExit(f"{len(failures)} songs failed to decode: {failures[:3]}")
            chunk = card.chunk_samples
            for i, waveform in enumerate(waveforms):
                count = max(1, len(waveform) // chunk)
                w = np.zeros(count * chunk, np.float32)
                w[: min(len(waveform), count * chunk)] = waveform[: count * chunk]
                front = model.backbone.frontend_features(model.log_mel(torch.from_numpy(w.reshape(count, chunk))))
                rows.append(upper.pooled(front).numpy())
                counts.append(count)
                if i % 50 == 0:
                    logger.info("%s: %d/%d songs", model_name, i, len(waveforms))
            offsets = np.concatenate([[0], np.cumsum(counts)])
    np.savez(
        cache_file(model_name, "_pooled.npz"),
        track_id=songs["track_id"].to_numpy(str),
        offsets=offsets,
        pooled=np.concatenate(rows).astype(np.float32),
    )
    logger.info("wrote %s", cache_file(model_name, "_pooled.npz"))


class Upper:
    """The mid and back end of a loaded musicnn body, from cached front-end output."""

    def __init__(self, body, head_weight: np.ndarray, head_bias: np.ndarray) -> None:
        import copy

        import torch

        self.body = copy.deepcopy(body)
        self.head = torch.nn.Linear(head_weight.shape[1], head_weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(head_weight).float())
            self.head.bias.copy_(torch.from_numpy(head_bias).float())

    def pooled(self, front):
        import torch

        body = self.body
        layers = [front, body.midend[0](front)]
        for conv in body.midend[1:]:
            layers.append(conv(layers[-1]) + layers[-1])
        features = torch.cat(layers, dim=1)
        return torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)

    def embed_from_pooled(self, pooled):
        import torch

        body = self.body
        return body.dense_bn(torch.relu(body.dense(body.pool_dropout(body.pool_bn(pooled)))))


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    center, scale = x.mean(0), x.std(0)
    return center, np.where(scale > 1e-8, scale, 1.0)


def _probe_head(emb: np.ndarray, y: np.ndarray, seed: int):
    """The probe's head on song means, folded into a linear layer on the raw embedding."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    center, scale = _standardiser(emb)
    search = LogisticRegressionCV(
        Cs=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0], cv=StratifiedKFold(3, shuffle=True, random_state=seed), max_iter=2000
    ).fit((emb - center) / scale, y)
    weight = search.coef_ / scale
    bias = search.intercept_ - weight @ center
    return weight, bias, float(search.C_[0])


def inner(songs, model_name: str, seeds: list[int], epochs: int, out: Path, modes: list[str]) -> None:
    import torch

    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    torch.set_num_threads(os.cpu_count() or 1)
    model, _ = load_model(resolve_run(model_name))
    body = model.backbone
    body.eval()
    index = np.load(cache_file(model_name, "_index.npz"))
    if list(index["track_id"]) != list(songs["track_id"]):
        raise SystemExit("the cache holds other songs; run extract again")
    offsets = index["offsets"]
    fronts = np.load(cache_file(model_name, ".npy"), mmap_mode="r")
    logger.info("loading %s front-end patches into memory", fronts.shape)
    fronts = torch.from_numpy(np.ascontiguousarray(fronts))  # float16, ~1.7 GB
    song_of_patch = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))

    # frozen pooled features and penultimate embeddings of every patch, once
    with torch.inference_mode():
        upper = Upper(body, np.zeros((4, 200)), np.zeros(4))
        pooled = torch.cat([upper.pooled(fronts[i : i + 256].float()) for i in range(0, len(fronts), 256)])
        penult = upper.embed_from_pooled(pooled)
    song_pen = np.stack([penult[offsets[s] : offsets[s + 1]].mean(0).numpy() for s in range(len(offsets) - 1)])

    y_all = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    from sklearn.model_selection import StratifiedKFold

    rows = []
    for seed in seeds:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            outer_train = np.flatnonzero(splits == "train")
            inner_train, inner_test = next(
                StratifiedKFold(5, shuffle=True, random_state=seed).split(outer_train, y_all[outer_train])
            )
            train_songs, test_songs = outer_train[inner_train], outer_train[inner_test]
            weight, bias, c = _probe_head(song_pen[train_songs], y_all[train_songs], seed)
            probe_pred = (song_pen[test_songs] @ weight.T + bias).argmax(1)
            row = {"seed": seed, "fold": fold, "probe_C": c, "probe": float(np.mean(probe_pred == y_all[test_songs]))}
            logger.info("seed %d fold %d probe %.3f (C %g)", seed, fold, row["probe"], c)
            for mode in modes:
                t0 = time.perf_counter()
                row[mode] = _finetune(
                    mode,
                    body,
                    weight,
                    bias,
                    fronts,
                    pooled,
                    offsets,
                    song_of_patch,
                    y_all,
                    train_songs,
                    test_songs,
                    epochs,
                    seed,
                )
                row[f"{mode}_seconds"] = time.perf_counter() - t0
                logger.info(
                    "seed %d fold %d %s by epoch %s (%.0f s)",
                    seed,
                    fold,
                    mode,
                    [round(a, 3) for a in row[mode]],
                    row[f"{mode}_seconds"],
                )
            rows.append(row)
            out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "rows": rows}, indent=2), encoding="utf-8")
    for mode in ["probe", *modes]:
        values = np.array([r[mode] for r in rows], dtype=float)
        print(mode, np.round(values.mean(0), 3).tolist())


def _finetune(mode, body, weight, bias, fronts, pooled, offsets, song_of_patch, y_all, train_songs, test_songs, epochs, seed):
    import torch

    torch.manual_seed(seed)
    upper = Upper(body, weight, bias)
    trainable = [upper.body.dense, upper.body.dense_bn, upper.body.pool_bn]
    if mode == "midend":
        trainable += list(upper.body.midend)
    for p in upper.body.parameters():
        p.requires_grad_(False)
    body_params = [p for m in trainable for p in m.parameters()]
    for p in body_params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [{"params": body_params, "lr": 1e-4}, {"params": upper.head.parameters(), "lr": 1e-3}], weight_decay=1e-2
    )
    train_patches = np.flatnonzero(np.isin(song_of_patch, train_songs))
    y_patch = torch.from_numpy(y_all[song_of_patch]).long()
    rng = np.random.default_rng(seed)
    scores = []
    for _epoch in range(epochs):
        upper.body.train()
        for m in upper.body.modules():  # the frozen layers keep their statistics
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not any(m is t for t in trainable):
                m.eval()
        order = train_patches[rng.permutation(len(train_patches))]
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            feats = upper.pooled(fronts[idx].float()) if mode == "midend" else pooled[idx]
            logits = upper.head(upper.embed_from_pooled(feats))
            loss = torch.nn.functional.cross_entropy(logits, y_patch[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        upper.body.eval()
        with torch.inference_mode():
            correct = 0
            for s in test_songs:
                sl = slice(offsets[s], offsets[s + 1])
                feats = upper.pooled(fronts[sl].float()) if mode == "midend" else pooled[sl]
                correct += int(upper.head(upper.embed_from_pooled(feats)).mean(0).argmax() == y_all[s])
        scores.append(correct / len(test_songs))
    return scores


def _load_pooled(songs, model_names: list[str]):
    members = []
    for name in model_names:
        data = np.load(cache_file(name, "_pooled.npz"))
        if list(data["track_id"]) != list(songs["track_id"]):
            raise SystemExit(f"{name}: the pooled cache holds other songs; run pooled again")
        members.append((name, data["offsets"], data["pooled"]))
    if any(not np.array_equal(m[1], members[0][1]) for m in members):
        raise SystemExit("the members cut the songs into different patches")
    return members


def _song_embeddings(uppers, pooled_members, offsets, songs_idx):
    """(songs, members x 200): each song's mean penultimate embedding, every member in eval mode."""
    import torch

    with torch.inference_mode():
        per_patch = torch.cat([u.embed_from_pooled(p) for u, p in zip(uppers, pooled_members, strict=True)], dim=1)
    return np.stack([per_patch[offsets[s] : offsets[s + 1]].mean(0).numpy() for s in songs_idx])


def _ridge_predictions(train_x, train_t, test_x):
    from sklearn.linear_model import RidgeCV

    center, scale = _standardiser(train_x)
    return RidgeCV(alphas=np.logspace(-1, 5, 13)).fit((train_x - center) / scale, train_t).predict((test_x - center) / scale)


def _setup(songs, model_names: list[str]):
    """The cached pooled features, the frozen bodies, every song's probe embedding, and genre labels per song and patch."""
    import torch

    from encore.models.checkpoint import load_model
    from encore.pretrained import resolve_run

    torch.set_num_threads(os.cpu_count() or 1)
    members = _load_pooled(songs, model_names)
    offsets = members[0][1]
    pooled = [torch.from_numpy(m[2]) for m in members]
    bodies = []
    for name in model_names:
        model, _ = load_model(resolve_run(name))
        bodies.append(model.backbone.eval())
    frozen = [Upper(b, np.zeros((4, 200)), np.zeros(4)) for b in bodies]
    for u in frozen:
        u.body.eval()
    all_songs = np.arange(len(songs))
    base_emb = _song_embeddings(frozen, pooled, offsets, all_songs)
    song_of_patch = np.repeat(all_songs, np.diff(offsets))
    y = songs["genre"].map({g: i for i, g in enumerate(sorted(GENRE_OFFSETS))}).to_numpy()
    return offsets, pooled, bodies, base_emb, song_of_patch, y, torch.from_numpy(y[song_of_patch]).long()


def _tune(bodies, pooled, offsets, song_of_patch, y_patch, train_songs, eval_songs, weight, bias, epochs, seed):
    """The back end fine-tuned from the probe's head on ``train_songs``' patches (the settings in the docstring).

    Returns the class of each of ``eval_songs`` after every epoch, ``(epochs, n)``, and every
    song's mean embedding after the last.
    """
    import torch

    torch.manual_seed(seed)
    uppers = [Upper(b, np.zeros((4, 200)), np.zeros(4)) for b in bodies]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight).float())
        head.bias.copy_(torch.from_numpy(bias).float())
    body_params = [p for u in uppers for m in (u.body.pool_bn, u.body.dense, u.body.dense_bn) for p in m.parameters()]
    optimizer = torch.optim.AdamW(
        [{"params": body_params, "lr": 1e-4}, {"params": head.parameters(), "lr": 1e-3}], weight_decay=1e-2
    )
    train_patches = np.flatnonzero(np.isin(song_of_patch, train_songs))
    rng = np.random.default_rng(seed)
    classes = np.zeros((epochs, len(eval_songs)), dtype=int)
    for epoch in range(epochs):
        for u in uppers:
            u.body.train()
        order = train_patches[rng.permutation(len(train_patches))]
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            if len(idx) < 2:
                continue
            emb = torch.cat([u.embed_from_pooled(p[idx]) for u, p in zip(uppers, pooled, strict=True)], 1)
            loss = torch.nn.functional.cross_entropy(head(emb), y_patch[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for u in uppers:
            u.body.eval()
        with torch.inference_mode():
            for k, song in enumerate(eval_songs):
                sl = slice(offsets[song], offsets[song + 1])
                emb = torch.cat([u.embed_from_pooled(p[sl]) for u, p in zip(uppers, pooled, strict=True)], 1)
                classes[epoch, k] = int(head(emb).mean(0).argmax())
    return classes, _song_embeddings(uppers, pooled, offsets, np.arange(len(offsets) - 1))


def backend_inner(songs, model_names: list[str], seeds: list[int], epochs: int, out: Path) -> None:
    """5 inner folds of every outer training fold: the probe against the back end fine-tuned, all targets."""

    from scipy.stats import spearmanr
    from sklearn.model_selection import StratifiedKFold

    offsets, pooled, bodies, base_emb, song_of_patch, y_all, y_patch = _setup(songs, model_names)
    targets = songs[[*EMOTIONS, "appeal"]].to_numpy(float)
    rows = []
    for seed in seeds:
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            outer = np.flatnonzero(splits == "train")
            t0 = time.perf_counter()
            probe_class = np.zeros(len(outer), int)
            tuned_class = np.zeros((epochs, len(outer)), int)
            probe_t = np.zeros((len(outer), targets.shape[1]))
            tuned_t = np.zeros_like(probe_t)
            for inner_train, inner_test in StratifiedKFold(5, shuffle=True, random_state=seed).split(outer, y_all[outer]):
                tr, te = outer[inner_train], outer[inner_test]
                weight, bias, _c = _probe_head(base_emb[tr], y_all[tr], seed)
                probe_class[inner_test] = (base_emb[te] @ weight.T + bias).argmax(1)
                probe_t[inner_test] = _ridge_predictions(base_emb[tr], targets[tr], base_emb[te])
                by_epoch, tuned_emb = _tune(bodies, pooled, offsets, song_of_patch, y_patch, tr, te, weight, bias, epochs, seed)
                tuned_class[:, inner_test] = by_epoch
                tuned_t[inner_test] = _ridge_predictions(tuned_emb[tr], targets[tr], tuned_emb[te])
            y = y_all[outer]

            def rho(pred):
                r = [spearmanr(targets[outer, i], pred[:, i])[0] for i in range(targets.shape[1])]
                return float(np.mean(r[:-1])), float(r[-1])

            row = {
                "seed": seed,
                "fold": fold,
                "probe": float(np.mean(probe_class == y)),
                "tuned_by_epoch": [float(np.mean(t == y)) for t in tuned_class],
                "probe_emotions_appeal": rho(probe_t),
                "tuned_emotions_appeal_last_epoch": rho(tuned_t),
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            logger.info(
                "seed %d fold %d probe %.3f tuned %s emotions/appeal %s -> %s (%.0f s)",
                seed,
                fold,
                row["probe"],
                [round(a, 3) for a in row["tuned_by_epoch"]],
                np.round(row["probe_emotions_appeal"], 3).tolist(),
                np.round(row["tuned_emotions_appeal_last_epoch"], 3).tolist(),
                row["seconds"],
            )
            out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "rows": rows}, indent=2), encoding="utf-8")
    probe = np.array([r["probe"] for r in rows])
    tuned = np.array([r["tuned_by_epoch"] for r in rows])
    print("probe", round(probe.mean(), 4), "tuned by epoch", np.round(tuned.mean(0), 4).tolist())
    print("folds ahead by epoch", (tuned > probe[:, None]).sum(0).tolist(), "of", len(rows))
    pe = np.array([r["probe_emotions_appeal"] for r in rows]).mean(0)
    te_ = np.array([r["tuned_emotions_appeal_last_epoch"] for r in rows]).mean(0)
    print("emotions/appeal probe", np.round(pe, 4).tolist(), "tuned", np.round(te_, 4).tolist())


def heldout(songs, model_names: list[str], seeds: list[int], epochs: int, out: Path) -> None:
    """The pre-registered run on the held-out folds: the shipped probe's heads against the back end tuned from them.

    On each outer fold both start from the same probe (the product's softmax head, its
    strength by 5-fold CV on the 320 training songs); the tuned one fine-tunes the back end
    for ``epochs`` and keeps its class head, and its emotion and appeal heads are the
    probe's, refitted on the tuned embeddings (as ``train.tune_top`` does). Paired bootstrap
    over songs, seed-averaged (``emotify_probe_targets.paired``).
    """
    from emotify_classical import TARGETS
    from emotify_probe_targets import paired, probe_fold
    from scipy.stats import spearmanr

    from encore.train.transfer import _softmax_strength, fit_softmax

    offsets, pooled, bodies, base_emb, song_of_patch, y, y_patch = _setup(songs, model_names)
    results = {name: {"classes": [], "scores": [], "per_seed": []} for name in ("probe", "tuned")}
    seconds = []
    for seed in seeds:
        arrays = {name: (np.zeros(len(songs), int), np.zeros((len(songs), len(TARGETS)))) for name in results}
        for fold, splits in enumerate(fold_splits(songs, 5, seed, val_fraction=0.0)):
            train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
            start = time.perf_counter()
            center, scale = _standardiser(base_emb[train])
            strength, _ = _softmax_strength((base_emb[train] - center) / scale, y[train], 4, n_folds=5, seed=seed)
            weight, bias = fit_softmax((base_emb[train] - center) / scale, y[train], strength, 4)
            raw_weight, raw_bias = (weight / scale[:, None]).T, bias - (center / scale) @ weight
            for name, emb in (("probe", base_emb), ("tuned", None)):
                if emb is None:
                    by_epoch, emb = _tune(
                        bodies, pooled, offsets, song_of_patch, y_patch, train, test, raw_weight, raw_bias, epochs, seed
                    )
                    classes = by_epoch[-1]
                else:
                    classes = (emb[test] @ raw_weight.T + raw_bias).argmax(1)
                heads = probe_fold(emb, songs, y, train, test, seed)
                arrays[name][0][test] = classes
                arrays[name][1][test, : len(EMOTIONS)] = heads["emotions"]
                arrays[name][1][test, len(EMOTIONS)] = heads["appeal"]
            seconds.append(time.perf_counter() - start)
            logger.info(
                "seed %d fold %d: probe %.3f tuned %.3f (%.0f s)",
                seed,
                fold,
                np.mean(arrays["probe"][0][test] == y[test]),
                np.mean(arrays["tuned"][0][test] == y[test]),
                seconds[-1],
            )
        for name, (classes, scores) in arrays.items():
            row = {"seed": seed, "accuracy": float(np.mean(classes == y))}
            row.update({t: float(spearmanr(scores[:, i], songs[t]).statistic) for i, t in enumerate(TARGETS)})
            row["emotions_mean"] = float(np.mean([row[e] for e in EMOTIONS]))
            results[name]["per_seed"].append(row)
            results[name]["classes"].append(classes)
            results[name]["scores"].append(scores)
    for result in results.values():
        result["classes"], result["scores"] = np.stack(result["classes"]), np.stack(result["scores"])
    difference = paired(songs, y, results["tuned"], results["probe"])
    report = {"command": "python " + " ".join(sys.argv), "epochs": epochs, "seconds_per_fold": seconds}
    for name, result in results.items():
        report[name] = {
            key: {
                "mean": float(np.mean([r[key] for r in result["per_seed"]])),
                "sd": float(np.std([r[key] for r in result["per_seed"]])),
            }
            for key in ["accuracy", *TARGETS, "emotions_mean"]
        }
        report[name]["per_seed"] = result["per_seed"]
        print(name, {k: round(v["mean"], 4) for k, v in report[name].items() if isinstance(v, dict)})
    report["tuned_minus_probe"] = difference
    print(
        "tuned - probe",
        {k: [round(v["difference"], 4), round(v["ci_low"], 4), round(v["ci_high"], 4)] for k, v in difference.items()},
    )
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["extract", "pooled", "inner", "backend", "heldout"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--models", default="pretrained:musicnn-msd")
    parser.add_argument("--model", default="pretrained:musicnn-msd")
    parser.add_argument("--modes", default="backend,midend")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "emotify_finetune_upper.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    songs, _ = read_targets(args.data)
    if args.step in ("extract", "pooled"):
        for name in args.models.split(","):
            (extract if args.step == "extract" else extract_pooled)(songs, name)
    elif args.step == "heldout":
        heldout(songs, args.models.split(","), [int(s) for s in args.seeds.split(",")], args.epochs, args.out)
    elif args.step == "backend":
        backend_inner(songs, args.models.split(","), [int(s) for s in args.seeds.split(",")], args.epochs, args.out)
    else:
        inner(songs, args.model, [int(s) for s in args.seeds.split(",")], args.epochs, args.out, args.modes.split(","))


if __name__ == "__main__":
    main()
