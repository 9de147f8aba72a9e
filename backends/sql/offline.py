"""Offline SQL (``migrator upgrade --sql``, ``rollback --sql``): the script a plan would run, never run.

Nothing here opens a connection. Python migrations run against an offline ``db``: ``db.op`` is
Alembic's ``Operations`` in offline mode (``MigrationContext.configure(dialect_name=...,
opts={"as_sql": True, ...})``), ``db.execute`` writes its statement; what needs a live database
(``db.connection``, the result of ``db.execute``, an operation that SQLite performs by copying the
table from its live definition) is refused by name. Plain SQL files contribute their statements.
Every migration is framed like the real run: ``BEGIN`` / its body / its version row / ``COMMIT``
(no frame for one that runs outside a transaction), the version table created first if missing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa

from migrator.errors import MigrationFailed, UsageError
from migrator.model import DATABASE_LINE, Direction, Migration

from . import split as sqlsplit
from .dialects import dialect_of
from .messages import cause, line_in
from .sources import PythonCode, SqlCode

if TYPE_CHECKING:
    from alembic.operations import Operations

# SQLite operations that migrator's db.op performs by copying the table from its live CREATE TABLE text
# (sqlite_alter): their SQL depends on the database, so an offline script cannot hold them
_SQLITE_LIVE_ONLY = ("drop_column", "create_unique_constraint", "create_check_constraint", "create_primary_key",
                     "create_foreign_key", "drop_constraint", "batch_alter_table")


class NeedsDatabase(Exception):
    """A Python migration used something that exists only on a live database."""


def render(migrations: Sequence[Migration], direction: Direction, *, backend: str, dialect: str,
           version_table: str) -> str:
    """The SQL script of loaded ``migrations`` (payload ``PythonCode`` / ``SqlCode``) run in ``direction``."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    out = io.StringIO()
    context = MigrationContext.configure(dialect_name=dialect, opts={
        "as_sql": True, "output_buffer": out, "literal_binds": True, "transactional_ddl": False})
    sa_dialect = context.dialect
    books = _VersionRows(version_table, sa_dialect)
    rules = dialect_of(dialect)
    begin = (rules.begin_write or "BEGIN") + ";"
    verb = "upgrade" if direction is Direction.UP else "rollback"
    out.write(f"-- migrator {verb} --sql: {backend} ({dialect}), {len(migrations)} migration(s)\n\n")
    if direction is Direction.UP and migrations:
        out.write(books.create(rules.version_table_ddl) + ";\n\n")
    operations = Operations(context)
    for migration in migrations:
        code = migration.payload
        assert isinstance(code, (PythonCode, SqlCode))
        transactional = _transactional(migration, code, direction)
        out.write(f"-- {_file(migration, code, direction)}"
                  f"{'' if transactional else ' (runs outside a transaction)'}\n\n")
        if transactional:
            out.write(begin + "\n\n")
        if isinstance(code, SqlCode):
            statements = code.up if direction is Direction.UP else code.down
            assert statements is not None
            for statement in statements:
                out.write(_terminated(statement.text) + "\n\n")
        else:
            _run_python(migration, code, direction, backend, dialect, operations, out, transactional)
        row = books.insert(migration) if direction is Direction.UP else books.delete(migration.version)
        out.write(row + ";\n\n")
        if transactional:
            out.write("COMMIT;\n\n")
    return out.getvalue()


def _transactional(migration: Migration, code: PythonCode | SqlCode, direction: Direction) -> bool:
    if isinstance(code, SqlCode):
        return code.up_transactional if direction is Direction.UP else code.down_transactional
    return migration.transactional


def _file(migration: Migration, code: PythonCode | SqlCode, direction: Direction) -> str:
    if isinstance(code, SqlCode):
        path = code.up_path if direction is Direction.UP else code.down_path
        return path.name if path is not None else migration.path.name
    return f"{code.path.name}: {direction.value}()"


def _terminated(text: str) -> str:
    text = text.strip()
    return text if text.endswith(";") else text + ";"


def _run_python(migration: Migration, code: PythonCode, direction: Direction, backend: str, dialect: str,
                operations: Operations, out: io.StringIO, transactional: bool) -> None:
    function = code.up if direction is Direction.UP else code.down
    assert function is not None
    where = f"{backend}: {code.path.name}: {direction.value}()"
    db = OfflineDatabase(operations, dialect, out, transactional)
    try:
        function(db)  # type: ignore[arg-type]  # the offline stand-in for Database
    except NeedsDatabase:
        pass  # db.refused says what
    except NotImplementedError as exc:  # Alembic: an operation with no SQL of its own on this dialect
        raise UsageError(f"{where} cannot be written as SQL: {cause(exc)}") from None
    except (Exception, SystemExit) as exc:
        if db.refused is None:
            line = line_in(exc, code.path)
            at = f" at line {line}" if line is not None else ""
            raise MigrationFailed(f"{where} failed{at} while writing SQL: {cause(exc)}", backend=backend,
                                  line=DATABASE_LINE, version=migration.version) from exc
    if db.refused is not None:  # also when the migration caught the refusal and went on: the script is not whole
        raise UsageError(f"{where} cannot be written as SQL: it {db.refused}") from None


