"""Schema changes on SQLite that never lose a schema object: the ``db.op`` of SQLite migrations.

SQLite's own ``ALTER TABLE`` where it can: ``ADD COLUMN``, ``RENAME COLUMN`` (3.25+), ``DROP
COLUMN`` (3.35+), ``RENAME TO``. Everything else is a table copy following SQLite's documented
procedure (https://www.sqlite.org/lang_altertable.html#otheralter), made from the table's own
``CREATE TABLE`` text with one edit (see :mod:`.sqlite_ddl`): the old table is renamed away
(``legacy_alter_table`` on, so nothing that refers to the table is rewritten), the new one created
under the table's name, the rows copied with their rowids, the old one dropped, its indices and
triggers re-created from their own SQL, its ``AUTOINCREMENT`` counter kept. Views that use the
table keep referring to it by name. A change that would break or silently drop another object
(a view or trigger using a dropped column, an index over it and other columns...) is refused
before anything changes, naming that object. Every operation runs inside a savepoint: it happens
completely or not at all, inside the migration's transaction.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from migrator.errors import SchemaChangeRefused

from . import sqlite_ddl as ddl
from .messages import first_line
from .sqlite_ddl import CreateTable, Edits, quote

if TYPE_CHECKING:
    from alembic.operations import Operations

log = logging.getLogger("migrator")

# SQLite releases that brought the ALTER TABLE forms used natively
NATIVE_RENAME_COLUMN = (3, 25, 0)
NATIVE_DROP_COLUMN = (3, 35, 0)

_FK_ACTIONS = {"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"}
_INITIALLY = {"DEFERRED", "IMMEDIATE"}
_CONSTRAINT_TYPES = {"foreignkey": "foreign", "unique": "unique", "check": "check", "primary": "primary"}
ForeignKey = tuple[str, tuple[str, ...], tuple[str, ...]]  # child table, its columns, the parent's columns
_OTHER_DIALECTS = ("postgresql_", "mysql_", "mariadb_", "mssql_", "oracle_")


class SqliteOperations:
    """Alembic ``Operations`` for SQLite whose table changes keep every object the table had.

    The operations SQLite cannot do in place are listed as methods here; everything else
    (``create_table``, ``create_index``, ``rename_table``, ``execute``, ``bulk_insert``...) is
    Alembic's own.
    """

    def __init__(self, operations: Operations, connection: sa.Connection) -> None:
        self._operations = operations
        self._conn = connection
        self._savepoints = count(1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    # ------------------------------------------------------------------ columns

    def add_column(self, table_name: str, column: sa.Column[Any], *, schema: str | None = None,
                   **kw: Any) -> None:
        """``ALTER TABLE ADD COLUMN`` with the column's inline constraints (FK, CHECK, COLLATE);
        a copy for what SQLite cannot add in place (PRIMARY KEY, UNIQUE)."""
        table = self._table(table_name, schema)
        what = f"add_column {table.display}.{column.name}"
        text = self._column_sql(column)
        if table.column(column.name) is not None:
            raise SchemaChangeRefused(f"{what}: table {table.display} already has a column {column.name}")
        users = self._positional_inserts(table, schema)
        if users:
            raise SchemaChangeRefused(f"{what}: {self._named(users)} would break; name the columns there first "
                                      "(nothing changed)")
        if column.primary_key or column.unique:
            edits = Edits(table.sql)
            ddl.add_item(edits, table, text, column=True)
            self._copy(table, edits.result(), schema, what)
            return
        self._execute(f"ALTER TABLE {self._name(table.name, schema)} ADD COLUMN {text}", what)

    def drop_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        """SQLite's ``DROP COLUMN`` where it can, a copy where it refuses only because of the column's
        own UNIQUE / FOREIGN KEY; refused, naming the object, where another object uses the column."""
        table = self._table(table_name, schema)
        what = f"drop_column {table.display}.{column_name}"
        item = table.column(column_name)
        if item is None:
            raise SchemaChangeRefused(f"{what}: table {table.display} has no column {column_name}")
        column = item.column
        assert column is not None
        with_it, indexes = self._drop_column_plan(table, column, schema, what)
        for name in indexes:
            log.info("%s also drops index %s (it covers only that column)", what, name)
        for constraint in with_it:
            log.info("%s also drops %s of table %s (it covers only that column)", what, constraint.label,
                     table.name)
        native = (self._version() >= NATIVE_DROP_COLUMN and not with_it and not item.has("unique"))
        with self._savepoint():
            for name in indexes:
                self._execute(f"DROP INDEX {self._name(name, schema)}", what)
            if native:
                name = quote(item.column_text or column)
                self._execute(f"ALTER TABLE {self._name(table.name, schema)} DROP COLUMN {name}", what)
                return
            edits = Edits(table.sql)
            ddl.remove_item(edits, table, item)
            for constraint in with_it:
                ddl.remove_constraint(edits, table, constraint)
            self._copy(table, edits.result(), schema, what, skip=set(indexes))

    def alter_column(
        self, table_name: str, column_name: str, *, nullable: bool | None = None, comment: Any = False,
        server_default: Any = False, new_column_name: str | None = None, type_: Any = None,
        schema: str | None = None, **kw: Any,
    ) -> None:
        """A rename is SQLite's ``RENAME COLUMN``; a new type, nullability or server default is a copy."""
        unknown = sorted(k for k in kw if not k.startswith(("existing_", *_OTHER_DIALECTS)))
        what = f"alter_column {table_name}.{column_name}"
        if unknown:
            raise SchemaChangeRefused(f"{what}: {', '.join(unknown)} cannot be changed on SQLite")
        with self._savepoint():
            if new_column_name is not None and new_column_name != column_name:
                self._rename_column(table_name, column_name, new_column_name, schema)
                column_name = new_column_name
                what = f"alter_column {table_name}.{column_name}"
            if type_ is None and nullable is None and server_default is False:
                return  # comment: SQLite keeps no comments
            table = self._table(table_name, schema)
            item = table.column(column_name)
            if item is None:
                raise SchemaChangeRefused(f"{what}: table {table.display} has no column {column_name}")
            edits = Edits(table.sql)
            if type_ is not None:
                type_engine = sa.types.to_instance(type_)
                ddl.set_type(edits, item, type_engine.compile(dialect=self._conn.dialect))
            if nullable is False and not item.has("notnull"):
                ddl.append_to_column(edits, item, "NOT NULL")
            elif nullable is True:
                for constraint in item.constraints:
                    if constraint.kind == "notnull":
                        ddl.remove_constraint(edits, table, constraint)
            if server_default is not False:
                for constraint in item.constraints:
                    if constraint.kind == "default":
                        ddl.remove_constraint(edits, table, constraint)
                if server_default is not None:
                    ddl.append_to_column(edits, item, self._default_sql(server_default, what))
            new_sql = edits.result()
            if new_sql != table.sql:
                self._copy(table, new_sql, schema, what)

    def _rename_column(self, table_name: str, old: str, new: str, schema: str | None) -> None:
        table = self._table(table_name, schema)
        what = f"alter_column {table.display}.{old} (rename to {new})"
        item = table.column(old)
        if item is None:
            raise SchemaChangeRefused(f"{what}: table {table.display} has no column {old}")
        if table.column(new) is not None and new.lower() != old.lower():
            raise SchemaChangeRefused(f"{what}: table {table.display} already has a column {new}")
        if self._version() >= NATIVE_RENAME_COLUMN:
            # legacy_alter_table off: SQLite rewrites the indices, triggers, views and foreign keys that use it
            with self._pragma("legacy_alter_table", 0):
                self._execute(f"ALTER TABLE {self._name(table.name, schema)} RENAME COLUMN "
                              f"{quote(item.column_text or old)} TO {quote(new)}", what)
            return
        users = self._users_of_column(table, old.lower(), schema, include_indexes=False)
        if users:
            raise SchemaChangeRefused(f"{what}: {self._named(users)} use(s) it, and SQLite "
                                      f"{self._version_text()} cannot rename columns in place "
                                      "(3.25 can); rename them in the migration first")
        edits = Edits(table.sql)
        tokens = [t for i in table.items for t in i.tokens]
        for token in tokens:
            if token.kind == "name" and token.value == old.lower() and not self._in_foreign_parent(table, token):
                edits.replace(token.start, token.end, quote(new))
        rewrites = {}
        for name, sql in self._objects(table.name, "index", schema):
            index_edits = Edits(sql)
            ddl.rename_names(index_edits, _after_on(sql), old, quote(new))
            rewrites[name] = index_edits.result()
        self._copy(table, edits.result(), schema, what, columns={old.lower(): new}, rewrites=rewrites)

    # ------------------------------------------------------------------ constraints

    def create_unique_constraint(self, constraint_name: str | None, table_name: str, columns: Sequence[str], *,
                                 schema: str | None = None, **kw: Any) -> None:
        cols = ", ".join(quote(c) for c in columns)
        self._add_constraint(table_name, constraint_name, f"UNIQUE ({cols})", schema, "create_unique_constraint")

    def create_check_constraint(self, constraint_name: str | None, table_name: str, condition: Any, *,
                                schema: str | None = None, **kw: Any) -> None:
        if not isinstance(condition, str):
            condition = str(condition.compile(dialect=self._conn.dialect, compile_kwargs={"literal_binds": True}))
        self._add_constraint(table_name, constraint_name, f"CHECK ({condition})", schema, "create_check_constraint")

    def create_primary_key(self, constraint_name: str | None, table_name: str, columns: Sequence[str], *,
                           schema: str | None = None) -> None:
        table = self._table(table_name, schema)
        if table.primary_key():
            raise SchemaChangeRefused(f"create_primary_key {constraint_name or ''} on {table.display}: the table "
                                      f"already has a primary key ({', '.join(table.primary_key())})")
        cols = ", ".join(quote(c) for c in columns)
        self._add_constraint(table_name, constraint_name, f"PRIMARY KEY ({cols})", schema, "create_primary_key")

    def create_foreign_key(
        self, constraint_name: str | None, source_table: str, referent_table: str, local_cols: list[str],
        remote_cols: list[str], *, onupdate: str | None = None, ondelete: str | None = None,
        deferrable: bool | None = None, initially: str | None = None, match: str | None = None,
        source_schema: str | None = None, referent_schema: str | None = None, **dialect_kw: Any,
    ) -> None:
        what = f"create_foreign_key {constraint_name or ''} on {source_table}".replace("  ", " ")
        if referent_table.lower() != source_table.lower() and not self._exists(referent_table, source_schema):
            raise SchemaChangeRefused(f"{what}: the referenced table {referent_table} does not exist")
        text = (f"FOREIGN KEY ({', '.join(quote(c) for c in local_cols)}) REFERENCES {quote(referent_table)} "
                f"({', '.join(quote(c) for c in remote_cols)})")
        for clause, action in (("ON DELETE", ondelete), ("ON UPDATE", onupdate)):
            if action is not None:
                if action.upper() not in _FK_ACTIONS:
                    raise SchemaChangeRefused(f"{what}: {clause} {action} is not an action SQLite knows")
                text += f" {clause} {action.upper()}"
        if match is not None:
            text += f" MATCH {quote(match)}"
        if deferrable is not None:
            text += " DEFERRABLE" if deferrable else " NOT DEFERRABLE"
        if initially is not None:
            if initially.upper() not in _INITIALLY:
                raise SchemaChangeRefused(f"{what}: INITIALLY {initially} is not DEFERRED or IMMEDIATE")
            text += f" INITIALLY {initially.upper()}"
        self._add_constraint(source_table, constraint_name, text, source_schema, "create_foreign_key",
                             check_foreign_keys=True)

    def drop_constraint(self, constraint_name: str, table_name: str, type_: str | None = None, *,
                        schema: str | None = None, **kw: Any) -> None:
        table = self._table(table_name, schema)
        what = f"drop_constraint {constraint_name} on {table.display}"
        found = table.constraints_named(constraint_name)
        kind = _CONSTRAINT_TYPES.get(type_ or "")
        if kind is not None:
            found = [c for c in found if c.kind == kind]
        if not found:
            raise SchemaChangeRefused(
                f"{what}: table {table.display} has no {type_ + ' ' if type_ else ''}constraint named "
                f"{constraint_name} (SQLite keeps only constraints written as CONSTRAINT name ...; "
                "an index made with create_index is dropped with drop_index)")
        if len(found) > 1:
            raise SchemaChangeRefused(f"{what}: table {table.display} has {len(found)} constraints of that name; "
                                      "pass type_ to say which")
        edits = Edits(table.sql)
        ddl.remove_constraint(edits, table, found[0])
        self._copy(table, edits.result(), schema, what)

    def _add_constraint(self, table_name: str, name: str | None, body: str, schema: str | None, verb: str, *,
                        check_foreign_keys: bool = False) -> None:
        table = self._table(table_name, schema)
        what = f"{verb} {name} on {table.display}" if name else f"{verb} on {table.display}"
        if name is not None and table.constraints_named(name):
            raise SchemaChangeRefused(f"{what}: table {table.display} already has a constraint named {name}")
        edits = Edits(table.sql)
        ddl.add_item(edits, table, f"CONSTRAINT {quote(name)} {body}" if name else body, column=False)
        self._copy(table, edits.result(), schema, what, check_foreign_keys=check_foreign_keys)

    # ------------------------------------------------------------------ batch mode, for Alembic-style files

    @contextlib.contextmanager
    def batch_alter_table(self, table_name: str, schema: str | None = None, **kw: Any) -> Iterator[_Batch]:
        """Alembic's ``batch_alter_table``: each operation is applied as it is called, the same way
        as the plain operations (keeping every object), inside one savepoint."""
        with self._savepoint():
            yield _Batch(self, table_name, schema)

    # ------------------------------------------------------------------ the copy

    def _copy(self, table: CreateTable, new_sql: str, schema: str | None, what: str, *,
              skip: set[str] | None = None, columns: dict[str, str] | None = None,
              rewrites: dict[str, str] | None = None, check_foreign_keys: bool = False) -> None:
        """Re-create ``table`` as ``new_sql`` keeping its rows, rowids, indices, triggers and counter."""
        conn = self._conn
        try:
            new = ddl.parse_create_table(new_sql)
        except ddl.DdlError as exc:
            raise SchemaChangeRefused(f"{what}: cannot read the new definition of {table.display}: {exc}") from None
        foreign_keys_on = bool(self._scalar("PRAGMA foreign_keys"))
        if foreign_keys_on:
            children = sorted({c for c, _f, _t in self._foreign_keys_to(table.name, schema) if c != table.name})
            if children:
                raise SchemaChangeRefused(
                    f"{what}: needs a copy of table {table.display}, and PRAGMA foreign_keys is ON on the "
                    f"migration's connection: dropping the old copy would fire the foreign keys of "
                    f"{', '.join(children)}; run the migration with foreign keys off (SQLite cannot switch "
                    "them inside a transaction)")
        keep = [(n, s) for n, s in self._objects(table.name, "index", schema) if n not in (skip or set())]
        triggers = self._objects(table.name, "trigger", schema)
        rewrites = rewrites or {}
        old_columns = self._copyable_columns(table.name, schema)
        renamed = columns or {}
        new_generated = {i.column for i in new.columns if i.has("generated")}
        new_names = {i.column for i in new.columns}
        pairs = [(renamed.get(c, c), text) for c, text in old_columns
                 if renamed.get(c, c).lower() in new_names and renamed.get(c, c).lower() not in new_generated]
        sequence = self._sequence(table.name, schema)
        old_name = self._free_name(f"_migrator_old_{table.name}", schema)
        target = self._name(table.name, schema)
        # the rowid is kept (an app or an FTS index may rely on it), under a name no column has
        taken = {c for c, _ in old_columns} | new_names
        rowid = next((r for r in ("rowid", "_rowid_", "oid") if r not in taken), None)
        if table.without_rowid or new.without_rowid:
            rowid = None
        insert_cols = ([rowid] if rowid else []) + [quote(n) for n, _ in pairs]
        select_cols = ([rowid] if rowid else []) + [quote(t) for _, t in pairs]
        create_sql = new_sql
        if schema is not None:
            create_sql = new_sql[:new.name_start] + target + new_sql[new.name_end:]
        with self._savepoint():
            if foreign_keys_on:
                self._execute("PRAGMA defer_foreign_keys = ON", what)
            with self._pragma("legacy_alter_table", 1):  # rename without rewriting what refers to the table
                self._execute(f"ALTER TABLE {target} RENAME TO {quote(old_name)}", what)
            self._execute(create_sql, what)
            self._execute(f"INSERT INTO {target} ({', '.join(insert_cols)}) "
                          f"SELECT {', '.join(select_cols)} FROM {self._name(old_name, schema)}", what)
            self._execute(f"DROP TABLE {self._name(old_name, schema)}", what)
            for name, sql in keep:
                self._execute(rewrites.get(name, sql), f"{what}: re-creating index {name}")
            for name, sql in triggers:
                self._execute(sql, f"{what}: re-creating trigger {name}")
            if sequence is not None:  # AUTOINCREMENT never hands out an id twice
                conn.exec_driver_sql(f"UPDATE {self._master(schema, 'sqlite_sequence')} SET seq = max(seq, ?) "
                                     "WHERE name = ? COLLATE NOCASE", (sequence, table.name))
            if check_foreign_keys or foreign_keys_on:
                bad = conn.exec_driver_sql(
                    f"SELECT count(*), min(rowid) FROM pragma_foreign_key_check({_literal(table.name)}"
                    f"{', ' + _literal(schema) if schema else ''})").one()
                if bad[0]:
                    raise SchemaChangeRefused(
                        f"{what}: {bad[0]} row(s) of {table.display} violate its foreign keys (first rowid "
                        f"{bad[1]}); nothing changed")
        log.info("%s: table %s copied, its indices and triggers re-created", what, table.name)

    # ------------------------------------------------------------------ dependencies of a column

    def _drop_column_plan(self, table: CreateTable, column: str, schema: str | None,
                          what: str) -> tuple[list[ddl.Constraint], list[str]]:
        """The table constraints and indices that go with the column; refuses if anything else needs it."""
        blockers: list[str] = []
        with_it: list[ddl.Constraint] = []
        if column in table.primary_key():
            blockers.append("the primary key")
        table_columns = {i.column for i in table.columns}
        for item in table.items:
            for constraint in item.constraints:
                if item.column == column or constraint.kind == "primary":
                    continue
                if item.column is not None:
                    uses = ddl.names_in(constraint.tokens) & table_columns
                    if constraint.kind in {"check", "generated"} and column in uses:
                        blockers.append(f"the {constraint.label} of column {item.column_text}")
                    continue
                if constraint.kind == "check":
                    used = ddl.names_in(constraint.tokens) & table_columns
                else:
                    used = set(constraint.columns)
                if column not in used:
                    continue
                if used == {column} and constraint.kind in {"unique", "foreign", "check"}:
                    with_it.append(constraint)
                else:
                    blockers.append(constraint.label)
        indexes = []
        for name, sql in self._objects(table.name, "index", schema):
            used = ddl.names_in(_after_on(sql)) & table_columns
            if column in used:
                if used == {column}:
                    indexes.append(name)
                else:
                    blockers.append(f"index {name}")
        blockers += self._users_of_column(table, column, schema, include_indexes=False)
        blockers += self._positional_inserts(table, schema)
        if blockers:
            raise SchemaChangeRefused(f"{what}: {self._named(blockers)} use(s) the column; drop or change "
                                      "them first (nothing changed)")
        return with_it, indexes

    def _users_of_column(self, table: CreateTable, column: str, schema: str | None, *,
                         include_indexes: bool) -> list[str]:
        """Views and triggers that name the column, and foreign keys of other tables that point at it."""
        users = []
        rows = self._conn.exec_driver_sql(
            f"SELECT type, name, tbl_name, sql FROM {self._master(schema)} "
            "WHERE type IN ('view', 'trigger') AND sql IS NOT NULL ORDER BY type, name").all()
        for kind, name, tbl_name, sql in rows:
            names = ddl.names_in(ddl.tokenize(sql))
            on_table = kind == "trigger" and str(tbl_name).lower() == table.name
            if column in names and (on_table or table.name in names):
                users.append(f"{kind} {name}")
        for child, from_columns, to_columns in self._foreign_keys_to(table.name, schema):
            if column in to_columns:
                users.append(f"the foreign key {child}({', '.join(from_columns)})")
        return users

    def _positional_inserts(self, table: CreateTable, schema: str | None) -> list[str]:
        """Triggers that insert into the table without naming columns: a column more or less breaks them."""
        found = []
        for name, sql in self._conn.exec_driver_sql(
                f"SELECT name, sql FROM {self._master(schema)} WHERE type = 'trigger' AND sql IS NOT NULL "
                "ORDER BY name").all():
            sig = ddl.significant(ddl.tokenize(str(sql)))
            for i, token in enumerate(sig[:-2]):
                if token.upper != "INTO":
                    continue
                at = i + 3 if sig[i + 2].text == "." else i + 1
                if at >= len(sig) or sig[at].value != table.name:
                    continue
                after = sig[at + 1:at + 4]
                if after and after[0].upper == "AS":
                    after = after[2:]
                if not after or after[0].text != "(":
                    found.append(f"trigger {name} (INSERT INTO {table.display} without a column list)")
                    break
        return found

    # ------------------------------------------------------------------ reading the schema

    def _table(self, table_name: str, schema: str | None) -> CreateTable:
        row = self._conn.exec_driver_sql(
            f"SELECT sql FROM {self._master(schema)} WHERE type = 'table' AND name = ? COLLATE NOCASE",
            (table_name,)).first()
        if row is None or row[0] is None:
            raise SchemaChangeRefused(f"table {table_name} does not exist")
        try:
            return ddl.parse_create_table(str(row[0]))
        except ddl.DdlError as exc:
            raise SchemaChangeRefused(f"table {table_name}: cannot change it: {exc}") from None

    def _exists(self, table_name: str, schema: str | None) -> bool:
        return self._conn.exec_driver_sql(
            f"SELECT 1 FROM {self._master(schema)} WHERE type = 'table' AND name = ? COLLATE NOCASE",
            (table_name,)).first() is not None

    def _objects(self, table_name: str, kind: str, schema: str | None) -> list[tuple[str, str]]:
        rows = self._conn.exec_driver_sql(
            f"SELECT name, sql FROM {self._master(schema)} WHERE type = ? AND tbl_name = ? COLLATE NOCASE "
            "AND sql IS NOT NULL ORDER BY rowid", (kind, table_name)).all()
        return [(str(n), str(s)) for n, s in rows]

    def _copyable_columns(self, table_name: str, schema: str | None) -> list[tuple[str, str]]:
        """(lower-cased name, name) of the stored columns (generated ones are computed, not copied)."""
        prefix = f"{quote(schema)}." if schema else ""
        rows = self._conn.exec_driver_sql(f"PRAGMA {prefix}table_xinfo({_literal(table_name)})").all()
        return [(str(r[1]).lower(), str(r[1])) for r in rows if r[6] in (0, 1)]

    def _foreign_keys_to(self, table_name: str, schema: str | None) -> list[ForeignKey]:
        """(child table, its columns, the parent columns) of every foreign key that points at ``table_name``."""
        found = []
        for (child,) in self._conn.exec_driver_sql(
                f"SELECT name FROM {self._master(schema)} WHERE type = 'table'").all():
            prefix = f"{quote(schema)}." if schema else ""
            rows = self._conn.exec_driver_sql(f"PRAGMA {prefix}foreign_key_list({_literal(str(child))})").all()
            keys: dict[int, list[Any]] = {}
            for row in rows:
                if str(row[2]).lower() == table_name.lower():
                    keys.setdefault(row[0], []).append(row)
            for key in keys.values():
                to = tuple(str(r[4]).lower() for r in key if r[4] is not None)
                if not to:  # REFERENCES t without columns: its primary key
                    to = self._table(table_name, schema).primary_key()
                found.append((str(child).lower(), tuple(str(r[3]) for r in key), to))
        return found

    def _sequence(self, table_name: str, schema: str | None) -> int | None:
        if not self._exists("sqlite_sequence", schema):
            return None
        row = self._conn.exec_driver_sql(
            f"SELECT seq FROM {self._master(schema, 'sqlite_sequence')} WHERE name = ? COLLATE NOCASE",
            (table_name,)).first()
        return None if row is None else int(row[0])

    def _free_name(self, base: str, schema: str | None) -> str:
        name = base
        for n in count(2):
            if not self._exists(name, schema):
                return name
            name = f"{base}_{n}"
        raise AssertionError("unreachable")

    def _in_foreign_parent(self, table: CreateTable, token: ddl.Token) -> bool:
        """Whether ``token`` names a parent column of another table in a REFERENCES clause."""
        for item in table.items:
            for constraint in item.constraints:
                if constraint.kind != "foreign" or not constraint.start <= token.start < constraint.end:
                    continue
                at = next(i for i, t in enumerate(constraint.tokens) if t.upper == "REFERENCES")
                if token.start > constraint.tokens[at].start:
                    parent, _cols = ddl.references(constraint)
                    return parent != table.name
        return False

    # ------------------------------------------------------------------ plumbing

    def _version(self) -> tuple[int, ...]:
        text = str(self._scalar("SELECT sqlite_version()"))
        return tuple(int(p) for p in text.split(".")[:3])

    def _version_text(self) -> str:
        return ".".join(str(p) for p in self._version())

    def _scalar(self, sql: str) -> Any:
        return self._conn.exec_driver_sql(sql).scalar()

    def _execute(self, sql: str, what: str) -> None:
        try:
            self._conn.exec_driver_sql(sql)
        except sa.exc.DBAPIError as exc:
            reason = first_line(str(exc.orig)) if exc.orig is not None else first_line(str(exc))
            raise SchemaChangeRefused(f"{what}: {reason}; nothing changed") from exc

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        name = f"migrator_alter_{next(self._savepoints)}"
        self._conn.exec_driver_sql(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.exec_driver_sql(f"ROLLBACK TO {name}")
            self._conn.exec_driver_sql(f"RELEASE {name}")
            raise
        self._conn.exec_driver_sql(f"RELEASE {name}")

    @contextlib.contextmanager
    def _pragma(self, name: str, value: int) -> Iterator[None]:
        before = self._scalar(f"PRAGMA {name}")
        self._conn.exec_driver_sql(f"PRAGMA {name} = {int(value)}")
        try:
            yield
        finally:
            self._conn.exec_driver_sql(f"PRAGMA {name} = {int(before)}")

    def _name(self, name: str, schema: str | None) -> str:
        return f"{quote(schema)}.{quote(name)}" if schema else quote(name)

    def _master(self, schema: str | None, table: str = "sqlite_master") -> str:
        return f"{quote(schema)}.{table}" if schema else table

    @staticmethod
    def _named(objects: list[str]) -> str:
        return ", ".join(dict.fromkeys(objects))

    def _column_sql(self, column: sa.Column[Any]) -> str:
        """The column's definition as ``ALTER TABLE ADD COLUMN`` takes it, inline FOREIGN KEY included."""
        dialect = self._conn.dialect
        copy = column._copy()
        sa.Table("_migrator_new_column", sa.MetaData(), copy)
        text = str(sa.schema.CreateColumn(copy).compile(dialect=dialect)).strip()
        if column.primary_key and " PRIMARY KEY" not in text:
            text += " PRIMARY KEY"
        if column.unique:
            text += " UNIQUE"
        for fk in column.foreign_keys:
            parts = fk.target_fullname.split(".")
            if fk.name:
                text += f" CONSTRAINT {quote(str(fk.name))}"
            text += f" REFERENCES {quote(parts[-2])} ({quote(parts[-1])})"
            if fk.ondelete:
                text += f" ON DELETE {fk.ondelete.upper()}"
            if fk.onupdate:
                text += f" ON UPDATE {fk.onupdate.upper()}"
            if fk.deferrable is not None:
                text += " DEFERRABLE" if fk.deferrable else " NOT DEFERRABLE"
            if fk.initially:
                text += f" INITIALLY {fk.initially.upper()}"
        return text

    def _default_sql(self, server_default: Any, what: str) -> str:
        if isinstance(server_default, (sa.Computed, sa.Identity)):
            raise SchemaChangeRefused(f"{what}: a computed or identity default cannot be set by alter_column "
                                      "on SQLite")
        dialect = self._conn.dialect
        column = sa.Column("x", sa.Text(), server_default=server_default)
        table = sa.Table("_migrator_default", sa.MetaData(), column)
        compiler = dialect.ddl_compiler(dialect, sa.schema.CreateTable(table))
        default = compiler.get_column_default_string(column)
        assert default is not None
        if not re.match(r"""^\s*['"(]""", default) and re.match(r".*\W.*", default):
            return f"DEFAULT ({default})"
        return f"DEFAULT {default}"


class _Batch:
    """What ``batch_alter_table`` yields: the operations of one table, without the table's name."""

    def __init__(self, ops: SqliteOperations, table_name: str, schema: str | None) -> None:
        self._ops = ops
        self._table = table_name
        self._schema = schema

    def add_column(self, column: sa.Column[Any], **kw: Any) -> None:
        self._ops.add_column(self._table, column, schema=self._schema)

    def drop_column(self, column_name: str, **kw: Any) -> None:
        self._ops.drop_column(self._table, column_name, schema=self._schema)

    def alter_column(self, column_name: str, **kw: Any) -> None:
        kw.pop("insert_before", None)
        kw.pop("insert_after", None)
        self._ops.alter_column(self._table, column_name, schema=self._schema, **kw)

    def create_unique_constraint(self, constraint_name: str | None, columns: Sequence[str], **kw: Any) -> None:
        self._ops.create_unique_constraint(constraint_name, self._table, columns, schema=self._schema)

    def create_check_constraint(self, constraint_name: str | None, condition: Any, **kw: Any) -> None:
        self._ops.create_check_constraint(constraint_name, self._table, condition, schema=self._schema)

    def create_primary_key(self, constraint_name: str | None, columns: Sequence[str]) -> None:
        self._ops.create_primary_key(constraint_name, self._table, columns, schema=self._schema)

    def create_foreign_key(self, constraint_name: str | None, referent_table: str, local_cols: list[str],
                           remote_cols: list[str], **kw: Any) -> None:
        kw.pop("referent_schema", None)
        self._ops.create_foreign_key(constraint_name, self._table, referent_table, local_cols, remote_cols,
                                     source_schema=self._schema, **kw)

    def drop_constraint(self, constraint_name: str, type_: str | None = None) -> None:
        self._ops.drop_constraint(constraint_name, self._table, type_, schema=self._schema)

    def create_index(self, index_name: str, columns: Sequence[Any], **kw: Any) -> None:
        self._ops.create_index(index_name, self._table, columns, schema=self._schema, **kw)

    def drop_index(self, index_name: str, **kw: Any) -> None:
        self._ops.drop_index(index_name, table_name=self._table, schema=self._schema, **kw)


def _after_on(sql: str) -> list[ddl.Token]:
    """The tokens of a CREATE INDEX after ``ON table``: its columns, expressions and WHERE."""
    tokens = ddl.tokenize(sql)
    sig = ddl.significant(tokens)
    for i, token in enumerate(sig):
        if token.upper == "ON" and i + 1 < len(sig):
            return sig[i + 2:]
    return sig


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
