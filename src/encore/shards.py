"""Splitting a list of files into ``n`` shards for parallel jobs (``--shard i/n``).

One rule serves ``encore extract`` and ``encore predict``: sort the files by name, and
shard ``i`` of ``n`` takes every ``n``-th from position ``i`` (0-based, like torchrun
ranks and Slurm array indices). The shards are disjoint, together cover the list, and
differ in size by at most one file, so an array of jobs finishes together; the order in
which the files were named does not matter, as long as every job is given the same files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from encore.exceptions import ParameterError

__all__ = ["parse_shard", "select_shard", "shard_positions"]

T = TypeVar("T")
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``.

    Raises:
        ParameterError: Not of the form ``i/n``, or ``i`` out of range.
    """
    match = _SHARD.fullmatch(str(text))
    if not match:
        raise ParameterError(f"--shard {text!r} must look like 'i/n', e.g. '0/4' for the first of 4 shards")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise ParameterError(
            f"--shard {text!r}: need 0 <= i < n (shards are numbered from 0), e.g. '{max(count, 1) - 1}/{max(count, 1)}'"
        )
    return index, count


def shard_positions(keys: Sequence[object], index: int, count: int) -> list[int]:
    """Positions (in input order) of the keys in shard ``index`` of ``count``; see the module docstring.

    Raises:
        ParameterError: ``index`` is not in ``0 .. count-1``.
    """
    if count < 1 or not 0 <= index < count:
        raise ParameterError(f"shard index {index} must be in 0..{count - 1}")
    by_name = sorted(range(len(keys)), key=lambda position: str(keys[position]))
    return sorted(by_name[index::count])


def select_shard(items: Sequence[T], shard: str | tuple[int, int] | None) -> list[T]:
    """The items of shard ``"i/n"`` (or ``(i, n)``), in input order; all of them when ``shard`` is None."""
    if shard is None:
        return list(items)
    index, count = parse_shard(shard) if isinstance(shard, str) else shard
    return [items[position] for position in shard_positions(items, index, count)]
