"""Native schema evolution helpers behind :mod:`migrator.lancedb` (no data rewrite unless noted).

Each is one Lance commit on the table (plus a metadata commit when recorded
index specs must follow a renamed or dropped column) and returns the table's
new Lance version. A commit preempted by another writer's append (Lance:
"Retryable commit conflict") is retried on the latest version: applications
keep writing during migrations.
"""

from __future__ import annotations

from typing import Any

from migrator.lancedb import Index

from .common import metadata_of, open_table, recorded_indices, retry
from .indices import record


def _evolve(table: Any, change: Any) -> None:
    """Run one schema change on ``table``, retried on the latest version while other writers' commits preempt it."""

    def attempt() -> None:
        table.checkout_latest()
        change()

    retry(attempt, attempts=30, what="schema change")
    table.checkout_latest()


def _table(db: Any, name: str) -> Any:
    table = open_table(db, name)
    if table is None:
        raise ValueError(f"table {name!r} does not exist")
    return table


def add_columns(db: Any, name: str, fields: Any) -> int:
    """All-null nullable columns: a metadata-only commit, data files are not rewritten."""
    import pyarrow as pa

    if isinstance(fields, pa.Field):
        items = [fields]
    elif isinstance(fields, pa.Schema):
        items = list(fields)
    else:
        items = list(fields)
    for item in items:
        if not isinstance(item, pa.Field):
            raise TypeError(f"add_columns({name!r}): expected pyarrow fields, got {type(item).__name__}")
    items = [f if f.nullable else f.with_nullable(True) for f in items]
    table = _table(db, name)
    _evolve(table, lambda: table.add_columns(items))
    return int(table.version)


def add_column_from_sql(db: Any, name: str, column: str, expression: str) -> int:
    """A column computed from an SQL expression over each row (reads the inputs, writes the new column)."""
    table = _table(db, name)
    _evolve(table, lambda: table.add_columns({column: expression}))
    return int(table.version)


def rename_column(db: Any, name: str, old: str, new: str) -> int:
    table = _table(db, name)
    _evolve(table, lambda: table.alter_columns({"path": old, "rename": new}))
    specs = recorded_indices(metadata_of(table.schema))
    if any(s.column == old for s in specs):
        renamed = [Index.from_dict({**s.to_dict(), "column": new}) if s.column == old else s for s in specs]
        record(table, renamed)
    return int(table.version)


def make_nullable(db: Any, name: str, column: str) -> int:
    table = _table(db, name)
    _evolve(table, lambda: table.alter_columns({"path": column, "nullable": True}))
    return int(table.version)


def drop_columns(db: Any, name: str, columns: list[str]) -> int:
    table = _table(db, name)
    _evolve(table, lambda: table.drop_columns(columns))
    specs = recorded_indices(metadata_of(table.schema))
    kept = [s for s in specs if s.column not in columns]
    if len(kept) != len(specs):
        record(table, kept)
    return int(table.version)
