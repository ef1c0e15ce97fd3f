"""How library code reports long work to whoever draws it (the CLI's rich bars).

Library code never draws progress itself (STYLE: progress belongs to the CLI). A function
that does long work takes a :data:`ProgressHook`, starts a task with it (a description and
a total), and calls the ``advance(n)`` it gets back as the work goes on.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Advance", "ProgressHook", "start_task"]

Advance = Callable[[int], None]
"""``advance(n)``: ``n`` more units of a task are done."""

ProgressHook = Callable[[str, int], Advance | None]
"""``hook(description, total)`` starts a task of ``total`` units and returns its
:data:`Advance`, or None when nobody draws it."""


def start_task(progress: ProgressHook | None, description: str, total: int) -> Advance | None:
    """The task's ``advance``, or None without a hook."""
    return None if progress is None else progress(description, total)
