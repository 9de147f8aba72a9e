"""Guarded commits: every restore and overwrite migrator makes on a user table commits on the version it checked.

Lance resolves a commit against the versions committed since its read
version, and a ``Restore`` or ``Overwrite`` conflicts with nothing: an
application's ``Append`` committed in between is silently discarded (DESIGN.md
section 8a). So migrator commits those operations only through :func:`commit`,
which asks Lance for exactly one attempt (``max_retries=0``) through Lance's
own commit handler, whose manifest write is an atomic create-if-absent (a
conditional put on object stores, a no-replace link locally): of two writers
racing for version ``v + 1`` exactly one wins and the other gets a conflict.

* An ``Overwrite`` with ``max_retries=0`` is Lance's *strict overwrite*: no
  rebase, version ``read_version + 1`` or a conflict (:class:`TableMoved`,
  nothing committed).
* A ``Restore`` is always rebased by Lance over the commits made since its
  read version (it conflicts with none of them), so it may land at a later
  version, hiding those commits. That is seen at once (its version is not
  ``read_version + 1``) and taken back: the version just before it is
  restored the same way, which brings the other writers' commits back (rows
  a writer appended on top of migrator's restore meanwhile are appended
  again), and the caller gets :class:`TableMoved` to check again. If even
  that cannot be done, :class:`HiddenCommits` names the version holding them.

Used by every site (undo of a failed or interrupted migration, rollback,
``recreate_table``'s cut-over, the bookkeeping table's overwrite). After the
commit, the version it made is read back and must be migrator's transaction.

Why not a ``commit_lock``: Lance's lock-based commit path checks that manifest
``v + 1`` is absent and then writes it with a plain put; an application
commit (which does not take the lock) landing between the two was replaced
by migrator's manifest, its rows gone while the application had been told
they were committed. The soak test lost one appended batch in about 1 of 25
trials that way (``tests/lance_scripts/guard_stress.py`` shows it within a
minute: a ``Restore`` or ``Overwrite`` committed while a writer appends back to
back).
"""

from __future__ import annotations

import uuid
from typing import Any

from .common import TX_OP, commits, describe

__all__ = ["HiddenCommits", "TableMoved", "commit", "overwrite", "restore"]

TX_ID = "migrator.commit"
TAKE_BACKS = 3


class TableMoved(RuntimeError):
    """Another writer committed after the version migrator checked; nothing was committed."""

    def __init__(self, table: str, read_version: int, what: str) -> None:
        super().__init__(f"{table}: another writer committed after Lance version {read_version}; "
                         f"{what} was not committed")
        self.table = table
        self.read_version = read_version


class HiddenCommits(RuntimeError):
    """A restore landed over other writers' commits and could not be taken back: the message names their version."""


def commit(dataset: Any, operation: Any, *, read_version: int, table: str, what: str,
           properties: dict[str, str] | None = None) -> Any:
    """Commit ``operation`` on ``dataset`` (a ``lance.LanceDataset``) only as version ``read_version + 1``.

    Returns the new dataset; raises :class:`TableMoved` (nothing of migrator's left in effect) when another
    writer got there first. ``what`` names the commit in messages.
    """
    new = _commit_once(dataset, operation, read_version=read_version, table=table, what=what,
                       properties=properties)
    landed = int(new.version)
    if landed != read_version + 1:  # a Restore rebased over other writers' commits: take it back
        _take_back(new, landed, table, what)
        raise TableMoved(table, read_version, what)
    return new


def _commit_once(dataset: Any, operation: Any, *, read_version: int, table: str, what: str,
                 properties: dict[str, str] | None) -> Any:
    """One attempt through Lance's atomic commit handler; the new dataset, its transaction checked to be ours."""
    import lance

    tag = uuid.uuid4().hex
    props = {TX_OP: what, **(properties or {}), TX_ID: tag}
    transaction = lance.Transaction(read_version=read_version, operation=operation, transaction_properties=props)
    try:
        new = lance.LanceDataset.commit(dataset, transaction, max_retries=0)
    except Exception as exc:
        if _is_conflict(exc):
            raise TableMoved(table, read_version, what) from exc
        raise
    landed = new.read_transaction(int(new.version))
    if landed is None or (landed.transaction_properties or {}).get(TX_ID) != tag:
        raise HiddenCommits(f"{table}: {what} was committed but Lance version {int(new.version)} is not it; "
                            "check the table's versions before writing to it again")
    return new


def _take_back(dataset: Any, landed: int, table: str, what: str) -> None:
    """Restore the version before ``landed`` (migrator's restore that hid other writers' commits).

    If a writer committed on top of migrator's restore meanwhile (an application that reopened the table at
    once), the take-back lands over it too and hides it: its rows, made on the restored version, are appended
    again (read from the versions that added them, cast to the schema taken back), in one more commit.
    """
    import lance

    hidden = landed - 1
    for _ in range(TAKE_BACKS):
        try:
            new = _commit_once(dataset, lance.LanceOperation.Restore(hidden), read_version=landed, table=table,
                               what=f"taking back {what}", properties=None)
            break
        except TableMoved:  # another writer took the very version it aimed at: aim again
            continue
    else:
        raise HiddenCommits(f"{table}: {what} landed over other writers' commits and could not be taken back; "
                            f"their rows are in Lance version {hidden}: restore it by hand (table.restore({hidden}))")
    back = int(new.version)
    if back == landed + 1:
        return
    on_top = commits(new, landed + 1, back - 1)
    if any(c.changes_rows and c.operation != "Append" for c in on_top):
        raise HiddenCommits(f"{table}: {what} landed over other writers' commits; taking it back hid the commits "
                            f"made on top of it ({describe(on_top)}), which cannot be appended again: restore "
                            f"Lance version {back - 1} by hand (table.restore({back - 1})) to see them")
    from .undo import CannotKeep, appended_fragments

    try:
        fragments, _ = appended_fragments(new, [c.version for c in on_top if c.operation == "Append"],
                                          new.schema)
    except CannotKeep as exc:
        raise HiddenCommits(f"{table}: {what} landed over other writers' commits; taking it back hid the rows "
                            f"appended on top of it ({describe(on_top)}), which cannot take the table's schema "
                            f"({exc}): restore Lance version {back - 1} by hand to see them") from exc
    lance.LanceDataset.commit(new, lance.Transaction(
        read_version=back, operation=lance.LanceOperation.Append(fragments),
        transaction_properties={TX_OP: "kept", "migrator.kept": describe(on_top)}))


def restore(dataset: Any, version: int, *, read_version: int, table: str,
            properties: dict[str, str] | None = None) -> Any:
    """Restore ``version`` as ``read_version + 1``, or :class:`TableMoved` if someone committed after it."""
    import lance

    return commit(dataset, lance.LanceOperation.Restore(version), read_version=read_version, table=table,
                  what=f"the restore of Lance version {version}", properties=properties)


def _is_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "conflict" in text or type(exc).__name__ == "CommitConflictError"


def overwrite(dataset: Any, data: Any) -> bool:
    """Overwrite ``dataset`` (a ``lance.LanceDataset``) with ``data`` (a ``pyarrow.Table``) only as its next version.

    False, nothing committed, when another writer committed since ``dataset`` was read (read it again and retry).
    """
    from lance.fragment import write_fragments

    read_version = int(dataset.version)
    written = write_fragments(data, dataset, data.schema, mode="overwrite", return_transaction=True,
                              data_storage_version=dataset.data_storage_version)
    try:
        commit(dataset, written.operation, read_version=read_version, table=str(dataset.uri),
               what="an overwrite")
    except TableMoved:
        return False
    return True
