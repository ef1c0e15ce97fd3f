"""``encore explain``: which time segments and frequency bands drove a model's prediction.

A CNN is explained on its own log-mel (occlusion or integrated gradients); a classical run
and a blend, which have no log-mel inside them, by silencing cells of the audio they read
(``audio_occlusion``, which also runs on a CNN).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from encore.cli.common import DeviceOption, WorkspaceOption, handle_errors, out, progress_bar, step
from encore.exceptions import ParameterError
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.explain import SongExplanation

METHODS = ("occlusion", "integrated_gradients", "audio_occlusion")
"""The attribution methods of ``encore.explain`` (kept here so that ``--help`` imports no torch)."""
AUDIO = "audio_occlusion"


def _default_targets(predictor: Any) -> list[str | None]:
    """The top predicted class and every score (one explanation each)."""
    targets: list[str | None] = [None] if predictor.label_names else []
    return targets + list(predictor.regression_names)


@handle_errors
def explain_command(
    run: Annotated[str, typer.Argument(help="Run folder or name under runs/ (CNN, classical or blend), or pretrained:NAME.")],
    song: Annotated[Path, typer.Argument(help="An audio file.")],
    workspace: WorkspaceOption = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="Class, tag or score to explain (repeatable; default: the top class and every score)."),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help=f"One of {', '.join(METHODS)}. A classical run or a blend is explained by audio_occlusion whatever is "
            "asked, except integrated_gradients, which needs a CNN."
        ),
    ] = "occlusion",
    members: Annotated[
        bool, typer.Option("--members", help="A blend: explain each member on its own instead of the blend as a whole.")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the PNGs and JSON (default reports/explain/<song>).")
    ] = None,
    segments: Annotated[int, typer.Option(min=1, help="Time segments of the grid.")] = 16,
    bands: Annotated[int, typer.Option(min=1, help="Mel bands of the grid.")] = 8,
    device: DeviceOption = "auto",
) -> None:
    """Write a PNG of the log-mel with the attribution overlaid and a JSON of the top segments."""
    from encore.audio import load_audio
    from encore.explain import explain_audio_targets, explain_waveform
    from encore.inference.runs import load_predictor, resolve_run

    if method not in METHODS:
        raise ParameterError(f"--method {method!r} is unknown; use {' or '.join(METHODS)}")
    ws = Workspace.open(workspace)
    run_dir = resolve_run(run, ws.root)
    subjects = _subjects(run_dir, method, members)
    folder = out_dir or ws.reports_dir / "explain" / song.stem
    folder.mkdir(parents=True, exist_ok=True)
    explanations = []
    for member, weight, subject_dir, how in subjects:
        predictor = load_predictor(subject_dir, device=device)
        waveform = load_audio(song, sample_rate=predictor.sample_rate)
        names = target or _default_targets(predictor)
        of = f" of blend member {member} (weight {weight:.2f})" if member else ""
        if how == AUDIO:  # every target from the same silenced copies
            step(f"audio occlusion for {', '.join(n or 'the top class' for n in names)}{of}")
            with progress_bar("silencing cells", total=segments * bands + 1) as advance:
                found = explain_audio_targets(predictor, waveform, names, n_segments=segments, n_bands=bands, callback=advance)
        else:
            found = []
            for name in names:
                step(f"{how.replace('_', ' ')} for {name or 'the top class'}{of}")
                found.append(explain_waveform(predictor, waveform, target=name, method=how, n_segments=segments, n_bands=bands))
        for explanation in found:
            stem = f"{member + '-' if member else ''}{explanation.kind}-{explanation.target}-{how}"
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


def _is_cnn(path: Path) -> bool:
    """A CNN whose network is at hand (a checkpoint, not an exported ONNX file)."""
    return (path / "checkpoint.pt").is_file() or (path.is_file() and path.suffix != ".onnx")


def _subjects(run_dir: Path, method: str, members: bool) -> list[tuple[str | None, float, Path, str]]:
    """What to explain and how: ``(member name or None, weight, folder, method)`` each.

    A CNN takes the method asked; a classical run, a blend as a whole and a blend's classical
    members take audio occlusion. Integrated gradients needs gradients through a log-mel, so
    it refuses anything without a CNN to follow.

    Raises:
        ParameterError: integrated gradients for a run (or every member) that is no CNN, or
            a folder that is no run of any kind.
    """
    if (run_dir / "blend_card.json").is_file():
        from encore.models.card import BlendCard

        card = BlendCard.read(run_dir / "blend_card.json")
        if not members:
            if method == "integrated_gradients":
                raise ParameterError(
                    f"{run_dir} is a blend: integrated gradients follows one CNN's gradients; use --method audio_occlusion "
                    "for the blend as a whole, or --members to explain each member"
                )
            return [(None, 1.0, run_dir, AUDIO)]
        found: list[tuple[str | None, float, Path, str]] = []
        for m in card.members:
            folder = run_dir / "members" / m.name
            if _is_cnn(folder):
                found.append((m.name, m.weight, folder, method))
            elif method != "integrated_gradients":
                found.append((m.name, m.weight, folder, AUDIO))
        if not found:
            raise ParameterError(
                f"{run_dir} is a blend with no CNN member to follow the gradients of; use --method audio_occlusion"
            )
        return found
    if _is_cnn(run_dir):
        return [(None, 1.0, run_dir, method)]
    if not ((run_dir / "model_card.json").is_file() or run_dir.suffix == ".onnx"):
        raise ParameterError(f"{run_dir} is no run: it has no checkpoint.pt, model_card.json or blend_card.json")
    if method == "integrated_gradients":
        kind = "an exported ONNX model" if run_dir.suffix == ".onnx" else "a classical run"
        raise ParameterError(
            f"{run_dir} is {kind}: integrated gradients needs a CNN's checkpoint; use --method audio_occlusion (cells "
            "silenced in the audio), or see the feature importances in `encore evaluate`'s report"
        )
    return [(None, 1.0, run_dir, AUDIO)]


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
