"""Undo a migration's commits on a table without discarding the commits of writers migrator does not control.

Used when a migration failed (and, the same way, for an interrupted one found
on the next run). The table was at Lance version ``start`` before the
migration; the commits since are the migration's and, possibly, an
application's that kept writing. Lance does not say who made a commit, so
the rule is the one crash recovery already follows: **an ``Append`` is the
application's** (a migration that appends rows itself and then fails keeps
them, and the message says so); every other row-changing commit is the
migration's.

* Only appends since ``start`` (the migration changed no rows): the table is
  left as it is; their rows stay.
* No appends: ``start`` is restored with a guarded commit (:mod:`.guard`).
* Both: the appended rows are read from the versions that added them (the
  fragments new in version ``k`` against ``k - 1``), cast to ``start``'s
  schema (a column only the failed migration added is dropped from them; a
  column they lack must be nullable), written as new fragments, then
  ``start`` is restored (guarded on the version checked) and the fragments
  appended in the next commit. If the cast is impossible the table is left
  as it is and the error names the commits.

An undo interrupted after its append commit is recognised on the next run by
that commit's ``migrator.op = reapply`` property: the version it made (the
old state plus the appended rows) becomes the state to restore, so no row is
appended twice. When another writer commits while this runs, the guarded restore is refused
and everything is read again (a few times, then the table is left as it is
and the error says so). Nothing here exits quietly with an application row
gone: every outcome is described in the returned note.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .common import TX_OP, Commit, Report, changes_since, commits, open_table
from .common import describe as describe_all
from .guard import TableMoved, restore

__all__ = ["CannotKeep", "Undo", "appended_fragments", "undo_since"]

ATTEMPTS = 5
TX_REAPPLY = "reapply"


@dataclass(frozen=True)
class Undo:
    """What :func:`undo_since` did: a note for the error message, and whether no application row is gone."""

    note: str
    safe: bool  # False: the table was left as it is (or a restore failed): the note says what to do


def undo_since(db: Any, name: str, start: int, report: Report) -> Undo:
    """Bring table ``name`` back to Lance version ``start``, keeping the rows other writers appended since."""
    for _ in range(ATTEMPTS):
        table = open_table(db, name)
        if table is None:
            return Undo(f"{name} was dropped by the migration; its files are gone, restore it from a backup "
                        f"(it was at Lance version {start})", False)
        dataset = table.to_lance()
        latest = int(dataset.version)
        if latest == start:
            return Undo(f"{name} unchanged at Lance version {start}", True)
        history = commits(dataset, start + 1, latest)
        done = [c for c in history if c.properties.get(TX_OP) == TX_REAPPLY]
        if done:  # an earlier undo finished here (then died before its bookkeeping): that is the state to keep
            start = done[-1].version
            continue
        in_effect = changes_since(dataset, start)  # a restore taken back (guard.py) hides the commits it undid
        appends = [c for c in in_effect if c.operation == "Append"]
        changes = [c for c in in_effect if c.changes_rows and c.operation != "Append"]
        if not changes:
            if not appends:
                return Undo(f"{name} unchanged: the commits since Lance version {start} change no rows", True)
            return Undo(f"{name} left as it is: the commits since Lance version {start} only append rows "
                        f"({describe(appends)}), taken as other writers' and kept", True)
        try:
            if not appends:
                restore(dataset, start, read_version=latest, table=name)
                report(f"restored Lance version {start} (from before the migration)")
                return Undo(f"{name} restored to Lance version {start} (its state before the migration)", True)
            return _restore_keeping(dataset, name, start, latest, appends, report)
        except TableMoved:
            report(f"another writer committed to {name} while it was being restored; checking again")
            continue
        except CannotKeep as exc:
            return Undo(f"{name} left as it is (Lance version {latest}, the migration's commits included): "
                        f"the rows other writers appended ({describe(appends)}) cannot be kept in the schema of "
                        f"Lance version {start} ({exc}); restore by hand (table.restore({start})) only if they "
                        "may be lost", False)
    return Undo(f"{name} left as it is: other writers kept committing while it was being restored; it holds the "
                f"migration's commits since Lance version {start} (restore by hand: table.restore({start}))", False)


def describe(items: list[Commit], most: int = 8) -> str:
    """The commits, at most ``most`` of them named (a busy application makes thousands)."""
    if len(items) <= most:
        return describe_all(items)
    return f"{describe_all(items[:most])} and {len(items) - most} more, up to version {items[-1].version}"


class CannotKeep(ValueError):
    pass


def _restore_keeping(dataset: Any, name: str, start: int, latest: int, appends: list[Commit],
                     report: Report) -> Undo:
    """Write the appended rows in ``start``'s schema, restore ``start`` guarded on ``latest``, append them."""
    import lance

    target = dataset.checkout_version(start).schema
    fragments, rows = appended_fragments(dataset, [c.version for c in appends], target)
    restored = restore(dataset, start, read_version=latest, table=name)
    lance.LanceDataset.commit(restored, lance.Transaction(
        read_version=int(restored.version), operation=lance.LanceOperation.Append(fragments),
        transaction_properties={TX_OP: TX_REAPPLY, "migrator.restored": str(start)}))
    report(f"restored Lance version {start} (from before the migration) and appended again the {rows:,} row(s) "
           f"other writers had committed meanwhile ({describe(appends)})")
    return Undo(f"{name} restored to Lance version {start} (its state before the migration), with the {rows:,} "
                f"row(s) other writers appended meanwhile ({describe(appends)}) kept", True)


