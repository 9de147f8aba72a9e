"""Drift: a table whose data disagrees with ``table_migrations`` — restored, rewritten or dropped by hand.

Every migration migrator runs leaves its version in the table's schema metadata
(the stamp, :mod:`.common`), in the same commit as the data or right after it,
and only then writes its bookkeeping row. So for each table the stamp ``S``
and the recorded version ``R`` agree, except:

- ``S`` is the table's next pending version: a crash came between the data
  (or stamp) commit and the bookkeeping row, or the newest version was
  unstamped; ``apply`` settles it without running the migration again. Not drift.
- ``S < R``: the table was restored (``table.restore(n)``) or rewritten to an
  older state by hand. Drift.
- ``S > R`` and ``S`` is not the next pending version: the next upgrade would
  run older migrations over newer data. Drift.
- no stamp, while migrator ran ``R`` (and so stamped it): restored to before
  migrator's first stamp, or overwritten by hand. Drift. (Tables of adopted or
  stamped versions may never have had a stamp: not compared.)
- ``S < R`` where ``R`` was adopted from another tool's row (the seed's
  TypeScript tool goes on migrating beside migrator and writes no stamp): not
  compared either.
- no table, while ``R``'s record says it had one: dropped by hand. Drift.

:func:`find` is pure; the adapter reads each table's stamp into :class:`Seen`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from migrator.model import ISSUE_DRIFT, AppliedMigration, Issue, Migration

from .bookkeeping import is_adopted, recorded_lance_version, was_run

__all__ = ["Seen", "find"]


@dataclass(frozen=True)
class Seen:
    """A table as the storage shows it: whether it exists, and its stamp (None: none)."""

    exists: bool
    stamp: int | None = None


def find(migrations: Sequence[Migration], applied: Sequence[AppliedMigration], seen: Mapping[str, Seen],
         books: str) -> list[Issue]:
    """One ``drift`` issue per table of ``seen`` whose data disagrees with ``applied`` (``books``: its name)."""
    latest: dict[str, AppliedMigration] = {}
    done: dict[str, set[int]] = {}
    for record in applied:
        done.setdefault(record.line, set()).add(record.version)
        if record.line not in latest or record.version > latest[record.line].version:
            latest[record.line] = record
    declared: dict[str, set[int]] = {}
    for migration in migrations:
        declared.setdefault(migration.line, set()).add(migration.version)
    issues = []
    for table in sorted(seen):
        top = latest.get(table)
        recorded = top.version if top is not None else 0
        following = min((v for v in declared.get(table, ()) if v > recorded and v not in done.get(table, ())),
                        default=None)
        message = _disagreement(table, seen[table], top, following, books)
        if message is not None:
            issues.append(Issue(ISSUE_DRIFT, message, table, recorded))
    return issues


def _disagreement(table: str, seen: Seen, top: AppliedMigration | None, following: int | None,
                  books: str) -> str | None:
    recorded = top.version if top is not None else 0
    lance = recorded_lance_version(top) if top is not None else None
    back = f"restore it with table.restore({lance})" if lance is not None else f"bring it back to v{recorded}"
    if not seen.exists:
        if top is None or lance is None:
            return None  # never created, or its last migration dropped it (or adopted: not known)
        return (f"{table}: {books} records v{recorded} but the table does not exist (dropped by hand?); record "
                f"that with `migrator stamp 0 --table {table}` (upgrade then creates it again), or restore it from "
                "a backup")
    stamp = seen.stamp
    if stamp is None:
        if top is None or not was_run(top):
            return None
        return (f"{table}: the table has no migrator stamp but {books} records v{recorded}, which migrator ran and "
                f"stamped (restored or overwritten by hand?); {back}, or record its real version N with "
                f"`migrator stamp N --table {table}`")
    if stamp < recorded:
        if is_adopted(top):
            return None  # another tool (the seed's) recorded it, and it writes no stamp: nothing to compare
        return (f"{table}: the table is at v{stamp} by its stamp but {books} records v{recorded} (restored or "
                f"rewritten by hand?); record its real version with `migrator stamp {stamp} --table {table}` "
                f"(upgrade then runs v{stamp + 1} onwards again), or {back}")
    if stamp > recorded and stamp != following:
        nxt = f"v{following}" if following is not None else "nothing"
        return (f"{table}: the table is at v{stamp} by its stamp but {books} records v{recorded}, and the next "
                f"migration is {nxt} (upgrade would run it over data already at v{stamp}); record its real version "
                f"with `migrator stamp {stamp} --table {table}`, or restore the table to its state at v{recorded}")
    return None
