"""Steps that started and never finished: how they are worded, when they count as running, what they block.

An adapter reports them (``Backend.interrupted``: SQL's marker rows, LanceDB's open ``started`` rows);
this module decides the rest, the same way for every adapter. One wording is used by ``status`` (text and
JSON), ``validate`` / ``check`` (issues of kind ``interrupted``), the refusal of ``upgrade`` / ``rollback``
and the failure message of a non-atomic step, so an operator reads one sentence everywhere.

A step whose process is alive on this host is *running*, not interrupted (the migration lock says so).
Under the migration lock nothing else can be running, so ``refuse`` counts every marker.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Sequence
from datetime import UTC

from migrator.errors import InterruptedMigration
from migrator.model import (
    ISSUE_INTERRUPTED,
    SETTLED_BY_STAMP,
    AppliedMigration,
    Direction,
    InterruptedStep,
    Issue,
    Migration,
)


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie (a killed child nobody reaped yet)."""
    if pid <= 0:  # 0 and negative numbers name process groups for kill(): never a migration's process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()
    except OSError:
        return True  # no /proc (not Linux): kill(0) said it exists
    return not state or state[0] not in ("Z", "X")


def is_running(step: InterruptedStep) -> bool:
    """The step's process is alive on this host and has not reported a failure: it is still running the step.

    A marker of this very process is never "running": a step of ours is not running while we read.
    """
    if step.error is not None or step.pid is None or step.host != this_host() or step.pid == os.getpid():
        return False
    return process_alive(step.pid)


def observed(backend: str, steps: Sequence[InterruptedStep], migrations: Sequence[Migration],
             applied: Sequence[AppliedMigration]) -> tuple[InterruptedStep, ...]:
    """``steps`` with ``running`` and ``message`` filled in."""
    found = []
    for step in steps:
        step = dataclasses.replace(step, running=is_running(step))
        found.append(dataclasses.replace(step, message=describe(backend, step, migrations=migrations,
                                                                applied=applied)))
    return tuple(found)


def other_version(step: InterruptedStep, applied: Sequence[AppliedMigration]) -> int:
    """The line's version without the step: the highest recorded version of its line other than the step's."""
    return max((r.version for r in applied if r.line == step.line and r.version != step.version), default=0)


def way_out(backend: str, step: InterruptedStep, other: int) -> str:
    """What an operator does about an interrupted step (``other``: :func:`other_version`)."""
    if step.settled_by != SETTLED_BY_STAMP:
        return ("the next `migrator upgrade` settles it (finishes it, or undoes what it committed and runs it "
                "again)")
    table = f" --table {step.line}" if step.line else ""
    if step.direction is Direction.UP:
        done, undone, finished = step.version, other, "applied"
    else:
        done, undone, finished = other, step.version, "rolled back"
    return (f"look at the schema, finish or undo its statements by hand, then run `migrator stamp {done} "
            f"--backend {backend}{table}` if it is {finished} or `migrator stamp {undone} --backend {backend}"
            f"{table}` if it is not (either clears the mark)")


def label(step: InterruptedStep, migrations: Sequence[Migration] = ()) -> str:
    """The step as messages name migrations: its file's label when the file is known."""
    for migration in migrations:
        if migration.line == step.line and migration.version == step.version:
            return migration.label
    if step.line:
        return f"{step.line} v{step.version} ({step.name})"
    return f"version {step.version} ({step.name})"


def _started(step: InterruptedStep) -> str:
    parts = []
    if step.started_at is not None:
        parts.append(f"started {step.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    else:
        parts.append("started")
    if step.pid is not None:
        parts.append(f"by pid {step.pid}")
    if step.host:
        parts.append(f"on {step.host}")
    return " ".join(parts)


def describe(backend: str, step: InterruptedStep, *, migrations: Sequence[Migration] = (),
             applied: Sequence[AppliedMigration] = ()) -> str:
    """One sentence: which step, when and where it started, what became of it, and the way out."""
    name = f"{label(step, migrations)} ({step.direction.value})"
    if step.running:
        return f"{name} is running: {_started(step)}"
    ending = f"failed: {step.error}" if step.error else "never finished"
    partly = "; its changes may be partly applied" if step.settled_by == SETTLED_BY_STAMP else ""
    return (f"{name} was interrupted: {_started(step)}, {ending}{partly}: "
            f"{way_out(backend, step, other_version(step, applied))}")


def issues(steps: Sequence[InterruptedStep]) -> list[Issue]:
    """``interrupted`` issues (``validate`` and ``check`` exit 1) of :func:`observed` steps: those an operator
    must settle, and not running."""
    return [Issue(ISSUE_INTERRUPTED, step.message, step.line, step.version)
            for step in steps if step.settled_by == SETTLED_BY_STAMP and not step.running]


def refuse(backend: str, steps: Sequence[InterruptedStep], migrations: Sequence[Migration],
           applied: Sequence[AppliedMigration], *, doing: str) -> None:
    """Raise InterruptedMigration (exit 1, nothing changed) when a step waits for an operator's ``stamp``.

    Called under the migration lock: no other process can be running a step then, so every marker counts,
    whatever became of the process that wrote it.
    """
    blocking = [dataclasses.replace(step, running=False) for step in steps if step.settled_by == SETTLED_BY_STAMP]
    if not blocking:
        return
    more = f" (and {len(blocking) - 1} more, see `migrator status`)" if len(blocking) > 1 else ""
    sentence = describe(backend, blocking[0], migrations=migrations, applied=applied)
    raise InterruptedMigration(f"{backend}: {doing} refused, nothing was changed: {sentence}{more}")
