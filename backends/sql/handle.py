"""One database reached through SQLAlchemy: engine, the run's connection and driver cursor,
transaction scope, and the guard that refuses a transactional migration's own COMMIT.

Every migration runs in one transaction together with its bookkeeping row, on SQLite too:
pysqlite's own transaction handling commits before DDL, so the connection is switched to
``isolation_level = None`` and each transaction is opened with ``BEGIN IMMEDIATE`` (the recipe
SQLAlchemy documents), which also takes the write lock up-front.
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from migrator.errors import BackendUnavailable, ConfigError
from migrator.redact import mask_url, scrub, secrets_in

from . import split as sqlsplit
from .borrowed import borrowed_sqlite3
from .database import operations_for
from .dialects import dialect_of
from .driver import DriverTransaction
from .messages import (
    BACKGROUND,
    TransactionControlRefused,
    cause,
    has_control_chars,
    mask_unparsed,
    path_unusable,
    printable,
)

if TYPE_CHECKING:
    from alembic.operations import Operations


class Handle:
    """The connection state of one backend: opened lazily, reused for the whole run, closed by ``close``."""

    def __init__(self, name: str, url_or_engine: str | URL | sa.Engine | sqlite3.Connection,
                 engine_options: Mapping[str, Any]) -> None:
        self.name = name
        self._engine_options = dict(engine_options)
        if isinstance(url_or_engine, sqlite3.Connection):  # the application's: used, never closed
            url_or_engine = borrowed_sqlite3(url_or_engine, name)
        if isinstance(url_or_engine, sa.Engine):
            self._engine: sa.Engine | None = url_or_engine
            self._owns_engine = False
            self.url = url_or_engine.url
        else:
            self._engine = None
            self._owns_engine = True
            shown = printable(mask_unparsed(str(url_or_engine)))
            if has_control_chars(str(url_or_engine)):  # a NUL, a newline: never part of a real URL
                raise ConfigError(f"{name}: {shown} is not a database URL: it contains a control character")
            try:
                self.url = make_url(url_or_engine)
            except (sa.exc.ArgumentError, ValueError) as exc:
                # ValueError: a port that is not a number ("db:notaport")
                raise ConfigError(f"{name}: {shown} is not a database URL: {printable(str(exc))}") from None
        raw = self.url.render_as_string(hide_password=False)
        self._secrets = secrets_in(raw)
        if self.url.password:
            self._secrets.append(str(self.url.password))
        # SQLAlchemy's own masking: a password with a space in it is not one mask_url's pattern sees
        self.location = printable(mask_url(self.url.render_as_string(hide_password=True)))
        self.dialect = dialect_of(self.url.get_backend_name())
        self._conn: sa.Connection | None = None
        self.cursor: Any = None  # the driver's own cursor on the run's connection (the hot path)
        self.driver_error: type[BaseException] = Exception
        self._saved_isolation: Any = None
        self.begin_sql: str | None = None
        self.guarding = False
        self.refused: str | None = None
        self._ops: Operations | None = None
        # set while a lock lives in this connection's session: a new session would not hold it
        self._pinned: Callable[[str], BaseException] | None = None

    # ------------------------------------------------------------------ engine and connection

    def engine(self) -> sa.Engine:
        if self._engine is None:
            url, options = self.dialect.engine_arguments(self.url, dict(self._engine_options))
            try:
                with warnings.catch_warnings():
                    # pysqlite ignores query arguments it does not know (``?mode=ro`` without
                    # ``uri=true``): a URL that silently means something else is a config error.
                    warnings.filterwarnings("error", message="Query string argument", category=sa.exc.SAWarning)
                    self._engine = sa.create_engine(url, **options)
            except (ImportError, sa.exc.NoSuchModuleError) as exc:
                raise BackendUnavailable(
                    f"{self.name}: cannot open {self.location}: the database driver is missing "
                    f"({self.message(exc)}); {self.dialect.missing_driver_hint}"
                ) from None
            except sa.exc.SAWarning as exc:
                raise ConfigError(f"{self.name}: cannot open {self.location}: {self.message(exc)}") from None
            except (sa.exc.ArgumentError, TypeError, ValueError, AttributeError) as exc:
                raise self.bad_options(exc) from None
        return self._engine

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connection(self) -> sa.Connection:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        if self._pinned is not None:
            why = "the database session holding it was closed" if conn is None or conn.closed else \
                "the database session holding it ended"
            raise self._pinned(why)
        self._conn = self._ops = None
        engine = self.engine()
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise self.unavailable(exc) from None
        except (sa.exc.ArgumentError, TypeError, ValueError, AttributeError) as exc:
            # connect_args the driver does not take, an isolation_level the dialect does not know...
            raise self.bad_options(exc) from None
        # The hot path (SQL files, bookkeeping) runs on the driver's own cursor: SQLAlchemy's
        # per-statement machinery would cost more than a small migration itself.
        dbapi: Any = conn.connection.dbapi_connection
        self.cursor = dbapi.cursor()
        self.driver_error = conn.dialect.loaded_dbapi.Error
        if self.dialect.begin_write is not None:
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

    def pin(self, lost: Callable[[str], BaseException]) -> None:
        """From now on the run's session must not be replaced: ``connection()`` raises ``lost(why)`` instead."""
        self._pinned = lost

    def unpin(self) -> None:
        self._pinned = None

    def alive(self) -> bool:
        """Whether the run's connection is open and usable as far as SQLAlchemy knows."""
        conn = self._conn
        return conn is not None and not conn.closed and not conn.invalidated

    def database_errors(self) -> tuple[type[BaseException], ...]:
        """What a database error can be: SQLAlchemy's, or the driver's own (from the raw cursor)."""
        if self.driver_error is Exception:  # not connected yet
            return (sa.exc.DBAPIError,)
        return (sa.exc.DBAPIError, self.driver_error)

    def fresh_connection(self) -> sa.Connection:
        """The run's connection with no transaction open."""
        conn = self.connection()
        if conn.in_transaction():
            conn.rollback()
        return conn

    def _on_begin(self, conn: sa.Connection) -> None:
        if self.begin_sql is not None:
            self.cursor.execute(self.begin_sql)

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        """One transaction on the run's connection (SQLite: ``BEGIN IMMEDIATE`` for writes)."""
        conn = self.fresh_connection()
        self.begin_sql = self.dialect.begin_write if write else None
        trans = conn.begin()
        try:
            yield conn
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
        else:
            trans.commit()

    def begin_on_driver(self) -> DriverTransaction:
        """A write transaction on the run's driver connection, SQLAlchemy's ``Connection`` not involved.

        For steps that run only driver statements (plain SQL files and their version row): SQLAlchemy's
        begin/commit machinery and events cost more per step than the SQLite work of a small migration.
        SQLAlchemy's ``Connection`` stays outside any transaction meanwhile; nothing may use it until
        the transaction ends.
        """
        conn = self.fresh_connection()
        dbapi: Any = conn.connection.dbapi_connection
        if self.dialect.begin_write is not None:
            self.cursor.execute(self.dialect.begin_write)
        return DriverTransaction(dbapi)

    def operations(self, connection: sa.Connection) -> Operations:
        """Alembic operations on ``connection``, made once per run connection (on first use)."""
        if connection is not self._conn:
            return operations_for(connection, self.dialect.name)
        if self._ops is None:
            self._ops = operations_for(connection, self.dialect.name)
        return self._ops

    # ------------------------------------------------------------------ the transaction guard

    def transaction_id(self) -> Any:
        """The server's id of the open transaction (dialects that have one), else None."""
        if self.dialect.transaction_id_sql is None:
            return None
        self.cursor.execute(self.dialect.transaction_id_sql)
        return self.cursor.fetchone()[0]

    def driver_in_transaction(self, conn: sa.Connection) -> bool:
        """Whether the driver is still inside the transaction we began (a file may COMMIT)."""
        if not self.dialect.driver_tracks_transaction:
            return True
        dbapi: Any = conn.connection.dbapi_connection
        return bool(getattr(dbapi, "in_transaction", True))

    def abandon(self, conn: sa.Connection, trans: sa.RootTransaction | DriverTransaction) -> None:
        """Roll the failed step back, on the driver's connection too (a refused commit leaves it open)."""
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # "transaction already deassociated": we know
            trans.rollback()
        with contextlib.suppress(Exception):
            conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]

    def _on_statement(self, conn: sa.Connection, cursor: Any, statement: str, parameters: Any, context: Any,
                      executemany: bool) -> None:
        if self.guarding:
            command = sqlsplit.transaction_control(statement, self.dialect.name)
            if command is not None:
                self._refuse(command)

    def _on_commit(self, conn: sa.Connection) -> None:
        if self.guarding:
            self._refuse("connection.commit()")

    def _on_rollback(self, conn: sa.Connection) -> None:
        if self.guarding:
            self._refuse("connection.rollback()")

    def _refuse(self, command: str) -> None:
        self.refused = (f"{command} refused: the migration runs in one transaction with its version row; "
                        "set transactional = False to manage transactions yourself")
        raise TransactionControlRefused(self.refused)

    # ------------------------------------------------------------------ messages

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def message(self, exc: BaseException) -> str:
        """An exception's text on one line, without SQLAlchemy's background link and without secrets."""
        text = BACKGROUND.sub("", str(exc)).strip()
        return printable(self.scrub(text))

    def bad_options(self, exc: BaseException) -> ConfigError:
        """The driver or SQLAlchemy refused the URL's arguments or ``engine_options``."""
        hint = " (check engine_options)" if self._engine_options else ""
        return ConfigError(f"{self.name}: cannot open {self.location}: {self.message(exc)}{hint}")

    def unavailable(self, exc: BaseException) -> BackendUnavailable:
        why = self.scrub(cause(exc))
        if self.dialect.name == "sqlite" and "not a database" in why:
            return BackendUnavailable(f"{self.name}: {self.sqlite_path()} is not a SQLite database ({why})")
        return BackendUnavailable(f"{self.name}: cannot open {self.location}: {why}")

    def path_unusable(self, path: Path, doing: str, exc: OSError) -> BackendUnavailable:
        return path_unusable(self.name, path, doing, exc)

    def file_exists(self, path: Path) -> bool:
        try:
            return path.exists()
        except OSError as exc:  # a name too long for the file system, a folder we may not search
            raise self.path_unusable(path, "use the database file", exc) from None

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL; None for in-memory databases or other dialects."""
        if self.dialect.name != "sqlite":
            return None
        database = self.url.database or ""
        if database.startswith("file:"):
            if self.url.query.get("mode") == "memory":
                return None
            database = database[len("file:"):].split("?", 1)[0]
        if not database or database == ":memory:":
            return None
        return Path(database)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        conn, cursor = self._conn, self.cursor
        self._conn = self.cursor = self._ops = None
        if cursor is not None:
            with contextlib.suppress(Exception):
                cursor.close()
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                if conn.in_transaction():
                    conn.rollback()
                if self.dialect.begin_write is not None and not conn.invalidated:
                    dbapi: Any = conn.connection.dbapi_connection
                    dbapi.isolation_level = self._saved_isolation
            with contextlib.suppress(Exception):
                conn.close()
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()
            self._engine = None
