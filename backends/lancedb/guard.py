"""Guarded commits: every restore and overwrite migrator makes on a user table commits on the version it checked.

Lance resolves a commit against the versions committed since its read
version, and a ``Restore`` or ``Overwrite`` conflicts with nothing: an
application's ``Append`` committed in between is silently discarded (DESIGN.md
section 8a). So migrator never commits those operations bare. It passes Lance
a ``commit_lock`` that refuses every version but ``read_version + 1``: if
another writer committed after the version migrator checked, Lance asks the
lock for a later version, the lock refuses, and nothing is committed; the
caller gets :class:`TableMoved` and re-checks. One helper, :func:`commit`,
used by every site (undo of a failed or interrupted migration, rollback,
``recreate_table``'s cut-over).

After the commit, version ``read_version + 1`` is read back and must be
migrator's transaction (:class:`TableMoved` otherwise).

Known residual window: Lance's lock-based commit path checks that the
manifest ``v+1`` is free and then writes it with a plain put; a writer that
does not use the lock and commits ``v+1`` between those two steps is neither
refused nor seen here (its manifest is replaced by migrator's). Closing it
needs a conditional put in Lance's lock path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .common import TX_OP

__all__ = ["GuardedCommit", "TableMoved", "commit", "restore"]

TX_ID = "migrator.commit"


class TableMoved(RuntimeError):
    """Another writer committed after the version migrator checked; nothing was committed."""

    def __init__(self, table: str, read_version: int, what: str) -> None:
        super().__init__(f"{table}: another writer committed after Lance version {read_version}; "
                         f"{what} was not committed")
        self.table = table
        self.read_version = read_version


@dataclass
class GuardedCommit:
    """A ``commit_lock`` for Lance that only lets version ``read_version + 1`` be committed."""

    read_version: int
    refused: list[int] = field(default_factory=list)

    @contextmanager
    def __call__(self, version: int) -> Iterator[None]:
        if version != self.read_version + 1:
            self.refused.append(version)
            raise RuntimeError(f"migrator: refusing to commit Lance version {version}: only "
                               f"{self.read_version + 1} keeps the other writers' commits")
        yield


def commit(dataset: Any, operation: Any, *, read_version: int, table: str, what: str,
           properties: dict[str, str] | None = None) -> Any:
    """Commit ``operation`` on ``dataset`` (a ``lance.LanceDataset``) only as version ``read_version + 1``.

    Returns the new dataset; raises :class:`TableMoved` (nothing committed by migrator) when another writer got
    there first. ``what`` names the commit in messages.
    """
    import lance

    tag = uuid.uuid4().hex
    props = {TX_OP: what, **(properties or {}), TX_ID: tag}
    guard = GuardedCommit(read_version)
    transaction = lance.Transaction(read_version=read_version, operation=operation, transaction_properties=props)
    try:
        new = lance.LanceDataset.commit(dataset, transaction, commit_lock=guard, max_retries=0)
    except Exception as exc:
        if guard.refused or _is_conflict(exc):
            raise TableMoved(table, read_version, what) from exc
        raise
    landed = new.read_transaction(read_version + 1)
    if int(new.version) != read_version + 1 or landed is None or \
            (landed.transaction_properties or {}).get(TX_ID) != tag:
        raise TableMoved(table, read_version, what)
    return new


def restore(dataset: Any, version: int, *, read_version: int, table: str,
            properties: dict[str, str] | None = None) -> Any:
    """Restore ``version`` as ``read_version + 1``, or :class:`TableMoved` if someone committed after it."""
    import lance

    return commit(dataset, lance.LanceOperation.Restore(version), read_version=read_version, table=table,
                  what=f"the restore of Lance version {version}", properties=properties)


def _is_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "conflict" in text or "commit handler" in text


def overwrite(dataset: Any, data: Any) -> bool:
    """Overwrite ``dataset`` (a ``lance.LanceDataset``) with ``data`` only as its next version.

    False, nothing committed, when another writer committed since ``dataset`` was read (read it again and retry).
    """
    import lance

    guard = GuardedCommit(int(dataset.version))
    try:
        lance.write_dataset(data, dataset, mode="overwrite", commit_lock=guard)
    except Exception:
        if guard.refused:
            return False
        raise
    return True
