"""Autogenerate for SQL backends: the models' ``MetaData`` compared with the live database.

The comparison is Alembic's (``produce_migrations``, with ``compare_type`` and
``compare_server_default`` on), the code Alembic's renderer (``render_python_code``) with
``db.op.`` in place of ``op.``: the body of a migrator Python migration (``def up(db)``).
migrator's own version table is left out of the comparison.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from migrator.errors import ConfigError
from migrator.importing import load_attribute

from ..base import ModelChanges


def _same_default(context: Any, inspected_column: Any, metadata_column: Any, inspected_default: str | None,
                  metadata_default: Any, rendered_metadata_default: str | None) -> bool | None:
    """False (no change) when the two defaults are the same text once SQLite's parentheses and quotes are off;
    None (Alembic decides) otherwise. Alembic alone never settles ``server_default=""`` on SQLite: the
    database reports ``('')`` and Alembic takes the empty rendering for "no default", so ``check`` failed forever
    after the generated migration had been applied."""
    if context.dialect.name != "sqlite" or inspected_default is None or rendered_metadata_default is None:
        return None
    return False if _bare(inspected_default) == _bare(rendered_metadata_default) else None


def _bare(text: str) -> str:
    value = text.strip()
    while len(value) >= 2 and value[0] == "(" and value[-1] == ")":
        value = value[1:-1].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def load_metadata(target: object, where: str, root: Path | None) -> sa.MetaData:
    """The ``MetaData`` that ``target_metadata`` names (``"app.models:metadata"``), or ``target`` itself.

    ``root`` (the config file's folder) is searched first for the module. Every failure is one
    ``ConfigError`` naming ``where`` and the key.
    """
    if isinstance(target, sa.MetaData):
        return target
    _, found = load_attribute(target, "target_metadata", where, root)
    inner = getattr(found, "metadata", None)
    if isinstance(found, type) and isinstance(inner, sa.MetaData):
        found = inner  # a declarative base class: its MetaData
    if not isinstance(found, sa.MetaData):
        raise ConfigError(f"{where}: target_metadata {target!r} is a {type(found).__name__}, "
                          "not a SQLAlchemy MetaData")
    return found


def compare(conn: sa.Connection, metadata: sa.MetaData, version_table: str) -> ModelChanges | None:
    """What would bring the database on ``conn`` to ``metadata``; None when they match."""
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    def include_name(name: str | None, kind: str, parents: Any) -> bool:
        return not (kind == "table" and name == version_table)

    def include_object(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        return not (kind == "table" and name == version_table)

    context = MigrationContext.configure(conn, opts={
        "compare_type": True,
        "compare_server_default": _same_default,
        "include_name": include_name,
        "include_object": include_object,
    })
    script = produce_migrations(context, metadata)
    upgrade, downgrade = script.upgrade_ops, script.downgrade_ops
    assert upgrade is not None and downgrade is not None
    if conn.dialect.name == "sqlite":
        _keep_rowids_not_null(conn, upgrade, downgrade)
    if upgrade.is_empty():
        return None
    imports: list[set[str]] = []

    def remember_imports(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
        imports.append(autogen_context.imports)  # the set the renderer fills (dialect types)
        if kind == "type" and not type(obj).__module__.startswith("sqlalchemy"):
            autogen_context.imports.add(f"import {type(obj).__module__}")  # rendered as module.Type()
        return False  # Alembic renders the item itself

    def render(ops: Any) -> str:
        return render_python_code(ops, sqlalchemy_module_prefix="sa.", alembic_module_prefix="db.op.",
                                  migration_context=context, render_item=remember_imports)

    up, down = render(upgrade), render(downgrade)
    needed = {"import sqlalchemy as sa"}.union(*imports)
    needed |= {f"from sqlalchemy import {name}" for name in _free_names(needed, up, down) if hasattr(sa, name)}
    return ModelChanges(changes=tuple(describe(upgrade.as_diffs())), up=up, down=down,
                        imports=tuple(sorted(needed, key=lambda line: (not line.startswith("import"), line))))


def _keep_rowids_not_null(conn: sa.Connection, *scripts: Any) -> None:
    """Drop the nullability changes Alembic sees on SQLite ``INTEGER PRIMARY KEY`` columns.

    Such a column is the table's rowid: it never holds NULL, yet SQLite reports it nullable, while a model's
    primary key column is NOT NULL; Alembic would make the column NOT NULL by copying the table, for nothing.
    Any other change to the column stays. (A primary key of another type, or of several columns, does accept
    NULL in SQLite unless declared NOT NULL: that difference is real and stays.)
    """
    from alembic.operations.ops import AlterColumnOp, ModifyTableOps

    inspector = sa.inspect(conn)
    rowids: dict[tuple[str | None, str], str | None] = {}

    def rowid(schema: str | None, table: str) -> str | None:
        if (schema, table) not in rowids:
            key = inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or []
            types = {c["name"]: str(c["type"]).upper() for c in inspector.get_columns(table, schema=schema)}
            rowids[schema, table] = key[0] if len(key) == 1 and types.get(key[0]) == "INTEGER" else None
        return rowids[schema, table]

    for script in scripts:
        for table_ops in script.ops:
            if not isinstance(table_ops, ModifyTableOps):
                continue
            kept = []
            for op in table_ops.ops:
                if (isinstance(op, AlterColumnOp) and op.modify_nullable is not None
                        and rowid(table_ops.schema, table_ops.table_name) == op.column_name):
                    op.modify_nullable = None
                    if (op.modify_type is None and op.modify_server_default is False
                            and op.modify_comment is False and op.modify_name is None):
                        continue  # nothing else changes in this column
                kept.append(op)
            table_ops.ops = kept
        script.ops = [t for t in script.ops if not (isinstance(t, ModifyTableOps) and t.is_empty())]


def _free_names(imports: set[str], *bodies: str) -> set[str]:
    """Names the rendered bodies use but nothing defines: Alembic renders some nested types without a prefix
    (``postgresql.JSONB(astext_type=Text())``)."""
    source = "\n".join(imports) + "".join(f"\n\ndef f(db):\n    {body}\n" for body in bodies)
    tree = ast.parse(source)
    defined = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return used - defined - {"db"} - set(dir(builtins))


def describe(diffs: Sequence[Any]) -> list[str]:
    """One line per difference, from Alembic's diff tuples (``UpgradeOps.as_diffs()``)."""
    lines: list[str] = []
    for diff in diffs:
        if isinstance(diff, list):
            lines.extend(describe(diff))
            continue
        kind = diff[0]
        if kind in ("add_table", "remove_table"):
            lines.append(f"{_verb(kind)} table {_table_name(diff[1])}")
        elif kind in ("add_column", "remove_column"):
            lines.append(f"{_verb(kind)} column {_dotted_name(diff[1], diff[2], diff[3].name)}")
        elif kind in ("add_index", "remove_index"):
            index = diff[1]
            unique = "unique " if index.unique else ""
            lines.append(f"{_verb(kind)} {unique}index {index.name} on {_table_name(index.table)}")
        elif kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
            lines.append(f"{_verb(kind)} {_constraint(diff[1])}")
        elif kind == "modify_type":
            lines.append(f"change the type of {_dotted_name(*diff[1:4])}: {diff[5]!r} -> {diff[6]!r}")
        elif kind == "modify_nullable":
            state = "nullable" if diff[6] else "NOT NULL"
            lines.append(f"make {_dotted_name(*diff[1:4])} {state}")
        elif kind == "modify_default":
            lines.append(f"change the server default of {_dotted_name(*diff[1:4])}: "
                         f"{_default(diff[5])} -> {_default(diff[6])}")
        elif kind == "modify_comment":
            lines.append(f"change the comment of {_dotted_name(*diff[1:4])}")
        else:
            lines.append(kind.replace("_", " "))
    return lines


def _verb(kind: str) -> str:
    return "add" if kind.startswith("add") else "remove"


def _table_name(table: sa.Table | None) -> str:
    if table is None:
        return "?"
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _dotted_name(schema: str | None, table: str, column: str) -> str:
    return ".".join(part for part in (schema, table, column) if part)


def _constraint(constraint: Any) -> str:
    name = f" {constraint.name}" if constraint.name else ""
    columns = ", ".join(str(c.name) for c in constraint.columns)
    table = _table_name(getattr(constraint, "table", None))
    if isinstance(constraint, sa.ForeignKeyConstraint):
        return f"foreign key{name} on {table} ({columns}) -> {constraint.referred_table.name}"
    if isinstance(constraint, sa.UniqueConstraint):
        return f"unique constraint{name} on {table} ({columns})"
    if isinstance(constraint, sa.CheckConstraint):
        return f"check constraint{name} on {table}"
    return f"constraint{name} on {table}"


def _default(value: Any) -> str:
    if value is None or value is False:
        return "none"
    arg = getattr(value, "arg", value)
    return repr(getattr(arg, "text", arg))
