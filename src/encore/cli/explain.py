"""``encore explain``: which time segments and frequency bands drove a CNN's prediction (a blend's: each CNN member's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from encore.cli.common import DeviceOption, WorkspaceOption, handle_errors, out, step
from encore.exceptions import ParameterError
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.explain import SongExplanation
    from encore.inference import Predictor

METHODS = ("occlusion", "integrated_gradients")
"""The attribution methods of ``encore.explain`` (kept here so that ``--help`` imports no torch)."""


def _default_targets(predictor: Predictor) -> list[str | None]:
    """The top predicted class and every score (one explanation each)."""
    targets: list[str | None] = [None] if predictor.label_names else []
    return targets + list(predictor.regression_names)


@handle_errors
def explain_command(
    run: Annotated[str, typer.Argument(help="CNN or blend run folder, name under runs/, or pretrained:NAME.")],
    song: Annotated[Path, typer.Argument(help="An audio file.")],
    workspace: WorkspaceOption = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="Class, tag or score to explain (repeatable; default: the top class and every score)."),
    ] = None,
    method: Annotated[str, typer.Option(help=f"One of {', '.join(METHODS)}.")] = "occlusion",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the PNGs and JSON (default reports/explain/<song>).")
    ] = None,
    segments: Annotated[int, typer.Option(min=1, help="Time segments of the grid.")] = 16,
    bands: Annotated[int, typer.Option(min=1, help="Mel bands of the grid.")] = 8,
    device: DeviceOption = "auto",
) -> None:
    """Write a PNG of the log-mel with the attribution overlaid and a JSON of the top segments."""
    from encore.audio import load_audio
    from encore.explain import explain_waveform
    from encore.inference import Predictor
    from encore.inference.runs import load_predictor, resolve_run

    ws = Workspace.open(workspace)
    run_dir = resolve_run(run, ws.root)
    networks = _networks(run_dir)
    folder = out_dir or ws.reports_dir / "explain" / song.stem
    folder.mkdir(parents=True, exist_ok=True)
    explanations = []
    for member, weight, network_dir in networks:
        predictor = load_predictor(network_dir, device=device)
        assert isinstance(predictor, Predictor)  # a folder with checkpoint.pt loads as the CNN's predictor
        waveform = load_audio(song, sample_rate=predictor.sample_rate)
        for name in target or _default_targets(predictor):
            what = f"{name or 'the top class'}" + (f" of blend member {member} (weight {weight:.2f})" if member else "")
            step(f"{method} for {what}")
            explanation = explain_waveform(predictor, waveform, target=name, method=method, n_segments=segments, n_bands=bands)
            stem = f"{member + '-' if member else ''}{explanation.kind}-{explanation.target}-{method}"
            png = folder / f"{stem}.png".replace("/", "_").replace(" ", "_")
            png.write_bytes(explanation.to_png())
            explanations.append(
                {**explanation.to_dict(), "png": str(png), **({"member": member, "weight": weight} if member else {})}
            )
            print_summary(explanation, png)
    report = {"song": str(song), "run": str(run_dir), "method": method, "explanations": explanations}
    json_path = folder / "explanation.json"
    json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    out.print(f"wrote {json_path} (every target's value and top segments, with its PNG)", highlight=False)


def _networks(run_dir: Path) -> list[tuple[str | None, float, Path]]:
    """The CNNs to explain: the run itself, or a blend's CNN members (name, weight, folder).

    Raises:
        ParameterError: neither a CNN run nor a blend with a CNN member.
    """
    if (run_dir / "blend_card.json").is_file():
        from encore.models.card import BlendCard

        card = BlendCard.read(run_dir / "blend_card.json")
        networks: list[tuple[str | None, float, Path]] = []
        others = []
        for m in card.members:
            folder = run_dir / "members" / m.name
            if (folder / "checkpoint.pt").is_file():
                networks.append((m.name, m.weight, folder))
            else:
                others.append(f"{m.name} ({m.weight:.2f})")
        if not networks:
            raise ParameterError(
                f"{run_dir} is a blend with no CNN member; its members' importances are in `encore evaluate`'s report"
            )
        if others:
            out.print(
                f"a blend: explaining its CNN members; its classical members {', '.join(others)} are explained by their "
                "feature importances in `encore evaluate`'s report",
                highlight=False,
            )
        return networks
    if not (run_dir / "checkpoint.pt").is_file():  # explanations need the CNN's model: not an ONNX file, not a forest
        raise ParameterError(
            f"{run_dir} is not a CNN run (no checkpoint.pt); the forest's importances are in `encore evaluate`'s report"
        )
    return [(None, 1.0, run_dir)]


def print_summary(explanation: SongExplanation, png: Path) -> None:
    """A few lines a person reads: the value, where the evidence lies, and the PNG written."""
    from encore.explain.plot import format_hz_range

    segments = explanation.segments
    held = sum(seg["share"] for seg in segments)
    head = f"{explanation.kind} '{explanation.target}' = {explanation.value:.3f} ({explanation.method.replace('_', ' ')})"
    if not segments:
        out.print(f"{head}: no part of the song raises it", highlight=False)
    else:
        out.print(
            f"{head}: the top {len(segments)} of {explanation.n_segments} x {explanation.n_bands} cells hold "
            f"{held:.0%} of what raises it",
            highlight=False,
        )
    for rank, seg in enumerate(segments, start=1):
        out.print(
            f"  {rank}. {seg['start_s']:.2f}-{seg['end_s']:.2f} s, "
            f"{format_hz_range(seg['f_low_hz'], seg['f_high_hz'])}: {seg['share']:.1%}",
            highlight=False,
        )
    out.print(f"  wrote {png}", highlight=False)
