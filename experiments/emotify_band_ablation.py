"""Emotify: what the band statistics add to the song-level heads of the same trained networks.

Usage:
    python experiments/emotify_band_ablation.py --runs RUNS [--data ../shared/data/emotify] [--folds 5] [--seed 0]
                                          [--only-folds 0,1]
                                          [--config configs/emotify_cv.yaml]

RUNS is the --runs folder of a ``experiments/emotify_cv.py`` run whose config has
``model.band_statistics: true`` (the shipped ``configs/emotify_cv.yaml``). The band
statistics' path is zero in training, so each fold's network trained exactly as it would
have without it; only the song-level refit differs. For each fold this script takes the
run's checkpoint as served (heads refit on the backbone's embedding and the band
statistics) and refits the tag and score heads of the same network again without the
band statistics, on the same training songs with the same settings, and scores both on
the held-out fold. It prints the Spearman correlation of each target over the pooled
held-out songs for both, and their paired bootstrap difference. Each fold's predictions
are kept in its run folder (``band_ablation.npz``), so a second call only prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from emotify_history import EMOTIONS, fold_splits, make_manifest, read_targets, refit_song_heads  # noqa: E402

from encore.config import load_config  # noqa: E402
from encore.data.waveforms import load_waveforms  # noqa: E402
from encore.evaluate.metrics import compare_paired  # noqa: E402
from encore.features.cache import FeatureCache  # noqa: E402
from encore.inference import Predictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "emotify_cv.yaml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-folds", default=None, help="comma-separated fold numbers (default all)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/encore-bench-cache"))
    args = parser.parse_args()

    config = load_config(args.config, [])
    songs, _ = read_targets(args.data)
    decoded, _ = load_waveforms(list(songs["path"]), sample_rate=config.features.sample_rate, cache=FeatureCache(args.cache))
    waveforms = dict(zip(songs["track_id"], decoded, strict=True))
    targets = EMOTIONS + ["appeal"]
    pooled: dict[str, list[np.ndarray]] = {"with": [], "without": []}
    ids: list[str] = []
    wanted = [int(f) for f in args.only_folds.split(",")] if args.only_folds else range(args.folds)
    for k, splits in enumerate(fold_splits(songs, args.folds, args.seed, 0.0)):
        if k not in wanted:
            continue
        manifest = make_manifest(songs, splits)
        run_dir = args.runs / f"fold{k}-cnn"
        test = [t for t in manifest.subset("test")["track_id"] if waveforms.get(t) is not None]
        songs_k = [waveforms[t] for t in test]
        saved = run_dir / "band_ablation.npz"  # a fold's predictions, kept so an interrupted run picks up there
        if not saved.exists():
            got = {}
            hop = config.train.chunk_hop_seconds or config.train.chunk_seconds
            served = Predictor.from_checkpoint(run_dir / "checkpoint.pt")
            if not served.model.band_statistics:
                raise SystemExit(f"{run_dir} was trained without model.band_statistics; nothing to take away")
            for name, predictor in (
                ("with", served),
                ("without", refit_song_heads(run_dir, manifest, waveforms, hop_seconds=hop, band_statistics=False)),
            ):
                predictor.card.chunk = predictor.card.chunk.model_copy(update={"hop_seconds": hop})
                arrays = predictor.predict_arrays(songs_k)
                got[name] = np.column_stack([arrays["tag_probs"], arrays["scores"][:, :1]])
            np.savez(saved, ids=np.array(test), **got)
        got = np.load(saved)
        if list(got["ids"]) != test:
            raise SystemExit(f"{saved} holds other songs than fold {k}; delete it")
        for name in pooled:
            pooled[name].append(got[name])
        ids += test
        print(f"fold {k} done", flush=True)

    truth = songs.set_index("track_id").loc[ids, targets].to_numpy(dtype=np.float64)
    predictions = {name: np.concatenate(parts) for name, parts in pooled.items()}
    print("| refit heads read | " + " | ".join(targets) + " |")
    print("| --- | " + " | ".join("---" for _ in targets) + " |")
    for name, label in (("without", "the backbone's embedding"), ("with", "the embedding + band statistics (shipped)")):
        cells = [f"{spearmanr(predictions[name][:, j], truth[:, j]).statistic:.2f}" for j in range(len(targets))]
        print(f"| {label} | " + " | ".join(cells) + " |")
    spread = []
    for j, target in enumerate(targets):
        d = compare_paired(truth[:, j], predictions["with"][:, j], predictions["without"][:, j], "spearman")
        spread.append(f"{target} {d['difference']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]")
    print("\nwith - without (paired bootstrap, 95 %): " + "; ".join(spread))


if __name__ == "__main__":
    main()
