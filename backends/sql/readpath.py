"""The lean path: a plain SQLite file migrated with the standard library's ``sqlite3``.

``status``, ``history``, ``validate`` and ``check`` need only the migration files and the
version table's rows; ``upgrade`` and ``rollback`` of plain SQL files need the file lock, the
version table, and per step the file's statements and the version row in one transaction. For a
URL that is nothing but a SQLite file path, ``SqliteFront`` does all of that without importing
SQLAlchemy or Alembic (reads here, steps through ``driver.SqliteDriver`` and the same ``Steps``).
Everything else (a Python migration, whose ``db`` is SQLAlchemy's; a file that runs outside a
transaction; stamp, backup, seeds, autogenerate...) goes to the full
:class:`~migrator.backends.sql.adapter.SqlBackend`, created on first need, which from then on
answers every call. Any URL that is not plainly a file (a query, ``%`` escapes, in-memory,
another dialect), any ``engine_options``, and any database error while reading or preparing
falls back to ``SqlBackend`` too, so errors keep their one wording.

Row reading and column checks mirror ``bookkeeping.VersionTable.columns`` / ``read``; the
values come from the same driver (pysqlite is ``sqlite3``), so the records are equal.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from migrator.model import DATABASE_LINE, AppliedMigration, Direction, InterruptedStep, Issue, Migration

from .. import collector_paused, missing_dependency
from ..base import Capabilities, Report
from ..locking import Waiting
from . import sources
from .bookkeeping import VersionTable, check_columns
from .dialects import SQLITE
from .dirty import COLUMNS as MARKER_COLUMNS
from .dirty import marker_table, step_of
from .driver import SqliteDriver, quote_name
from .lock import sqlite_file_lock
from .sources import SqlCode
from .steps import Steps, check_recorded
from .timestamps import to_datetime

if TYPE_CHECKING:
    from migrator.config import BackendConfig

    from .adapter import SqlBackend

# a URL SQLAlchemy renders back unchanged and reads as exactly this file path
_PLAIN_SQLITE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[A-Za-z0-9_./+\-~]+)")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WRITTEN = ("version", "name", "applied_at", "checksum", "duration_ms")
CAPABILITIES = Capabilities(reversible=True, per_table_lines=False, parallel_lines=False, transactional_ddl=True)


def plain_sqlite_file(config: BackendConfig) -> Path | None:
    """The database file when ``config`` is a SQLite file URL the read path can take; else None."""
    match = _PLAIN_SQLITE_URL.fullmatch(config.location)
    options = config.options
    if match is None or "engine_options" in options or match["path"] == ":memory:" or config.handle is not None:
        return None
    table = config.version_table or "migrations"
    if not _PLAIN_NAME.fullmatch(table):
        return None  # SqlBackend refuses it, with its own message
    return Path(match["path"])


class SqliteFront:
    """A SQL backend on a SQLite file: reads through ``sqlite3``, everything else through ``SqlBackend``."""

    type = "sql"
    capabilities = CAPABILITIES
    dialect = "sqlite"

    def __init__(self, config: BackendConfig, path: Path) -> None:
        self._config = config
        self._path = path
        self._full: SqlBackend | None = None
        self.name = config.name
        self.location = config.location
        self.migrations_dir = Path(config.migrations)
        self.version_table = config.version_table or "migrations"
        self._quoted = quote_name(self.version_table)
        self._driver: SqliteDriver | None = None  # the write side, opened by prepare or apply
        self._books = VersionTable(self.version_table, self.name, self.location, SQLITE)
        self._books.bind("qmark", self._quoted)
        self._steps: Steps | None = None
        self._prepared = False

    def __repr__(self) -> str:
        return f"<SqlBackend {self.name} {self.location} (sqlite3 path)>"

    def full(self) -> SqlBackend:
        """The complete adapter (imports SQLAlchemy); from now on it answers every call."""
        if self._full is None:
            self._close_driver()  # one connection of this run writes at a time
            self._full = _create_full(self._config)
        return self._full

    def discover(self) -> list[Migration]:
        if self._full is not None:
            return self._full.discover()
        return sources.discover(self.migrations_dir)

    def applied(self) -> list[AppliedMigration]:
        if self._full is None:
            records = self._read()
            if records is not None:
                return records
        return self.full().applied()

    def interrupted(self) -> list[InterruptedStep]:
        if self._full is None:
            steps = self._read_markers()
            if steps is not None:
                return steps
        return self.full().interrupted()

    def drift(self, migrations: Sequence[Migration], applied: Sequence[AppliedMigration]) -> Sequence[Issue]:
        """Nothing, as for ``SqlBackend``: the version table is the only record of a SQL database's version."""
        return ()

    # ------------------------------------------------------------------ the lean write side

    def lock(self, timeout: float, waiting: Waiting | None = None) -> AbstractContextManager[None]:
        if self._full is not None:
            return self._full.lock(timeout, waiting)
        return sqlite_file_lock(self.name, self.location, self._path, timeout, waiting)

    def load(self, migrations: Sequence[Migration]) -> list[Migration]:
        if self._full is not None:
            return self._full.load(migrations)
        return [sources.load_one(migration, self.dialect) for migration in migrations]

    def check_plan(self, migrations: Sequence[Migration], direction: Direction, *, backup: bool = False) -> None:
        """A plan with a step the lean path does not take runs through SqlBackend from its start.

        So SQLAlchemy is imported (and a broken install refused) before the lock's run creates or
        changes anything, and one connection does the whole run. A backup is SqlBackend's too.
        """
        if backup or self._full is not None or not all(_lean(m, direction) for m in migrations):
            self.full().check_plan(migrations, direction, backup=backup)

    def prepare(self) -> None:
        """The version table created (or completed) through ``sqlite3``; SqlBackend words any failure."""
        if self._full is not None:
            self._full.prepare()
            return
        if self._prepared:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            driver = self._open_driver()
            with driver.transaction(write=True):
                columns = _columns(driver.cursor, self._quoted)
                if columns is not None:
                    check_columns(columns, self.name, self.version_table, self.location)
                for sql in self._books.ddl(columns, self._quoted):
                    driver.cursor.execute(sql)
        except (OSError, sqlite3.Error):
            self.full().prepare()  # a folder it may not create, a file that is not a database, a read-only file
            return
        self._prepared = True

    def apply(self, migration: Migration, direction: Direction, report: Report) -> AppliedMigration | None:
        """A plain SQL file that runs in a transaction, through ``sqlite3``; anything else through SqlBackend."""
        if self._full is None:
            loaded = sources.load_one(migration, self.dialect)
            if _lean(loaded, direction):
                return self._lean_steps().apply(loaded, direction, report, self._guard)
        return self.full().apply(migration, direction, report)

    def _guard(self, conn: Any, migration: Migration, direction: Direction, ran: bool) -> None:
        """As ``SqlBackend._guard`` for a SQLite file (a file lock cannot be lost): nobody else ran the step."""
        assert self._driver is not None
        check_recorded(self._books, self._driver, conn, migration, direction, ran, self.name, self.location)

    def _open_driver(self) -> SqliteDriver:
        if self._driver is None:
            self._driver = SqliteDriver(self._path)
        return self._driver

    def _lean_steps(self) -> Steps:
        if self._steps is None:
            self._steps = Steps(self.name, self._open_driver(), self._books)
        return self._steps

    def _close_driver(self) -> None:
        if self._driver is not None:
            self._driver.close()
        self._driver = self._steps = None

    def close(self) -> None:
        self._close_driver()
        self._prepared = False
        if self._full is not None:
            self._full.close()

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self.full(), attribute)

    def _connect(self) -> sqlite3.Connection | None:
        """A read-only connection to the file; None when SqlBackend must answer (or there is no file: see callers)."""
        try:
            if not self._path.is_file():
                return None
            uri = f"file:{quote(str(self._path.absolute()))}?mode=ro"
            return sqlite3.connect(uri, uri=True, isolation_level=None)
        except (OSError, sqlite3.Error):
            return None

    def _read_markers(self) -> list[InterruptedStep] | None:
        """The marker rows of ``dirty.py``; None when SqlBackend must answer."""
        try:
            if not self._path.exists():
                return []
        except OSError:
            return None
        conn = self._connect()
        if conn is None:
            return None
        try:
            table = '"' + marker_table(self.version_table) + '"'
            columns = {str(row[1]).lower() for row in conn.execute(f"PRAGMA main.table_info({table})")}
            if not columns:
                return []
            if not set(MARKER_COLUMNS) <= columns:
                return None  # not migrator's table: SqlBackend words the refusal
            cursor = conn.execute(f"SELECT {', '.join(MARKER_COLUMNS)} FROM {table} ORDER BY started_at, version")
            rows = [dict(zip(MARKER_COLUMNS, row, strict=True)) for row in cursor]
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        return [step_of(row) for row in rows]

    def _read(self) -> list[AppliedMigration] | None:
        """The version table's records; None when SqlBackend must answer (it words every error)."""
        try:
            if not self._path.exists():
                return []  # nothing applied; reading must not create the database file
            if not self._path.is_file():
                return None  # a folder, a device: SqlBackend words it (so does an unusable path, OSError)
            uri = f"file:{quote(str(self._path.absolute()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except (OSError, sqlite3.Error):
            return None
        try:
            conn.execute("BEGIN")  # one snapshot for both reads
            table = self._quoted
            columns = _columns(conn.cursor(), table)
            if columns is None:
                return []
            check_columns(columns, self.name, self.version_table, self.location)
            wanted = [c for c in _WRITTEN if c in columns]
            order_by = ["id"] if "id" in columns else [c for c in ("applied_at", "version") if c in columns]
            cursor = conn.execute(f"SELECT {', '.join(wanted)} FROM {table} ORDER BY {', '.join(order_by)}")
            rows = [dict(zip(wanted, row, strict=True)) for row in cursor]
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        return [
            AppliedMigration(
                version=int(row["version"]),
                name=str(row["name"]),
                line=DATABASE_LINE,
                checksum=row.get("checksum"),
                applied_at=to_datetime(row.get("applied_at")),
                duration_ms=int(row["duration_ms"]) if row.get("duration_ms") is not None else None,
            )
            for row in rows
        ]


def _lean(migration: Migration, direction: Direction) -> bool:
    """Whether the lean path runs this loaded step: a SQL file that runs in a transaction."""
    code = migration.payload
    if not isinstance(code, SqlCode):
        return False  # a Python migration: its db is SQLAlchemy's
    if direction is Direction.UP:
        return code.up_transactional
    return code.down is not None and code.down_transactional


def _columns(cursor: Any, quoted_table: str) -> set[str] | None:
    """The (lower-case) column names of a table of the main database; None when there is no such table."""
    columns = {str(row[1]).lower() for row in cursor.execute(f"PRAGMA main.table_info({quoted_table})")}
    return columns or None


def create(config: BackendConfig) -> Any:
    """The registry's factory: ``SqliteFront`` for a plain SQLite file, ``SqlBackend`` otherwise."""
    path = plain_sqlite_file(config)
    if path is not None:
        return SqliteFront(config, path)
    return _create_full(config)


def _create_full(config: BackendConfig) -> SqlBackend:
    try:
        with collector_paused():
            from .adapter import create as create_full
    except ImportError as exc:  # SQLAlchemy or Alembic missing: a broken install
        raise missing_dependency(config, exc) from exc
    return create_full(config)
