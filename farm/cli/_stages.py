"""How ``farm run`` and ``farm refresh`` show their stages (:mod:`farm.stages`) on stderr.

On a terminal each stage is a line of its own with a bar where it counts something (events,
work items), its elapsed time and, for the work items, the time left from the measured cost
of an item. Elsewhere (a pipe, a log file, a batch job) each stage is one plain line when it
starts, and the work items add a line at most every 10 s with their count, the measured cost
per item and the time left. ``-q`` shows none of it; ``-v`` adds each stage's time.

Ctrl-C is caught around the whole command (:meth:`StageDisplay.interrupts`): once what the run
was writing is removed, it says how many work items are checkpointed, and exits 130.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from farm.cli._common import EXIT_INTERRUPTED, debug
from farm.stages import listening

__all__ = ["StageDisplay"]

_LOG_EVERY_S = 10.0


class _Count(ProgressColumn):
    """``done/total`` and the measured time per unit, for the stages that count."""

    def render(self, task: Any) -> Text:
        if task.total is None or not task.fields.get("counted"):
            return Text("")
        text = f"{int(task.completed):,}/{int(task.total):,}"
        per = task.fields.get("per_item")
        return Text(f"{text}  {per}" if per else text)


class StageDisplay:
    """A :class:`farm.stages.Listener` for the command line, plus the work items' progress."""

    def __init__(self, console: Console, *, checkpoints: bool) -> None:
        self.console = console
        self.checkpoints = checkpoints
        self.live = console.is_terminal and not console.quiet
        self.progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            _Count(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not self.live,
        )
        self._task: Any = None
        self._label: str | None = None
        self._t0 = 0.0
        self._counted = False
        self._items_total: int | None = None
        self._items_done = 0
        self._items_start: tuple[float, int] | None = None  # (time, done) at the first update
        self._last_log = 0.0
        self._iteration = 0

    # --- farm.stages.Listener -------------------------------------------------------------------

    def stage(self, label: str, total: int | None) -> None:
        self._close()
        self._label, self._t0, self._counted = label, time.perf_counter(), total is not None
        if self.live:
            self._task = self.progress.add_task(label, total=total, counted=total is not None)
        else:
            self.console.print(f"{label} …", markup=False, highlight=False)

    def advance(self, done: int, total: int | None) -> None:
        if self.live and self._task is not None:
            self.progress.update(self._task, completed=done, total=total)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    # --- the work items (the runner's progress callback) ---------------------------------------

    def items(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self._items_start is None or done < self._items_done or total != self._items_total:
            # the first report of a run (or of an --until-converged iteration): what is loaded
            # from checkpoints is done already, the rest is what this run costs
            self._iteration += 1
            self._items_start, self._items_total, self._last_log = (now, done), total, now
            again = f" (iteration {self._iteration})" if self._iteration > 1 else ""
            if done:  # a cluster loads the checkpointed items before the first report
                label = f"computing {total - done:,} of {total:,} work items{again}, {done:,} from checkpoints"
            else:
                label = f"computing {total:,} work items{again}"
            self.stage(label, total)
        self._items_done = done
        per, left = self._cost(now, done, total)
        if self.live and self._task is not None:
            self.progress.update(self._task, completed=done, total=total, per_item=per)
        elif per and now - self._last_log >= _LOG_EVERY_S and done < total:
            self._last_log = now
            self.console.print(
                f"  {done:,} of {total:,} work items, {per}, about {left:.0f} s left",
                markup=False,
                highlight=False,
            )
        if done == total:
            self.stage("reducing", None)

    def _cost(self, now: float, done: int, total: int) -> tuple[str, float]:
        """The measured wall time per work item since the first report, and the time left."""
        t0, done0 = self._items_start or (now, done)
        computed = done - done0
        if computed <= 0:
            return "", float("nan")
        each = (now - t0) / computed
        return f"{each:.2g} s/item", each * (total - done)

    # --- the whole command ----------------------------------------------------------------------

    def _close(self) -> None:
        if self._label is None:
            return
        dt = time.perf_counter() - self._t0
        if self.live and self._task is not None:
            task = next(t for t in self.progress.tasks if t.id == self._task)
            total = task.total if task.total is not None else 1
            self.progress.update(self._task, total=total, completed=total)
        debug(f"{self._label}: {dt:.1f} s")
        self._label, self._task = None, None

    def __enter__(self) -> StageDisplay:
        self._listening = listening(self)
        self._listening.__enter__()
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._close()
            self.progress.stop()
        finally:
            self._listening.__exit__(None, None, None)

    @contextlib.contextmanager
    def interrupts(self) -> Iterator[None]:
        """Ctrl-C: say what is kept and how to resume, and exit 130 (after everything inside,
        the output lock and the cluster included, has unwound)."""
        try:
            yield
        except KeyboardInterrupt:
            self.console.quiet = False
            self.console.print(f"interrupted: {self.resume_hint()}", markup=False, highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    def resume_hint(self) -> str:
        if self._items_total is None:
            return "no work item had been computed yet; rerun the same command to start again"
        if not self.checkpoints:
            return (
                f"{self._items_done:,} of {self._items_total:,} work items were done, none "
                "checkpointed (--no-checkpoints); rerun the same command to start again"
            )
        return (
            f"{self._items_done:,} of {self._items_total:,} work items checkpointed; rerun the "
            "same command to resume"
        )
