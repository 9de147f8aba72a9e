"""The lock wait, written once: each lock supplies only its ``try_once``.

Used by the SQL adapter's SQLite file lock and PostgreSQL advisory lock, and by
the LanceDB folder lock and leased object lock (``backends/lancedb/lock.py``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

FIRST_PAUSE_SECONDS = 0.02
LONGEST_PAUSE_SECONDS = 0.25


Waiting = Callable[[str], None]
"""Told once, in one line, when the lock is held by another process and the wait begins (``waiting_line``)."""


def wait_for(
    try_once: Callable[[], bool],
    timeout: float,
    timed_out: Callable[[], BaseException],
    pause: float = FIRST_PAUSE_SECONDS,
    longest: float = LONGEST_PAUSE_SECONDS,
    waiting: Callable[[], None] | None = None,
) -> None:
    """Call ``try_once`` until it returns True; raise ``timed_out()`` once ``timeout`` seconds have passed.

    ``try_once`` is always called at least once (a zero or negative timeout is one try). The pause between tries
    starts at ``pause`` and grows by half each time up to ``longest`` (an object store is asked less often).
    ``waiting()`` is called once, after the first try failed, when there is time left to wait.
    """
    deadline = time.monotonic() + timeout
    while not try_once():
        if time.monotonic() >= deadline:
            raise timed_out()
        if waiting is not None:
            waiting()
            waiting = None
        time.sleep(pause)
        pause = min(pause * 1.5, longest)


def waiting_line(holder: str, timeout: float) -> str:
    """What a process waiting for the migration lock says (``holder``: who holds it, as its holder line says)."""
    held = f" (held by {holder})" if holder else " (held by another process)"
    return f"waiting for the migration lock{held}, up to {timeout:g} s"


def tell_waiting(waiting: Waiting | None, holder: Callable[[], str], timeout: float) -> Callable[[], None] | None:
    """``wait_for``'s ``waiting`` for a lock whose holder ``holder()`` reads; None when nobody listens."""
    if waiting is None:
        return None
    listener = waiting
    return lambda: listener(waiting_line(holder(), timeout))


def try_flock(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without blocking; False when another process holds it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder_line() -> str:
    """Who holds a lock: written into a lock file by its holder, read back by a process that times out."""
    return f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"


def write_holder(fd: int) -> None:
    """Write this process's ``holder_line`` into the lock file ``fd`` it now holds (best effort)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_line()}\n".encode(), 0)
    except OSError:
        pass


def read_holder(path: Path) -> str:
    """The holder line in the lock file ``path``; empty when there is none (an older migrator holds it)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text.splitlines()[0] if text else ""
