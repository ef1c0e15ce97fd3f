"""Writing rows of differing keys as one CSV file (training history, predictions)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_csv_rows"]


def write_csv_rows(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` to ``path`` with a column for every key of any row, in first-seen order.

    A row lacking a key leaves that cell empty. The file is written beside ``path`` and
    then moved over it, so a reader never sees half a file.
    """
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(keys))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
