"""Rolling a LanceDB table back by time travel: restore the Lance version from before a migration.

A migration that migrator ran has a ``started`` row holding the table's Lance
version from just before it (null: it created the table). Undoing it:

1. Refuse, changing nothing, when the table changed since the migration
   (rows written by the application after it, a restore by hand): the restore
   would discard them. The message names the commits and the manual way out.
   Commits that change no rows (indices, compaction, metadata) and failed
   migrations that were undone do not count. Refused the same way when rows
   were appended *while* the migration ran (its Lance versions from the
   ``started`` one to the ``applied`` one): restoring the version from before
   it would discard them too, and, as for a failed migration, an ``Append`` is
   taken for the application's (a live writer's rows, those
   ``recreate_table`` caught up with, those added after its cut-over while the
   indices were rebuilt). Found by the soak test: a rollback right after a
   recreation under a live writer dropped its rows with exit 0.
2. Append a ``reverting`` row (the intent).
3. Restore ``start``: one commit that brings back the old data, schema and
   schema metadata, so the stamp goes back with it. The commit is guarded on
   the Lance version checked in 1 (:mod:`.guard`): if the application commits
   in between, Lance refuses it and the check runs again (rows changed:
   refused, nothing changed). A migration that
   created its table: first a metadata commit setting the stamp to 0 (atomic),
   then ``drop_table`` (which is not).
4. Append a ``rolled_back`` row; the version leaves the derived state.

After ``kill -9`` between 2 and 4, the stamp tells whether step 3 committed
(:func:`closing_row`, which ``applied()`` uses to read the log right at
once); :func:`settle` writes the closing row, and finishes a drop, as soon as
the next run takes the migration lock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from migrator.errors import IrreversibleMigration, MigrationFailed
from migrator.model import Migration

from ..base import Report
from .bookkeeping import (
    EVENT_FAILED,
    EVENT_REVERTING,
    EVENT_ROLLED_BACK,
    Bookkeeping,
    Row,
    before_migration,
    now_ms,
    open_reverts,
    records_by_version,
    starts,
    why_irreversible,
)
from .common import META_VERSION, Commit, changes_since, describe, metadata_of, open_table, retry, stamp_of
from .guard import TableMoved, restore

__all__ = ["check_revert", "closing_row", "revert", "settle"]


def closing_row(db: Any, intent: Row) -> Row:
    """The row that closes an interrupted rollback: ``rolled_back`` if its restore committed, else ``failed``."""
    table = open_table(db, intent.table)
    stamp = None if table is None else stamp_of(metadata_of(table.schema))
    done = stamp is None or stamp < intent.version
    return Row(intent.table, intent.version, now_ms(), EVENT_ROLLED_BACK if done else EVENT_FAILED,
               intent.description, intent.checksum,
               lance_version=int(table.version) if table is not None and done else None, attempt=intent.attempt,
               detail="rollback completed after an interruption" if done
               else "rollback interrupted before it changed the table")


def settle(db: Any, books: Bookkeeping, report: Report) -> None:
    """Close every interrupted rollback (finishing an interrupted drop). Run under the migration lock."""
    rows = books.read(db) or []
    records, started = records_by_version(rows), starts(rows)
    for intent in open_reverts(rows):
        table_name = intent.table
        row = closing_row(db, intent)
        record = records.get((intent.table, intent.version))
        _, start = before_migration(started, record) if record is not None else (False, 0)
        if row.event == EVENT_ROLLED_BACK and start is None and open_table(db, table_name) is not None:
            db.drop_table(table_name)
            row = replace(row, lance_version=None)
        books.append(db, [row])
        report(f"an interrupted rollback of {table_name} v{intent.version}: {row.detail}")


class _WrittenMeanwhile(RuntimeError):
    pass


def _restore_unmoved(db: Any, name: str, start: int, checked: int, after: int, attempts: int = 3) -> None:
    """Restore ``start`` guarded on the version checked; when the table moved, check again (row changes: refuse)."""
    for _ in range(attempts):
        table = open_table(db, name)
        if table is None:
            raise _WrittenMeanwhile(f"{name} was dropped during the rollback")
        try:
            restore(table.to_lance(), start, read_version=checked, table=name)
            return
        except TableMoved:
            moved = open_table(db, name)
            if moved is None:
                raise _WrittenMeanwhile(f"{name} was dropped during the rollback") from None
            dataset = moved.to_lance()
            changed = changes_since(dataset, after)
            if changed:
                raise _WrittenMeanwhile(f"another writer committed {describe(changed)} to {name} during the "
                                        "rollback, and restoring would discard it") from None
            checked = int(dataset.version)  # only commits that change no rows: check them in again
    raise TableMoved(name, checked, f"the restore of Lance version {start}")


def appended_during(dataset: Any, start: int | None, after: int) -> list[Commit]:
    """The ``Append`` commits among the changes from Lance version ``start`` (None: no table) to ``after``.

    Lance does not record who made a commit; as for a failed migration, an
    ``Append`` made while the migration ran is taken for the application's (a
    row a live writer added during the migration, or caught up with by
    ``recreate_table``, or added after the cut-over while the indices were
    rebuilt): restoring ``start`` would discard it.
    """
    return [c for c in changes_since(dataset, start or 0, upto=after) if c.operation == "Append"]


def check_revert(db: Any, books: Bookkeeping, plan: Sequence[Migration], backend: str) -> None:
    """Raise, changing nothing, the refusal :func:`revert` would raise for any step of a rollback ``plan``.

    ``plan`` is newest first, as the runner runs it. A table's first step is
    checked against the table as it is; each later step against the table as
    the step before it leaves it (restored to that migration's starting Lance
    version), so a rollback is not refused half-way for a reason known before it began.
    """
    rows = books.read(db) or []
    records, started = records_by_version(rows), starts(rows)
    restored: dict[str, int | None] = {}  # table -> the Lance version its previous step restores (None: dropped)
    for migration in plan:
        _, start, _, _ = _refuse_unsafe(db, records, started, migration, backend, restored)
        records.pop((migration.line, migration.version), None)
        restored[migration.line] = start


def _refuse_unsafe(db: Any, records: dict[tuple[str, int], Row], started: dict[str, int | None],
                   migration: Migration, backend: str,
                   restored: dict[str, int | None] | None = None) -> tuple[Row, int | None, Any, int | None]:
    """(record, Lance version to restore, open table, its Lance version checked) of ``migration``; raises when
    undoing it is unsafe.

    ``restored``: tables an earlier step of the same rollback brings back to a Lance version (None: drops).
    """
    name, version, label = migration.line, migration.version, migration.label
    record = records.get((name, version))
    if record is None:
        raise MigrationFailed(f"{label} is not applied", backend=backend, line=name, version=version)
    newest = max((r for (t, _), r in records.items() if t == name), key=lambda r: r.key)
    if newest.version != version:
        raise MigrationFailed(
            f"{label}: {name} v{newest.version} was applied after it (out of order); time travel undoes "
            f"migrations in the order they ran, newest first: roll back v{newest.version} first; nothing was changed",
            backend=backend, line=name, version=version)
    known, start = before_migration(started, record)
    if not known:
        raise IrreversibleMigration(f"{label}: {why_irreversible(record)}; rollback refused, nothing was changed")
    earlier = restored or {}
    table = None if name in earlier and earlier[name] is None else open_table(db, name)
    if table is None and start is not None:
        raise MigrationFailed(f"{label}: {name} no longer exists, so Lance version {start} cannot be restored; "
                              "nothing was changed", backend=backend, line=name, version=version)
    checked = None
    if table is not None:
        after = record.lance_version
        dataset = table.to_lance()
        checked = int(dataset.version)
        changed = [] if after is None else changes_since(dataset, after, upto=earlier.get(name))
        during = [] if after is None or changed else appended_during(dataset, start, after)
        if after is None or changed or during:
            what = (f"has commits since {label} that restoring would discard: {describe(changed)}" if changed
                    else f"had rows appended while {label} ran ({describe(during)}), taken for another writer's, "
                         "that restoring would discard" if during
                    else f"was created again after {label} dropped it")
            by_hand = (f"table.restore({start}), then `migrator stamp {version - 1} --backend {backend} --table {name}`"
                       if start is not None else
                       f"drop it, then `migrator stamp {version - 1} --backend {backend} --table {name}`")
            raise MigrationFailed(f"{label}: {name} {what}; nothing was changed (to discard them: {by_hand})",
                                  backend=backend, line=name, version=version)
    return record, start, table, checked


def revert(db: Any, books: Bookkeeping, migration: Migration, report: Report, backend: str,
           scrub: Callable[[str], str] = str) -> None:
    """Undo ``migration`` (the newest applied one of its table) by restoring the Lance version from before it."""
    name, version, label = migration.line, migration.version, migration.label
    started = time.perf_counter()
    rows = books.read(db) or []
    record, start, table, checked = _refuse_unsafe(db, records_by_version(rows), starts(rows), migration, backend)
    after = record.lance_version
    attempt = uuid.uuid4().hex
    books.reverting(db, record, lance_version=int(table.version) if table is not None else None, attempt=attempt,
                    detail="drop the table" if start is None else f"restore Lance version {start}")
    try:
        if table is not None and start is None:
            dataset = table.to_lance()
            retry(lambda: dataset.update_schema_metadata({META_VERSION: "0"}), what="metadata update")
            db.drop_table(name)
            report(f"dropped {name} (v{version} had created it)")
        elif table is not None:
            assert start is not None and after is not None and checked is not None
            _restore_unmoved(db, name, start, checked, after)
            report(f"restored {name} to Lance version {start}, from before v{version}")
    except Exception as exc:
        closing = closing_row(db, replace(record, event=EVENT_REVERTING, attempt=attempt))
        if closing.event == EVENT_FAILED:
            books.append(db, [closing])
            state = f"{name} unchanged"
        else:  # stamped 0 but not (fully) dropped: the intent stays open, the next lock holder drops it
            state = f"{name} is marked rolled back; the next run finishes dropping it"
        cause = str(exc) if isinstance(exc, (_WrittenMeanwhile, TableMoved)) else f"{type(exc).__name__}: {exc}"
        raise MigrationFailed(scrub(f"{label}: rolling back failed: {cause}; {state}"),
                              backend=backend, line=name, version=version) from exc
    restored = open_table(db, name)
    books.rolled_back(db, record, duration_ms=int((time.perf_counter() - started) * 1000),
                      lance_version=int(restored.version) if restored is not None else None, attempt=attempt)
