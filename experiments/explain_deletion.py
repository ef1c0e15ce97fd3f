"""Is audio occlusion faithful? Silence the cells it ranks first and see whether the output falls further
than when as many cells are silenced at random (the deletion check of Samek et al. 2017, on audio).

Usage:
    PYTHONPATH=src python experiments/explain_deletion.py -w ws-emotify --run vote --per-genre 3 \
        [--segments 16 --bands 8 --k 1,4,16 --draws 5 --split test --out experiments/explain_deletion_vote.json]

For each of the first ``--per-genre`` songs of every class in the split, the top class is
explained by :func:`encore.explain.explain_audio` on the grid, the cells ranked by their
drop, and then k cells are silenced together: the k ranked first, and ``--draws`` sets of
k drawn at random (seeded). Printed: for each k, the mean drop of the class probability for
the top cells and for random ones, the songs where the top cells drop it further than the
random draws' mean, and a paired Wilcoxon test. Nothing here chooses a setting of the
method; it is measured as it ships.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from encore.audio import load_audio
from encore.explain import explain_audio
from encore.explain.audio import audio_grid, remembering, silence_cells
from encore.inference import load_predictor
from encore.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--per-genre", type=int, default=3)
    parser.add_argument("--split", default="test")
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--bands", type=int, default=8)
    parser.add_argument("--k", default="1,4,16")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    ws = Workspace.open(args.workspace)
    manifest = pd.read_csv(ws.manifest_path(), dtype={"track_id": str})
    songs = manifest[manifest["split"] == args.split].groupby("label").head(args.per_genre)
    predictor = load_predictor(ws.runs_dir / args.run)
    rng = np.random.default_rng(args.seed)
    rows = []
    for _, song in songs.iterrows():
        start = time.perf_counter()
        waveform = load_audio(song["path"], sample_rate=predictor.sample_rate)
        explanation = explain_audio(predictor, waveform, n_segments=args.segments, n_bands=args.bands)
        grid = audio_grid(waveform, predictor.sample_rate, n_segments=args.segments, n_bands=args.bands)
        drops = np.array([explanation.attribution[b, t].sum() for t, b in grid.slices])
        order = np.argsort(-drops, kind="stable")
        copies, labels = [], []
        for k in ks:
            copies.append([grid.cells[j] for j in order[:k]])
            labels.append((k, "top"))
            for _ in range(args.draws):
                copies.append([grid.cells[j] for j in rng.choice(len(grid.cells), size=k, replace=False)])
                labels.append((k, "random"))
        with remembering(predictor):  # the pieces no silenced cell touches are computed once
            arrays = predictor.predict_arrays(silence_cells(waveform, sample_rate=predictor.sample_rate, copies=copies))
        index = predictor.label_names.index(explanation.target)
        after = np.asarray(arrays["class_probs"])[:, index]
        row = {"track_id": song["track_id"], "label": song["label"], "target": explanation.target, "value": explanation.value}
        for k in ks:
            top = [a for (kk, kind), a in zip(labels, after, strict=True) if kk == k and kind == "top"][0]
            random = [a for (kk, kind), a in zip(labels, after, strict=True) if kk == k and kind == "random"]
            row[f"top_{k}"] = float(explanation.value - top)
            row[f"random_{k}"] = float(explanation.value - np.mean(random))
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    frame = pd.DataFrame(rows)
    print(f"\n{args.run}: {len(frame)} songs ({args.split}), grid {args.segments} x {args.bands}, {args.draws} random draws")
    print(f"{'k':>4s} {'top cells':>10s} {'random':>8s} {'songs top > random':>19s} {'Wilcoxon p':>11s}")
    summary = {}
    for k in ks:
        top, random = frame[f"top_{k}"].to_numpy(), frame[f"random_{k}"].to_numpy()
        p = float(wilcoxon(top, random).pvalue) if np.any(top != random) else 1.0
        ahead = int((top > random).sum())
        print(f"{k:4d} {top.mean():10.3f} {random.mean():8.3f} {ahead:>12d} of {len(frame):<3d} {p:11.2g}")
        summary[k] = {"top": float(top.mean()), "random": float(random.mean()), "ahead": ahead, "p": p}
    if args.out:
        args.out.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "songs": rows, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
