"""Schema snapshots for the stairway test: what a migration's ``down`` (or a LanceDB rollback) must restore.

A snapshot is a sorted list of lines, one per fact (``table documents: column title TEXT NULL``), so two
snapshots compare with ``==`` and differ by a readable unified diff. Bookkeeping (the version table and its
companions) is left out: its rows change with every step by design.

SQL: the SQLAlchemy inspector's view of every table (columns with their types, nullability and server
defaults, primary key, foreign keys, indices, unique and check constraints), every view with its definition,
and the triggers SQLite and PostgreSQL list. LanceDB: each table's Arrow schema (fields, types, nullability,
schema metadata) and its index list (name, type, columns).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from migrator.config import BackendConfig


def bookkeeping_tables(cfg: BackendConfig) -> frozenset[str]:
    """The tables migrator keeps for ``cfg``'s own records (left out of snapshots)."""
    if cfg.type == "lancedb":
        name = cfg.version_table or "table_migrations"
        return frozenset({name, f"{name}_history"})
    name = cfg.version_table or "migrations"
    return frozenset({name, f"{name}_dirty"})


def take(cfg: BackendConfig) -> list[str]:
    """The schema of ``cfg``'s database now, bookkeeping left out."""
    skip = bookkeeping_tables(cfg)
    if cfg.type == "lancedb":
        return lance_schema(cfg.location, dict(cfg.options.get("storage_options") or {}), skip)
    return sql_schema(cfg.location, skip)


def diff(before: Sequence[str], after: Sequence[str], before_name: str, after_name: str) -> str:
    """A unified diff of two snapshots, without the ``@@`` position lines (they mean nothing here)."""
    lines = difflib.unified_diff(list(before), list(after), fromfile=before_name, tofile=after_name, lineterm="", n=2)
    return "\n".join(line for line in lines if not line.startswith("@@"))


def sql_schema(url: str, skip: Iterable[str]) -> list[str]:
    import sqlalchemy as sa

    skipped = set(skip)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            facts: list[str] = []
            for table in inspector.get_table_names():
                if table not in skipped and not table.startswith("sqlite_"):
                    facts.extend(_sql_table(inspector, conn.dialect, table))
            for view in inspector.get_view_names():
                definition = " ".join(str(inspector.get_view_definition(view) or "").split())
                facts.append(f"view {view}: {definition}")
            facts.extend(_triggers(conn))
            return sorted(facts)
    finally:
        engine.dispose()


def _sql_table(inspector: Any, dialect: Any, table: str) -> list[str]:
    at = f"table {table}:"
    facts = [f"{at} exists"]
    for column in inspector.get_columns(table):
        null = "NULL" if column["nullable"] else "NOT NULL"
        default = f" DEFAULT {column['default']}" if column.get("default") is not None else ""
        facts.append(f"{at} column {column['name']} {_type(column['type'], dialect)} {null}{default}")
    primary = inspector.get_pk_constraint(table)
    if primary and primary.get("constrained_columns"):
        facts.append(f"{at} primary key ({', '.join(primary['constrained_columns'])})")
    for key in inspector.get_foreign_keys(table):
        options = ", ".join(f"{k}={v}" for k, v in sorted((key.get("options") or {}).items()))
        facts.append(f"{at} foreign key {key.get('name') or ''}({', '.join(key['constrained_columns'])}) -> "
                     f"{key['referred_table']}({', '.join(key['referred_columns'])}){' ' + options if options else ''}")
    for index in inspector.get_indexes(table):
        unique = "unique index" if index.get("unique") else "index"
        columns = ", ".join(str(c) for c in index.get("column_names") or ())
        expressions = ", ".join(str(e) for e in index.get("expressions") or ()) if not columns else ""
        facts.append(f"{at} {unique} {index['name']} ({columns or expressions})")
    for unique_constraint in inspector.get_unique_constraints(table):
        facts.append(f"{at} unique constraint {unique_constraint.get('name') or ''}"
                     f"({', '.join(unique_constraint['column_names'])})")
    for check in inspector.get_check_constraints(table):
        facts.append(f"{at} check {check.get('name') or ''}({' '.join(str(check['sqltext']).split())})")
    return facts


def _type(column_type: Any, dialect: Any) -> str:
    try:
        return str(column_type.compile(dialect=dialect))
    except Exception:  # a type the dialect cannot render (NullType): its repr still tells types apart
        return repr(column_type)


def _triggers(conn: Any) -> list[str]:
    import sqlalchemy as sa

    name = conn.dialect.name
    if name == "sqlite":
        rows = conn.execute(sa.text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"))
        return [f"trigger {r[0]} on {r[1]}: {' '.join(str(r[2]).split())}" for r in rows]
    if name == "postgresql":
        rows = conn.execute(sa.text(
            "SELECT trigger_name, event_object_table, event_manipulation, action_timing, action_statement "
            "FROM information_schema.triggers WHERE trigger_schema = current_schema()"))
        return [f"trigger {r[0]} on {r[1]}: {r[3]} {r[2]} {r[4]}" for r in rows]
    return []


def lance_schema(uri: str, storage_options: dict[str, Any], skip: Iterable[str]) -> list[str]:
    import lancedb

    from migrator.backends.lancedb.common import table_names

    skipped = set(skip)
    db = lancedb.connect(uri, storage_options=storage_options or None)
    facts: list[str] = []
    for name in table_names(db):
        if name in skipped:
            continue
        table = db.open_table(name)
        at = f"table {name}:"
        facts.append(f"{at} exists")
        schema = table.schema
        for position, field in enumerate(schema):
            null = "nullable" if field.nullable else "not null"
            facts.append(f"{at} field {position} {field.name} {field.type} {null}{_metadata(field.metadata)}")
        for key, value in sorted((schema.metadata or {}).items()):
            facts.append(f"{at} metadata {key.decode(errors='replace')} = {value.decode(errors='replace')}")
        for index in table.list_indices():
            facts.append(f"{at} index {index.name} {index.index_type} ({', '.join(index.columns)})")
    return sorted(facts)


def _metadata(metadata: dict[bytes, bytes] | None) -> str:
    if not metadata:
        return ""
    return " {" + ", ".join(f"{k.decode(errors='replace')}={v.decode(errors='replace')}"
                            for k, v in sorted(metadata.items())) + "}"
