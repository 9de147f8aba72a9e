"""The SQL adapter: SQLAlchemy + Alembic operations; SQLite and PostgreSQL tested.

One version line per database (``line = ""``), kept in the version table
(default ``migrations``, DESIGN section 5). Every migration runs in one
transaction together with its bookkeeping row, on SQLite too: pysqlite's own
transaction handling commits before DDL, so the connection is switched to
``isolation_level = None`` and each transaction is opened with ``BEGIN
IMMEDIATE`` (the recipe SQLAlchemy documents), which also takes the write lock
up-front.

Migration files: ``NNN_name.py`` (``up(db)``, optional ``down(db)``, optional
``transactional = False``) or ``NNN_name.up.sql`` with an optional
``NNN_name.down.sql`` (a first line ``-- migrator: no-transaction`` runs the
file outside a transaction).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from migrator import loader
from migrator.config import DEFAULT_LOCK_TIMEOUT
from migrator.errors import (
    BackendUnavailable,
    ConfigError,
    IrreversibleMigration,
    LoaderError,
    LockTimeout,
    MigrationFailed,
    UsageError,
)
from migrator.model import DATABASE_LINE, AppliedMigration, Direction, Migration
from migrator.redact import mask_url, scrub, secrets_in

from . import sqlsplit
from .base import Capabilities, Report

if TYPE_CHECKING:
    from alembic.operations import Operations

    from migrator.config import BackendConfig

__all__ = [
    "SUFFIXES",
    "Database",
    "PythonCode",
    "PythonSource",
    "SqlBackend",
    "SqlCode",
    "SqlSource",
    "advisory_lock_key",
    "create",
]

SUFFIXES = (".py", ".up.sql", ".down.sql")
LOCK_POLL_SECONDS = 0.05
PG_CONNECT_TIMEOUT = 10
DEFAULT_VERSION_TABLE = "migrations"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEF_DOWN = re.compile(rb"^def\s+down\s*\(", re.MULTILINE)
_NOT_TRANSACTIONAL = re.compile(rb"^transactional\s*(?::[^=\n]*)?=\s*False\b", re.MULTILINE)
_NO_PARAMS: Mapping[str, Any] = {"no_parameters": True}
_BATCH_DIALECTS = frozenset({"sqlite"})
_BACKGROUND = re.compile(r"\s*\(Background on this \w+ at: [^)]*\)")
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # whatever could break a line


# --------------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class PythonSource:
    """A discovered ``.py`` migration, not imported yet."""

    path: Path


@dataclass(frozen=True)
class SqlSource:
    """A discovered ``.up.sql`` (+ ``.down.sql``) pair, not read yet."""

    up: Path
    down: Path | None


@dataclass(frozen=True)
class PythonCode:
    """A loaded Python migration: its ``up`` and ``down`` callables."""

    path: Path
    up: Callable[[Database], object]
    down: Callable[[Database], object] | None


@dataclass(frozen=True)
class SqlCode:
    """A loaded SQL migration: its statements, split, with their line numbers."""

    up_path: Path
    down_path: Path | None
    up: tuple[sqlsplit.Statement, ...]
    down: tuple[sqlsplit.Statement, ...] | None
    up_transactional: bool = True     # each file may start with "-- migrator: no-transaction"
    down_transactional: bool = True


# --------------------------------------------------------------------------- the `db` of up(db)


class Database:
    """What a Python migration's ``up(db)`` / ``down(db)`` receives.

    - ``db.execute(sql, params=None)``: a string without params runs as it is (literal ``%``
      and ``:word`` are fine); with params it is a SQLAlchemy ``text()`` with ``:name`` binds;
      SQLAlchemy statements are accepted too. Returns the result.
    - ``db.op``: Alembic ``Operations`` on this migration's connection (on SQLite, column and
      constraint changes go through batch mode by themselves).
    - ``db.connection``: the SQLAlchemy ``Connection``; ``db.dialect``: ``"sqlite"``, ``"postgresql"``...
    """

    __slots__ = ("_backend", "connection", "dialect")

    def __init__(self, connection: sa.Connection, dialect: str, backend: SqlBackend | None = None) -> None:
        self.connection = connection
        self.dialect = dialect
        self._backend = backend

    def execute(self, sql: Any, params: Any = None) -> sa.CursorResult[Any]:
        if isinstance(sql, str):
            if params is None:
                return self.connection.exec_driver_sql(sql, execution_options=_NO_PARAMS)
            return self.connection.execute(sa.text(sql), params)
        return self.connection.execute(sql, params)

    @property
    def op(self) -> Operations:
        if self._backend is not None:
            return self._backend._operations(self.connection)
        return _operations_for(self.connection, self.dialect)

    def __repr__(self) -> str:
        return f"<migrator Database {self.dialect}>"


def _operations_for(connection: sa.Connection, dialect: str) -> Operations:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    operations = Operations(MigrationContext.configure(connection=connection))
    if dialect in _BATCH_DIALECTS:
        wrapped: Operations = _BatchOperations(operations)  # type: ignore[assignment]
        return wrapped
    return operations


class _BatchOperations:
    """Alembic ``Operations`` whose column / constraint changes run in batch mode (SQLite).

    SQLite cannot alter or drop columns with constraints, nor add or drop
    constraints: Alembic's batch mode recreates the table instead. Every other
    operation goes straight to the wrapped ``Operations``.
    """

    def __init__(self, operations: Operations) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    def alter_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.alter_column(column_name, **kw)

    def drop_column(self, table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.drop_column(column_name, **kw)

    def create_foreign_key(
        self,
        constraint_name: str | None,
        source_table: str,
        referent_table: str,
        local_cols: list[str],
        remote_cols: list[str],
        *,
        source_schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(source_table, schema=source_schema) as batch:
            batch.create_foreign_key(constraint_name, referent_table, local_cols, remote_cols, **kw)

    def drop_constraint(
        self, constraint_name: str, table_name: str, type_: str | None = None, *, schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.drop_constraint(constraint_name, type_=type_, **kw)

    def create_unique_constraint(
        self, constraint_name: str | None, table_name: str, columns: Sequence[str], *, schema: str | None = None,
        **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.create_unique_constraint(cast(str, constraint_name), columns, **kw)

    def create_check_constraint(
        self, constraint_name: str | None, table_name: str, condition: Any, *, schema: str | None = None, **kw: Any,
    ) -> None:
        with self._operations.batch_alter_table(table_name, schema=schema) as batch:
            batch.create_check_constraint(cast(str, constraint_name), condition, **kw)


# --------------------------------------------------------------------------- errors inside a step


class _StepError(Exception):
    """A failure inside one step, already phrased: ``statement 3 of 4 (line 12) failed: ...``."""

    def __init__(self, message: str, *, done: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.done = done  # statements that completed before the failure (non-transactional reports)


def _mask_unparsed(url: str) -> str:
    """A URL that did not parse, safe to print: everything before its last ``@`` is hidden."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return mask_url(scheme + sep + rest)


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): an error message stays on one line."""
    return _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], text)


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


class _TransactionControlRefused(Exception):
    """A transactional migration tried to COMMIT, ROLLBACK or BEGIN by itself."""


def _cause(exc: BaseException) -> str:
    """The driver's own message for database errors, ``Type: message`` for anything else."""
    if isinstance(exc, _TransactionControlRefused):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r}) was called"
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return _first_line(str(exc.orig)) or type(exc.orig).__name__
    if isinstance(exc, sa.exc.StatementError) and exc.orig is not None:
        return _first_line(f"{type(exc.orig).__name__}: {exc.orig}")
    text = _first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in the traceback of ``exc`` (where the migration failed)."""
    target = str(path)
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == target:
            found = frame.lineno
    return found


# --------------------------------------------------------------------------- the backend


def advisory_lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock key: a stable non-negative 63-bit int from the version table's name."""
    digest = hashlib.sha256(f"migrator:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def create(config: BackendConfig) -> SqlBackend:
    """The registry's factory (``migrator.backends.open_backend``)."""
    options = dict(config.options)
    engine_options = options.get("engine_options")
    if engine_options is not None and not isinstance(engine_options, Mapping):
        raise ConfigError(f"{config.source}: engine_options must be a table")
    return SqlBackend(
        config.name,
        config.location,
        config.migrations,
        version_table=config.version_table or DEFAULT_VERSION_TABLE,
        engine_options=dict(engine_options) if engine_options else None,
        lock_timeout=config.lock_timeout,
    )


class SqlBackend:
    """A SQL database reached through SQLAlchemy: one version line, reversible, transactional DDL."""

    type = "sql"
    capabilities = Capabilities(reversible=True, per_table_lines=False, parallel_lines=False, transactional_ddl=True)

    def __init__(
        self,
        name: str,
        url_or_engine: str | URL | sa.Engine,
        migrations_dir: str | os.PathLike[str],
        version_table: str = DEFAULT_VERSION_TABLE,
        engine_options: Mapping[str, Any] | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if not _PLAIN_NAME.fullmatch(version_table):
            raise ConfigError(f"{name}: version_table {version_table!r} is not a plain table name")
        self.name = name
        self.migrations_dir = Path(migrations_dir)
        self.version_table = version_table
        self.lock_timeout = lock_timeout
        self._engine_options = dict(engine_options or {})
        if isinstance(url_or_engine, sa.Engine):
            self._engine: sa.Engine | None = url_or_engine
            self._owns_engine = False
            self._url = url_or_engine.url
        else:
            self._engine = None
            self._owns_engine = True
            shown = _printable(_mask_unparsed(str(url_or_engine)))
            if _CONTROL_CHARS.search(str(url_or_engine)):  # a NUL, a newline: never part of a real URL
                raise ConfigError(f"{name}: {shown} is not a database URL: it contains a control character")
            try:
                self._url = make_url(url_or_engine)
            except (sa.exc.ArgumentError, ValueError) as exc:
                # ValueError: a port that is not a number ("db:notaport")
                raise ConfigError(f"{name}: {shown} is not a database URL: {_printable(str(exc))}") from None
        raw = self._url.render_as_string(hide_password=False)
        self._secrets = secrets_in(raw)
        if self._url.password:
            self._secrets.append(str(self._url.password))
        # SQLAlchemy's own masking: a password with a space in it is not one mask_url's pattern sees
        self.location = _printable(mask_url(self._url.render_as_string(hide_password=True)))
        self.dialect = self._url.get_backend_name()
        self._conn: sa.Connection | None = None
        self._cursor: Any = None
        self._driver_error: type[BaseException] = Exception
        self._bookkeeping = _Bookkeeping("", "", False, "")
        self._saved_isolation: Any = None
        self._begin_sql: str | None = None
        self._guarding = False
        self._refused: str | None = None
        self._ops: Operations | None = None
        self._prepared = False
        self._table = _version_table(version_table)
        self._insert = self._table.insert()
        self._delete = self._table.delete().where(self._table.c.version == sa.bindparam("v"))

    def __repr__(self) -> str:
        return f"<SqlBackend {self.name} {self.location}>"

    # ------------------------------------------------------------------ discovery and loading

    def discover(self) -> list[Migration]:
        self._refuse_undecodable_names()
        files = loader.scan(self.migrations_dir, SUFFIXES)
        migrations: list[Migration] = []
        index = 0
        while index < len(files):
            group = [files[index]]
            index += 1
            while index < len(files) and files[index].version == group[0].version:
                group.append(files[index])
                index += 1
            migrations.append(self._migration_from(group))
        return migrations

    def _refuse_undecodable_names(self) -> None:
        """A migration file whose name is not UTF-8 could be listed but never recorded: refuse it by name."""
        try:
            names = os.listdir(self.migrations_dir)
        except OSError:
            return  # loader.scan reports the folder itself
        for name in names:
            if name.startswith((".", "_")) or not name.endswith(SUFFIXES):
                continue
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(self.migrations_dir / name).decode("utf-8", "backslashreplace")
                raise LoaderError(f"{shown}: the file name is not valid UTF-8; rename the file") from None

    def _migration_from(self, group: list[loader.SourceFile]) -> Migration:
        runnable = [f for f in group if f.kind != ".down.sql"]
        downs = [f for f in group if f.kind == ".down.sql"]
        version = group[0].version
        if len(runnable) > 1:
            first, second = runnable[0], runnable[1]
            raise LoaderError(f"duplicate migration version {version}: {first.path} and {second.path}")
        if not runnable:
            down = downs[0]
            stem = down.path.name[: -len(".down.sql")]
            raise LoaderError(f"{down.path}: has no matching up file (expected {stem}.up.sql)")
        main = runnable[0]
        if main.kind == ".py":
            if downs:
                raise LoaderError(f"duplicate migration version {version}: {main.path} and {downs[0].path}")
            source = main.path.read_bytes()
            return Migration(
                version=version,
                name=main.name,
                path=main.path,
                checksum=loader.digest(source),
                reversible=bool(_DEF_DOWN.search(source)),
                transactional=not _NOT_TRANSACTIONAL.search(source),
                payload=PythonSource(main.path),
            )
        if len(downs) > 1 or (downs and downs[0].name != main.name):
            other = downs[1] if len(downs) > 1 and downs[0].name == main.name else downs[0]
            raise LoaderError(f"duplicate migration version {version}: {main.path} and {other.path}")
        down_path = downs[0].path if downs else None
        up = main.path.read_bytes()
        first_line = up[:4096].split(b"\n", 1)[0].decode("utf-8", errors="replace")
        contents = [up, *([] if down_path is None else [down_path.read_bytes()])]
        return Migration(
            version=version,
            name=main.name,
            path=main.path,
            checksum=loader.digest(*contents),
            files=(main.path, *([] if down_path is None else [down_path])),
            legacy_checksum=loader.legacy_digest(*contents),
            reversible=down_path is not None,
            transactional=not sqlsplit.is_no_transaction(first_line),
            payload=SqlSource(main.path, down_path),
        )

    def check_plan(self, migrations: Sequence[Migration], direction: Direction, *, backup: bool = False) -> None:
        """Only --backup where it cannot work: the core refuses irreversible steps and edited files."""
        if backup:
            self._backup_source()

    def load(self, migrations: Sequence[Migration]) -> list[Migration]:
        return [self._load_one(migration) for migration in migrations]

    def _load_one(self, migration: Migration) -> Migration:
        payload = migration.payload
        if isinstance(payload, (PythonCode, SqlCode)):
            return migration
        if payload is None:
            payload = self._source_for(migration.path)
        if isinstance(payload, PythonSource):
            module = loader.import_file(payload.path)
            up = getattr(module, "up", None)
            if not callable(up):
                raise LoaderError(f"{payload.path}: defines no up(db) function")
            down = getattr(module, "down", None)
            if down is not None and not callable(down):
                raise LoaderError(f"{payload.path}: down is not a function")
            transactional = getattr(module, "transactional", True)
            if not isinstance(transactional, bool):
                raise LoaderError(f"{payload.path}: transactional must be True or False")
            return dataclasses.replace(
                migration,
                reversible=down is not None,
                transactional=transactional,
                payload=PythonCode(payload.path, up, down),
            )
        if isinstance(payload, SqlSource):
            up_text = _read_sql(payload.up)
            statements = self._split(payload.up, up_text)
            down_statements = None
            down_transactional = True
            if payload.down is not None:
                down_text = _read_sql(payload.down)
                down_statements = self._split(payload.down, down_text)
                down_transactional = not sqlsplit.is_no_transaction(down_text)
                if down_transactional:
                    self._refuse_transaction_control(payload.down, down_statements)
            up_transactional = not sqlsplit.is_no_transaction(up_text)
            if up_transactional:
                self._refuse_transaction_control(payload.up, statements)
            return dataclasses.replace(
                migration,
                reversible=down_statements is not None,
                transactional=up_transactional,
                payload=SqlCode(payload.up, payload.down, statements, down_statements, up_transactional,
                                down_transactional),
            )
        raise LoaderError(f"{migration.path}: not a migration this SQL backend can run")

    def _refuse_transaction_control(self, path: Path, statements: Sequence[sqlsplit.Statement]) -> None:
        """A COMMIT or BEGIN in a file that runs in migrator's transaction would split it from its version row."""
        for number, statement in enumerate(statements, 1):
            command = sqlsplit.transaction_control(statement.text, self.dialect)
            if command is not None:
                raise LoaderError(
                    f"{path}:{statement.line}: statement {number} is {command}, but the file runs in one "
                    f"transaction with its version row; remove it, or make the first line "
                    f"`{sqlsplit.NO_TRANSACTION_MARKER}` to manage transactions yourself"
                )

    def _source_for(self, path: Path) -> PythonSource | SqlSource:
        if path.name.endswith(".py"):
            return PythonSource(path)
        if path.name.endswith(".up.sql"):
            down = path.with_name(path.name[: -len(".up.sql")] + ".down.sql")
            return SqlSource(path, down if down.is_file() else None)
        raise LoaderError(f"{path}: not a migration file (.py, .up.sql)")

    def _split(self, path: Path, text: str) -> tuple[sqlsplit.Statement, ...]:
        try:
            return tuple(sqlsplit.split(text, self.dialect))
        except sqlsplit.SplitError as exc:
            raise LoaderError(f"{path}:{exc.line}: {exc.message}") from None

    # ------------------------------------------------------------------ connection

    def _get_engine(self) -> sa.Engine:
        if self._engine is None:
            url, options = self._engine_arguments()
            try:
                with warnings.catch_warnings():
                    # pysqlite ignores query arguments it does not know (``?mode=ro`` without
                    # ``uri=true``): a URL that silently means something else is a config error.
                    warnings.filterwarnings("error", message="Query string argument", category=sa.exc.SAWarning)
                    self._engine = sa.create_engine(url, **options)
            except (ImportError, sa.exc.NoSuchModuleError) as exc:
                hint = ("pip install 'migrator[postgres]' and use postgresql+psycopg://"
                        if self.dialect == "postgresql" else "install the DB-API driver the URL names")
                raise BackendUnavailable(
                    f"{self.name}: cannot open {self.location}: the database driver is missing "
                    f"({self._message(exc)}); {hint}"
                ) from None
            except sa.exc.SAWarning as exc:
                raise ConfigError(f"{self.name}: cannot open {self.location}: {self._message(exc)}") from None
            except (sa.exc.ArgumentError, TypeError, ValueError, AttributeError) as exc:
                raise self._bad_options(exc) from None
        return self._engine

    def _bad_options(self, exc: BaseException) -> ConfigError:
        """The driver or SQLAlchemy refused the URL's arguments or ``engine_options``."""
        hint = " (check engine_options)" if self._engine_options else ""
        return ConfigError(f"{self.name}: cannot open {self.location}: {self._message(exc)}{hint}")

    def _message(self, exc: BaseException) -> str:
        """An exception's text on one line, without SQLAlchemy's background link and without secrets."""
        text = _BACKGROUND.sub("", str(exc)).strip()
        return _printable(self._scrub(text))

    def _engine_arguments(self) -> tuple[URL, dict[str, Any]]:
        """The URL and options for create_engine, with PostgreSQL defaults a migration tool wants.

        A plain ``postgresql://`` URL means psycopg2 to SQLAlchemy; when only psycopg (3) is
        installed (``migrator[postgres]``), use it. libpq waits forever for a silent host:
        connect_timeout defaults to 10 s unless the URL or engine_options say otherwise.
        """
        url = self._url
        options = dict(self._engine_options)
        if self.dialect != "postgresql":
            return url, options
        if url.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None \
                and importlib.util.find_spec("psycopg") is not None:
            url = url.set(drivername="postgresql+psycopg")
        driver = url.drivername.partition("+")[2] or "psycopg2"
        connect_args = dict(options.get("connect_args") or {})
        if driver in {"psycopg", "psycopg2"} and "connect_timeout" not in url.query:
            connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT)
            options["connect_args"] = connect_args
        return url, options

    def _connection(self) -> sa.Connection:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        self._conn = self._ops = None
        engine = self._get_engine()
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise self._unavailable(exc) from None
        except (sa.exc.ArgumentError, TypeError, ValueError, AttributeError) as exc:
            # connect_args the driver does not take, an isolation_level the dialect does not know...
            raise self._bad_options(exc) from None
        # The hot path (SQL files, bookkeeping) runs on the driver's own cursor: SQLAlchemy's
        # per-statement machinery would cost more than a small migration itself.
        dbapi: Any = conn.connection.dbapi_connection
        self._cursor = dbapi.cursor()
        self._driver_error = conn.dialect.loaded_dbapi.Error
        self._bookkeeping = _Bookkeeping.for_dialect(conn.dialect, self._quoted_table(conn))
        if self.dialect == "sqlite":
            # Truly transactional DDL (SQLAlchemy's pysqlite recipe), on this connection only:
            # no implicit transactions from the driver, and our own BEGIN on every begin.
            self._saved_isolation = dbapi.isolation_level
            dbapi.isolation_level = None
            event.listen(conn, "begin", self._on_begin)
        event.listen(conn, "before_cursor_execute", self._on_statement)
        event.listen(conn, "commit", self._on_commit)
        event.listen(conn, "rollback", self._on_rollback)
        self._conn = conn
        return conn

    def _on_begin(self, conn: sa.Connection) -> None:
        if self._begin_sql is not None:
            self._cursor.execute(self._begin_sql)

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        """One transaction on the run's connection (SQLite: ``BEGIN IMMEDIATE`` for writes)."""
        conn = self._connection()
        if conn.in_transaction():
            conn.rollback()
        self._begin_sql = "BEGIN IMMEDIATE" if write else None
        trans = conn.begin()
        try:
            yield conn
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
        else:
            trans.commit()

    def _operations(self, connection: sa.Connection) -> Operations:
        """Alembic operations on ``connection``, made once per run connection (on first use)."""
        if connection is not self._conn:
            return _operations_for(connection, self.dialect)
        if self._ops is None:
            self._ops = _operations_for(connection, self.dialect)
        return self._ops

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        cause = self._scrub(_cause(exc))
        if self.dialect == "sqlite" and "not a database" in cause:
            return BackendUnavailable(f"{self.name}: {self._sqlite_path()} is not a SQLite database ({cause})")
        return BackendUnavailable(f"{self.name}: cannot open {self.location}: {cause}")

    def _file_exists(self, path: Path) -> bool:
        try:
            return path.exists()
        except OSError as exc:  # a name too long for the file system, a folder we may not search
            raise self._path_unusable(path, "use the database file", exc) from None

    def _path_unusable(self, path: Path, doing: str, exc: OSError) -> BackendUnavailable:
        reason = exc.strerror or type(exc).__name__
        return BackendUnavailable(f"{self.name}: cannot {doing} {_printable(str(path))}: {reason}")

    def _sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL; None for in-memory databases or other dialects."""
        if self.dialect != "sqlite":
            return None
        database = self._url.database or ""
        if database.startswith("file:"):
            if self._url.query.get("mode") == "memory":
                return None
            database = database[len("file:"):].split("?", 1)[0]
        if not database or database == ":memory:":
            return None
        return Path(database)

    # ------------------------------------------------------------------ bookkeeping

    def applied(self) -> list[AppliedMigration]:
        path = self._sqlite_path()
        self._get_engine()  # URL arguments and engine_options are checked on a fresh database too
        if path is not None and self._conn is None and not self._file_exists(path):
            return []  # reading must not create the database file
        try:
            with self._transaction(write=False) as conn:
                columns = self._existing_columns(conn)
                if columns is None:
                    return []
                return self._read_rows(conn, columns)
        except sa.exc.DBAPIError as exc:
            raise self._unavailable(exc) from None

    def _existing_columns(self, conn: sa.Connection) -> set[str] | None:
        """The version table's column names (lower case); None when it does not exist."""
        inspector = sa.inspect(conn)
        if not inspector.has_table(self.version_table):
            return None
        columns = {str(c["name"]).lower() for c in inspector.get_columns(self.version_table)}
        missing = {"version", "name"} - columns
        if missing:
            raise ConfigError(
                f"{self.name}: table {self.version_table!r} in {self.location} is not a migrator version table "
                f"(no column {sorted(missing)[0]!r}); set version_table to another name"
            )
        return columns

    def _read_rows(self, conn: sa.Connection, columns: set[str]) -> list[AppliedMigration]:
        wanted = [c for c in ("version", "name", "applied_at", "checksum", "duration_ms") if c in columns]
        order_by = ["id"] if "id" in columns else [c for c in ("applied_at", "version") if c in columns]
        query = f"SELECT {', '.join(wanted)} FROM {self._quoted_table(conn)} ORDER BY {', '.join(order_by)}"
        records = []
        for row in conn.exec_driver_sql(query).mappings():
            duration = row.get("duration_ms")
            records.append(
                AppliedMigration(
                    version=int(row["version"]),
                    name=str(row["name"]),
                    line=DATABASE_LINE,
                    checksum=row.get("checksum"),
                    applied_at=_to_datetime(row.get("applied_at")),
                    duration_ms=int(duration) if duration is not None else None,
                )
            )
        return records

    def prepare(self) -> None:
        if self._prepared:
            return
        path = self._sqlite_path()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._path_unusable(path.parent, "create the folder of", exc) from None
        try:
            with self._transaction(write=True) as conn:
                columns = self._existing_columns(conn)
                if columns is None:
                    self._create_version_table(conn)
                else:
                    for column, sql_type in (("checksum", "TEXT"), ("duration_ms", "INTEGER")):
                        if column not in columns:
                            conn.exec_driver_sql(
                                f"ALTER TABLE {self._quoted_table(conn)} ADD COLUMN {column} {sql_type}"
                            )
        except sa.exc.DBAPIError as exc:
            raise self._unavailable(exc) from None
        self._prepared = True

    def _quoted_table(self, conn: sa.Connection) -> str:
        return conn.dialect.identifier_preparer.quote(self.version_table)

    def _create_version_table(self, conn: sa.Connection) -> None:
        table = self._quoted_table(conn)
        if self.dialect == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {table} (\n"
                "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "  version INTEGER UNIQUE NOT NULL,\n"
                "  name TEXT NOT NULL,\n"
                "  applied_at DATETIME DEFAULT CURRENT_TIMESTAMP,\n"
                "  checksum TEXT,\n"
                "  duration_ms INTEGER\n"
                ")"
            )
        elif self.dialect == "postgresql":
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {table} (\n"
                "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
                "  version BIGINT UNIQUE NOT NULL,\n"
                "  name TEXT NOT NULL,\n"
                "  applied_at TIMESTAMP DEFAULT (CURRENT_TIMESTAMP AT TIME ZONE 'UTC'),\n"
                "  checksum TEXT,\n"
                "  duration_ms BIGINT\n"
                ")"
            )
        else:
            table_def = sa.Table(
                self.version_table,
                sa.MetaData(),
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("version", sa.BigInteger, unique=True, nullable=False),
                sa.Column("name", sa.String(255), nullable=False),
                sa.Column("applied_at", sa.DateTime, server_default=sa.func.current_timestamp()),
                sa.Column("checksum", sa.Text),  # a .up.sql/.down.sql pair stores two digests
                sa.Column("duration_ms", sa.Integer),
            )
            table_def.create(conn, checkfirst=True)

    def stamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        now = _utcnow().replace(tzinfo=None)
        try:
            with self._transaction(write=True) as conn:
                present = set(conn.execute(sa.select(self._table.c.version)).scalars())
                rows = [
                    {"version": m.version, "name": m.name, "checksum": m.checksum, "applied_at": now,
                     "duration_ms": None}
                    for m in sorted(migrations, key=lambda m: m.version)
                    if m.version not in present
                ]
                if rows:
                    conn.execute(self._insert, rows)
        except sa.exc.DBAPIError as exc:
            raise MigrationFailed(f"{self.name}: stamp failed: {self._scrub(_cause(exc))}", backend=self.name) from exc

    def unstamp(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        try:
            with self._transaction(write=True) as conn:
                conn.execute(self._delete, [{"v": m.version} for m in migrations])
        except sa.exc.DBAPIError as exc:
            raise MigrationFailed(
                f"{self.name}: unstamp failed: {self._scrub(_cause(exc))}", backend=self.name
            ) from exc

    def record_checksums(self, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        self.prepare()
        table = self._table
        update = table.update().where(table.c.version == sa.bindparam("v")).values(checksum=sa.bindparam("c"))
        try:
            with self._transaction(write=True) as conn:
                conn.execute(update, [{"v": m.version, "c": m.checksum} for m in migrations])
        except sa.exc.DBAPIError as exc:
            raise MigrationFailed(
                f"{self.name}: recording checksums failed: {self._scrub(_cause(exc))}", backend=self.name
            ) from exc

    def _backup_source(self) -> Path:
        """The SQLite file ``backup`` copies; UsageError, before anything changes, where --backup cannot work."""
        path = self._sqlite_path()
        if self.dialect != "sqlite":
            raise UsageError(
                f"{self.name}: --backup is available for SQLite only; back {self.dialect} up with its own tools "
                "(for PostgreSQL: pg_dump) before migrating"
            )
        if path is None:
            raise UsageError(f"{self.name}: an in-memory SQLite database cannot be backed up")
        return path

    def backup(self, report: Report) -> str:
        """SQLite: a consistent copy through the online backup API, beside the database file."""
        path = self._backup_source()
        stamp = _utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.backup-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = path.with_name(f"{path.name}.backup-{stamp}-{counter}")
        report(f"backing up {path} to {target}")
        conn = self._connection()
        if conn.in_transaction():
            conn.rollback()
        import sqlite3

        source: Any = conn.connection.dbapi_connection
        try:
            destination = sqlite3.connect(target)
            try:
                source.backup(destination)
            finally:
                destination.close()
        except (sqlite3.Error, OSError) as exc:
            target.unlink(missing_ok=True)
            raise BackendUnavailable(f"{self.name}: backup to {target} failed: {exc}") from exc
        return str(target)

    # ------------------------------------------------------------------ running

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        loaded = self._load_one(migration)
        code = loaded.payload
        if direction is Direction.DOWN and not loaded.reversible:
            raise IrreversibleMigration(f"{self.name}: {loaded.label} has no down migration; it cannot be undone")
        what = self._what(loaded, code, direction)
        if isinstance(code, SqlCode):
            transactional = code.up_transactional if direction is Direction.UP else code.down_transactional
        else:
            transactional = loaded.transactional
        if not transactional:
            return self._apply_outside_transaction(loaded, code, direction, report, what)
        conn = self._connection()
        if conn.in_transaction():
            conn.rollback()
        self._begin_sql = "BEGIN IMMEDIATE"
        try:
            trans = conn.begin()
        except sa.exc.DBAPIError as exc:
            raise self._failed(loaded, f"{what}: cannot start a transaction: {self._scrub(_cause(exc))}") from exc
        try:
            started = time.perf_counter()
            # Python code can reach the driver's connection and end the transaction behind our back;
            # on PostgreSQL that shows as a new transaction id (SQLite: the driver's in_transaction).
            xid = self._transaction_id() if isinstance(code, PythonCode) and self.dialect == "postgresql" else None
            self._refused = None
            self._guarding = True  # the migration's own COMMIT / ROLLBACK / BEGIN is refused (see _on_statement)
            try:
                self._run_body(conn, code, direction)
            finally:
                self._guarding = False
            duration_ms = round((time.perf_counter() - started) * 1000)
            if self._refused is not None:  # refused, but the migration caught the error and went on
                raise _StepError(f"{direction.value}(): {self._refused}")
            if (not trans.is_active or (self.dialect == "sqlite" and not _sqlite_in_transaction(conn))
                    or (xid is not None and self._transaction_id() != xid)):
                raise _StepError(
                    "the migration ended migrator's transaction itself (COMMIT/ROLLBACK), so what it ran before "
                    "that may stay committed while the version is not recorded; set transactional = False "
                    f"(or `{sqlsplit.NO_TRANSACTION_MARKER}`) to manage transactions yourself"
                )
            record = self._record(conn, loaded, direction, duration_ms)
            trans.commit()
        except (Exception, SystemExit) as exc:  # sys.exit() in a migration is that migration's failure
            self._abandon(conn, trans)
            if isinstance(exc, _StepError):
                message = exc.message
            elif self._refused is not None and not isinstance(exc, _TransactionControlRefused):
                message = f"{direction.value}(): {self._refused}"  # caught by the migration, then it went on
            else:
                message = self._body_failure(code, direction, exc)
            raise self._failed(loaded, f"{what}: {self._scrub(message)}") from exc
        except BaseException:
            self._abandon(conn, trans)
            raise
        return record

    def _transaction_id(self) -> Any:
        self._cursor.execute("SELECT txid_current()")
        return self._cursor.fetchone()[0]

    def _abandon(self, conn: sa.Connection, trans: sa.RootTransaction) -> None:
        """Roll the failed step back, on the driver's connection too (a refused commit leaves it open)."""
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # "transaction already deassociated": we know
            trans.rollback()
        with contextlib.suppress(Exception):
            conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]

    def _on_statement(self, conn: sa.Connection, cursor: Any, statement: str, parameters: Any, context: Any,
                      executemany: bool) -> None:
        if self._guarding:
            command = sqlsplit.transaction_control(statement, self.dialect)
            if command is not None:
                self._refuse(command)

    def _on_commit(self, conn: sa.Connection) -> None:
        if self._guarding:
            self._refuse("connection.commit()")

    def _on_rollback(self, conn: sa.Connection) -> None:
        if self._guarding:
            self._refuse("connection.rollback()")

    def _refuse(self, command: str) -> None:
        self._refused = (f"{command} refused: the migration runs in one transaction with its version row; "
                         "set transactional = False to manage transactions yourself")
        raise _TransactionControlRefused(self._refused)

    def _apply_outside_transaction(
        self, migration: Migration, code: PythonCode | SqlCode, direction: Direction, report: Report, what: str
    ) -> AppliedMigration | None:
        conn = self._connection()
        if conn.in_transaction():
            conn.rollback()
        report(f"{what} runs outside a transaction")
        self._begin_sql = None  # SQLite: no BEGIN, every statement commits by itself
        autocommit = self.dialect != "sqlite"
        previous_isolation = None
        if autocommit:
            previous_isolation = conn.get_isolation_level()
            conn.execution_options(isolation_level="AUTOCOMMIT")
        started = time.perf_counter()
        try:
            with conn.begin():
                self._run_body(conn, code, direction)
        except (Exception, SystemExit) as exc:
            if isinstance(exc, _StepError):
                message = exc.message
                kept = (f"statements 1 to {exc.done} stay applied" if exc.done > 1 else
                        "statement 1 stays applied" if exc.done == 1 else "nothing was applied")
            else:
                message = self._body_failure(code, direction, exc)
                kept = "its changes before the error stay applied"
            if isinstance(code, SqlCode):
                how = "the file runs without a transaction (-- migrator: no-transaction)"
            else:
                how = "the migration runs without a transaction (transactional = False)"
            version = "is not recorded" if direction is Direction.UP else "stays recorded"
            raise self._failed(
                migration, f"{what}: {self._scrub(message)}; not atomic: {how}, so {kept} and the version {version}"
            ) from exc
        finally:
            if previous_isolation is not None:
                conn.execution_options(isolation_level=previous_isolation)
        duration_ms = round((time.perf_counter() - started) * 1000)
        try:
            with self._transaction(write=True) as conn:
                return self._record(conn, migration, direction, duration_ms)
        except Exception as exc:
            cause = exc.message if isinstance(exc, _StepError) else _cause(exc)
            raise self._failed(migration, f"{what}: ran, but {self._scrub(cause)}") from exc

    def _run_body(self, conn: sa.Connection, code: PythonCode | SqlCode, direction: Direction) -> None:
        if isinstance(code, SqlCode):
            statements = code.up if direction is Direction.UP else code.down
            assert statements is not None
            total = len(statements)
            execute = self._cursor.execute
            for number, statement in enumerate(statements, 1):
                try:
                    execute(statement.text)
                except Exception as exc:
                    cause = _first_line(str(exc)) if isinstance(exc, self._driver_error) else _cause(exc)
                    raise _StepError(
                        f"statement {number} of {total} (line {statement.line}) failed: {cause}",
                        done=number - 1,
                    ) from exc
        else:
            function = code.up if direction is Direction.UP else code.down
            assert function is not None
            function(Database(conn, self.dialect, self))

    def _record(
        self, conn: sa.Connection, migration: Migration, direction: Direction, duration_ms: int
    ) -> AppliedMigration | None:
        bookkeeping = self._bookkeeping
        try:
            if direction is Direction.DOWN:
                self._cursor.execute(bookkeeping.delete, bookkeeping.params(version=migration.version))
                return None
            now = _utcnow()
            self._cursor.execute(
                bookkeeping.insert,
                bookkeeping.params(
                    version=migration.version,
                    name=migration.name,
                    applied_at=bookkeeping.timestamp(now),
                    checksum=migration.checksum,
                    duration_ms=duration_ms,
                ),
            )
        except Exception as exc:
            verb = "removing" if direction is Direction.DOWN else "recording"
            cause = _first_line(str(exc)) if isinstance(exc, self._driver_error) else _cause(exc)
            raise _StepError(f"{verb} version {migration.version} in {self.version_table} failed: {cause}") from exc
        return AppliedMigration(
            version=migration.version,
            name=migration.name,
            line=DATABASE_LINE,
            checksum=migration.checksum,
            applied_at=now,
            duration_ms=duration_ms,
        )

    def _what(self, migration: Migration, code: PythonCode | SqlCode, direction: Direction) -> str:
        if isinstance(code, SqlCode):
            return f"{migration.label}.{direction.value}.sql"
        return f"{migration.label}.py"

    def _body_failure(self, code: PythonCode | SqlCode, direction: Direction, exc: BaseException) -> str:
        if isinstance(code, PythonCode):
            line = _line_in(exc, code.path)
            where = f" at line {line}" if line is not None else ""
            return f"{direction.value}() failed{where}: {_cause(exc)}"
        return f"failed: {_cause(exc)}"

    def _failed(self, migration: Migration, message: str) -> MigrationFailed:
        return MigrationFailed(message, backend=self.name, line=DATABASE_LINE, version=migration.version)

    # ------------------------------------------------------------------ locking

    def lock(self, timeout: float) -> AbstractContextManager[None]:
        self._get_engine()  # a missing driver or a bad URL is reported before the lock file is created
        path = self._sqlite_path()
        if path is not None:
            return self._file_lock(path, timeout)
        if self.dialect == "postgresql":
            return self._advisory_lock(timeout)
        return contextlib.nullcontext()

    def _lock_timeout(self, timeout: float) -> LockTimeout:
        return LockTimeout(
            f"{self.name}: database {self.location} is being migrated by another process (waited {timeout:g} s)"
        )

    @contextlib.contextmanager
    def _file_lock(self, path: Path, timeout: float) -> Iterator[None]:
        import fcntl

        lock_path = path.with_name(path.name + ".migrator-lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._path_unusable(lock_path, "create the lock file", exc) from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._lock_timeout(timeout) from None
                    time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _advisory_lock(self, timeout: float) -> Iterator[None]:
        key = advisory_lock_key(self.version_table)
        try:
            conn = self._get_engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.DBAPIError as exc:
            raise self._unavailable(exc) from None
        try:
            deadline = time.monotonic() + timeout
            try:
                while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key:d})").scalar():
                    if time.monotonic() >= deadline:
                        raise self._lock_timeout(timeout)
                    time.sleep(LOCK_POLL_SECONDS)
            except sa.exc.DBAPIError as exc:
                raise self._unavailable(exc) from None
            try:
                yield
            finally:
                with contextlib.suppress(sa.exc.DBAPIError):
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key:d})")
        finally:
            conn.close()

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        conn, cursor = self._conn, self._cursor
        self._conn = self._cursor = self._ops = None
        if cursor is not None:
            with contextlib.suppress(Exception):
                cursor.close()
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                if conn.in_transaction():
                    conn.rollback()
                if self.dialect == "sqlite" and not conn.invalidated:
                    dbapi: Any = conn.connection.dbapi_connection
                    dbapi.isolation_level = self._saved_isolation
            with contextlib.suppress(Exception):
                conn.close()
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._prepared = False

    def __enter__(self) -> SqlBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- helpers