class OfflineDatabase:
    """The ``db`` of a Python migration while its SQL is written instead of run (see the module docstring)."""

    __slots__ = ("_operations", "_out", "_transactional", "dialect", "refused")

    def __init__(self, operations: Operations, dialect: str, out: io.StringIO, transactional: bool = True) -> None:
        self._operations = operations
        self._out = out
        self._transactional = transactional
        self.dialect = dialect
        self.refused: str | None = None  # the first thing the migration did that needs a live database

    def refuse(self, what: str) -> NoReturn:
        if self.refused is None:
            self.refused = what
        raise NeedsDatabase(what)

    @property
    def op(self) -> Any:
        if dialect_of(self.dialect).sqlite_alter:
            return _SqliteOffline(self._operations, self)
        return self._operations

    @property
    def connection(self) -> NoReturn:
        self.refuse("uses db.connection, which needs a live database; run it against the database (without --sql)")

    def execute(self, sql: Any, params: Any = None) -> _NoResult:
        if isinstance(sql, str) and self._transactional:
            command = sqlsplit.transaction_control(sql, self.dialect)
            if command is not None:
                self.refuse(f"runs {command} in a migration that runs in one transaction with its version row "
                            "(set transactional = False to manage transactions yourself)")
        if isinstance(sql, str) and params is None:
            self._out.write(_terminated(sql) + "\n\n")  # as written: db.execute runs it without parameters
        elif isinstance(sql, str):
            for row in self._rows(params):
                self._operations.execute(sa.text(sql).bindparams(**row))
        elif params is None:
            self._operations.execute(sql)
        elif isinstance(sql, sa.Insert):
            self._operations.execute(sql.values(self._rows(params)))
        else:
            self.refuse("passes parameters to a SQLAlchemy statement in db.execute(), which needs a live database "
                        "(bind them in the statement to write SQL)")
        return _NoResult(self)

    def _rows(self, params: Any) -> list[Mapping[str, Any]]:
        if isinstance(params, Mapping):
            return [params]
        if isinstance(params, Sequence) and not isinstance(params, str) and params \
                and all(isinstance(row, Mapping) for row in params):
            return list(params)
        self.refuse("passes positional parameters to db.execute(); use named ones (:name) to write SQL")

    def __repr__(self) -> str:
        return f"<migrator offline Database {self.dialect}>"


_LIVE = "which needs a live database; run it against the database (without --sql)"
_LIVE_SQLITE = "which on SQLite is made from the table's live definition; run it against the database (without --sql)"


class _NoResult:
    """What ``db.execute`` returns offline: any use of it is refused (there are no rows without a database)."""

    __slots__ = ("_db",)

    def __init__(self, db: OfflineDatabase) -> None:
        self._db = db

    def __getattr__(self, name: str) -> NoReturn:
        self._db.refuse(f"uses the result of db.execute() (.{name}), {_LIVE}")

    def __iter__(self) -> NoReturn:
        self._db.refuse(f"iterates over the result of db.execute(), {_LIVE}")

    def __bool__(self) -> NoReturn:
        self._db.refuse(f"tests the result of db.execute(), {_LIVE}")


class _SqliteOffline:
    """Alembic's offline operations for SQLite, minus those migrator performs from the live table definition."""

    __slots__ = ("_db", "_operations")

    def __init__(self, operations: Operations, db: OfflineDatabase) -> None:
        self._operations = operations
        self._db = db

    def __getattr__(self, name: str) -> Any:
        if name in _SQLITE_LIVE_ONLY:
            self._db.refuse(f"uses db.op.{name}, {_LIVE_SQLITE}")
        return getattr(self._operations, name)

    def add_column(self, table_name: str, column: sa.Column[Any], **kw: Any) -> None:
        if column.primary_key or column.unique:
            kind = "PRIMARY KEY" if column.primary_key else "UNIQUE"
            self._db.refuse(f"uses db.op.add_column with a {kind} column, {_LIVE_SQLITE}")
        self._operations.add_column(table_name, column, **kw)

    def alter_column(self, table_name: str, column_name: str, *, new_column_name: str | None = None,
                     **kw: Any) -> None:
        changes = [k for k, v in kw.items() if not k.startswith("existing_") and v not in (None, False)]
        if changes or new_column_name is None:
            self._db.refuse(f"uses db.op.alter_column ({', '.join(changes) or 'no rename'}), {_LIVE_SQLITE}")
        self._operations.alter_column(table_name, column_name, new_column_name=new_column_name, **kw)


class _VersionRows:
    """The version table's statements as SQL text with literal values (bookkeeping in the script)."""

    def __init__(self, name: str, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self._table = sa.Table(
            name, sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("version", sa.BigInteger, unique=True, nullable=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("applied_at", sa.DateTime, server_default=sa.func.current_timestamp()),
            sa.Column("checksum", sa.Text),
            sa.Column("duration_ms", sa.Integer),
        )

    def _sql(self, statement: Any) -> str:
        return str(statement.compile(dialect=self._dialect, compile_kwargs={"literal_binds": True})).strip()

    def create(self, ddl: Any) -> str:
        quoted = self._dialect.identifier_preparer.quote(self._table.name)
        if ddl is not None:
            return str(ddl(quoted))
        return self._sql(sa.schema.CreateTable(self._table, if_not_exists=True))

    def insert(self, migration: Migration) -> str:
        """``applied_at`` is the column's default (the time the script runs); ``duration_ms`` stays empty."""
        return self._sql(sa.insert(self._table).values(version=migration.version, name=migration.name,
                                                       checksum=migration.checksum))

    def delete(self, version: int) -> str:
        return self._sql(sa.delete(self._table).where(self._table.c.version == version))
