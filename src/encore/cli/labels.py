"""``encore labels``: turn feedback into targets and artist-safe splits (a manifest);
``encore labels show``: the label vocabulary listener tags give."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from encore.cli.common import ConfigOption, SetOption, WorkspaceOption, console, handle_errors, out
from encore.workspace import Workspace

if TYPE_CHECKING:
    from encore.data.manifest import Manifest

app = typer.Typer(
    help="Build targets and splits from feedback (a manifest); `encore labels show` lists the tag vocabulary.",
    invoke_without_command=True,
)


@app.callback(invoke_without_command=True)
@handle_errors
def labels_command(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    name: Annotated[str, typer.Option(help="Manifest name under manifests/.")] = "default",
) -> None:
    """Build class labels (tag votes weighted by listener reliability, or a catalogue label
    set), tag targets, an appeal score with its uncertainty, their split-half reliability,
    and splits by artist."""
    if ctx.invoked_subcommand is not None:
        return
    from encore.config import load_config
    from encore.targets.build import build_manifest

    ws = Workspace.open(workspace)
    cfg = load_config(config, set)
    path = ws.manifest_path(name)
    previous = _previous_manifest(path)
    with ws.open_store() as db:
        manifest = build_manifest(db, cfg.labels, base_dir=Path(config).parent if config else None, previous=previous)
    path = manifest.write(path)
    note = manifest.info.get("label_note")
    if note:
        out.print(note, highlight=False)
    print_manifest(manifest, path)
    warning = artist_warning(manifest.summary())
    if warning:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def artist_warning(summary: dict) -> str | None:
    """What missing artists mean for the splits, and how to fix it; None when all songs have one."""
    missing = int(summary.get("songs_without_artist", 0))
    if not missing:
        return None
    if missing == summary["songs"]:
        which = "no song has an artist"
    else:
        which = (
            f"{missing} of {summary['songs']} songs have no artist"
            if missing > 1
            else f"1 of {summary['songs']} songs has no artist"
        )
    return (
        f"{which}, so each of them is its own group in the splits and an artist's songs can fall on both "
        "sides of a split (validation and test scores then flatter the model). Fix: `encore import` a CSV "
        "with path and artist columns for these files (stored songs get the artist they lack), or tag the "
        "files' artist (ID3, Vorbis comment, MP4) and import them again; then run `encore labels` again"
    )


def _artists(summary: dict) -> str:
    missing = int(summary.get("songs_without_artist", 0))
    if not missing:
        return str(summary["artists"])
    return f"{summary['artists']} ({missing} song{'s' if missing > 1 else ''} without artist: each its own group)"


def _previous_manifest(path: Path) -> Manifest | None:
    """The manifest ``encore labels`` is about to replace, whose songs keep their splits; None when
    there is none (or it cannot be read, and is then rebuilt from scratch)."""
    from encore.data.manifest import Manifest
    from encore.exceptions import ParameterError

    if not path.is_file():
        return None
    try:
        return Manifest.read(path)
    except ParameterError:
        return None


def _scores(manifest: Manifest) -> str:
    """The scores the models learn, with how many songs have each; or why there are none."""
    if not manifest.regression_names:
        return "none (no likes, ratings, plays or skips)"
    return ", ".join(f"{name} ({int(manifest.frame[name].notna().sum())} songs)" for name in manifest.regression_names)


def print_manifest(manifest: Manifest, path: Path) -> None:
    """The manifest's summary and its targets' reliability, as tables."""
    summary = manifest.summary()
    table = Table(title=f"manifest {path}")
    table.add_column("what")
    table.add_column("value")
    for key in ("songs", "artists", "labelled", "unlabelled", "tags", "events", "listeners", "label_source"):
        if key in summary:
            table.add_row(key, _artists(summary) if key == "artists" else str(summary[key]))
    table.add_row("splits", ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    table.add_row(
        "classes", ", ".join(f"{k} {v}" for k, v in sorted(summary["label_counts"].items())) or "none (scores and tags only)"
    )
    table.add_row("tags kept", ", ".join(manifest.tag_names) or "-")
    table.add_row("scores", _scores(manifest))
    out.print(table)
    reliability = manifest.info.get("reliability") or {}
    if reliability:
        ceilings = Table(title="split-half reliability (Spearman-Brown) and the ceiling on a model's Spearman")
        for column in ("target", "reliability", "ceiling", "songs"):
            ceilings.add_column(column)
        for target, value in reliability.items():
            ceilings.add_row(target, f"{value['reliability']:.2f}", f"{value['ceiling']:.2f}", str(value["n_songs"]))
        out.print(ceilings)


@app.command("show")
@handle_errors
def show_command(
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    top: Annotated[int, typer.Option(help="Show this many labels, most listeners first (0: all).")] = 50,
    min_listeners: Annotated[int, typer.Option(min=1, help="Only labels used by at least this many listeners.")] = 1,
    variants: Annotated[int, typer.Option(help="Raw variants listed per label (0: all).")] = 8,
) -> None:
    """Print the label vocabulary from listener tags: support (listeners, songs), agreement,
    and the raw spellings merged into each label (synonyms and stop tags from the config)."""
    from encore.config import load_config
    from encore.targets.build import load_synonyms
    from encore.targets.tags import DEFAULT_STOP_TAGS, close_spellings, tag_vocabulary

    ws = Workspace.open(workspace)
    cfg = load_config(config, set).labels
    synonyms = load_synonyms(cfg, base_dir=Path(config).parent if config else None)
    stop_tags = frozenset(cfg.stop_tags) if cfg.stop_tags is not None else DEFAULT_STOP_TAGS
    with ws.open_store() as db:
        vocabulary = tag_vocabulary(db.events(["tag"]), stop_tags=stop_tags, synonyms=synonyms, min_listeners=min_listeners)
    shown = vocabulary.head(top) if top > 0 else vocabulary
    close = close_spellings(list(shown["tag"]))
    table = Table(title=f"label vocabulary: {len(vocabulary)} labels from listener tags (showing {len(shown)})")
    columns = [("label", "left"), ("listeners", "right"), ("songs", "right"), ("agreement", "right")]
    columns += [("raw variants (uses)", "left")] + ([("one letter from", "left")] if close else [])
    for column, justify in columns:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in shown.itertuples(index=False):
        merged = row.variants[:variants] if variants > 0 else row.variants
        more = f" +{len(row.variants) - len(merged)} more" if len(merged) < len(row.variants) else ""
        cells = [row.tag, str(row.listeners), str(row.songs), f"{row.agreement:.2f}"]
        cells.append(", ".join(f"{text} ({uses})" for text, uses in merged) + more)
        table.add_row(*cells, *([close.get(row.tag, "")] if close else []))
    out.print(table)
    if close:
        pairs = ", ".join(f"{escape(a)}: {escape(b)}" for a, b in close.items())
        out.print(
            f"{len(close)} label(s) are one letter from a more used one. Where they mean the same, merge them "
            f"with labels.synonyms in the config, e.g. --set 'labels.synonyms={{{pairs}}}'",
            highlight=False,
        )
