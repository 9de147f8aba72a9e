"""LanceDB's interrupted steps, as the core reports them (``Backend.interrupted``).

A run writes a ``started`` row (its ``detail``: ``pid N on HOST``) before a migration's function and
an ``applied`` or ``failed`` row after it; a ``started`` row with neither (:func:`.bookkeeping.open_intents`)
is a step whose process died, or is still running it. The next ``upgrade`` settles it by itself
(:mod:`.recovery`), so it is reported with ``settled_by = "upgrade"``: shown by ``status``, never a reason
to refuse.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from migrator.interruptions import this_host
from migrator.model import SETTLED_BY_UPGRADE, Direction, InterruptedStep

from .bookkeeping import EVENT_STARTED, Row, open_intents

_WHO = re.compile(r"pid (?P<pid>[0-9]{1,10}) on (?P<host>.+)")


def started_detail() -> str:
    """The ``detail`` of a ``started`` row: which process on which host runs the step."""
    return f"pid {os.getpid()} on {this_host()}"


def interrupted_steps(rows: Sequence[Row]) -> list[InterruptedStep]:
    """The open ``started`` rows of the history, oldest first (rows of releases before this one name no process)."""
    started = {row.attempt: row for row in rows if row.event == EVENT_STARTED and row.attempt}
    steps = []
    for intent in open_intents(rows).values():
        row = started.get(intent.attempt)
        who = _WHO.fullmatch(row.detail or "") if row is not None else None
        steps.append(InterruptedStep(
            version=intent.version,
            name=(row.description or "") if row is not None else "",
            line=intent.table,
            direction=Direction.UP,
            started_at=datetime.fromtimestamp(intent.at_ms / 1000, tz=UTC) if intent.at_ms else None,
            host=who["host"] if who else None,
            pid=int(who["pid"]) if who else None,
            settled_by=SETTLED_BY_UPGRADE,
        ))
    steps.sort(key=lambda s: (s.started_at or datetime.min.replace(tzinfo=UTC), s.line, s.version))
    return steps