def _version_table(name: str) -> sa.Table:
    """The columns migrator writes; the DDL itself is per dialect (see ``_create_version_table``)."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime),
        sa.Column("checksum", sa.Text),
        sa.Column("duration_ms", sa.Integer),
    )


@dataclass(frozen=True)
class _Bookkeeping:
    """The version table's INSERT and DELETE in the driver's own parameter style."""

    insert: str
    delete: str
    positional: bool
    dialect: str

    _COLUMNS = ("version", "name", "applied_at", "checksum", "duration_ms")

    @classmethod
    def for_dialect(cls, dialect: sa.Dialect, table: str) -> _Bookkeeping:
        style = dialect.paramstyle
        if style not in {"qmark", "format", "numeric", "named", "pyformat", "numeric_dollar"}:
            raise BackendUnavailable(f"unsupported DB-API parameter style {style!r}")

        def marks(names: Sequence[str]) -> list[str]:
            if style == "qmark":
                return ["?"] * len(names)
            if style == "format":
                return ["%s"] * len(names)
            if style == "numeric":
                return [f":{i}" for i in range(1, len(names) + 1)]
            if style == "numeric_dollar":
                return [f"${i}" for i in range(1, len(names) + 1)]
            if style == "named":
                return [f":{name}" for name in names]
            return [f"%({name})s" for name in names]

        insert = (f"INSERT INTO {table} ({', '.join(cls._COLUMNS)}) "
                  f"VALUES ({', '.join(marks(cls._COLUMNS))})")
        delete = f"DELETE FROM {table} WHERE version = {marks(['version'])[0]}"
        return cls(insert, delete, style in {"qmark", "format", "numeric", "numeric_dollar"}, dialect.name)

    def params(self, **values: Any) -> Any:
        if self.positional:
            return tuple(values[name] for name in self._COLUMNS if name in values)
        return values

    def timestamp(self, moment: datetime) -> Any:
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        if self.dialect == "sqlite":  # the text format SQLAlchemy and CURRENT_TIMESTAMP use
            return naive.strftime("%Y-%m-%d %H:%M:%S.%f")
        return naive


def _read_sql(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror}") from None


def _sqlite_in_transaction(conn: sa.Connection) -> bool:
    """Whether the sqlite3 connection is still inside the transaction we began (a file may COMMIT)."""
    dbapi: Any = conn.connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", True))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _to_datetime(value: Any) -> datetime | None:
    """``applied_at`` as an aware UTC datetime, whatever the dialect stored (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    else:
        try:
            result = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)

