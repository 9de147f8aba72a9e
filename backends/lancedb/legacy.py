"""Converting the bookkeeping of migrator 0.1: one event-log table ``table_migrations``.

0.1 kept every event in ``table_migrations`` itself: the seed's three columns
(``currentVersion`` being the version the *event* is about) plus ``event``,
``description``, ``checksum``, ``durationMs``, ``lanceVersion``, ``attempt``
and ``detail``; rows of the seed's TypeScript tool had a null ``event`` and
adopted versions 1..currentVersion. Readers of the seed's shape saw several
rows per table and versions a table never reached.

The conversion runs on the first run of this release that takes the migration
lock (:meth:`Bookkeeping.ensure`), in two steps, each one commit:

1. Copy the events into ``<version_table>_history``, in their order (a seed row
   becomes an ``adopted`` event). The copy is one append; a re-run counts the
   history's rows and appends only the old rows beyond them, so a copy that
   was interrupted (nothing written) or an old table that grew since are both
   finished, never duplicated.
2. Overwrite ``table_migrations`` with one row per table in the seed's three
   columns, the version replayed from the history (an overwrite keeps Lance
   history: ``table.restore(n)`` still reaches the old log). Committed only on
   the version read in step 1.

``kill -9`` anywhere: before step 2 commits, the table still has the old
layout and the next run resumes at step 1; after it, the conversion is done.
Until then readers convert in memory (:func:`legacy_rows`): ``status`` works on
an unconverted database and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .bookkeeping import (
    EVENT_ADOPTED,
    GUARD_ATTEMPTS,
    Row,
    as_int,
    parse,
    seed_schema,
    wanted_rows,
)
from .common import open_table
from .guard import overwrite

if TYPE_CHECKING:
    from .bookkeeping import Bookkeeping

LEGACY_COLUMNS = ("event", "description", "checksum", "durationMs", "lanceVersion", "attempt", "detail")


def is_legacy(names: set[str]) -> bool:
    """``table_migrations`` has 0.1's event-log columns."""
    return "event" in names


def legacy_rows(records: Iterable[dict[str, Any]]) -> list[Row]:
    """0.1's event-log rows as history events, in their order."""
    rows = []
    for position, item in enumerate(records):
        table, version = item.get("tableName"), as_int(item.get("currentVersion"))
        if table is None or version is None:
            continue
        event = item.get("event")
        rows.append(Row(
            table=str(table), version=version, at_ms=as_int(item.get("lastMigratedAt")) or 0,
            event=str(event) if event else EVENT_ADOPTED,
            description=item.get("description"), checksum=item.get("checksum"),
            duration_ms=as_int(item.get("durationMs")), lance_version=as_int(item.get("lanceVersion")),
            attempt=item.get("attempt"),
            detail=item.get("detail") if event else "adopted from the seed tool's row (converted from migrator 0.1)",
            position=position,
        ))
    return rows


def convert(db: Any, books: Bookkeeping) -> None:
    """Steps 1 and 2 of the module docstring; idempotent. The history table must exist."""
    import pyarrow as pa


    for _ in range(GUARD_ATTEMPTS):
        table = open_table(db, books.name)
        history = open_table(db, books.history)
        if table is None or history is None or not is_legacy(set(table.schema.names)):
            return
        dataset = table.to_lance()
        old = legacy_rows(dataset.to_table().to_pylist())
        copied = history.count_rows()
        if copied < len(old):
            books.add_events(db, old[copied:])
            history.checkout_latest()
        rows = parse(history.to_arrow().to_pylist())
        wanted = wanted_rows(rows, [])
        data = pa.Table.from_pylist([s.record() for s in wanted], schema=seed_schema())
        if overwrite(dataset, data):
            return
    raise RuntimeError(f"{books.name} kept changing while it was being converted; run again")
