"""What to do with a migration an earlier run may have left half done: a named, pure classification.

Before running table T's migration vN, :func:`observe` reads what the
storage says (T's stamp, the open ``started`` intent of T vN, the audit of an
unfinished recreation, T's commits since the intent started) into a
:class:`Situation`; :func:`classify` maps it to one :class:`Recovery` without
touching anything, and ``LanceBackend._apply`` acts on it in one ``match``.

=====================  ===========================================================================================
``RUN``                nothing to recover (or nothing worth a word): run the migration
``FINISH``             T is stamped vN: the data got there before the bookkeeping (a crash after the data or stamp
                       commit); build the indices, write the stamp and the ``applied`` row, do not run it again
``FINISH_UNCHECKED``   as ``FINISH``, but the unfinished recreation's commit is gone from the history: say so
``RESTORE_HIDDEN``     T is stamped vN by a recreation whose overwrite hid rows another writer committed: restore
                       the version before the overwrite (their rows), then run again
``REFUSE_HIDDEN``      as ``RESTORE_HIDDEN``, but T changed again after the overwrite: refuse, nothing changed
``RERUN_NO_TABLE``     the interrupted run left no table although T existed before it: run again
``DROP_THEN_RUN``      the interrupted run created T and nobody appended since: drop T, run again
``REFUSE_CREATED``     the interrupted run created T and rows were appended since: refuse
``RERUN_UNCHANGED``    the interrupted run died before it committed anything: run again
``RERUN_KEEP_APPENDS`` the commits since the interrupted run started only add rows (the app's): keep them, run again
``RESTORE_THEN_RUN``   the interrupted run committed changes, no appends mixed in: restore its start, run again
``RESTORE_KEEP_APPENDS`` the interrupted run's changes are mixed with appends (taken as the application's): restore
                       its start, append their rows again (:mod:`.undo`), run again
=====================  ===========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .bookkeeping import Intent
from .common import Commit, commits, metadata_of, stamp_of
from .recreate import Audit, audit_overwrite

__all__ = ["Recovery", "Situation", "classify", "observe"]


class Recovery(StrEnum):
    RUN = "run"
    FINISH = "finish"
    FINISH_UNCHECKED = "finish_unchecked"
    RESTORE_HIDDEN = "restore_hidden"
    REFUSE_HIDDEN = "refuse_hidden"
    RERUN_NO_TABLE = "rerun_no_table"
    DROP_THEN_RUN = "drop_then_run"
    REFUSE_CREATED = "refuse_created"
    RERUN_UNCHANGED = "rerun_unchanged"
    RERUN_KEEP_APPENDS = "rerun_keep_appends"
    RESTORE_THEN_RUN = "restore_then_run"
    RESTORE_KEEP_APPENDS = "restore_keep_appends"


@dataclass(frozen=True)
class Situation:
    """What the storage says about table T before its migration vN runs."""

    version: int                      # N, the migration's version
    exists: bool                      # T exists
    stamp: int | None = None          # T's stamp (``migrator.version``)
    intent: Intent | None = None      # an open ``started`` row of T vN (its process died)
    audit: Audit | None = None        # T is stamped vN by a recreation not yet recorded: its audit
    current: int | None = None        # T's Lance version
    history: tuple[Commit, ...] = ()  # T's commits since the intent started (from version 2 if it created T)

    @property
    def appends(self) -> list[Commit]:
        return [c for c in self.history if c.operation == "Append"]

    @property
    def changes(self) -> list[Commit]:
        """Row-changing commits other than appends (the interrupted run's, most likely)."""
        return [c for c in self.history if c.changes_rows and c.operation != "Append"]


def observe(table: Any, version: int, intent: Intent | None) -> Situation:
    """Read what :func:`classify` needs: ``table`` is T opened (None: no such table)."""
    if table is None:
        return Situation(version=version, exists=False, intent=intent)
    meta = metadata_of(table.schema)
    stamp = stamp_of(meta)
    current = int(table.version)
    if stamp == version:
        return Situation(version=version, exists=True, stamp=stamp, intent=intent, current=current,
                         audit=audit_overwrite(table, meta))
    history: tuple[Commit, ...] = ()
    if intent is not None and current != intent.start_version:
        first = 2 if intent.start_version is None else intent.start_version + 1
        history = tuple(commits(table.to_lance(), first, current))
    return Situation(version=version, exists=True, stamp=stamp, intent=intent, current=current, history=history)


def classify(s: Situation) -> Recovery:
    """The recovery for ``s``; pure."""
    if s.exists and s.stamp == s.version:
        if s.audit is not None and s.audit.data_version is None:
            return Recovery.FINISH_UNCHECKED
        if s.audit is not None and s.audit.lost:
            return Recovery.REFUSE_HIDDEN if s.audit.after else Recovery.RESTORE_HIDDEN
        return Recovery.FINISH
    if s.intent is None:
        return Recovery.RUN
    start = s.intent.start_version
    if not s.exists:
        return Recovery.RUN if start is None else Recovery.RERUN_NO_TABLE
    if start is None:
        return Recovery.REFUSE_CREATED if s.appends else Recovery.DROP_THEN_RUN
    if s.current == start:
        return Recovery.RERUN_UNCHANGED
    if not s.changes:
        return Recovery.RERUN_KEEP_APPENDS if s.appends else Recovery.RUN
    return Recovery.RESTORE_KEEP_APPENDS if s.appends else Recovery.RESTORE_THEN_RUN
