"""Native schema evolution helpers behind :mod:`migrator.lancedb` (no data rewrite unless noted).

Each is one Lance commit on the table (plus a metadata commit when recorded
index specs must follow a renamed or dropped column) and returns the table's
new Lance version.
"""

from __future__ import annotations

from typing import Any

from migrator.lancedb import Index

from .common import metadata_of, open_table, recorded_indices
from .indices import record


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
    table.add_columns(items)
    table.checkout_latest()
    return int(table.version)


def add_column_from_sql(db: Any, name: str, column: str, expression: str) -> int:
    """A column computed from an SQL expression over each row (reads the inputs, writes the new column)."""
    table = _table(db, name)
    table.add_columns({column: expression})
    table.checkout_latest()
    return int(table.version)


def rename_column(db: Any, name: str, old: str, new: str) -> int:
    table = _table(db, name)
    table.alter_columns({"path": old, "rename": new})
    table.checkout_latest()
    specs = recorded_indices(metadata_of(table.schema))
    if any(s.column == old for s in specs):
        renamed = [Index.from_dict({**s.to_dict(), "column": new}) if s.column == old else s for s in specs]
        record(table, renamed)
    return int(table.version)


def make_nullable(db: Any, name: str, column: str) -> int:
    table = _table(db, name)
    table.alter_columns({"path": column, "nullable": True})
    table.checkout_latest()
    return int(table.version)


def drop_columns(db: Any, name: str, columns: list[str]) -> int:
    table = _table(db, name)
    table.drop_columns(columns)
    table.checkout_latest()
    specs = recorded_indices(metadata_of(table.schema))
    kept = [s for s in specs if s.column not in columns]
    if len(kept) != len(specs):
        record(table, kept)
    return int(table.version)
