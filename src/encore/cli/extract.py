"""``encore extract``: handcrafted features or log-mels for a catalogue, into the feature cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from encore.cli.common import (
    ConfigOption,
    SetOption,
    WorkspaceOption,
    console,
    handle_errors,
    out,
    progress_bar,
    report_skipped,
    step,
)
from encore.exceptions import ParameterError, WorkspaceError
from encore.workspace import Workspace


@handle_errors
def extract_command(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="Audio files or folders (default: the workspace's catalogue).")
    ] = None,
    workspace: WorkspaceOption = None,
    config: ConfigOption = None,
    set: SetOption = None,
    kind: Annotated[str, typer.Option(help="handcrafted (the forest's features) or logmel.")] = "handcrafted",
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")] = 1,
    shard: Annotated[str | None, typer.Option(help="Only shard i of n, as 'i/n' (0 <= i < n), for split jobs.")] = None,
    cache: Annotated[Path | None, typer.Option(help="Cache folder (default: the workspace's cache/).")] = None,
) -> None:
    """Compute features into the cache with N workers; cached files are skipped, bad files reported and skipped."""
    from encore.config import load_config
    from encore.features.cache import FeatureCache
    from encore.features.extract import (
        extract_features,
        handcrafted_settings,
        logmel_settings,
        parse_shard,
        select_shard,
        write_shard_index,
    )

    cfg = load_config(config, set)
    if sources:
        from encore.audio.files import expand_audio_paths

        paths = [str(path) for path in expand_audio_paths(sources, missing_ok=True)]  # a missing file is reported as failed
        if cache is None:
            cache = Workspace.open(workspace).cache_dir
    else:
        ws = Workspace.open(workspace)
        with ws.open_store() as store:
            tracks = store.tracks()
        paths = [str(p) for p in tracks["path"].dropna()]
        cache = cache or ws.cache_dir
        if not paths:
            raise WorkspaceError(f"the catalogue of {ws.root} has no songs with a path; run `encore import` first")
    if kind == "handcrafted":
        settings = handcrafted_settings(
            sample_rate=cfg.features.sample_rate, n_fft=cfg.baseline.n_fft, hop_length=cfg.baseline.hop_length
        )
    elif kind == "logmel":
        from encore.features.logmel import LogMelSpectrogram

        settings = logmel_settings(LogMelSpectrogram(**cfg.features.model_dump()).settings())
    else:
        raise ParameterError(f"--kind {kind!r} is unknown; use handcrafted or logmel")
    shard_spec = parse_shard(shard) if shard else None
    if shard_spec is not None:
        paths = select_shard(paths, shard_spec)
    feature_cache = FeatureCache(cache)
    where = f" (shard {shard_spec[0]}/{shard_spec[1]})" if shard_spec else ""
    step(f"extracting {kind} features of {len(paths)} files{where} with {workers} worker(s) into {feature_cache.root}")
    with progress_bar(f"extract {kind}", len(paths)) as advance:
        result = extract_features(paths, settings=settings, cache=feature_cache, workers=workers, callback=advance)
    if shard_spec is not None:
        write_shard_index(feature_cache, settings, shard_spec, result)
    for failure in result.failures[:20]:
        report_skipped(failure.path, failure.reason, indent="  ")
    if len(result.failures) > 20:
        console.print(f"  ... and {len(result.failures) - 20} more")
    out.print(
        f"{kind}: {len(paths)} files, computed {result.n_computed}, already cached {result.n_cached}, "
        f"failed {len(result.failures)}",
        highlight=False,
    )
