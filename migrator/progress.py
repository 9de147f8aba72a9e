"""The progress of a long step, as adapters report it, and how durations are written.

An adapter reports through a plain ``report(message: str)`` callback. For a long step it passes one of the
records below: they *are* strings (the line every listener, log and plain output shows as it is), and they
carry the numbers the CLI draws a progress bar or spinner from:

- :class:`RowsProgress`: rows done of a total, rows/s and ETA (a recreation, a re-embedding). A
  :class:`RowsTracker` sends one every :data:`TICK_S` seconds; one in :data:`NOTABLE_S` seconds (and the last)
  is *notable*: the one a plain output or an INFO log shows.
- :class:`Activity`: the start of a step that counts no rows (an index build); the CLI shows a spinner with the
  elapsed time until the migration reports its next line.

No rich, no lancedb here: the core and the adapters both import this module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Self

TICK_S = 0.5        # a tracker reports at most this often (what a progress bar redraws from)
NOTABLE_S = 5.0     # ... and marks one report in this many seconds as notable (plain lines, INFO logs)


def format_duration(seconds: float) -> str:
    """A duration as the CLI writes it: ``850 ms`` below a second, ``2.4 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)} ms"
    if seconds < 60:
        return f"{int(seconds * 10) / 10:.1f} s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Structured(str):
    """A report line that carries data: a ``str`` for every listener, with fields for the CLI."""

    def reworded(self, text: str) -> Self:
        """The same record with another line (``"<table>: "`` put in front of it)."""
        copy = str.__new__(type(self), text)
        copy.__dict__.update(self.__dict__)
        return copy


class RowsProgress(Structured):
    """``done`` of ``total`` rows ``action`` (``"rewritten"``, ``"embedded"``), at ``rate`` rows/s."""

    action: str
    done: int
    total: int
    rate: float
    eta_s: float | None
    notable: bool
    final: bool

    def __new__(cls, action: str, done: int, total: int, rate: float, *, notable: bool = True,
                final: bool = False) -> RowsProgress:
        done = max(min(done, total), 0) if total > 0 else max(done, 0)
        left = max(total - done, 0)
        eta = left / rate if rate > 0 and left and not final else None
        detail = f"{rate:,.0f} rows/s" + (f", ETA {format_duration(eta)}" if eta is not None else "")
        self = super().__new__(cls, f"{action} {done:,} of {total:,} rows ({detail})")
        self.action, self.done, self.total, self.rate, self.eta_s = action, done, total, rate, eta
        self.notable, self.final = notable or final, final
        return self


class Activity(Structured):
    """The start of a step with no row count (``"building IVF_PQ index ..."``): a spinner until the next line."""

    def __new__(cls, text: str) -> Activity:
        return super().__new__(cls, text)


class RowsTracker:
    """Counts rows as a step processes them and reports :class:`RowsProgress` through ``say``.

    ``done``: rows processed before this call (a checkpoint of an interrupted run); ``added``: rows of this call
    (the rate is theirs). Thread-safe: Lance may call ``add`` from its own threads.
    """

    def __init__(self, say: Callable[[str], None], action: str, total: int, *, done: int = 0) -> None:
        self.say = say
        self.action = action
        self.total = total
        self.done = done
        self.added = 0
        self.started = time.monotonic()
        self._last = self.started
        self._last_notable = self.started
        self._lock = threading.Lock()

    def add(self, rows: int) -> None:
        with self._lock:
            self.added += rows
            now = time.monotonic()
            if now - self._last < TICK_S:
                return
            self._last = now
            notable = now - self._last_notable >= NOTABLE_S
            if notable:
                self._last_notable = now
            record = self._record(now, notable=notable)
        self.say(record)

    def line(self, *, final: bool = True) -> RowsProgress:
        """The record as of now (the last one of a step: ``final``, notable)."""
        with self._lock:
            return self._record(time.monotonic(), notable=True, final=final)

    def _record(self, now: float, *, notable: bool, final: bool = False) -> RowsProgress:
        rate = self.added / max(now - self.started, 1e-9)
        return RowsProgress(self.action, self.done + self.added, self.total, rate, notable=notable, final=final)

