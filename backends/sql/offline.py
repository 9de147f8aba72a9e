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
            _run_python(migration, code, direction, backend, dialect, operations, out)
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
                operations: Operations, out: io.StringIO) -> None:
    function = code.up if direction is Direction.UP else code.down
    assert function is not None
    where = f"{backend}: {code.path.name}: {direction.value}()"
    db = OfflineDatabase(operations, dialect, out)
    try:
        function(db)  # type: ignore[arg-type]  # the offline stand-in for Database
    except NeedsDatabase as exc:
        raise UsageError(f"{where} cannot be written as SQL: it {exc}; run it against the database "
                         "(without --sql)") from None
    except NotImplementedError as exc:  # Alembic: an operation with no SQL of its own on this dialect
        raise UsageError(f"{where} cannot be written as SQL: {cause(exc)}") from None
    except (Exception, SystemExit) as exc:
        line = line_in(exc, code.path)
        at = f" at line {line}" if line is not None else ""
        raise MigrationFailed(f"{where} failed{at} while writing SQL: {cause(exc)}", backend=backend,
                              line=DATABASE_LINE, version=migration.version) from exc


class OfflineDatabase:
    """The ``db`` of a Python migration while its SQL is written instead of run (see the module docstring)."""

    __slots__ = ("_operations", "_out", "dialect")

    def __init__(self, operations: Operations, dialect: str, out: io.StringIO) -> None:
        self._operations = operations
        self._out = out
        self.dialect = dialect

    @property
    def op(self) -> Any:
        if dialect_of(self.dialect).sqlite_alter:
            return _SqliteOffline(self._operations)
        return self._operations

    @property
    def connection(self) -> NoReturn:
        raise NeedsDatabase("uses db.connection, which needs a live database")

    def execute(self, sql: Any, params: Any = None) -> _NoResult:
        if isinstance(sql, str) and params is None:
            self._out.write(_terminated(sql) + "\n\n")  # as written: db.execute runs it without parameters
        elif isinstance(sql, str):
            for row in _rows(params):
                self._operations.execute(sa.text(sql).bindparams(**row))
        elif params is None:
            self._operations.execute(sql)
        elif isinstance(sql, sa.Insert):
            self._operations.execute(sql.values(list(_rows(params))))
        else:
            raise NeedsDatabase("passes parameters to a SQLAlchemy statement in db.execute(), which needs a live "
                                "database (bind them in the statement instead)")
        return _NoResult()

    def __repr__(self) -> str:
        return f"<migrator offline Database {self.dialect}>"


def _rows(params: Any) -> list[Mapping[str, Any]]:
    if isinstance(params, Mapping):
        return [params]
    if isinstance(params, Sequence) and all(isinstance(row, Mapping) for row in params):
        return list(params)
    raise NeedsDatabase("passes positional parameters to db.execute(); use named ones (:name) to write SQL")


class _NoResult:
    """What ``db.execute`` returns offline: any use of it is refused (there are no rows without a database)."""

    def __getattr__(self, name: str) -> NoReturn:
        raise NeedsDatabase(f"uses the result of db.execute() (.{name}), which needs a live database")

    def __iter__(self) -> NoReturn:
        raise NeedsDatabase("iterates over the result of db.execute(), which needs a live database")

    def __bool__(self) -> NoReturn:
        raise NeedsDatabase("tests the result of db.execute(), which needs a live database")


class _SqliteOffline:
    """Alembic's offline operations for SQLite, minus those migrator performs from the live table definition."""

    __slots__ = ("_operations",)

    def __init__(self, operations: Operations) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        if name in _SQLITE_LIVE_ONLY:
            raise NeedsDatabase(f"uses db.op.{name}, which on SQLite is made from the table's live definition")
        return getattr(self._operations, name)

    def add_column(self, table_name: str, column: sa.Column[Any], **kw: Any) -> None:
        if column.primary_key or column.unique:
            raise NeedsDatabase(f"uses db.op.add_column with a {'PRIMARY KEY' if column.primary_key else 'UNIQUE'} "
                                "column, which on SQLite is made from the table's live definition")
        self._operations.add_column(table_name, column, **kw)

    def alter_column(self, table_name: str, column_name: str, *, new_column_name: str | None = None,
                     **kw: Any) -> None:
        changes = [k for k, v in kw.items() if not k.startswith("existing_") and v not in (None, False)]
        if changes or new_column_name is None:
            raise NeedsDatabase(f"uses db.op.alter_column ({', '.join(changes) or 'no rename'}), which on SQLite is "
                                "made from the table's live definition")
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
