"""Progress of a long evaluation on stderr: one rich bar per stage.

The bootstrap draws most of the time after the templates, so :func:`bootstrap` reports
each replicate through :data:`REPLICATE_TICK` (a context variable: nothing global, and
nothing reported when no bar is listening). A stage whose work was estimated ahead
(replicates x intervals) is marked complete when it ends, so no bar is left short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["REPLICATE_TICK", "Stages"]

#: Called with a count of bootstrap replicates just drawn (set by :meth:`Stages.stage`).
REPLICATE_TICK: ContextVar[Callable[[int], None] | None] = ContextVar("faceledger_replicate_tick", default=None)


class Stages:
    """Bars for the stages of one run (all hidden when ``enabled`` is false)."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[unit]}"), TimeElapsedColumn(),
                             console=Console(stderr=True), disable=not enabled)

    def __enter__(self) -> Stages:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    @contextmanager
    def stage(self, label: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
        """A bar of ``total`` ``unit``s (at least 1); yields ``advance(n)``; bootstrap replicates advance it too."""
        total = max(int(total), 1)
        task = self._bar.add_task(label, total=total, unit=unit)

        def advance(n: int = 1) -> None:
            self._bar.advance(task, n)

        token = REPLICATE_TICK.set(advance)
        try:
            yield advance
        finally:
            REPLICATE_TICK.reset(token)
            self._bar.update(task, completed=total)
