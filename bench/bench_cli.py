"""How long `encore --help` and every command's `--help` take, against a bare Python start.

Usage: python bench/bench_cli.py [--repeats 5] [--quick]

Each timing starts a fresh interpreter, as a user's shell does, and runs the CLI's entry
point (``encore.cli.main:app``, what the ``encore`` script calls) with ``--help``.
References, run in this same process on the same interpreter: ``python -c pass`` (the
floor: starting Python at all) and ``python -c "import typer"`` (the floor of any Typer
app). Prints the median of the repeats in seconds and the ratio to ``python -c pass``
(lower is better), and says whether each is under the issue's bar of 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import typer.main

from encore.cli.main import app

ENTRY = "import sys; from encore.cli.main import app; sys.argv[0] = 'encore'; app()"
BAR_S = 1.0


def _time(argv: list[str], repeats: int) -> float:
    """Median wall time of ``argv`` over ``repeats`` runs (one warm-up run first), in seconds."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _commands() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command, prefix):
        paths.append(prefix)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="median of this many runs per command")
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    python = [sys.executable]
    reference = _time([*python, "-c", "pass"], repeats)
    print(f"reference  python -c pass: {reference:.3f} s   (repeats {repeats}, median)")
    typer_s = _time([*python, "-c", "import typer"], repeats)
    print(f"reference  python -c 'import typer': {typer_s:.3f} s  ({typer_s / reference:.1f}x the reference)")
    print(f"{'command':<28}{'seconds':>9}{'x python':>10}  under {BAR_S:g} s")
    worst = 0.0
    for command in _commands():
        seconds = _time([*python, "-c", ENTRY, *command, "--help"], repeats)
        worst = max(worst, seconds)
        name = "encore " + " ".join([*command, "--help"])
        print(f"{name:<28}{seconds:>9.3f}{seconds / reference:>10.1f}  {'yes' if seconds < BAR_S else 'NO'}")
    print(f"slowest --help: {worst:.3f} s ({worst / reference:.1f}x python -c pass)")


if __name__ == "__main__":
    main()
