"""Which files are audio, and the audio files that command-line arguments name.

One set of file endings serves every command that looks through folders (``encore
predict``, ``encore extract``, ``encore import`` of a folder): each finds the same songs
in the same folder. Hidden files (a name or a folder starting with ``.``, such as macOS's
``._song.mp3`` resource forks) are skipped.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from encore.exceptions import ParameterError

__all__ = ["AUDIO_EXTENSIONS", "expand_audio_paths", "find_audio_files", "is_audio_file"]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".aac",
        ".aif",
        ".aiff",
        ".au",
        ".flac",
        ".m4a",
        ".mka",
        ".mp3",
        ".mp4",
        ".oga",
        ".ogg",
        ".opus",
        ".wav",
        ".webm",
        ".wma",
    }
)
"""File endings (lower case) taken for audio when a folder is searched; libsndfile or FFmpeg reads each."""


def is_audio_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s ending is one of :data:`AUDIO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The audio files under ``folder`` (recursively, hidden files and folders skipped), sorted."""
    root = Path(folder)
    return sorted(
        path
        for path in root.rglob("*")
        if is_audio_file(path) and path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def expand_audio_paths(items: Iterable[str | os.PathLike[str]], *, missing_ok: bool = False) -> list[Path]:
    """Files, folders (searched with :func:`find_audio_files`) and globs, in order, without repeats.

    Args:
        items: What the user named.
        missing_ok: Keep a name that is no file, folder or matching glob (the caller reports
            it as a failed file) instead of raising.

    Raises:
        ParameterError: A name matches nothing (unless ``missing_ok``), or nothing at all is found.
    """
    names = [os.fspath(item) for item in items]
    paths: list[Path] = []
    for item in names:
        path = Path(item)
        if path.is_dir():
            paths.extend(find_audio_files(path))
        elif path.exists():
            paths.append(path)
        else:
            matches = sorted(Path(match) for match in glob.glob(item, recursive=True))
            if not matches and not missing_ok:
                raise ParameterError(f"{item!r} is not a file, folder or matching glob")
            paths.extend(matches or [path])
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise ParameterError(f"no audio files in {', '.join(names)} (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return unique
