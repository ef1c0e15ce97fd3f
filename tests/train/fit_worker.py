"""Runs ``fit`` on the toy task in a separate process (for kill -9 and torchrun tests).

Usage: python fit_worker.py RUN_DIR [--epochs N] [--hang-in-epoch E --marker PATH]

With ``--hang-in-epoch E`` the process touches MARKER and sleeps in the middle of epoch E,
so a test can kill it there with SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from toy import make_toy, toy_config

import encore.train.loop as loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hang-in-epoch", type=int, default=0)
    parser.add_argument("--marker", type=Path, default=None)
    parser.add_argument("--result", type=Path, default=None, help="write the history here as JSON (rank 0)")
    args = parser.parse_args()
    manifest, waveforms = make_toy()
    config = toy_config(**{"train.epochs": args.epochs})

    state = {"epoch": 1, "calls": 0}
    real_augment = loop.augment_waveforms

    def augment(batch, config, generator):
        if state["epoch"] == args.hang_in_epoch:
            state["calls"] += 1
            if state["calls"] == 3:  # a few steps into the epoch
                args.marker.write_text("hanging")
                time.sleep(600)
        return real_augment(batch, config, generator)

    def after_epoch(row):
        state["epoch"] = int(row["epoch"]) + 1

    loop.augment_waveforms = augment
    result = loop.fit(manifest, waveforms, config, args.run_dir, callback=after_epoch)
    # every rank returns the history; rank 0 alone writes it (two writers interleave their bytes)
    if args.result is not None and result.history and os.environ.get("RANK", "0") == "0":
        tmp = args.result.with_name(f".{args.result.name}.tmp")
        tmp.write_text(json.dumps({"history": result.history, "best_metrics": result.best_metrics}))
        os.replace(tmp, args.result)


if __name__ == "__main__":
    main()
