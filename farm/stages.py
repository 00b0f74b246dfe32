"""The stages of a run, announced to whoever listens: the command line shows them, a library call
shows nothing.

A run goes through labelled stages (generating the events, starting the cluster, compiling the
kernels, computing the work items, reducing, publishing); the code that does each one calls
:func:`stage` when it starts it and :func:`advance` as it gets on. Nothing is shown unless a
:class:`Listener` was installed with :func:`listening` (``farm run`` installs one that draws a
bar per stage); the listener is per thread of control (a context variable), so concurrent runs
in one process do not mix their stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

__all__ = ["Listener", "advance", "listening", "note", "stage"]


class Listener(Protocol):
    def stage(self, label: str, total: int | None) -> None:
        """A new stage starts (the previous one is over); ``total``: its units, if counted."""

    def advance(self, done: int, total: int | None) -> None:
        """The current stage has done ``done`` of ``total`` units."""

    def note(self, message: str) -> None:
        """A fact worth a line of its own (how many work items are checkpointed, …)."""


_listener: ContextVar[Listener | None] = ContextVar("farm_stage_listener", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Send the stages of what runs inside to ``listener``."""
    token = _listener.set(listener)
    try:
        yield listener
    finally:
        _listener.reset(token)


def stage(label: str, total: int | None = None) -> None:
    """Announce a stage (a no-op when nobody listens)."""
    listener = _listener.get()
    if listener is not None:
        listener.stage(label, total)


def note(message: str) -> None:
    """Say something to the listener (a no-op when nobody listens)."""
    listener = _listener.get()
    if listener is not None:
        listener.note(message)


def advance(done: int, total: int | None = None) -> None:
    """Progress of the current stage (a no-op when nobody listens)."""
    listener = _listener.get()
    if listener is not None:
        listener.advance(done, total)