def appended_fragments(dataset: Any, versions: list[int], target: Any) -> tuple[list[Any], int]:
    """The rows the Appends at ``versions`` added, cast to schema ``target``, written as uncommitted fragments.

    Returns the fragments and their row count. Raises :class:`CannotKeep` when the rows cannot take ``target``.
    """
    import pyarrow as pa
    from lance.fragment import write_fragments

    plan = [(version, _cast_plan(dataset.checkout_version(version).schema, target)) for version in versions]
    rows = 0
    failed: list[CannotKeep] = []

    def batches() -> Iterator[Any]:
        nonlocal rows
        for version, columns in plan:
            for batch in _appended(dataset, version):
                rows += batch.num_rows
                try:
                    yield _cast(batch, target, columns)
                except CannotKeep as exc:  # Lance wraps what the stream raises: keep it to raise it as it is
                    failed.append(exc)
                    raise

    reader = pa.RecordBatchReader.from_batches(target, batches())
    try:
        fragments = write_fragments(reader, dataset, target, mode="append",
                                    data_storage_version=dataset.data_storage_version)
    except Exception:
        if failed:
            raise failed[0] from None
        raise
    return fragments, rows


def _appended(dataset: Any, version: int) -> Iterator[Any]:
    """The rows the Append at ``version`` added: its fragments that ``version - 1`` lacks, as they were then."""
    at = dataset.checkout_version(version)
    before = {f.fragment_id for f in dataset.checkout_version(version - 1).get_fragments()}
    new = [f for f in at.get_fragments() if f.fragment_id not in before]
    if new:
        yield from at.scanner(fragments=new).to_batches()


def _cast_plan(source: Any, target: Any) -> list[str | None]:
    """For each column of ``target``: the ``source`` column to cast from (None: all null). Raises CannotKeep."""
    import pyarrow as pa

    plan: list[str | None] = []
    for f in target:
        index = source.get_field_index(f.name)
        if index < 0:
            if not f.nullable:
                raise CannotKeep(f"they lack the non-null column {f.name}")
            plan.append(None)
            continue
        have = source.field(index).type
        if not have.equals(f.type):
            try:
                pa.array([], type=have).cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CannotKeep(f"column {f.name} is {have} and cannot become {f.type}") from exc
        plan.append(f.name)
    return plan


def _cast(batch: Any, target: Any, columns: list[str | None]) -> Any:
    import pyarrow as pa

    arrays = []
    for f, column in zip(target, columns, strict=True):
        if column is None:
            arrays.append(pa.nulls(batch.num_rows, f.type))
            continue
        values = batch.column(column)
        if not values.type.equals(f.type):
            try:
                values = values.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CannotKeep(f"a value of column {f.name} cannot become {f.type}: {exc}") from exc
        arrays.append(values)
    return pa.RecordBatch.from_arrays(arrays, schema=target)
